"""Series (ARCHITECTURE §8 "Series"): batches appended, read by each grant from where it left off.

A series category (`Category.series`: health observations from a wearable) grows by
batches. Each batch is one version of the category, one `records` row: its items sealed
like any value (the list of items), and an issuer's JWS sealed beside it (as
`vault.services.issued` stores any issued record); `record.written` carries `"items": N`.

- `issued_series.append_issued`: `POST /v1/records/{category}/items`, an issuer's batch
  under a write grant (its own module: `issued` needs `access`, which needs this), with
  the batch's rules (`batch_items`: 1 to 1,000 items, each checked, one bad item and
  nothing is written; no reading from the future, `FUTURE_SLACK` allowing for a
  device's clock).
- `append_batch`: a batch written without a grant: the citizen's own (`append_own`, the
  wallet's readings form), or the operator's (`records.write_record` sends a series
  here: `vault citizen write`, the demo). The same checks and entry as an issuer's.
- `next_version`: a series never takes a version again, not even one whose batches the
  citizen deleted: it is above every grant's cursor too.
- Reading (`vault.services.access` calls these): a grant reads the batches after its
  cursor, oldest first, at most `READ_BATCHES` a read (`BatchPage.more` says more wait);
  the cursor moves in the read's own transaction (`move_cursors`), so every batch reaches
  every grant exactly once, whatever the interleaving of appends and reads. A derived
  answer over the series (`observations_of_concern`) is given the items of the batches
  written in the last `WINDOW`: no reading that could fall in its 24 hours is older than
  that, since none may be dated more than `FUTURE_SLACK` after its batch was written.

Refusals: `NotASeries` (/items on a category that is not a series) and `IsASeries` (a
single value written to a series), both 409 `record-refused`; the rest are
`issued`'s and `record_jws`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Row, bindparam, insert, update
from sqlmodel import col, func, select

from vault.crypto import envelope
from vault.domain.categories import categories, validate_batch
from vault.domain.derived import CONCERN_WINDOW
from vault.domain.errors import InvalidValue
from vault.domain.relationships import DelegatedAction
from vault.oauth.record_jws import RecordRefused
from vault.services import behalf
from vault.services.changes import tell_changed
from vault.services.citizens import get_citizen
from vault.services.context import VaultContext, Work, new_id, reading, unit_of_work
from vault.services.records import RecordView, data_key
from vault.services.sources import refuse_held
from vault.storage.tables import GrantRow, RecordRow, SeriesCursorRow

__all__ = [
    "FUTURE_SLACK",
    "MAX_BATCH_JWS_BYTES",
    "READ_BATCHES",
    "WINDOW",
    "Batch",
    "BatchPage",
    "IsASeries",
    "NotASeries",
    "Recent",
    "append_batch",
    "append_own",
    "batch_items",
    "batches_after",
    "batches_since",
    "cursors_of",
    "is_series",
    "move_cursors",
    "next_version",
    "open_batch",
    "page_of",
    "recent_items",
    "window_items",
]

#: The most batches one read releases of a series; "next" says more are waiting.
READ_BATCHES = 100
#: A batch's JWS may be larger than a single record's 64 KiB: 1,000 readings of about
#: 100 bytes each, base64url-encoded, are about 140 KiB.
MAX_BATCH_JWS_BYTES = 512 * 1024
#: How far after its batch was written a reading may be dated (a device's clock).
FUTURE_SLACK = timedelta(minutes=10)
#: The batches a derived answer over the last 24 hours must see.
WINDOW = CONCERN_WINDOW + FUTURE_SLACK


class NotASeries(RecordRefused):
    """Items appended to a category that is not a series: it takes PUT, one value."""

    reason = "not_series"


class IsASeries(RecordRefused):
    """One value written (PUT) to a series: it grows by batches, POST .../items."""

    reason = "series"


def is_series(code: str) -> bool:
    found = categories().get(code)
    return found is not None and found.series


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text)  # the schema has checked it is RFC 3339


def batch_items(category: str, value: Any, now: datetime) -> tuple[list[Any], bytes]:
    """A batch's items, checked (`validate_batch`), none dated after `now` and the
    slack; and their encoding. InvalidValue saying what is wrong otherwise."""
    items, encoded = validate_batch(category, value)
    latest = now + FUTURE_SLACK
    for i, item in enumerate(items):
        at = item.get("at") if isinstance(item, dict) else None
        if isinstance(at, str) and _instant(at) > latest:
            raise InvalidValue(f"{category}: [{i}].at is in the future (a reading must "
                               "have been taken by the time it is sent)")
    return items, encoded


# The highest version stored of a citizen's category and the furthest any of their grants
# has read it (a cursor exists only for a series), in one round trip.
_HIGHEST = select(
    select(func.max(RecordRow.version)).where(
        col(RecordRow.citizen_id) == bindparam("citizen_id"),
        col(RecordRow.category) == bindparam("category")).scalar_subquery(),
    select(func.max(SeriesCursorRow.version))
    .join(GrantRow, col(GrantRow.id) == col(SeriesCursorRow.grant_id))
    .where(col(GrantRow.citizen_id) == bindparam("citizen_id"),
           col(SeriesCursorRow.category) == bindparam("category")).scalar_subquery())


def next_version(work: Work, citizen_id: str, category: str) -> int:
    """The version a new record of the citizen's `category` takes: above every version
    stored and, for a series, above every grant's cursor. A series never reuses a version:
    when the citizen deletes their own newest batches, a grant that had read them would
    otherwise take the batches appended next for ones it has already read, and skip them."""
    stored, read = work.session.connection().execute(
        _HIGHEST, {"citizen_id": citizen_id, "category": category}).one()
    return 1 + max(stored or 0, read or 0)


def append_batch(ctx: VaultContext, citizen_id: str, category: str, items: Sequence[Any],
                 *, source: str = "citizen", actor_id: str | None = None) -> RecordView:
    """A batch of `category` written for the citizen without a grant: their own (the
    wallet's readings form), or the operator's (`vault citizen write`, the demo; `source`
    then names the issuer, with no JWS). The one way in besides an issuer's POST: the
    same checks (`batch_items`) and the same `record.written` with "items"."""
    with unit_of_work(ctx) as work:
        checked, plaintext = batch_items(category, {"items": list(items)}, work.now)
        citizen = get_citizen(work.session, citizen_id)
        # Someone acting for the citizen needs `edit` (and is named on the entry).
        who = behalf.check(work, actor_id=actor_id, subject_id=citizen_id,
                           action=DelegatedAction.EDIT)
        refuse_held(work.session, category)  # the vault stores no value of it
        version = next_version(work, citizen_id, category)
        record_id = new_id("rec")
        ad = envelope.record_ad(citizen_id=citizen_id, record_id=record_id, category=category,
                                version=version)
        work.session.add(RecordRow(
            id=record_id, citizen_id=citizen_id, category=category, version=version,
            ciphertext=envelope.seal(data_key(ctx, citizen), plaintext, ad=ad),
            source=source, created_at=work.now))
        entry = work.ledger.append("record.written", {
            "subject": citizen.subject, "record_id": record_id, "category": category,
            "version": version, "source": source, "items": len(checked),
            **behalf.fields(who)})
        behalf.note(work, who, seq=entry.seq, kind="record.written", category=category)
        tell_changed(work, citizen_id=citizen_id, categories=[category],
                     ledger_index=entry.seq)
        return RecordView(record_id, category, version, checked, source, work.now)


def append_own(ctx: VaultContext, citizen_id: str, category: str, items: Sequence[Any],
               *, actor_id: str | None = None) -> int:
    """The citizen's own batch of `category` (source "citizen"); its version."""
    return append_batch(ctx, citizen_id, category, items, actor_id=actor_id).version


@dataclass(frozen=True, slots=True)
class Recent:
    """The citizen's own view of a series: the items of its newest batches, newest
    batch first, and how many batches it has (and of them, how many are their own)."""

    items: list[Any]
    batches: int
    own: int
    newest_at: datetime | None


def recent_items(ctx: VaultContext, citizen_id: str, category: str,
                 batches: int = 20) -> Recent:
    """The items of the newest `batches` batches of the citizen's series (the wallet's
    table and charts): only those are opened, however long the series is."""
    with reading(ctx) as session:
        citizen = get_citizen(session, citizen_id)
        where = (col(RecordRow.citizen_id) == citizen_id, col(RecordRow.category) == category)
        counts = session.execute(
            select(RecordRow.source, func.count(), func.max(RecordRow.created_at))
            .where(*where).group_by(col(RecordRow.source))).all()
        rows = session.execute(
            select(*_COLUMNS).where(*where)  # type: ignore[call-overload]
            .order_by(col(RecordRow.version).desc()).limit(batches)).all()
        key = data_key(ctx, citizen) if rows else b""
        items = [item for r in rows
                 for item in open_batch(key, citizen_id, category, r, with_record=False).items]
    newest = max((at for _, _, at in counts if at is not None), default=None)
    return Recent(items, sum(n for _, n, _ in counts),
                  sum(n for source, n, _ in counts if source == "citizen"), newest)


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """One batch as released: its version, items, who wrote it and the issuer's JWS."""

    version: int
    items: list[Any]
    source: str
    record: str | None

    def provenance(self) -> dict[str, Any]:
        issued = self.source != "citizen"
        return {"version": self.version, "source": "issuer" if issued else "citizen",
                "issuer": self.source if issued else None, "record": self.record,
                "items": len(self.items)}


@dataclass(frozen=True, slots=True)
class BatchPage:
    """The batches one read releases of a series, and whether more wait after them."""

    batches: tuple[Batch, ...]
    more: bool

    @property
    def last(self) -> int | None:
        return self.batches[-1].version if self.batches else None

    def data(self) -> dict[str, Any]:
        """The category's value in `/v1/data`: each batch whole, oldest first."""
        return {"batches": [{"version": b.version, "items": b.items} for b in self.batches],
                "next": self.more}

    @property
    def issuer(self) -> str | None:
        """The issuer of every batch released, if one issuer wrote them all."""
        sources = {b.source for b in self.batches}
        return sources.pop() if len(sources) == 1 and "citizen" not in sources else None

    def provenance(self) -> dict[str, Any]:
        """The category's provenance in `/v1/data`: `"source": "series"` and each batch's
        own (its version, who wrote it, the issuer's JWS exactly as written, how many
        items), so a reader checks each batch's signature on its own."""
        return {"source": "series", "issuer": self.issuer, "version": self.last,
                "record": None, "batches": [b.provenance() for b in self.batches]}


_COLUMNS = (RecordRow.id, RecordRow.version, RecordRow.source, RecordRow.ciphertext,
            RecordRow.record_jws)


def batches_after(work: Work, citizen_id: str, category: str, after: int,
                  limit: int = READ_BATCHES) -> list[Row[Any]]:
    """Up to `limit` + 1 batches after version `after`, oldest first (one more than
    released, to know whether more wait)."""
    stmt = (select(*_COLUMNS)  # type: ignore[call-overload]
            .where(col(RecordRow.citizen_id) == citizen_id,
                   col(RecordRow.category) == category, col(RecordRow.version) > after)
            .order_by(col(RecordRow.version)).limit(limit + 1))
    return list(work.session.connection().execute(stmt))


def batches_since(work: Work, citizen_id: str, category: str, since: datetime
                  ) -> list[Row[Any]]:
    """The batches written at or after `since`, oldest first."""
    stmt = (select(*_COLUMNS)  # type: ignore[call-overload]
            .where(col(RecordRow.citizen_id) == citizen_id,
                   col(RecordRow.category) == category, col(RecordRow.created_at) >= since)
            .order_by(col(RecordRow.version)))
    return list(work.session.connection().execute(stmt))


def open_batch(key: bytes, citizen_id: str, category: str, row: Row[Any],
               *, with_record: bool) -> Batch:
    where = {"citizen_id": citizen_id, "record_id": row.id, "category": category,
             "version": row.version}
    items = orjson.loads(envelope.open_sealed(key, row.ciphertext,
                                              ad=envelope.record_ad(**where)))
    record = None
    if with_record and row.record_jws is not None:
        record = envelope.open_sealed(key, row.record_jws,
                                      ad=envelope.record_jws_ad(**where)).decode("utf-8")
    return Batch(row.version, items if isinstance(items, list) else [], row.source, record)


def page_of(key: bytes, citizen_id: str, category: str, rows: Sequence[Row[Any]],
            limit: int = READ_BATCHES) -> BatchPage:
    return BatchPage(tuple(open_batch(key, citizen_id, category, r, with_record=True)
                           for r in rows[:limit]), len(rows) > limit)


def window_items(key: bytes, citizen_id: str, category: str, rows: Sequence[Row[Any]]
                 ) -> list[Any]:
    """Every item of these batches, oldest batch first (a derived answer's input)."""
    return [item for r in rows
            for item in open_batch(key, citizen_id, category, r, with_record=False).items]


def cursors_of(work: Work, grant_ids: Sequence[str]) -> dict[tuple[str, str], int]:
    """(grant id, category) -> version of the last batch released to the grant."""
    if not grant_ids:
        return {}
    stmt = select(SeriesCursorRow.grant_id, SeriesCursorRow.category,
                  SeriesCursorRow.version).where(
        col(SeriesCursorRow.grant_id).in_(sorted(set(grant_ids))))
    return {(r.grant_id, r.category): r.version
            for r in work.session.connection().execute(stmt)}


def move_cursors(work: Work, moves: Mapping[tuple[str, str], int]) -> None:
    """Set each (grant id, category) cursor to its version. The grant is locked by its
    read, so nobody moves it meanwhile: update it, or insert it if it was not there."""
    conn = work.session.connection()
    new = []
    for (grant_id, category), version in moves.items():
        moved = conn.execute(
            update(SeriesCursorRow)
            .where(col(SeriesCursorRow.grant_id) == grant_id,
                   col(SeriesCursorRow.category) == category)
            .values(version=version, updated_at=work.now))
        if not moved.rowcount:
            new.append({"grant_id": grant_id, "category": category, "version": version,
                        "updated_at": work.now})
    if new:
        conn.execute(insert(SeriesCursorRow), new)
