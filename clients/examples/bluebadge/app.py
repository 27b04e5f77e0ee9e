"""The Blue Badge team's web app: apply for a badge, filled in from the citizen's vault.

    GET  /                 what we will ask your vault for, and why
    POST /apply/start      push the request (SDK: start_authorization), go to the vault;
                           or, with device=phone, show its QR code
    GET  /callback         the vault's answer (finish_authorization, then read)
    GET  /apply/form       the application form (pre-filled after /callback)
    POST /apply/submit     "send" the application (kept in memory only)
    POST /webhooks/vault   grant events from the vault (verify_webhook)
    GET  /status           the events received, for the operator
    GET  /privacy          the privacy notice the vault's consent screen links to

Every SDK call is one line in a route; everything the SDK hands back stays on the
server (sessions.py). The browser gets a random visit id and HTML.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from clients.examples.bluebadge.application import (
    ASKED,
    QUESTIONS,
    TERMS,
    Application,
    prefill,
    read_submission,
)
from clients.examples.bluebadge.config import AppConfig
from clients.examples.bluebadge.sessions import EventLog, Visit, Visits
from clients.service import (
    AsyncVaultClient,
    AuthorizationFailed,
    GrantDenied,
    PendingAuthorization,
    VaultClientError,
    VaultUnavailable,
    WebhookInvalid,
    verify_webhook,
)

__all__ = ["COOKIE", "create_app"]

COOKIE = "bluebadge_visit"
_HERE = Path(__file__).parent
_MAX_APPLICATIONS = 1000

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _Pages:
    """Jinja2 templates (autoescaped) rendered into uncacheable HTML responses."""

    def __init__(self, config: AppConfig) -> None:
        self._env = Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=True)
        self._env.globals["vault_url"] = config.vault_url
        # form-action must allow the vault: browsers check the redirect after a form
        # post against it (the "Fill in" button's 303 goes there).
        self._headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'none'; object-src 'none'; base-uri 'none'; "
                f"frame-ancestors 'none'; form-action 'self' {_origin(config.vault_url)}"),
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        }

    def render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self._env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status, headers=self._headers)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


def create_app(config: AppConfig, *, transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = _utcnow) -> FastAPI:
    """The app for `config`; `transport` reaches the vault (tests pass an ASGI one)."""
    pages = _Pages(config)
    visits = Visits()
    events = EventLog()
    applications: list[Application] = []
    secure = config.public_url.startswith("https://")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncVaultClient(config.vault_url, client_id=config.client_id,
                                    key=config.key, transport=transport) as vault:
            app.state.vault = vault
            yield

    app = FastAPI(title="Blue Badge (example service)", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.visits, app.state.events, app.state.applications = visits, events, applications
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")

    def vault_of(request: Request) -> AsyncVaultClient:
        client: AsyncVaultClient = request.app.state.vault
        return client

    def with_visit(response: Response, visit: Visit) -> Response:
        response.set_cookie(COOKIE, visit.id, httponly=True, samesite="lax", secure=secure,
                            path="/")
        return response

    def current(request: Request) -> Visit | None:
        return visits.get(request.cookies.get(COOKIE))

    def trouble(exc: VaultClientError) -> HTMLResponse:
        if isinstance(exc, VaultUnavailable):
            return pages.render("error.html", 503, title="Your vault is not answering",
                                detail="We could not reach the Citizen Data Vault. "
                                       "Try again in a few minutes.")
        return pages.render("error.html", 502, title="Something went wrong with your vault",
                            detail=f"The vault said: {exc}")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/", response_class=HTMLResponse)
    async def start(request: Request) -> Response:
        return pages.render("start.html", asked=ASKED, terms=TERMS)

    @app.get("/privacy", response_class=HTMLResponse)
    async def privacy(request: Request) -> Response:
        return pages.render("privacy.html", asked=ASKED, terms=TERMS)

    @app.post("/apply/start")
    async def start_authorization(request: Request) -> Response:
        form = await request.form()
        on_phone = form.get("device") == "phone"
        visit = current(request) or visits.new()
        try:
            pending = await vault_of(request).start_authorization(
                TERMS, redirect_uri=config.redirect_uri)
        except VaultClientError as exc:
            return with_visit(trouble(exc), visit)
        visits.start(visit, pending.to_json(), on_phone=on_phone)
        if not on_phone:
            return with_visit(RedirectResponse(pending.url, status_code=303), visit)
        # segno draws the SVG: paths and a fixed title, none of the URL's text.
        qr = Markup(pending.qr_svg())  # noqa: S704
        return with_visit(pages.render("phone.html", url=pending.url, qr=qr), visit)

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        state = request.query_params.get("state", "")
        visit = current(request)
        if visit is None or visit.pending is None or visit.pending.get("state") != state:
            # The QR code's path: the phone that scanned it comes back without our
            # cookie. Its answer is shown on that phone, never on the screen that showed
            # the code (whoever showed a code must not get the data of whoever scanned it).
            started = visits.started_on_another_device(state) if state else None
            if started is None:
                return pages.render("error.html", 400, title="We cannot use this answer",
                                    detail="It does not belong to an application started in "
                                           "this browser, or it has been used already.")
            visit, doc = visits.new(), visits.finish(started)
        else:
            doc = visits.finish(visit)
        if doc is None:  # not reached: both branches found a pending authorization
            return pages.render("error.html", 400, title="We cannot use this answer")
        pending = PendingAuthorization.from_json(doc)
        vault = vault_of(request)
        try:
            grant = await vault.finish_authorization(str(request.url), pending)
            release = await vault.read(grant)
        except GrantDenied:
            return with_visit(pages.render("denied.html"), visit)
        except AuthorizationFailed as exc:
            return with_visit(pages.render(
                "error.html", 400, title="We cannot use this answer",
                detail=f"The answer from your vault could not be used ({exc})."), visit)
        except VaultClientError as exc:
            return with_visit(trouble(exc), visit)
        visit.grant, visit.form = grant, prefill(release)
        # Post/redirect/get: the code and state leave the address bar and the history.
        return with_visit(RedirectResponse("/apply/form", status_code=303), visit)

    @app.get("/apply/form")
    async def application_form(request: Request) -> Response:
        visit = current(request) or visits.new()
        return with_visit(pages.render("form.html", form=visit.form, errors={},
                                       questions=QUESTIONS), visit)

    @app.post("/apply/submit")
    async def submit(request: Request) -> Response:
        visit = current(request)
        if visit is None:
            return pages.render("error.html", 400, title="Your session has ended",
                                detail="Start your application again.")
        submission = read_submission(await request.form(), visit.form)
        if submission.errors:
            return pages.render("form.html", 400, form=submission.as_prefill(visit.form),
                                errors=submission.errors, questions=QUESTIONS)
        done = Application.make(submission, visit.form, now=clock())
        applications.append(done)
        del applications[:-_MAX_APPLICATIONS]
        visit.submitted = done
        return pages.render("submitted.html", application=done)

    @app.post("/webhooks/vault")
    async def webhook(request: Request) -> Response:
        if config.webhook_secret is None:
            return JSONResponse({"error": "no webhook secret configured"}, status_code=404)
        body = await request.body()
        try:
            event = verify_webhook(config.webhook_secret, request.headers, body, now=clock())
        except WebhookInvalid as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        events.record(event, now=clock())
        return Response(status_code=204)

    @app.get("/status", response_class=HTMLResponse)
    async def status(request: Request) -> Response:
        return pages.render("status.html", events=list(events), config=config,
                            applications=len(applications))

    return app
