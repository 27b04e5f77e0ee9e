"""Requests and grants: the consent screen, approve/decline, pause/resume/revoke, activity.

Approving, pausing, resuming and revoking are passkey signatures (ARCHITECTURE §3): the
options ask one of the citizen's passkeys to sign exactly the challenge the vault will
check (the terms hash to approve; an action challenge otherwise). Declining needs only
the session.

Every page here is about the *subject*'s vault (`wallet.routes.deps.Subject`): someone
acting for another person sees theirs, and acts in it with their own passkeys, as far as
the relationship allows (each action checks it in its own transaction: the services'
`actor_id`). The requests page also lists the requests waiting for the people one acts
for, each marked with their name; activity lists what others did on the subject's behalf.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from vault.domain.grants import GrantAction, GrantState, allowed_actions
from vault.domain.relationships import DelegatedAction
from vault.errors import NotFound
from vault.oauth.authorize import open_authorization
from vault.oauth.backchannel import binding_message
from vault.services import behalf, delegations, grants
from vault.services.activity import accesses, grant_events, grants_page, service_names
from vault.services.blocks import blocked_services
from vault.services.context import reading
from vault.storage.tables import GrantRow, ServiceRow
from wallet.acting import ActingAs
from wallet.passkeys.authentication import approval_options, proof_from_browser
from wallet.passkeys.manage import credential_ids
from wallet.routes.auth import Answer
from wallet.routes.authorize import back_path, return_path
from wallet.routes.deps import Subject, Wallet, csrf_guard, render
from wallet.routes.listing import access_rows, done_rows
from wallet.views import EVENT_WORDS, GrantCard, behalf_words, grant_card, grant_cards, when
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


#: Requests shown per person one acts for on one's own requests page.
_OTHERS_SHOWN = 5


def _for_others(session: Any, wallet: WalletState, actor_id: str
                ) -> list[tuple[str, str, list[GrantCard], bool]]:
    """Requests waiting for each person the actor acts for: (their id, their name, the
    first few as cards, whether there are more)."""
    people = delegations.acting_for(session, actor_id, now=wallet.ctx.clock())
    if not people:
        return []
    ids = list(dict.fromkeys(p.principal_id for p in people))
    who = wallet.names.names(wallet, session, ids)
    out = []
    for pid in ids:
        page = grants_page(session, pid, states=[GrantState.REQUESTED], limit=_OTHERS_SHOWN)
        if page.items:
            names = service_names(session, [g.service_id for g in page.items])
            out.append((pid, who[pid], grant_cards(page.items, names),
                        page.next_before is not None))
    return out


@router.get("/requests", response_class=HTMLResponse)
def requests_page(request: Request, wallet: Wallet, acting: Subject,
                  before: Before = None, done: str = "") -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        page = grants_page(session, citizen_id, states=[GrantState.REQUESTED], before=before)
        names = service_names(session, [g.service_id for g in page.items])
        stopped = blocked_services(session, citizen_id)
        # In one's own vault, the requests of the people one acts for too (issue 14 §3).
        others = [] if acting.for_someone or before is not None else \
            _for_others(session, wallet, acting.actor_id)
    return render(request, "requests.html", nav="requests",
                  cards=grant_cards(page.items, names), next_before=page.next_before,
                  notice=_DONE.get(done), blocked=stopped, others=others)


def _approved_for(session: Any, wallet: WalletState, grant_ids: list[str]) -> dict[str, str]:
    """"Approved on your behalf by NAME" for those of these grants a delegate approved."""
    by = behalf.approved_by(session, grant_ids)
    names = delegations.display_names(wallet.ctx, session,
                                      [a for a in by.values() if a is not None])
    return {gid: behalf_words(names.get(actor) if actor else None)
            for gid, actor in by.items()}


@router.get("/grants", response_class=HTMLResponse)
def grants_list(request: Request, wallet: Wallet, acting: Subject,
                show: Literal["active", "ended"] = "active", before: Before = None
                ) -> Response:
    states = _ACTIVE if show == "active" else _ENDED
    with reading(wallet.ctx) as session:
        page = grants_page(session, acting.subject_id, states=states, before=before)
        names = service_names(session, [g.service_id for g in page.items])
        marks = _approved_for(session, wallet, [g.id for g in page.items])
    return render(request, "grants.html", nav="grants", show=show,
                  cards=grant_cards(page.items, names), next_before=page.next_before,
                  behalf=marks)


@router.get("/activity", response_class=HTMLResponse)
def activity_page(request: Request, wallet: Wallet, acting: Subject,
                  before: Before = None, done_before: Before = None) -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        page = accesses(session, citizen_id, before=before, limit=50)
        names = service_names(session, [a.service_id for a in page.items])
        rows = access_rows(session, page.items, names)
        done, more = behalf.done_for(session, citizen_id, before=done_before)
        done_lines = done_rows(wallet.ctx, session, done)
    return render(request, "activity.html", nav="activity", rows=rows,
                  next_before=page.next_before, done=done_lines, done_next=more)


def _own_grant(session: Any, grant_id: str, citizen_id: str) -> GrantRow:
    row = session.get(GrantRow, grant_id) if len(grant_id) <= 40 else None
    if row is None or row.citizen_id != citizen_id:
        raise NotFound("there is no such request or grant in your wallet")
    return row  # type: ignore[no-any-return]


@router.get("/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(request: Request, wallet: Wallet, acting: Subject, grant_id: str,
               before: Before = None, done: str = "") -> Response:
    citizen_id = acting.subject_id
    with reading(wallet.ctx) as session:
        row = _own_grant(session, grant_id, citizen_id)
        marks = _approved_for(session, wallet, [grant_id])
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
                  returning=returning, binding=binding, behalf=marks)


def _waiting_authorization(wallet: WalletState, grant_id: str) -> str | None:
    """The id of the service's authorization that asked for this grant, if any."""
    with reading(wallet.ctx) as session:
        return open_authorization(session, grant_id, now=wallet.ctx.clock())


@router.post("/grants/{grant_id}/decline")
def decline(wallet: Wallet, acting: Subject, grant_id: str) -> Response:
    grants.deny_grant(wallet.ctx, grant_id, citizen_id=acting.subject_id,
                      actor_id=acting.actor_id)
    waiting = _waiting_authorization(wallet, grant_id)
    # Not straight to the service: this answers a form, and form-action 'self' would
    # block a redirect to another origin (wallet.routes.authorize explains).
    back = None if waiting is None else back_path(waiting, done="declined")
    return RedirectResponse(back or "/wallet/requests?done=declined", 303)


# After the fixed paths: "decline" must not be taken for a signed action.
def _may(wallet: WalletState, acting: ActingAs, action: DelegatedAction) -> None:
    """RelationshipRefused before the passkey is asked for, when the relationship does not
    allow the action (the action checks again, in its own transaction)."""
    with reading(wallet.ctx) as session:
        delegations.authorize(session, actor_id=acting.actor_id,
                              subject_id=acting.subject_id, action=action,
                              now=wallet.ctx.clock())


@router.post("/grants/{grant_id}/{action}/options")
def signing_options(wallet: Wallet, acting: Subject, grant_id: str,
                    action: SignedAction) -> dict[str, Any]:
    _may(wallet, acting, grants.DELEGATED[_SIGNED[action]])
    challenge = grants.signing_challenge(wallet.ctx, grant_id, citizen_id=acting.subject_id,
                                         action=_SIGNED[action])
    with reading(wallet.ctx) as session:
        # The signer's passkeys: the actor's, in their own vault or acting for someone.
        allow = credential_ids(session, acting.actor_id)
    return {"publicKey": approval_options(wallet.rp, challenge=challenge, allow=allow)}


@router.post("/grants/{grant_id}/{action}")
def signed_action(wallet: Wallet, acting: Subject, grant_id: str, action: SignedAction,
                  answer: Answer) -> JSONResponse:
    what = _SIGNED[action]
    _DO[what](wallet.ctx, grant_id, citizen_id=acting.subject_id, actor_id=acting.actor_id,
              proof=proof_from_browser(answer.credential))
    waiting = _waiting_authorization(wallet, grant_id) if what is GrantAction.APPROVE \
        else None
    # The script navigates there: form-action does not apply, so the 303 may leave us.
    back = None if waiting is None else return_path(waiting)
    return JSONResponse({"redirect": back or f"/wallet/grants/{grant_id}?done={_PAST[what]}"})


@router.get("/grants/{grant_id}/receipt.json")
def receipt(wallet: Wallet, acting: Subject, grant_id: str) -> Response:
    from wallet.receipts import build_receipt

    body = build_receipt(wallet.ctx, wallet.signer, citizen_id=acting.subject_id,
                         grant_id=grant_id, rp=wallet.rp)
    return JSONResponse(body, headers={
        "Content-Disposition": f'attachment; filename="consent-receipt-{grant_id}.json"'})
