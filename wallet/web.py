"""The wallet as part of the vault's ASGI app: its state, its middleware, its routes.

`vault.app` (the composition root) calls `install_wallet(app, settings)` when it builds
the app, and `build_wallet(...)` when it starts; the routes find the result in
`app.state.wallet`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from ledger.note import Signer
from vault.services.context import VaultContext
from wallet.acting import NameCache
from wallet.passkeys.challenges import SqlChallengeStore
from wallet.passkeys.relying_party import RelyingParty
from wallet.security import AttemptLimiter, CookieNames, WalletHeaders
from wallet.sessions import SessionPolicy, SessionStore
from wallet.views import install_filters

__all__ = ["WalletState", "build_wallet", "install_wallet"]

_HERE = Path(__file__).parent


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=_HERE / "templates")
    templates.env.autoescape = True  # every template, whatever its file name
    install_filters(templates.env)
    return templates


@dataclass
class WalletState:
    ctx: VaultContext
    rp: RelyingParty
    secret: bytes
    cookies: CookieNames
    sessions: SessionStore
    challenges: SqlChallengeStore
    #: Signs the checkpoint a consent receipt is proved against.
    signer: Signer
    #: The OAuth issuer (the public URL), sent back to services with each code (RFC 9207).
    issuer: str
    templates: Jinja2Templates = field(default_factory=_templates)
    #: Passkey sign-in: 20 tries a minute per address; recovery codes: 5 per 15 minutes.
    sign_in_limit: AttemptLimiter = field(
        default_factory=lambda: AttemptLimiter(limit=20, window=60))
    recovery_limit: AttemptLimiter = field(
        default_factory=lambda: AttemptLimiter(limit=5, window=15 * 60))
    #: Called with a new citizen's id after sign-up (the demo gives them requests).
    after_sign_up: Callable[[str], object] | None = None
    #: Names of the people one acts for, for every page's header (`wallet.acting`).
    names: NameCache = field(default_factory=NameCache)


def build_wallet(
    ctx: VaultContext, *, public_url: str, secret: bytes, signer: Signer,
    idle: timedelta, absolute: timedelta, after_sign_up: Callable[[str], object] | None = None,
) -> WalletState:
    rp = RelyingParty.from_public_url(public_url)
    return WalletState(
        ctx=ctx, rp=rp, secret=secret, cookies=cookie_names(public_url),
        sessions=SessionStore(ctx.engine, SessionPolicy(idle=idle, absolute=absolute)),
        challenges=SqlChallengeStore(ctx.engine), signer=signer, issuer=public_url,
        after_sign_up=after_sign_up)


def cookie_names(public_url: str) -> CookieNames:
    return CookieNames(secure=public_url.startswith("https://"))


def install_wallet(app: FastAPI, *, public_url: str) -> None:
    """Routes, static files, security headers and error pages of the wallet."""
    from wallet.http_errors import install_wallet_error_handlers
    from wallet.routes import routers

    cookies = cookie_names(public_url)
    app.add_middleware(WalletHeaders, cookies=cookies, hsts=cookies.secure)
    app.mount("/wallet/static", StaticFiles(directory=_HERE / "static"), name="wallet-static")
    _install_front_door(app)
    for router in routers():
        app.include_router(router)
    install_wallet_error_handlers(app)


def _install_front_door(app: FastAPI) -> None:
    """The site's root is the wallet (people typing the vault's address land there), and
    browsers that ask for /favicon.ico without reading a page get the wallet's icon."""

    async def front_door() -> RedirectResponse:
        return RedirectResponse("/wallet", status_code=307)

    async def favicon() -> FileResponse:
        return FileResponse(_HERE / "static" / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400",
                                     "X-Content-Type-Options": "nosniff"})

    app.add_api_route("/", front_door, methods=["GET"], include_in_schema=False)
    app.add_api_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
