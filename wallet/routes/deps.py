"""What every wallet route needs: the wallet, the visitor, the CSRF check, rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from wallet.errors import NotSignedIn
from wallet.security import check_csrf, csrf_token
from wallet.web import WalletState

__all__ = [
    "Citizen",
    "Visitor",
    "Wallet",
    "client_key",
    "csrf_guard",
    "get_citizen_id",
    "get_visitor",
    "get_wallet",
    "render",
]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def get_wallet(request: Request) -> WalletState:
    return request.app.state.wallet  # type: ignore[no-any-return]


Wallet = Annotated[WalletState, Depends(get_wallet)]


@dataclass(frozen=True, slots=True)
class Visitor:
    citizen_id: str | None
    session_token: str | None
    #: The CSRF anchor: the session token when signed in, else the visitor cookie.
    anchor: str | None
    csrf: str


def get_visitor(request: Request, wallet: Wallet) -> Visitor:
    cached = getattr(request.state, "visitor", None)
    if isinstance(cached, Visitor):
        return cached
    token = request.cookies.get(wallet.cookies.session)
    citizen_id = wallet.sessions.resolve(token, now=wallet.ctx.clock())
    anchor = token if citizen_id is not None else request.cookies.get(wallet.cookies.visitor)
    visitor = Visitor(citizen_id, token if citizen_id else None, anchor,
                      csrf_token(wallet.secret, anchor) if anchor else "")
    request.state.visitor = visitor
    return visitor


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def get_citizen_id(visitor: VisitorDep) -> str:
    if visitor.citizen_id is None:
        raise NotSignedIn("please sign in first")
    return visitor.citizen_id


Citizen = Annotated[str, Depends(get_citizen_id)]


async def csrf_guard(request: Request, wallet: Wallet, visitor: VisitorDep) -> None:
    """On every state-changing request: the token of this visitor, from our origin."""
    if request.method in _SAFE:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")
        sent = value if isinstance(value, str) else None
    check_csrf(wallet.secret, visitor.anchor, sent=sent, origin=request.headers.get("origin"),
               allowed_origins=wallet.rp.origins)


def client_key(request: Request) -> str:
    """Whom to count attempts against: the peer address (behind a proxy, the proxy's
    unless uvicorn is told to trust --forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def render(request: Request, template: str, status_code: int = 200, **context: Any
           ) -> HTMLResponse:
    wallet = get_wallet(request)
    visitor = get_visitor(request, wallet)
    return wallet.templates.TemplateResponse(
        request, template, {"csrf": visitor.csrf, "signed_in": visitor.citizen_id is not None,
                            **context},
        status_code=status_code)
