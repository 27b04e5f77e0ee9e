"""Citizens' records: validated against their category, versioned, sealed at rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from vault.crypto import envelope
from vault.domain.categories import categories, clean_value
from vault.domain.errors import InvalidValue, RecordConflict
from vault.domain.relationships import DelegatedAction
from vault.errors import NotFound
from vault.services import behalf
from vault.services.changes import tell_changed
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, new_id, reading, unit_of_work
from vault.services.sources import refuse_held
from vault.storage.tables import CitizenRow, RecordRow

__all__ = [
    "RecordView",
    "data_key",
    "delete_records",
    "export_all",
    "latest_values",
    "open_record",
    "read_records",
    "record_history",
    "version_sources",
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
    #: When its issuer withdrew it (`vault.services.issued`); None while it stands.
    withdrawn_at: datetime | None = None


def data_key(ctx: VaultContext, citizen: CitizenRow) -> bytes:
    return ctx.keyring.unwrap(citizen.kek_id, citizen.wrapped_key, citizen_id=citizen.id)


def write_record(
    ctx: VaultContext, citizen_id: str, category: str, value: Any, *, source: str = "citizen",
    actor_id: str | None = None,
) -> RecordView:
    """Add a new version of the citizen's `category`; older versions are kept. The value
    is stored as `clean_value` leaves it (a phone number in E.164, a postcode in capitals).
    A series (`value` a list of its items) is appended as one batch by the series' own
    append, with its checks and its `record.written` ("items"). `actor_id`: someone
    acting for the citizen (needs `edit`; the entry names them)."""
    found = categories().get(category)
    if found is not None and found.series:
        # Imported here: the series module builds on this one (data_key, RecordView).
        from vault.services.series import append_batch
        return append_batch(ctx, citizen_id, category, _batch_items(category, value),
                            source=source, actor_id=actor_id)
    value = clean_value(category, value)
    plaintext = orjson.dumps(value)
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work.session, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DelegatedAction.EDIT)
        refuse_held(work.session, category)  # the vault stores no value of it
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
        entry = work.ledger.append("record.written", {
            "subject": citizen.subject, "record_id": record_id, "category": category,
            "version": version, "source": source, **behalf.fields(who)})
        behalf.note(work, who, seq=entry.seq, kind="record.written", category=category)
        tell_changed(work, citizen_id=citizen_id, categories=[category],
                     ledger_index=entry.seq)
    return RecordView(record_id, category, version, value, source, work.now)


def _batch_items(category: str, value: Any) -> list[Any]:
    """A series' batch given as its list of items (or as `{"items": [...]}`, as an
    issuer signs it)."""
    if isinstance(value, dict) and set(value) == {"items"}:
        value = value["items"]
    if not isinstance(value, list):
        raise InvalidValue(f"{category} is a series: write a batch of readings as a list "
                           "of items, e.g. [{...}, {...}]")
    return value


def open_record(key: bytes, *, citizen_id: str, record_id: str, category: str, version: int,
                ciphertext: bytes) -> Any:
    """The value sealed in one record (DecryptionFailed if anything does not match)."""
    ad = envelope.record_ad(citizen_id=citizen_id, record_id=record_id, category=category,
                            version=version)
    return orjson.loads(envelope.open_sealed(key, ciphertext, ad=ad))


def _view(key: bytes, row: RecordRow) -> RecordView:
    value = open_record(key, citizen_id=row.citizen_id, record_id=row.id,
                        category=row.category, version=row.version, ciphertext=row.ciphertext)
    return RecordView(row.id, row.category, row.version, value, row.source, row.created_at,
                      row.withdrawn_at)


def latest_values(
    ctx: VaultContext, session: Session, citizen: CitizenRow,
    categories: tuple[str, ...] | None = None,
) -> dict[str, RecordView]:
    """The newest version of each (or each named) category, decrypted. A category whose
    newest version its issuer withdrew is absent."""
    query = select(RecordRow).where(col(RecordRow.citizen_id) == citizen.id)
    if categories is not None:
        query = query.where(col(RecordRow.category).in_(categories))
    rows = session.execute(query.order_by(col(RecordRow.version))).scalars().all()
    newest: dict[str, RecordRow] = {}
    for row in rows:
        newest[row.category] = row  # ordered by version: the last one wins
    newest = {cat: row for cat, row in newest.items() if row.withdrawn_at is None}
    if not newest:
        return {}
    key = data_key(ctx, citizen)
    return {cat: _view(key, row) for cat, row in newest.items()}


def read_records(ctx: VaultContext, citizen_id: str) -> dict[str, RecordView]:
    """The citizen's own view of their data: the newest version of every category."""
    with reading(ctx) as session:
        return latest_values(ctx, session, get_citizen(session, citizen_id))


def _all_versions(session: Session, citizen_id: str, category: str | None) -> list[RecordRow]:
    query = select(RecordRow).where(col(RecordRow.citizen_id) == citizen_id)
    if category is not None:
        query = query.where(col(RecordRow.category) == category)
    return list(session.execute(
        query.order_by(col(RecordRow.category), col(RecordRow.version))).scalars())


def record_history(ctx: VaultContext, citizen_id: str, category: str) -> list[RecordView]:
    with reading(ctx) as session:
        citizen = get_citizen(session, citizen_id)
        rows = _all_versions(session, citizen_id, category)
        key = data_key(ctx, citizen) if rows else b""
        return [_view(key, r) for r in rows]


def delete_records(ctx: VaultContext, citizen_id: str, category: str, *,
                   actor_id: str | None = None) -> int:
    """Delete every version of one category the citizen wrote; returns how many were
    deleted. Versions a service issued stay: they are the issuer's to withdraw
    (ARCHITECTURE §8), so a category holding only those is a RecordConflict.
    `actor_id`: someone acting for the citizen (needs `edit`)."""
    with unit_of_work(ctx) as work:
        citizen = get_citizen(work.session, citizen_id)
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DelegatedAction.EDIT)
        gone = work.session.execute(
            delete(RecordRow).where(col(RecordRow.citizen_id) == citizen_id,
                                    col(RecordRow.category) == category,
                                    col(RecordRow.source) == "citizen"))
        count = int(gone.rowcount or 0)  # type: ignore[attr-defined]
        if count == 0:
            if work.session.execute(select(RecordRow.id).where(
                    col(RecordRow.citizen_id) == citizen_id,
                    col(RecordRow.category) == category).limit(1)).first() is not None:
                raise RecordConflict(f"a service issued your {category}: only it can "
                                     "change or withdraw it")
            raise NotFound(f"no {category} records to delete")
        entry = work.ledger.append("record.deleted", {
            "subject": citizen.subject, "category": category, "versions": count,
            **behalf.fields(who)})
        behalf.note(work, who, seq=entry.seq, kind="record.deleted", category=category)
        tell_changed(work, citizen_id=citizen_id, categories=[category],
                     ledger_index=entry.seq)
    return count


def export_all(ctx: VaultContext, citizen_id: str) -> Mapping[str, list[dict[str, Any]]]:
    """Everything the vault holds for the citizen, every version, for download (with
    when its issuer withdrew it, for a version withdrawn)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for view in _every_view(ctx, citizen_id):
        version: dict[str, Any] = {
            "version": view.version, "value": view.value, "source": view.source,
            "written_at": view.created_at.isoformat()}
        if view.withdrawn_at is not None:
            version["withdrawn_at"] = view.withdrawn_at.isoformat()
        out.setdefault(view.category, []).append(version)
    return out


def _every_view(ctx: VaultContext, citizen_id: str) -> list[RecordView]:
    with reading(ctx) as session:
        citizen = get_citizen(session, citizen_id)
        rows = _all_versions(session, citizen_id, None)
        key = data_key(ctx, citizen) if rows else b""
        return [_view(key, r) for r in rows]


def version_sources(session: Session, citizen_id: str) -> dict[str, list[str]]:
    """Who wrote each version of each of the citizen's categories ("citizen" or an
    issuer's id), oldest first, without opening any value."""
    rows = session.execute(
        select(col(RecordRow.category), col(RecordRow.source))
        .where(col(RecordRow.citizen_id) == citizen_id)
        .order_by(col(RecordRow.category), col(RecordRow.version))).all()
    out: dict[str, list[str]] = {}
    for category, source in rows:
        out.setdefault(category, []).append(source)
    return out
