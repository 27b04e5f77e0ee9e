"""Rotating the key-encryption key: re-wrap every citizen's data key, resumably.

Only data keys are re-wrapped (records stay sealed under the same data keys). Each
batch is its own transaction, so the work can be killed at any moment: every data key
is then wrapped under either the old KEK or the new one (the row says which), both are
still in the keyring, and running the rotation again finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from vault.crypto import Keyring, add_new_kek, drop_kek
from vault.services.context import VaultContext, reading, unit_of_work
from vault.storage.tables import CitizenRow

__all__ = ["Rotated", "rotate_keys"]

_BATCH = 500


@dataclass(frozen=True, slots=True)
class Rotated:
    kek_id: str
    rewrapped: int
    retired: tuple[str, ...]


def _pending(ctx: VaultContext, current: str) -> int:
    with reading(ctx) as session:
        return int(session.execute(
            select(func.count()).select_from(CitizenRow).where(CitizenRow.kek_id != current)
        ).scalar() or 0)


def rotate_keys(
    ctx: VaultContext,
    key_dir: Path,
    *,
    master_key: str | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Rotated:
    """Make a new KEK current (unless a rotation is unfinished) and re-wrap under it.

    With file-managed keys a new KEK is generated only when every data key already uses
    the current one; otherwise this resumes the unfinished rotation. With
    VAULT_MASTER_KEY the operator supplies the new key first ("new,old") and this
    re-wraps under it. Old file-managed KEKs are removed once nothing uses them.
    """
    keyring: Keyring = ctx.keyring
    if master_key is None and _pending(ctx, keyring.current.id) == 0:
        keyring = add_new_kek(key_dir)
    ctx = replace(ctx, keyring=keyring)
    current = keyring.current.id
    total, done = _pending(ctx, current), 0
    while True:
        with unit_of_work(ctx) as work:
            rows = work.session.execute(
                select(CitizenRow).where(CitizenRow.kek_id != current).limit(_BATCH)
            ).scalars().all()
            for row in rows:
                data_key = keyring.unwrap(row.kek_id, row.wrapped_key, citizen_id=row.id)
                row.kek_id, row.wrapped_key = keyring.wrap(data_key, citizen_id=row.id)
                work.session.add(row)
        done += len(rows)
        if on_progress is not None:
            on_progress(done, total)
        if len(rows) < _BATCH:
            break
    retired = tuple(k for k in keyring.ids() if k != current)
    with unit_of_work(ctx) as work:
        work.ledger.append("key.rotated", {"kek_id": current, "retired": list(retired),
                                           "rewrapped": done})
    if master_key is None and _pending(ctx, current) == 0:
        # Checked again just before: a process that wrapped under an old KEK meanwhile
        # keeps it alive until the next rotation re-wraps its rows.
        for old in retired:
            drop_kek(key_dir, old)
    return Rotated(current, done, retired)
