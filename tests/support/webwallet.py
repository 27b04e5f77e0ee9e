"""The wallet over HTTP for tests without a browser: the real app through Starlette's
TestClient at http://localhost:8000 (the RP origin), and a software authenticator
playing the citizen's device.

    with open_wallet(tmp_path) as web:
        alice = web.sign_up()               # a Browser: its own cookies, its own device
        alice.get("/wallet/requests")
        grant = ask(web.ctx, web.world_for(alice))   # a service asks (vaultworld)
        alice.passkey_post(f"/wallet/grants/{grant.id}/approve")
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from support.vaultworld import World, blue_badge, give_ada_data

from vault.app import create_app
from vault.config import Settings
from vault.services.context import VaultContext
from wallet.passkeys.software import SoftAuthenticator
from wallet.web import WalletState

__all__ = ["ORIGIN", "Browser", "WebWallet", "open_wallet"]

ORIGIN = "http://localhost:8000"
_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]*)">')


@dataclass
class Browser:
    """One person's browser: a cookie jar, a passkey device, the page's CSRF token."""

    client: TestClient
    device: SoftAuthenticator = field(default_factory=lambda: SoftAuthenticator(origin=ORIGIN))
    citizen_id: str | None = None
    #: The wallet's origin, which its script sends (another one for a vault on another port).
    origin: str = ORIGIN

    def get(self, path: str, **kw: Any) -> httpx.Response:
        kw.setdefault("headers", {}).setdefault("accept", "text/html")
        return self.client.get(path, **kw)

    def csrf(self, path: str = "/wallet") -> str:
        found = _CSRF.search(self.get(path).text)
        assert found is not None, "no CSRF token on the page"
        return found.group(1)

    def form(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None,
             **kw: Any) -> httpx.Response:
        """A plain HTML form post (CSRF token included unless `csrf=""`)."""
        body = {"csrf": self.csrf() if csrf is None else csrf, **(data or {})}
        kw.setdefault("headers", {}).setdefault("accept", "text/html")
        return self.client.post(path, data=body, follow_redirects=False, **kw)

    def json(self, path: str, body: dict[str, Any], *, csrf: str | None = None
             ) -> httpx.Response:
        """What the wallet's script posts."""
        headers = {"x-csrf-token": self.csrf() if csrf is None else csrf,
                   "accept": "application/json", "origin": self.origin}
        return self.client.post(path, json=body, headers=headers)

    def passkey_post(self, action: str, fields: dict[str, str] | None = None, *,
                     options_path: str | None = None, **device_kw: Any) -> httpx.Response:
        """A passkey form: options, the device answers, the answer is posted.

        Options with `user` are a registration (device.create); others an assertion."""
        token = self.csrf()
        got = self.json(options_path or f"{action}/options", fields or {}, csrf=token)
        assert got.status_code == 200, got.text
        body = got.json()
        options = body["publicKey"]
        if "user" in options:
            answer = self.device.create(options, **device_kw)
        else:
            answer = self.device.get(options, **device_kw)
        return self.json(action, {"credential": answer, "ceremony": body.get("ceremony"),
                                  "fields": fields or {}}, csrf=token)


@dataclass
class WebWallet:
    client_factory: Any
    app: Any

    @property
    def state(self) -> WalletState:
        return self.app.state.wallet  # type: ignore[no-any-return]

    @property
    def ctx(self) -> VaultContext:
        return self.app.state.vault.ctx  # type: ignore[no-any-return]

    def browser(self) -> Browser:
        return Browser(self.client_factory())

    def sign_up(self, label: str = "My phone") -> Browser:
        """A new citizen with one passkey, signed in, with a name and an address."""
        b = self.browser()
        r = b.passkey_post("/wallet/signup", {"label": label})
        assert r.status_code == 200, r.text
        assert r.json() == {"redirect": "/wallet/welcome"}
        b.citizen_id = self.state.sessions.resolve(
            b.client.cookies.get(self.state.cookies.session), now=self.ctx.clock())
        assert b.citizen_id is not None
        give_ada_data(self.ctx, b.citizen_id)
        return b

    def world_for(self, b: Browser, service_id: str | None = None) -> World:
        """A vaultworld World for `b`'s citizen (registering the Blue Badge service)."""
        assert b.citizen_id is not None
        return World(service_id or blue_badge(self.ctx), b.citizen_id, "")


@contextmanager
def open_wallet(tmp_path: Path, database_url: str | None = None, **settings: Any
                ) -> Iterator[WebWallet]:
    """The whole app on a fresh database (SQLite in tmp_path unless `database_url`)."""
    s = Settings(data_dir=tmp_path / "vault", database_url=database_url, ledger_public=True,
                 **settings)
    app = create_app(s)
    clients: list[TestClient] = []

    def new_client() -> TestClient:
        c = TestClient(app, base_url=ORIGIN)
        c.__enter__() if not clients else None
        clients.append(c)
        return c

    first = new_client()  # runs the lifespan once; more clients share the started app
    try:
        yield WebWallet(new_client, app)
    finally:
        first.__exit__(None, None, None)
