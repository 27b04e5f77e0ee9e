"""Requests and grants: the consent screen, approve/decline, pause/resume/revoke, activity.

Approving, pausing, resuming and revoking are passkey signatures (ARCHITECTURE §3): the
options ask one of the citizen's passkeys to sign exactly the challenge the vault will
check (the terms hash to approve; an action challenge otherwise). Declining needs only
the session.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vault.domain.grants import GrantAction, GrantState, allowed_actions
from vault.errors import NotFound
from vault.oauth.authorize import open_authorization
from vault.oauth.backchannel import binding_message
from vault.services import grants
from vault.services.activity import accesses, grant_events, grants_page, service_names
from vault.services.blocks import blocked_services
from vault.services.context import reading
from vault.storage.tables import GrantRow, ServiceRow
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.manage import credential_ids
from wallet.routes.auth import Answer
from wallet.routes.authorize import back_path, return_path
from wallet.routes.deps import Citizen, Wallet, csrf_guard, render
from wallet.routes.listing import access_rows
from wallet.views import EVENT_WORDS, grant_card, grant_cards, when
from wallet.web import WalletState

__all__ = ["router"]

router = APIRouter(prefix="/wallet", dependencies=[Depends(csrf_guard)],
                   include_in_schema=False)

_ACTIVE = (GrantState.APPROVED, GrantState.PAUSED)
_ENDED = tuple(s for s in GrantState if s not in (*_ACTIVE, GrantState.REQUESTED))
_DONE = {
    "approved": "Done. You said yes. You can stop it at any time on this page.",
    "declined": "Done. You said no. The service has been told.",
    "paused": "Paused. The service cannot look until you turn it back on.",
    "resumed": "Turned back on.",
    "revoked": "Stopped. The service can no longer see your information.",
    "stopped": "Done. That service cannot ask you for anything until you let it. Anything "
               "you had already said yes to is as it was.",
    "allowed": "Done. That service can ask you again.",
}
_SIGNED = {"approve": GrantAction.APPROVE, "pause": GrantAction.PAUSE,
           "resume": GrantAction.RESUME, "revoke": GrantAction.REVOKE}
_DO = {GrantAction.APPROVE: grants.approve_grant, GrantAction.PAUSE: grants.pause_grant,
       GrantAction.RESUME: grants.resume_grant, GrantAction.REVOKE: grants.revoke_grant}
_PAST = {GrantAction.APPROVE: "approved", GrantAction.PAUSE: "paused",
         GrantAction.RESUME: "resumed", GrantAction.REVOKE: "revoked"}

Before = Annotated[int | None, Query(ge=0, le=2**62)]
SignedAction = Literal["approve", "pause", "resume", "revoke"]


@router.get("/requests", response_class=HTMLResponse)
def requests_page(request: Request, wallet: Wallet, citizen_id: Citizen,
                  before: Before = None, done: str = "") -> Response:
    with reading(wallet.ctx) as session:
        page = grants_page(session, citizen_id, states=[GrantState.REQUESTED], before=before)
        names = service_names(session, [g.service_id for g in page.items])
        stopped = blocked_services(session, citizen_id)
    return render(request, "requests.html", nav="requests",
                  cards=grant_cards(page.items, names), next_before=page.next_before,
                  notice=_DONE.get(done), blocked=stopped)


@router.get("/grants", response_class=HTMLResponse)
def grants_list(request: Request, wallet: Wallet, citizen_id: Citizen,
                show: Literal["active", "ended"] = "active", before: Before = None
                ) -> Response:
    states = _ACTIVE if show == "active" else _ENDED
    with reading(wallet.ctx) as session:
        page = grants_page(session, citizen_id, states=states, before=before)
        names = service_names(session, [g.service_id for g in page.items])
    return render(request, "grants.html", nav="grants", show=show,
                  cards=grant_cards(page.items, names), next_before=page.next_before)


@router.get("/activity", response_class=HTMLResponse)
def activity_page(request: Request, wallet: Wallet, citizen_id: Citizen,
                  before: Before = None) -> Response:
    with reading(wallet.ctx) as session:
        page = accesses(session, citizen_id, before=before, limit=50)
        names = service_names(session, [a.service_id for a in page.items])
        rows = access_rows(session, page.items, names)
    return render(request, "activity.html", nav="activity", rows=rows,
                  next_before=page.next_before)


def _own_grant(session: Any, grant_id: str, citizen_id: str) -> GrantRow:
    row = session.get(GrantRow, grant_id) if len(grant_id) <= 40 else None
    if row is None or row.citizen_id != citizen_id:
        raise NotFound("there is no such request or grant in your wallet")
    return row  # type: ignore[no-any-return]


@router.get("/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(request: Request, wallet: Wallet, citizen_id: Citizen, grant_id: str,
               before: Before = None, done: str = "") -> Response:
    with reading(wallet.ctx) as session:
        row = _own_grant(session, grant_id, citizen_id)
        service = session.get(ServiceRow, row.service_id)
        assert service is not None  # a foreign key
        card = grant_card(grants.view(row), service.name)
        events = [(EVENT_WORDS.get(e.kind, e.kind), when(e.at), e.seq)
                  for e in grant_events(session, grant_id)]
        page = accesses(session, citizen_id, grant_id=grant_id, before=before, limit=20)
        rows = access_rows(session, page.items, {service.id: service.name})
        asking = card.grant.state is GrantState.REQUESTED
        returning = asking and open_authorization(
            session, grant_id, now=wallet.ctx.clock()) is not None
        binding = binding_message(session, grant_id) if asking else None
    actions = {a.value for a in allowed_actions(card.grant.state)}
    template = "consent.html" if card.grant.state is GrantState.REQUESTED else "grant.html"
    return render(request, template, nav="requests" if template == "consent.html" else "grants",
                  card=card, service=service, events=events, rows=rows,
                  next_before=page.next_before, actions=actions, notice=_DONE.get(done),
                  returning=returning, binding=binding)


def _waiting_authorization(wallet: WalletState, grant_id: str) -> str | None:
    """The id of the service's authorization that asked for this grant, if any."""
    with reading(wallet.ctx) as session:
        return open_authorization(session, grant_id, now=wallet.ctx.clock())


@router.post("/grants/{grant_id}/decline")
def decline(wallet: Wallet, citizen_id: Citizen, grant_id: str) -> Response:
    grants.deny_grant(wallet.ctx, grant_id, citizen_id=citizen_id)
    waiting = _waiting_authorization(wallet, grant_id)
    # Not straight to the service: this answers a form, and form-action 'self' would
    # block a redirect to another origin (wallet.routes.authorize explains).
    back = None if waiting is None else back_path(waiting, done="declined")
    return RedirectResponse(back or "/wallet/requests?done=declined", 303)


# After the fixed paths: "decline" must not be taken for a signed action.
@router.post("/grants/{grant_id}/{action}/options")
def signing_options(wallet: Wallet, citizen_id: Citizen, grant_id: str,
                    action: SignedAction) -> dict[str, Any]:
    challenge = grants.signing_challenge(wallet.ctx, grant_id, citizen_id=citizen_id,
                                         action=_SIGNED[action])
    with reading(wallet.ctx) as session:
        allow = credential_ids(session, citizen_id)
    return {"publicKey": approval_options(wallet.rp, challenge=challenge, allow=allow)}


@router.post("/grants/{grant_id}/{action}")
def signed_action(wallet: Wallet, citizen_id: Citizen, grant_id: str, action: SignedAction,
                  answer: Answer) -> JSONResponse:
    what = _SIGNED[action]
    _DO[what](wallet.ctx, grant_id, citizen_id=citizen_id,
              proof=proof_from_browser(answer.credential))
    waiting = _waiting_authorization(wallet, grant_id) if what is GrantAction.APPROVE \
        else None
    # The script navigates there: form-action does not apply, so the 303 may leave us.
    back = None if waiting is None else return_path(waiting)
    return JSONResponse({"redirect": back or f"/wallet/grants/{grant_id}?done={_PAST[what]}"})


@router.get("/grants/{grant_id}/receipt.json")
def receipt(wallet: Wallet, citizen_id: Citizen, grant_id: str) -> Response:
    from wallet.receipts import build_receipt

    body = build_receipt(wallet.ctx, wallet.signer, citizen_id=citizen_id, grant_id=grant_id,
                         rp=wallet.rp)
    return JSONResponse(body, headers={
        "Content-Disposition": f'attachment; filename="consent-receipt-{grant_id}.json"'})
