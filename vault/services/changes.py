"""Telling services that a record changed (ARCHITECTURE §8, webhook `record.changed`).

RESERVED: filled in by the engineer working on issue 12 part 3. Every write path (the
citizen's own writes, an issuer's PUT/DELETE, a series batch) calls `tell_changed` inside
its transaction, after its ledger entry, so the webhooks exist exactly when the change does.
"""

from __future__ import annotations

from collections.abc import Iterable

from vault.services.context import Work

__all__ = ["tell_changed"]


def tell_changed(work: Work, *, citizen_id: str, categories: Iterable[str],
                 ledger_index: int) -> None:
    """Enqueue `record.changed` for every service whose approved, unpaused grant of this
    citizen reads one of `categories` (or a derived answer resting on one). Not yet built."""
    del work, citizen_id, categories, ledger_index
