"""What every wallet route needs: the wallet, the visitor, the CSRF check, rendering.

Routes name whom they are about (issue 14 §3): `Actor` is the signed-in person (their
passkeys, recovery codes, account, sign-out, the people they act for); `Subject` is the
person whose vault a page shows and acts in (`wallet.acting`: the actor themself, or
someone they chose to act for, checked on every request). `Citizen` is `Actor`'s older
name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from vault.services.context import reading
from wallet.acting import ActingAs, header, resolve
from wallet.errors import NotSignedIn
from wallet.security import check_csrf, csrf_token
from wallet.web import WalletState

__all__ = [
    "Actor",
    "Citizen",
    "Subject",
    "Visitor",
    "VisitorDep",
    "Wallet",
    "client_key",
    "csrf_guard",
    "get_citizen_id",
    "get_subject",
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
    #: The CSRF anchor: the session token when signed in (with whose vault they act in,
    #: so a form drawn in one vault is refused after the switch to another), else the
    #: visitor cookie.
    anchor: str | None
    csrf: str
    #: Whose vault the session chose (unchecked: `get_subject` checks it).
    acting_for: str | None = None


def _anchor(token: str, acting_for: str | None) -> str:
    return token if acting_for is None else f"{token}:{acting_for}"


def get_visitor(request: Request, wallet: Wallet) -> Visitor:
    cached = getattr(request.state, "visitor", None)
    if isinstance(cached, Visitor):
        return cached
    token = request.cookies.get(wallet.cookies.session)
    found = wallet.sessions.lookup(token, now=wallet.ctx.clock())
    if found is not None and token:
        anchor = _anchor(token, found.acting_for)
        visitor = Visitor(found.citizen_id, token, anchor, csrf_token(wallet.secret, anchor),
                          found.acting_for)
    else:
        cookie = request.cookies.get(wallet.cookies.visitor)
        visitor = Visitor(None, None, cookie, csrf_token(wallet.secret, cookie) if cookie else "")
    request.state.visitor = visitor
    return visitor


VisitorDep = Annotated[Visitor, Depends(get_visitor)]


def get_citizen_id(visitor: VisitorDep) -> str:
    if visitor.citizen_id is None:
        raise NotSignedIn("please sign in first")
    return visitor.citizen_id


Actor = Annotated[str, Depends(get_citizen_id)]
Citizen = Actor


def get_subject(request: Request, wallet: Wallet, visitor: VisitorDep) -> ActingAs:
    """The actor and whose vault this request is in (`wallet.acting.resolve`)."""
    cached = getattr(request.state, "acting", None)
    if isinstance(cached, ActingAs):
        return cached
    actor_id = get_citizen_id(visitor)
    acting = resolve(wallet, actor_id=actor_id, chosen=visitor.acting_for,
                     token=visitor.session_token, safe=request.method in _SAFE)
    if visitor.acting_for is not None and not acting.for_someone:
        # The choice was cleared: this page's forms carry the token of one's own vault.
        anchor = _anchor(visitor.session_token or "", None)
        request.state.visitor = Visitor(actor_id, visitor.session_token, anchor,
                                        csrf_token(wallet.secret, anchor), None)
    request.state.acting = acting
    return acting


Subject = Annotated[ActingAs, Depends(get_subject)]


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
    # Not on a page saying the vault failed (its database may be what failed).
    if visitor.citizen_id is not None and "acting" not in context and status_code < 500:
        context["acting"] = _acting_header(request, wallet, visitor)
    return wallet.templates.TemplateResponse(
        request, template, {"csrf": visitor.csrf, "signed_in": visitor.citizen_id is not None,
                            **context},
        status_code=status_code)


def _acting_header(request: Request, wallet: WalletState, visitor: Visitor) -> dict[str, Any]:
    """The header's "Acting for" switch and banner: on a page of the subject's vault, whose
    it is; on a page of the actor's own account (passkeys, account), that it is theirs."""
    assert visitor.citizen_id is not None
    acting = getattr(request.state, "acting", None)
    with reading(wallet.ctx) as session:
        found = header(wallet, session, actor_id=visitor.citizen_id,
                       chosen=visitor.acting_for)
    own = request.url.path.startswith(_OWN_PAGES) or not isinstance(acting, ActingAs)
    return {"people": found.people, "chosen": found.chosen, "name": found.chosen_name,
            "own_page": own}


#: Pages about the signed-in person themself, whoever they act for: their passkeys,
#: codes and account, and the relationships they set up for their own vault (the People,
#: children's vaults and counter pages check whose vault is chosen only to refuse
#: passing anything on, so asking does not make them pages of the subject's vault).
_OWN_PAGES = ("/wallet/account", "/wallet/passkeys", "/wallet/recovery-codes",
              "/wallet/welcome", "/wallet/people", "/wallet/children", "/wallet/counter",
              "/wallet/handover")
