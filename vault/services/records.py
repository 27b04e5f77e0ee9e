"""Citizens' records: validated against their category, versioned, sealed at rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func
from sqlmodel import col, select

from vault.crypto import envelope
from vault.domain.categories import validate_value
from vault.errors import NotFound
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, new_id, unit_of_work
from vault.storage.tables import CitizenRow, RecordRow

__all__ = [
    "RecordView",
    "delete_records",
    "latest_values",
    "read_records",
    "write_record",
]


@dataclass(frozen=True, slots=True)
class RecordView:
    id: str
    category: str
    version: int
    value: Any
    source: str
    created_at: datetime


def data_key(ctx: VaultContext, citizen: CitizenRow) -> bytes:
    return ctx.keyring.unwrap(citizen.kek_id, citizen.wrapped_key, citizen_id=citizen.id)


def write_record(
    ctx: VaultContext, citizen_id: str, category: str, value: Any, *, source: str = "citizen"
) -> RecordView:
    """Add a new version of the citizen's `category`; older versions are kept."""
    validate_value(category, value)
    plaintext = orjson.dumps(value)
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work, citizen_id)
        version = 1 + (work.session.execute(
            select(func.max(RecordRow.version)).where(
                col(RecordRow.citizen_id) == citizen_id, col(RecordRow.category) == category)
        ).scalar() or 0)
        record_id = new_id("rec")
        ad = envelope.record_ad(citizen_id=citizen_id, record_id=record_id, category=category,
                                version=version)
        sealed = envelope.seal(data_key(ctx, citizen), plaintext, ad=ad)
        work.session.add(RecordRow(id=record_id, citizen_id=citizen_id, category=category,
                                   version=version, ciphertext=sealed, source=source,
                                   created_at=work.now))
        work.ledger.append("record.written", {
            "subject": citizen.subject, "record_id": record_id, "category": category,
            "version": version, "source": source})
    return RecordView(record_id, category, version, value, source, work.now)


def _open(ctx: VaultContext, key: bytes, row: RecordRow) -> RecordView:
    ad = envelope.record_ad(citizen_id=row.citizen_id, record_id=row.id,
                            category=row.category, version=row.version)
    value = orjson.loads(envelope.open_sealed(key, row.ciphertext, ad=ad))
    return RecordView(row.id, row.category, row.version, value, row.source, row.created_at)


def latest_values(
    ctx: VaultContext, work: Work, citizen: CitizenRow, categories: tuple[str, ...] | None = None
) -> dict[str, RecordView]:
    """The newest version of each (or each named) category, decrypted."""
    query = select(RecordRow).where(RecordRow.citizen_id == citizen.id)
    if categories is not None:
        query = query.where(col(RecordRow.category).in_(categories))
    rows = work.session.execute(query.order_by(col(RecordRow.version))).scalars().all()
    newest: dict[str, RecordRow] = {}
    for row in rows:
        newest[row.category] = row
    if not newest:
        return {}
    key = data_key(ctx, citizen)
    return {cat: _open(ctx, key, row) for cat, row in newest.items()}


def read_records(ctx: VaultContext, citizen_id: str) -> dict[str, RecordView]:
    """The citizen's own view of their data: the newest version of every category."""
    with unit_of_work(ctx) as work:
        return latest_values(ctx, work, get_citizen(work, citizen_id))


def record_history(ctx: VaultContext, citizen_id: str, category: str) -> list[RecordView]:
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work, citizen_id)
        rows = work.session.execute(
            select(RecordRow).where(RecordRow.citizen_id == citizen_id,
                                    col(RecordRow.category) == category)
            .order_by(col(RecordRow.version))).scalars().all()
        key = data_key(ctx, citizen)
        return [_open(ctx, key, r) for r in rows]


def delete_records(ctx: VaultContext, citizen_id: str, category: str) -> int:
    """Delete every version of one category; returns how many were deleted."""
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work, citizen_id)
        gone = work.session.execute(
            delete(RecordRow).where(col(RecordRow.citizen_id) == citizen_id,
                                    col(RecordRow.category) == category))
        count = int(gone.rowcount or 0)  # type: ignore[attr-defined]
        if count == 0:
            raise NotFound(f"no {category} records to delete")
        work.ledger.append("record.deleted", {
            "subject": citizen.subject, "category": category, "versions": count})
    return count


def export_all(ctx: VaultContext, citizen_id: str) -> Mapping[str, list[dict[str, Any]]]:
    """Everything the vault holds for the citizen, every version, for download."""
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work, citizen_id)
        rows = work.session.execute(
            select(RecordRow).where(RecordRow.citizen_id == citizen_id)
            .order_by(RecordRow.category, col(RecordRow.version))).scalars().all()
        key = data_key(ctx, citizen) if rows else b""
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            view = _open(ctx, key, row)
            out.setdefault(row.category, []).append({
                "version": view.version, "value": view.value, "source": view.source,
                "written_at": view.created_at.isoformat()})
        return out
