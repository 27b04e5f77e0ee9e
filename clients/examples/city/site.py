"""What every city service's web app has in common: linking a citizen's vault, and
hearing from it.

    GET  /                the service's page (its own template), for this browser's citizen
    POST /link            push the service's request (SDK: start_authorization), go to the vault;
                          a service with several `offers` (different terms) is told which
                          by the form field `offer`
    GET  /callback        the vault's answer (finish_authorization); then `on_linked`
    POST /webhooks/vault  the vault's events (verify_webhook); `on_event` runs after the 204
    GET  /healthz         200

A citizen who linked the service in a browser is known to it by the grant; the browser
keeps only a random visit id (a cookie named for the service: cookies are shared by
every port of a host). One browser may link several vaults (a parent, then their child's
vault while acting for the child): the visit keeps each grant, the newest per offer.
Everything is in memory: an example, not a records system.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader

from clients.examples.city.config import CityConfig
from clients.service import (
    AsyncVaultClient,
    AuthorizationFailed,
    Grant,
    GrantDenied,
    PendingAuthorization,
    PersonalData,
    Release,
    VaultClientError,
    VaultUnavailable,
    WebhookEvent,
    WebhookInvalid,
    verify_webhook,
)

__all__ = ["Account", "Clock", "Decide", "Site", "build_site", "read_into", "utcnow"]

_HERE = Path(__file__).parent
_MAX_LOG = 50
_MAX_HANDLED = 10_000
_MAX_PENDING = 1000

Clock = Callable[[], datetime]
#: A reader's decision on one read: (status, why), given the status it replaces.
Decide = Callable[[Release, str], tuple[str, str]]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Account:
    """One citizen who linked the service: the grant, what the service concluded, and
    what happened (newest last)."""

    grant: Grant
    #: Which of the service's offers (terms) it was linked with ("" for its only one).
    offer: str = ""
    status: str = ""
    detail: str = ""
    log: list[tuple[datetime, str]] = field(default_factory=list)
    #: One call at a time per grant: the tokens rotate when the SDK refreshes them.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def note(self, when: datetime, what: str) -> None:
        self.log.append((when, what))
        del self.log[:-_MAX_LOG]


@dataclass
class Site:
    """A service's app and its state; the service module adds its own routes to `app`."""

    app: FastAPI
    config: CityConfig
    accounts: dict[str, Account]
    clock: Clock
    #: visit id -> the grants linked in that browser, oldest first
    _visits: dict[str, list[str]]
    _pending: dict[str, dict[str, Any]]
    _env: Environment
    _headers: dict[str, str]
    cookie: str

    def vault(self) -> AsyncVaultClient:
        client: AsyncVaultClient = self.app.state.vault
        return client

    def account(self, request: Request, offer: str | None = None) -> Account | None:
        """The newest account linked in this browser (with `offer`, when named)."""
        for account in reversed(self.accounts_of(request)):
            if offer is None or account.offer == offer:
                return account
        return None

    def accounts_of(self, request: Request) -> list[Account]:
        """Every account linked in this browser, oldest first."""
        grant_ids = self._visits.get(request.cookies.get(self.cookie, ""), [])
        return [self.accounts[g] for g in grant_ids if g in self.accounts]

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self._env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=self._headers)

    def trouble(self, exc: VaultClientError) -> HTMLResponse:
        if isinstance(exc, VaultUnavailable):
            return self.render("error.html", 503, title="The vault is not answering",
                               detail="We could not reach the Citizen Data Vault. Try again "
                                      "in a few minutes.")
        return self.render("error.html", 502, title="Something went wrong with the vault",
                           detail=f"The vault said: {exc}")

    def back_home(self) -> RedirectResponse:
        return RedirectResponse("/", status_code=303)


def build_site(config: CityConfig, *, slug: str, title: str, terms: PersonalData,
               home: Callable[[Site, Request], Response],
               on_linked: Callable[[Site, Account], Awaitable[None]] | None = None,
               on_event: Callable[[Site, WebhookEvent], Awaitable[None]] | None = None,
               transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = utcnow, beneath: FastAPI | None = None,
               offers: Mapping[str, PersonalData] | None = None) -> Site:
    """The app of one service: `home` draws its page, `on_linked` runs once a citizen
    linked it, `on_event` for each verified webhook delivery (after the answer).
    `beneath` answers every other path (mounted under ours, its lifespan inside ours).
    `offers` are other terms the service may ask for instead of `terms`, by name (the
    link form's `offer` field); an account remembers which it was linked with."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncVaultClient(config.vault_url, client_id=config.client_id,
                                    key=config.key, transport=transport) as vault:
            app.state.vault = vault
            if beneath is None:
                yield
            else:
                async with beneath.router.lifespan_context(beneath):
                    yield

    app = FastAPI(title=f"{title} (example service)", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True)
    env.globals.update(vault_url=config.vault_url, service_title=title, slug=slug)
    headers = {
        "Cache-Control": "no-store",
        # form-action must allow the vault: "Link" answers with a 303 to it.
        "Content-Security-Policy": (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
            "script-src 'none'; object-src 'none'; base-uri 'none'; "
            f"frame-ancestors 'none'; form-action 'self' {_origin(config.vault_url)}"),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }
    site = Site(app=app, config=config, accounts={}, clock=clock, _visits={}, _pending={},
                _env=env, _headers=headers, cookie=f"city_{slug}_visit")
    app.state.site = site
    secure = config.public_url.startswith("https://")
    handled: dict[str, None] = {}  # webhook-ids, oldest first

    def with_visit(response: Response, visit: str) -> Response:
        response.set_cookie(site.cookie, visit, httponly=True, samesite="lax",
                            secure=secure, path="/")
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        return home(site, request)

    @app.post("/link")
    async def link(request: Request) -> Response:
        offer = str((await request.form()).get("offer", ""))
        asked = terms if not offer else (offers or {}).get(offer)
        if asked is None:
            return site.render("error.html", 400, title="We do not offer that",
                               detail="Go back to the start and choose again.")
        try:
            pending = await site.vault().start_authorization(
                asked, redirect_uri=config.redirect_uri)
        except VaultClientError as exc:
            return site.trouble(exc)
        visit = request.cookies.get(site.cookie) or secrets.token_urlsafe(24)
        site._pending[pending.state] = {"visit": visit, "offer": offer,
                                        "pending": pending.to_json()}
        while len(site._pending) > _MAX_PENDING:  # requests never answered, oldest first
            del site._pending[next(iter(site._pending))]
        return with_visit(RedirectResponse(pending.url, status_code=303), visit)

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        started = site._pending.pop(request.query_params.get("state", ""), None)
        if started is None or started["visit"] != request.cookies.get(site.cookie):
            return site.render("error.html", 400, title="We cannot use this answer",
                               detail="It does not belong to a request made in this "
                                      "browser, or it has been used already.")
        pending = PendingAuthorization.from_json(started["pending"])
        try:
            grant = await site.vault().finish_authorization(str(request.url), pending)
        except GrantDenied:
            return site.render("error.html", 200, title="You said no",
                               detail="Nothing was shared. You can link your vault later.")
        except AuthorizationFailed as exc:
            return site.render("error.html", 400, title="We cannot use this answer",
                               detail=f"The answer from your vault could not be used ({exc}).")
        except VaultClientError as exc:
            return site.trouble(exc)
        account = site.accounts[grant.grant_id] = Account(grant, offer=started["offer"])
        account.note(clock(), "You linked your vault.")
        linked = site._visits.setdefault(started["visit"], [])
        linked[:] = [g for g in linked if g in site.accounts
                     and site.accounts[g].offer != account.offer] + [grant.grant_id]
        if on_linked is not None:
            await on_linked(site, account)
        # Post/redirect/get: the code and state leave the address bar and the history.
        return site.back_home()

    @app.post("/webhooks/vault")
    async def webhook(request: Request, later: BackgroundTasks) -> Response:
        if config.webhook_secret is None:
            return JSONResponse({"error": "no webhook secret configured"}, status_code=404)
        try:
            event = verify_webhook(config.webhook_secret, request.headers,
                                   await request.body(), now=clock())
        except WebhookInvalid as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        # Delivery is at least once: a retry of a message handled already (its id)
        # must not cost the citizen's grant another read.
        if on_event is not None and event.id not in handled:
            handled[event.id] = None
            while len(handled) > _MAX_HANDLED:
                del handled[next(iter(handled))]
            # After the 204: the vault's delivery does not wait for the service's read.
            later.add_task(on_event, site, event)
        return Response(status_code=204)

    if beneath is not None:
        app.mount("/", beneath)  # last: our own routes come first
    return site


async def read_into(site: Site, account: Account, why: str, decide: Decide) -> None:
    """Read under the account's grant and put the decision on its page; a refused
    read (revoked, paused, too soon) is noted instead."""
    async with account.lock:
        try:
            release = await site.vault().read(account.grant)
        except VaultClientError as exc:
            account.note(site.clock(), f"{why}, but we could not read it: {exc}")
            return
    account.status, account.detail = decide(release, account.status)
    account.note(site.clock(), f"{why}: {account.status.lower()} (read logged at ledger "
                               f"entry {release.ledger_index}).")
