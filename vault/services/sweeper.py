"""Time-driven transitions: unanswered requests lapse, grants past their end expire."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import col, select

from vault.domain.grants import GrantAction, GrantState
from vault.services.background import Periodic
from vault.services.context import VaultContext, unit_of_work
from vault.services.delegations import expire_due
from vault.services.grants import transition
from vault.storage.tables import GrantRow

__all__ = ["Sweeper", "Swept", "sweep"]

log = logging.getLogger(__name__)

_BATCH = 200
_ACTION = {
    GrantState.REQUESTED.value: GrantAction.LAPSE,
    GrantState.APPROVED.value: GrantAction.EXPIRE,
    GrantState.PAUSED.value: GrantAction.EXPIRE,
}


@dataclass(frozen=True, slots=True)
class Swept:
    lapsed: int
    expired: int
    #: Relationships past their end date (ARCHITECTURE §9).
    relationships: int = 0


def sweep(ctx: VaultContext) -> Swept:
    """Record every due lapse and expiry, a batch per transaction, until none is due."""
    lapsed = expired = 0
    while True:
        with unit_of_work(ctx) as work:
            rows = work.session.execute(
                select(GrantRow)
                .where(GrantRow.due_at <= work.now,
                       col(GrantRow.state).in_(list(_ACTION)))
                .order_by(col(GrantRow.due_at)).limit(_BATCH).with_for_update(skip_locked=True)
            ).scalars().all()
            for row in rows:
                action = _ACTION[row.state]
                transition(work, row, action)
                if action is GrantAction.LAPSE:
                    lapsed += 1
                else:
                    expired += 1
        if len(rows) < _BATCH:
            return Swept(lapsed, expired, expire_due(ctx))


class Sweeper(Periodic):
    """Runs `sweep` every `interval` seconds in a background thread."""

    def __init__(self, ctx: VaultContext, *, interval: float) -> None:
        super().__init__(lambda: _sweep_and_log(ctx), name="grant-sweeper",
                         interval=interval)


def _sweep_and_log(ctx: VaultContext) -> None:
    swept = sweep(ctx)
    if swept.lapsed or swept.expired or swept.relationships:
        log.info("grants swept", extra={"lapsed": swept.lapsed, "expired": swept.expired,
                                        "relationships": swept.relationships})
