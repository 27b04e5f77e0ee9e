"""Enrolling and erasing citizens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, func
from sqlmodel import Session, col, or_, select

from ledger.entry import format_time
from ledger.sealing import ERASED
from vault.crypto import envelope
from vault.domain.grants import ENTRY_KIND, GrantAction, GrantState, next_state
from vault.errors import NotFound
from vault.services.context import VaultContext, Work, new_id, unit_of_work
from vault.services.webhooks import enqueue
from vault.storage.database import flush_deleted
from vault.storage.tables import CitizenRow, GrantEventRow, GrantRow, RelationshipRow

__all__ = ["Citizen", "enrol_citizen", "enrol_in", "erase_citizen", "get_citizen"]

#: How erasure ends each live grant: a waiting request is denied, a live grant revoked.
_ENDING = {GrantState.REQUESTED: GrantAction.DENY, GrantState.APPROVED: GrantAction.REVOKE,
           GrantState.PAUSED: GrantAction.REVOKE}
#: The state each of them ends in, as its ledger entry says.
_ENDS_IN = {state.value: next_state(state, action).value for state, action in _ENDING.items()}


@dataclass(frozen=True, slots=True)
class Citizen:
    id: str
    subject: str


def get_citizen(session: Session, citizen_id: str) -> CitizenRow:
    row = session.get(CitizenRow, citizen_id)
    if row is None:
        raise NotFound("no such citizen")
    return row


def enrol_in(ctx: VaultContext, work: Work, citizen_id: str | None = None, *,
             subject: str | None = None) -> tuple[Citizen, bytes]:
    """A new citizen inside the caller's transaction (the wallet's sign-up adds the first
    passkey in the same one): a random id and ledger pseudonym unless given (a child's
    vault: the parent signed terms naming both before they existed), and a fresh data
    key, returned unwrapped for the caller's first writes."""
    citizen_id, subject = citizen_id or new_id("cit"), subject or new_id("sub")
    key = envelope.new_key()
    kek_id, wrapped = ctx.keyring.wrap(key, citizen_id=citizen_id)
    work.session.add(CitizenRow(id=citizen_id, subject=subject, kek_id=kek_id,
                                wrapped_key=wrapped, created_at=work.now))
    work.session.flush()  # the citizen row before anything that points at it
    work.ledger.append("citizen.enrolled", {"subject": subject})
    return Citizen(citizen_id, subject), key


def enrol_citizen(ctx: VaultContext) -> Citizen:
    """A new citizen in a transaction of its own."""
    with unit_of_work(ctx) as work:
        citizen, _ = enrol_in(ctx, work)
    return citizen


def erase_citizen(ctx: VaultContext, citizen_id: str) -> int:
    """The right to be forgotten, by crypto-shredding; returns the ledger index.

    Live grants end first (each with its ledger entry), then the citizen's row goes
    with the data key that sealed every record, and the records and grants with it.
    The ledger keeps its entries, but the pseudonym in them now leads nowhere. The
    transparency report counts from the ledger's public entries, so what it publishes
    never goes down.
    """
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work.session, citizen_id)
        # Lock every grant of the citizen before the ledger head (as reads and transitions
        # do: grant, then head), so an erasure and a read cannot deadlock on PostgreSQL.
        work.session.execute(select(GrantRow.id).where(GrantRow.citizen_id == citizen_id)
                             .order_by(GrantRow.id).with_for_update()).all()
        live = work.session.execute(
            select(GrantRow.id, col(GrantRow.state), col(GrantRow.service_id),
                   col(GrantRow.requested_at))
            .where(GrantRow.citizen_id == citizen_id, col(GrantRow.state).in_(list(_ENDS_IN)))
        ).all()
        _end_relationships(work, citizen_id)
        asked = _months_asked(work, {gid: at for gid, _, _, at in live})
        # Only reason, asked and from are public (ledger.sealing): the month and the state
        # left are what the transparency counts need; which grants and services ended
        # together would tell each service what else its citizen used.
        items = [
            (ENTRY_KIND[_ENDING[GrantState(state)]],
             {"grant_id": gid, "service_id": sid, "subject": citizen.subject,
              "reason": ERASED, "asked": asked[gid], "from": state})
            for gid, state, sid, _ in live
        ]
        items.append(("citizen.erased", {"subject": citizen.subject}))
        appended = work.ledger.append_many(items)
        for (kind, body), entry in zip(items[:-1], appended, strict=False):
            enqueue(work, service_id=body["service_id"], event=kind, data={
                "grant_id": body["grant_id"], "state": kind.removeprefix("grant."),
                "ledger_index": entry.seq, "reason": "citizen_erased"})
        # Foreign keys cascade to records and grants; one statement, whatever the count.
        work.session.execute(delete(CitizenRow).where(col(CitizenRow.id) == citizen_id))
    flush_deleted(ctx.engine)
    return appended[-1].seq


def _end_relationships(work: Work, citizen_id: str) -> None:
    """Every relationship of the citizen, on either side, ends before its row goes with
    theirs: a live one on the ledger (`delegation.revoked` by "citizen_erased"), so the
    ledger says when the other person stopped acting for them, or as them."""
    # Imported here: delegations imports this module (get_citizen).
    from vault.services import delegations

    ids = work.session.execute(
        select(RelationshipRow.id).where(
            or_(col(RelationshipRow.principal_id) == citizen_id,
                col(RelationshipRow.delegate_id) == citizen_id),
            col(RelationshipRow.state) != "ended")
        .order_by(col(RelationshipRow.id))).scalars().all()
    for relationship_id in ids:
        delegations.end(work, delegations.lock(work, relationship_id), by="citizen_erased")


def _months_asked(work: Work, requested_at: dict[str, datetime]) -> dict[str, str]:
    """Each grant's month asked (UTC 'YYYY-MM'), as the public ledger counts it: the
    time of its `grant.requested` entry (its first grant entry). The row's request time
    is the same moment, used only if the entry cannot be found."""
    asked = {gid: format_time(at)[:7] for gid, at in requested_at.items()}
    if not asked:
        return asked
    firsts = work.session.execute(
        select(col(GrantEventRow.grant_id), func.min(GrantEventRow.seq))
        .where(col(GrantEventRow.grant_id).in_(list(asked)))
        .group_by(col(GrantEventRow.grant_id))).all()
    for gid, seq in firsts:
        asked[gid] = orjson.loads(work.ledger.entries(seq, 1)[0])["time"][:7]
    return asked
