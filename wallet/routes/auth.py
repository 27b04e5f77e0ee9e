"""Sign up, sign in, sign out, and getting back in with a recovery code."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from vault.oauth.authorize import asking_service
from vault.services.context import new_id, reading
from wallet.accounts import new_recovery_codes, redeem_recovery_code, sign_up
from wallet.errors import RecoveryRefused
from wallet.next_path import safe_next
from wallet.passkeys.authentication import authentication_options, verify_sign_in
from wallet.passkeys.registration import registration_options, user_handle
from wallet.routes.deps import Actor, Wallet, client_key, csrf_guard, get_visitor, render
from wallet.web import WalletState

__all__ = ["SIGNED_OUT", "Answer", "end_session_cookie", "router", "signed_in",
           "start_session_cookie"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)


class Answer(BaseModel):
    """What the wallet's script posts after the passkey prompt."""

    model_config = ConfigDict(extra="forbid")
    credential: dict[str, Any]
    ceremony: str | None = Field(default=None, max_length=40)
    fields: dict[str, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, max_length=20)


#: The wallet's page for a service's authorization (wallet.routes.authorize).
_AUTHORIZATION = re.compile(r"/wallet/authorize/([A-Za-z0-9_-]{1,64})")


class Fields(BaseModel):
    model_config = ConfigDict(extra="ignore")
    label: str = Field(default="", max_length=200)
    next: str = Field(default="", max_length=500)


def start_session_cookie(wallet: WalletState, response: Response, token: str) -> None:
    response.set_cookie(wallet.cookies.session, token, path="/", httponly=True,
                        samesite="strict", secure=wallet.cookies.secure)


def end_session_cookie(wallet: WalletState, response: Response) -> None:
    response.delete_cookie(wallet.cookies.session, path="/", httponly=True,
                           samesite="strict", secure=wallet.cookies.secure)


def signed_in(wallet: WalletState, token: str, redirect: str) -> JSONResponse:
    response = JSONResponse({"redirect": redirect})
    start_session_cookie(wallet, response, token)
    return response


def _asking(wallet: WalletState, next_path: str) -> str | None:
    """The service whose request this sign-in (or sign-up) is on the way to, if any."""
    found = _AUTHORIZATION.fullmatch(next_path)
    if found is None:
        return None
    with reading(wallet.ctx) as session:
        return asking_service(session, found.group(1), now=wallet.ctx.clock())


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, wallet: Wallet, next: str = "") -> Response:
    then = safe_next(next)
    return render(request, "signup.html", next_path=then, asking=_asking(wallet, then))


@router.post("/signup/options")
def signup_options(request: Request, wallet: Wallet, fields: Fields) -> dict[str, Any]:
    wallet.sign_in_limit.hit(client_key(request), what="sign-up")
    citizen_id = new_id("cit")  # the account the passkey will belong to, if it succeeds
    options, challenge = registration_options(
        wallet.rp, user_id=user_handle(citizen_id), user_name="Citizen Data Vault account",
        exclude=[])
    ceremony = wallet.challenges.put(challenge, purpose="sign_up", now=wallet.ctx.clock(),
                                     citizen_id=citizen_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/signup")
def signup(request: Request, wallet: Wallet, answer: Answer) -> JSONResponse:
    wallet.sign_in_limit.hit(client_key(request), what="sign-up")
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="sign_up",
                                       now=wallet.ctx.clock())
    done = sign_up(wallet.ctx, wallet.rp, wallet.sessions, ceremony=ceremony,
                   credential=answer.credential, label=answer.fields.get("label", ""))
    if wallet.after_sign_up is not None:
        wallet.after_sign_up(done.citizen_id)
    then = safe_next(answer.fields.get("next", ""))
    return signed_in(wallet, done.token, "/wallet/welcome" + (
        f"?next={quote(then)}" if then != "/wallet" else ""))


#: Where signing out lands: the sign-in page, saying so.
SIGNED_OUT = "/wallet/signin?done=signed-out"


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str = "", done: str = "") -> Response:
    if get_visitor(request, request.app.state.wallet).citizen_id is not None:
        return RedirectResponse(safe_next(next), 303)
    then = safe_next(next)
    return render(request, "signin.html", next_path=then,
                  asking=_asking(request.app.state.wallet, then),
                  notice="You are signed out." if done == "signed-out" else None)


@router.post("/signin/options")
def signin_options(request: Request, wallet: Wallet) -> dict[str, Any]:
    wallet.sign_in_limit.hit(client_key(request), what="sign-in")
    options, challenge = authentication_options(wallet.rp)
    ceremony = wallet.challenges.put(challenge, purpose="sign_in", now=wallet.ctx.clock())
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/signin")
def signin(request: Request, wallet: Wallet, answer: Answer) -> JSONResponse:
    wallet.sign_in_limit.hit(client_key(request), what="sign-in")
    now = wallet.ctx.clock()
    challenge = wallet.challenges.take(answer.ceremony or "", purpose="sign_in", now=now)
    with Session(wallet.ctx.engine) as session, session.begin():
        citizen_id = verify_sign_in(session, wallet.rp, credential=answer.credential,
                                    expected_challenge=challenge, now=now)
        token = wallet.sessions.start(session, citizen_id, now=now)
    return signed_in(wallet, token, safe_next(answer.fields.get("next", "")))


@router.post("/signout")
def signout(request: Request, wallet: Wallet) -> Response:
    wallet.sessions.end(request.cookies.get(wallet.cookies.session))
    response = RedirectResponse(SIGNED_OUT, 303)
    end_session_cookie(wallet, response)
    return response


@router.get("/recover", response_class=HTMLResponse)
def recover_page(request: Request) -> Response:
    return render(request, "recover.html")


@router.post("/recover")
def recover(request: Request, wallet: Wallet,
            code: Annotated[str, Form(max_length=40)]) -> Response:
    wallet.recovery_limit.hit(client_key(request), what="recovery code")
    try:
        _, token = redeem_recovery_code(wallet.ctx, wallet.secret, wallet.sessions, code,
                                        now=wallet.ctx.clock())
    except RecoveryRefused as exc:
        return render(request, "recover.html", status_code=400, field_error=str(exc).capitalize(),
                      error="That did not work. Check the code and try again.")
    response = RedirectResponse("/wallet/passkeys?done=recovered", 303)
    start_session_cookie(wallet, response, token)
    return response


@router.get("/welcome", response_class=HTMLResponse)
def welcome(request: Request, citizen_id: Actor, next: str = "") -> Response:
    return render(request, "welcome.html", next_path=safe_next(next))


@router.post("/recovery-codes", response_class=HTMLResponse)
def recovery_codes(request: Request, wallet: Wallet, citizen_id: Actor,
                   next: Annotated[str, Form(max_length=500)] = "") -> Response:
    made = new_recovery_codes(wallet.ctx, wallet.secret, citizen_id)
    return render(request, "codes.html", codes=made.codes, replaced=made.replaced,
                  next_path=safe_next(next))
