"""Actions taken in someone else's vault (ARCHITECTURE §9, issue 14 §3): checked, marked
on the ledger, and written down for the person they were taken for.

A state change that a person may make in their own vault (a grant answered, a record
written) calls `check` first, inside its own unit of work: nothing for people acting
for themselves; for a delegate, the live relationship allowing that action now, or
RelationshipRefused, so a relationship that ended a moment ago already refuses. The
ledger entry then carries `fields` ("actor", "delegation_id") beside the principal's
"subject", and `note` writes the principal's line of their activity page in the same
transaction (`delegated_actions`, keyed by the entry's index), so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from vault.domain.relationships import DelegatedAction
from vault.services.context import Work
from vault.storage.tables import CitizenRow, DelegatedActionRow

__all__ = ["Behalf", "DoneForYou", "approved_by", "check", "done_for", "fields", "note"]


@dataclass(frozen=True, slots=True)
class Behalf:
    """A delegate acting in a principal's vault under one live relationship."""

    actor_id: str
    principal_id: str
    relationship_id: str
    #: The actor's ledger pseudonym.
    actor: str

    def fields(self) -> dict[str, Any]:
        """What the action's ledger entry carries beside the principal's "subject"."""
        return {"actor": self.actor, "delegation_id": self.relationship_id}


def check(work: Work, *, actor_id: str | None, subject_id: str, action: DelegatedAction
          ) -> Behalf | None:
    """None when the subject acts (or no actor is named: the vault's own APIs, where the
    citizen is the one signed in); else the delegate's live relationship allowing
    `action` at `work.now`, or RelationshipRefused("not_allowed")."""
    if actor_id is None or actor_id == subject_id:
        return None
    # Imported here: delegations builds on records, which calls this module.
    from vault.services.delegations import authorize

    row = authorize(work.session, actor_id=actor_id, subject_id=subject_id, action=action,
                    now=work.now)
    assert row is not None  # two different people: a relationship or a refusal
    actor = work.session.get(CitizenRow, actor_id)
    assert actor is not None  # the relationship's foreign key
    return Behalf(actor_id, subject_id, row.id, actor.subject)


def fields(behalf: Behalf | None) -> dict[str, Any]:
    return {} if behalf is None else behalf.fields()


def note(work: Work, behalf: Behalf | None, *, seq: int, kind: str,
         grant_id: str | None = None, category: str | None = None) -> None:
    """The principal's line for the entry at `seq` (nothing when they acted themselves)."""
    if behalf is None:
        return
    work.session.add(DelegatedActionRow(
        seq=seq, principal_id=behalf.principal_id, actor_id=behalf.actor_id,
        relationship_id=behalf.relationship_id, kind=kind, grant_id=grant_id,
        category=category, at=work.now))


@dataclass(frozen=True, slots=True)
class DoneForYou:
    """One action someone took in this person's vault."""

    seq: int
    actor_id: str | None
    kind: str
    grant_id: str | None
    category: str | None
    at: datetime


def done_for(session: Session, principal_id: str, *, before: int | None = None,
             limit: int = 20) -> tuple[list[DoneForYou], int | None]:
    """What others did in `principal_id`'s vault, newest first (keyset by ledger index),
    and the `before=` of the next page (None on the last)."""
    query = select(DelegatedActionRow).where(
        col(DelegatedActionRow.principal_id) == principal_id)
    if before is not None:
        query = query.where(col(DelegatedActionRow.seq) < before)
    rows = session.execute(query.order_by(col(DelegatedActionRow.seq).desc())
                           .limit(limit + 1)).scalars().all()
    items = [DoneForYou(r.seq, r.actor_id, r.kind, r.grant_id, r.category, r.at)
             for r in rows[:limit]]
    return items, (items[-1].seq if len(rows) > limit else None)


def approved_by(session: Session, grant_ids: Sequence[str]) -> dict[str, str | None]:
    """For each of these grants approved by someone acting for its citizen: who (their
    citizen id, None if they have since been erased). Grants the citizen approved
    themselves are absent."""
    if not grant_ids:
        return {}
    rows = session.execute(
        select(col(DelegatedActionRow.grant_id), col(DelegatedActionRow.actor_id))
        .where(col(DelegatedActionRow.grant_id).in_(sorted(set(grant_ids))),
               col(DelegatedActionRow.kind) == "grant.approved")
        .order_by(col(DelegatedActionRow.seq))).all()
    return {gid: actor for gid, actor in rows}
