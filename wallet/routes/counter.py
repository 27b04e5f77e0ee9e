"""The helper at a counter: choose the visit, the citizen identifies and signs, the
helper signs (`wallet.counter` says why it takes three touches)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import delegations
from vault.services.context import reading
from wallet import counter
from wallet.passkeys.authentication import (
    approval_options,
    authentication_options,
    proof_from_browser,
)
from wallet.passkeys.manage import credential_ids
from wallet.routes.auth import Answer
from wallet.routes.children import acting_for
from wallet.routes.deps import Actor, Wallet, csrf_guard, render
from wallet.web import WalletState

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

VisitId = Annotated[str, Path(min_length=1, max_length=40)]
_OPTIONAL = [a for a in DelegatedAction if a is not DelegatedAction.VIEW]


@router.get("/counter", response_class=HTMLResponse)
def counter_page(request: Request, wallet: Wallet, citizen_id: Actor) -> Response:
    return render(request, "counter.html", nav="counter", hours=counter.HOURS,
                  default_hours=counter.DEFAULT_HOURS, optional=_OPTIONAL,
                  acting=acting_for(request, wallet) is not None)


def _visit_fields(fields: dict[str, Any]) -> tuple[list[str], int]:
    """The form's choices: `action_<name>` boxes and `hours` (RelationshipRefused for
    anything that is not a number of hours)."""
    actions = [a.value for a in _OPTIONAL if fields.get(f"action_{a.value}") == "on"]
    try:
        hours = int(str(fields.get("hours", counter.DEFAULT_HOURS)))
    except ValueError:
        raise RelationshipRefused("bad_until", "say for how many hours (1 to 24)") from None
    return actions, hours


@router.post("/counter/identify/options")
def identify_options(request: Request, wallet: Wallet, citizen_id: Actor,
                     body: dict[str, Any]) -> dict[str, Any]:
    # The terms are checked before the citizen is asked to touch anything.
    actions, hours = _visit_fields(body)
    counter.check_visit(actions, hours, now=wallet.ctx.clock(),
                        acting_for=acting_for(request, wallet))
    options, challenge = authentication_options(wallet.rp)
    ceremony = wallet.challenges.put(challenge, purpose="counter", now=wallet.ctx.clock(),
                                     citizen_id=citizen_id)
    return {"publicKey": options, "ceremony": ceremony}


@router.post("/counter/identify")
def identify(request: Request, wallet: Wallet, citizen_id: Actor, answer: Answer
             ) -> JSONResponse:
    ceremony = wallet.challenges.claim(answer.ceremony or "", purpose="counter",
                                       now=wallet.ctx.clock())
    actions, hours = _visit_fields(answer.fields)
    visit_id = counter.identify(wallet.ctx, wallet.rp, helper_id=citizen_id,
                                ceremony=ceremony, credential=answer.credential,
                                actions=actions, hours=hours,
                                acting_for=acting_for(request, wallet))
    return JSONResponse({"redirect": f"/wallet/counter/{visit_id}"})


@router.get("/counter/{visit_id}", response_class=HTMLResponse)
def visit_page(request: Request, wallet: Wallet, citizen_id: Actor, visit_id: VisitId
               ) -> Response:
    with reading(wallet.ctx) as session:
        visit = counter.visit_of(session, citizen_id, visit_id)
        live = visit.state == "live" and visit.until > wallet.ctx.clock()
        name = delegations.display_names(wallet.ctx, session, [visit.principal_id])[
            visit.principal_id] if live else None
        actions = [a.value for a in DelegatedAction if a in delegations.actions_of(visit)]
    return render(request, "counter_visit.html", nav="counter", visit=visit, live=live,
                  name=name, actions=actions)


def _side(side: str) -> delegations.Side:
    return "principal" if side == "citizen" else "delegate"


Side = Annotated[str, Path(pattern="^(citizen|helper)$")]


def _options(wallet: WalletState, citizen_id: str, visit_id: str, side: str
             ) -> dict[str, Any]:
    with reading(wallet.ctx) as session:
        visit = counter.visit_of(session, citizen_id, visit_id)
        # The citizen's passkey is found by their device (discoverable): the counter's
        # computer is not told their credential ids. The helper's are their own.
        allow = credential_ids(session, citizen_id) if side == "helper" else []
        challenge = visit.terms_hash
    return {"publicKey": approval_options(wallet.rp, challenge=challenge, allow=allow)}


@router.post("/counter/{visit_id}/{side}/options")
def sign_options(request: Request, wallet: Wallet, citizen_id: Actor, visit_id: VisitId,
                 side: Side) -> dict[str, Any]:
    if acting_for(request, wallet) is not None:
        raise RelationshipRefused("further")
    return _options(wallet, citizen_id, visit_id, side)


@router.post("/counter/{visit_id}/{side}")
def sign(request: Request, wallet: Wallet, citizen_id: Actor, visit_id: VisitId,
         side: Side, answer: Answer) -> JSONResponse:
    counter.sign(wallet.ctx, helper_id=citizen_id, visit_id=visit_id, side=_side(side),
                 proof=proof_from_browser(answer.credential),
                 acting_for=acting_for(request, wallet))
    return JSONResponse({"redirect": f"/wallet/counter/{visit_id}"})
