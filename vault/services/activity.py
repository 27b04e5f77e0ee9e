"""What a citizen sees of their grants and of every read of their data.

Read-only queries for the wallet, paginated by ledger index (newest first, keyset
pagination: `before=` the last index shown), so a page costs the same whether the
citizen has ten accesses or a million.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from vault.domain.grants import GrantState
from vault.services.grants import GrantView, view
from vault.storage.tables import AccessRow, GrantEventRow, GrantRow, ServiceRow

__all__ = [
    "AccessView",
    "GrantEvent",
    "Page",
    "accesses",
    "count_grants",
    "grant_events",
    "grants_page",
    "service_names",
]


@dataclass(frozen=True, slots=True)
class AccessView:
    seq: int
    grant_id: str
    service_id: str
    categories: tuple[str, ...]
    derived: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class GrantEvent:
    seq: int
    kind: str
    at: datetime


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    #: Pass as `before=` for the next (older) page; None on the last page.
    next_before: int | None


def accesses(
    session: Session, citizen_id: str, *, grant_id: str | None = None,
    before: int | None = None, limit: int = 50,
) -> Page[AccessView]:
    """Reads of the citizen's data, newest first (of one grant, if given)."""
    query = select(AccessRow).where(col(AccessRow.citizen_id) == citizen_id)
    if grant_id is not None:
        query = query.where(col(AccessRow.grant_id) == grant_id)
    if before is not None:
        query = query.where(col(AccessRow.seq) < before)
    rows = session.exec(query.order_by(col(AccessRow.seq).desc()).limit(limit + 1)).all()
    items = [AccessView(r.seq, r.grant_id, r.service_id, tuple(r.categories),
                        tuple(r.derived), r.at) for r in rows[:limit]]
    return Page(items, items[-1].seq if len(rows) > limit else None)


def grant_events(session: Session, grant_id: str) -> list[GrantEvent]:
    """Every transition of one grant, oldest first."""
    rows = session.exec(select(GrantEventRow).where(col(GrantEventRow.grant_id) == grant_id)
                        .order_by(col(GrantEventRow.seq))).all()
    return [GrantEvent(r.seq, r.kind, r.at) for r in rows]


def grants_page(
    session: Session, citizen_id: str, *, states: Sequence[GrantState],
    before: int | None = None, limit: int = 20,
) -> Page[GrantView]:
    """The citizen's grants in `states`, most recently changed first."""
    query = select(GrantRow).where(col(GrantRow.citizen_id) == citizen_id,
                                   col(GrantRow.state).in_([s.value for s in states]))
    if before is not None:
        query = query.where(col(GrantRow.last_seq) < before)
    rows = session.exec(query.order_by(col(GrantRow.last_seq).desc()).limit(limit + 1)).all()
    items = [view(r) for r in rows[:limit]]
    return Page(items, rows[limit - 1].last_seq if len(rows) > limit else None)


def count_grants(session: Session, citizen_id: str) -> dict[GrantState, int]:
    """How many of the citizen's grants are in each state."""
    rows = session.execute(
        select(col(GrantRow.state), func.count()).where(col(GrantRow.citizen_id) == citizen_id)
        .group_by(col(GrantRow.state))).all()
    return {GrantState(state): int(n) for state, n in rows}


def service_names(session: Session, service_ids: Sequence[str]) -> dict[str, str]:
    """Display names of the given services (one query for a whole page)."""
    if not service_ids:
        return {}
    rows = session.execute(select(col(ServiceRow.id), col(ServiceRow.name))
                           .where(col(ServiceRow.id).in_(sorted(set(service_ids))))).all()
    return {sid: name for sid, name in rows}
