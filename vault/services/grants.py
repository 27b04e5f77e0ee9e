"""Grants: requested by a service, answered by the citizen, ended by either or by time.

Every transition is one transaction holding the new state and its ledger entry. The
grant row is locked first (PostgreSQL: FOR UPDATE; SQLite: the write lock every vault
transaction takes), so two transitions of one grant never interleave.

A request is refused (AskingRefused, nothing recorded) when the citizen has stopped the
service asking, or the service already has `MAX_WAITING` requests waiting for them
(`vault.domain.asking`).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func
from sqlmodel import Session, col, select

from vault.domain.asking import refusal
from vault.domain.errors import AskingRefused
from vault.domain.grants import (
    ENTRY_KIND,
    Access,
    GrantAction,
    GrantState,
    GrantTerms,
    lapse_deadline,
    next_state,
    request_terms,
)
from vault.domain.relationships import DelegatedAction
from vault.errors import NotFound
from vault.services import behalf
from vault.services.approvals import ApprovalProof, action_challenge
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, new_id, reading, unit_of_work
from vault.services.registry import get_service, service_profile
from vault.services.webhooks import enqueue
from vault.storage.tables import GrantEventRow, GrantRow, ServiceBlockRow

__all__ = [
    "DELEGATED",
    "GrantView",
    "acted_transition",
    "approve_grant",
    "asking_refusal",
    "cancel_grant",
    "deny_grant",
    "get_grant",
    "pause_grant",
    "request_grant",
    "request_grant_in",
    "resume_grant",
    "revoke_grant",
    "signing_challenge",
]


@dataclass(frozen=True, slots=True)
class GrantView:
    id: str
    service_id: str
    citizen_id: str
    state: GrantState
    terms: GrantTerms
    terms_hash: bytes
    reads: int
    requested_at: datetime
    updated_at: datetime


def view(row: GrantRow) -> GrantView:
    return GrantView(row.id, row.service_id, row.citizen_id, GrantState(row.state),
                     GrantTerms.from_json(orjson.loads(row.terms)), row.terms_hash, row.reads,
                     row.requested_at, row.updated_at)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def request_grant(
    ctx: VaultContext,
    *,
    service_id: str,
    citizen_id: str,
    purpose: str,
    categories: Sequence[str] = (),
    derived: Sequence[str] = (),
    duration: timedelta | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    access: Access,
    data_life: str,
    justification: str,
    actions: Sequence[str] = ("read",),
) -> GrantView:
    """A service asks; the request waits for the citizen (and lapses if unanswered).
    `actions`: "read" and/or "write" (a write grant, for an issuer: ARCHITECTURE §8)."""
    with unit_of_work(ctx) as work:
        return view(request_grant_in(
            work, service_id=service_id, citizen_id=citizen_id, purpose=purpose,
            categories=categories, derived=derived, duration=duration, not_before=not_before,
            expires_at=expires_at, access=access, data_life=data_life,
            justification=justification, actions=actions))


def request_grant_in(
    work: Work,
    *,
    service_id: str,
    citizen_id: str,
    purpose: str,
    categories: Sequence[str] = (),
    derived: Sequence[str] = (),
    duration: timedelta | None = None,
    not_before: datetime | None = None,
    expires_at: datetime | None = None,
    access: Access,
    data_life: str,
    justification: str,
    actions: Sequence[str] = ("read",),
) -> GrantRow:
    """`request_grant` in the caller's unit of work (the OAuth endpoints record their
    own rows in the same transaction). AskingRefused if the service may not ask this
    citizen now; the caller's transaction must then roll back (`unit_of_work` does)."""
    service = get_service(work.session, service_id)
    citizen = get_citizen(work.session, citizen_id)
    terms = request_terms(
        service_profile(service), grant_id=new_id("gr"), purpose=purpose,
        categories=categories, derived=derived, duration=duration, not_before=not_before,
        expires_at=expires_at, access=access, data_life=data_life,
        justification=justification, now=work.now, actions=actions)
    terms_json = terms.to_json()
    terms_hash = terms.terms_hash()
    row = GrantRow(
        id=terms.grant_id, service_id=service_id, citizen_id=citizen_id,
        terms=orjson.dumps(terms_json, option=orjson.OPT_SORT_KEYS).decode(),
        terms_hash=terms_hash, state=GrantState.REQUESTED.value, reads=0,
        requested_at=work.now, updated_at=work.now,
        due_at=lapse_deadline(work.now, terms), last_seq=-1)
    entry = work.ledger.append("grant.requested", {
        "grant_id": terms.grant_id, "service_id": service_id,
        "subject": citizen.subject, "terms": terms_json, "terms_hash": b64(terms_hash)})
    # Checked after the append on purpose: the append holds the ledger's write lock
    # (PostgreSQL: the head row; SQLite: the database) until commit, and every request
    # takes it, so concurrent requests count one after another and never pass the limit
    # together. A refusal rolls the entry back with everything else.
    refused = asking_refusal(work.session, service_id=service_id, citizen_id=citizen_id,
                             now=work.now)
    if refused is not None:
        raise refused
    row.last_seq = entry.seq
    work.session.add(row)
    work.session.flush()  # the grant row before the event that points at it
    work.session.add(GrantEventRow(seq=entry.seq, grant_id=row.id,
                                   kind="grant.requested", at=work.now))
    return row


def asking_refusal(
    session: Session, *, service_id: str, citizen_id: str, now: datetime
) -> AskingRefused | None:
    """Why `service_id` may not ask `citizen_id` for another grant at `now`, or None if
    it may: the citizen stopped it asking, or it has `MAX_WAITING` requests waiting for
    their answer (requested and not lapsed, though the sweeper may not have got there)."""
    blocked = session.get(ServiceBlockRow, (citizen_id, service_id)) is not None
    waiting = 0 if blocked else session.execute(
        select(func.count()).select_from(GrantRow).where(
            col(GrantRow.citizen_id) == citizen_id, col(GrantRow.service_id) == service_id,
            col(GrantRow.state) == GrantState.REQUESTED.value,
            col(GrantRow.due_at) > now)).scalar_one()
    return refusal(blocked=blocked, waiting=waiting)


def lock_grant(work: Work, grant_id: str) -> GrantRow:
    row = work.session.execute(
        select(GrantRow).where(GrantRow.id == grant_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("no such grant")
    return row  # type: ignore[no-any-return]


def transition(
    work: Work, row: GrantRow, action: GrantAction, **extra: Any
) -> GrantState:
    """Move a locked grant to its next state and append the matching entry."""
    state = next_state(GrantState(row.state), action)
    row.state = state.value
    row.updated_at = work.now
    if state in (GrantState.APPROVED, GrantState.PAUSED):
        row.due_at = GrantTerms.from_json(orjson.loads(row.terms)).ends
    citizen = get_citizen(work.session, row.citizen_id)
    kind = ENTRY_KIND[action]
    entry = work.ledger.append(kind, {
        "grant_id": row.id, "service_id": row.service_id, "subject": citizen.subject,
        **extra})
    row.last_seq = entry.seq
    enqueue(work, service_id=row.service_id, event=kind,
            data={"grant_id": row.id, "state": state.value, "ledger_index": entry.seq})
    work.session.add(row)
    work.session.add(GrantEventRow(seq=entry.seq, grant_id=row.id, kind=kind, at=work.now))
    return state


def _citizen_grant(work: Work, grant_id: str, citizen_id: str) -> GrantRow:
    row = lock_grant(work, grant_id)
    if row.citizen_id != citizen_id:
        raise NotFound("no such grant")  # never reveal another citizen's grant
    return row


#: What someone acting for the citizen needs to take each of the citizen's grant actions
#: (issue 14: saying no is answering, as saying yes is; pausing is a step to revoking).
DELEGATED: dict[GrantAction, DelegatedAction] = {
    GrantAction.APPROVE: DelegatedAction.APPROVE, GrantAction.DENY: DelegatedAction.APPROVE,
    GrantAction.RESUME: DelegatedAction.APPROVE, GrantAction.PAUSE: DelegatedAction.REVOKE,
    GrantAction.REVOKE: DelegatedAction.REVOKE,
}


def acted_transition(work: Work, row: GrantRow, action: GrantAction,
                     who: behalf.Behalf | None, **extra: Any) -> GrantState:
    """`transition`, marked with the delegate who took it (if one did) on the ledger and
    on the citizen's activity page."""
    state = transition(work, row, action, **extra, **behalf.fields(who))
    behalf.note(work, who, seq=row.last_seq, kind=ENTRY_KIND[action], grant_id=row.id)
    return state


def approve_grant(
    ctx: VaultContext, grant_id: str, *, citizen_id: str, proof: ApprovalProof,
    actor_id: str | None = None,
) -> GrantView:
    """The citizen says yes, with a passkey assertion over the exact terms hash; or
    `actor_id`, acting for them with `approve`, with one of the actor's passkeys."""
    with unit_of_work(ctx) as work:
        row = _citizen_grant(work, grant_id, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DELEGATED[GrantAction.APPROVE])
        ctx.approvals.verify(work.session, citizen_id=actor_id or citizen_id,
                             challenge=row.terms_hash, proof=proof)
        acted_transition(work, row, GrantAction.APPROVE, who,
                         terms_hash=b64(row.terms_hash), assertion=proof.to_json())
        return view(row)


def deny_grant(ctx: VaultContext, grant_id: str, *, citizen_id: str,
               actor_id: str | None = None) -> GrantView:
    with unit_of_work(ctx) as work:
        row = _citizen_grant(work, grant_id, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DELEGATED[GrantAction.DENY])
        acted_transition(work, row, GrantAction.DENY, who)
        return view(row)


def _signed_action(
    ctx: VaultContext, grant_id: str, citizen_id: str, action: GrantAction,
    proof: ApprovalProof, actor_id: str | None,
) -> GrantView:
    with unit_of_work(ctx) as work:
        row = _citizen_grant(work, grant_id, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DELEGATED[action])
        # The same challenge as when citizens act for themselves; the actor's passkey.
        challenge = action_challenge(grant_id=grant_id, action=action.value,
                                     terms_hash=row.terms_hash, after=row.last_seq)
        ctx.approvals.verify(work.session, citizen_id=actor_id or citizen_id,
                             challenge=challenge, proof=proof)
        acted_transition(work, row, action, who, by="citizen", challenge=b64(challenge),
                         assertion=proof.to_json())
        return view(row)


def signing_challenge(
    ctx: VaultContext, grant_id: str, *, citizen_id: str, action: GrantAction
) -> bytes:
    """What the citizen's passkey must sign to take `action` on this grant now:
    the terms hash to approve, an action challenge to pause, resume or revoke."""
    with reading(ctx) as session:
        row = session.get(GrantRow, grant_id)
        if row is None or row.citizen_id != citizen_id:
            raise NotFound("no such grant")
        if action is GrantAction.APPROVE:
            return row.terms_hash
        return action_challenge(grant_id=grant_id, action=action.value,
                                terms_hash=row.terms_hash, after=row.last_seq)


def pause_grant(ctx: VaultContext, grant_id: str, *, citizen_id: str,
                proof: ApprovalProof, actor_id: str | None = None) -> GrantView:
    return _signed_action(ctx, grant_id, citizen_id, GrantAction.PAUSE, proof, actor_id)


def resume_grant(ctx: VaultContext, grant_id: str, *, citizen_id: str,
                 proof: ApprovalProof, actor_id: str | None = None) -> GrantView:
    return _signed_action(ctx, grant_id, citizen_id, GrantAction.RESUME, proof, actor_id)


def revoke_grant(ctx: VaultContext, grant_id: str, *, citizen_id: str,
                 proof: ApprovalProof, actor_id: str | None = None) -> GrantView:
    return _signed_action(ctx, grant_id, citizen_id, GrantAction.REVOKE, proof, actor_id)


def cancel_grant(ctx: VaultContext, grant_id: str, *, service_id: str) -> GrantView:
    """The service withdraws a request it made, before the citizen answered."""
    with unit_of_work(ctx) as work:
        row = lock_grant(work, grant_id)
        if row.service_id != service_id:
            raise NotFound("no such grant")
        transition(work, row, GrantAction.CANCEL)
        return view(row)


def get_grant(ctx: VaultContext, grant_id: str) -> GrantView:
    with reading(ctx) as session:
        row = session.get(GrantRow, grant_id)
        if row is None:
            raise NotFound("no such grant")
        return view(row)
