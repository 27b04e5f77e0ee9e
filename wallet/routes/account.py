"""Delete my account: erasure, after the citizen confirms with one of their passkeys.

The confirmation is a fresh random challenge kept as a "confirm" ceremony for this
citizen, signed by one of their own passkeys with user verification (the vault's
approval check). A sign-in assertion or another ceremony's answer cannot stand in for
it: the challenge is single-use and bound to its purpose and citizen.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlmodel import Session

from wallet.accounts import delete_account
from wallet.errors import PasskeyRejected
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.challenges import new_challenge
from wallet.routes.auth import Answer, end_session_cookie
from wallet.routes.deps import Actor, Wallet, csrf_guard, render
from wallet.routes.passkeys import citizen_passkeys

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, citizen_id: Actor) -> Response:
    return render(request, "account.html")


@router.post("/account/delete/options")
def delete_options(wallet: Wallet, citizen_id: Actor) -> dict[str, Any]:
    views, _ = citizen_passkeys(wallet.ctx, citizen_id)
    challenge = new_challenge()
    options = approval_options(wallet.rp, challenge=challenge,
                               allow=[v.credential_id for v in views])
    ceremony = wallet.challenges.put(challenge, purpose="confirm", now=wallet.ctx.clock(),
                                     citizen_id=citizen_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/account/delete")
def delete(request: Request, wallet: Wallet, citizen_id: Actor,
           answer: Answer) -> JSONResponse:
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="confirm",
                                       now=wallet.ctx.clock())
    if ceremony.citizen_id != citizen_id:
        raise PasskeyRejected("challenge_unknown",
                              "this passkey request was not started here; start again")
    proof = proof_from_browser(answer.credential)
    # The check stores the passkey's new signature counter, so it runs in (and commits)
    # a transaction of its own before anything is erased.
    with Session(wallet.ctx.engine) as session, session.begin():
        wallet.ctx.approvals.verify(session, citizen_id=citizen_id,
                                    challenge=ceremony.challenge, proof=proof)
    delete_account(wallet.ctx, citizen_id)
    # Erasure took the citizen's sessions with it; end this one anyway, and its cookie.
    wallet.sessions.end(request.cookies.get(wallet.cookies.session))
    response = JSONResponse({"redirect": "/wallet/goodbye"})
    end_session_cookie(wallet, response)
    return response


@router.get("/goodbye", response_class=HTMLResponse)
def goodbye(request: Request) -> Response:
    return render(request, "goodbye.html")
