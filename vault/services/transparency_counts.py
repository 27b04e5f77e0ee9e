"""Counting the transparency report's atoms from the public ledger, as it grows.

The counts are worked out by `ledger.transparency` (the code an auditor recounts with)
from each entry's public part only, so they agree with the public ledger by
construction and never go down: erasure deletes rows, never entries.

`count_ledger` counts what was appended since the last count, a stretch of at most
`CHUNK` entries per transaction: it reads the stretch and the facts of the grants it
names (month asked, purpose, state: `transparency_grants`), works out the changes, then
writes them with the cursor in one transaction. The write starts by moving the cursor
from where the read found it: if another process counted meanwhile, nothing is written
and the stretch is read again, so every entry is counted exactly once, crash or not.

Only entries a signed checkpoint covers are counted (`to_head` for tests and tools), so
the report can name the checkpoint its counts agree with: `ledger_size` entries, the
tree that checkpoint signs. `TransparencyCounter` runs `count_ledger` in the background.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import col

from ledger.sqlstore import SqlLedger
from ledger.transparency import AccessAtom, GrantAtom, GrantFacts, Tally
from vault.services.background import Periodic
from vault.services.context import VaultContext
from vault.storage.database import read_only
from vault.storage.tables import TransparencyAtomRow, TransparencyCursorRow, TransparencyGrantRow

__all__ = ["CHUNK", "POLL_SECONDS", "Counted", "TransparencyCounter", "count_ledger",
           "counted", "counted_size"]

log = logging.getLogger(__name__)

#: Entries counted per stretch (read without locks; written in one short transaction).
CHUNK = 20_000
#: How often the counter looks for a new checkpoint to count up to.
POLL_SECONDS = 0.2
#: Grant ids per `IN (...)` (SQLite allows 32,766 parameters; PostgreSQL 65,535).
_IN_BATCH = 500

_GRANT, _ACCESS = "grant", "access"
_ENTRIES_QMARK = "SELECT seq, data FROM ledger_entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_ENTRIES_FORMAT = _ENTRIES_QMARK.replace("?", "%s")
_GRANT_ID = re.compile(rb'"grant_id":"([^"\\]*)"')


@dataclass(frozen=True, slots=True)
class Counted:
    """The atoms counted so far, and from how many entries (0 .. size - 1)."""

    size: int
    grants: dict[GrantAtom, int]
    accesses: dict[AccessAtom, int]


# -- reading ---------------------------------------------------------------------------------


def counted_size(conn: Connection) -> int:
    row = conn.execute(select(col(TransparencyCursorRow.next_seq))
                       .where(col(TransparencyCursorRow.id) == 1)).first()
    return int(row[0]) if row is not None else 0


def counted(conn: Connection) -> Counted:
    """Every atom counted, and the cursor, as one transaction sees them."""
    size = counted_size(conn)
    grants: dict[GrantAtom, int] = {}
    accesses: dict[AccessAtom, int] = {}
    for r in conn.execute(select(TransparencyAtomRow.__table__)).mappings():  # type: ignore[attr-defined]
        n = int(r["count"])
        if n <= 0:  # 0: every grant it had moved on
            if n < 0:  # only a counting bug could do this: do not publish it, say it
                log.error("transparency atom %s counts %d; left out", r["atom"], n)
            continue
        if r["kind"] == _GRANT:
            grants[GrantAtom(r["month"], r["state"])] = n
        else:
            accesses[AccessAtom(r["month"], r["service_id"], r["purpose"],
                                frozenset(r["categories"]), frozenset(r["derived"]))] = n
    return Counted(size, grants, accesses)


# -- counting --------------------------------------------------------------------------------


def _atom_row(kind: str, month: str, service_id: str, purpose: str, state: str,
              categories: Iterable[str], derived: Iterable[str], n: int) -> dict[str, Any]:
    fields = [kind, month, service_id, purpose, state, sorted(categories), sorted(derived)]
    return {"atom": hashlib.sha256(orjson.dumps(fields)).hexdigest(), "kind": kind,
            "month": month, "service_id": service_id, "purpose": purpose, "state": state,
            "categories": fields[5], "derived": fields[6], "count": n}


def _atom_rows(tally: Tally) -> list[dict[str, Any]]:
    rows = [_atom_row(_GRANT, a.month, "", "", a.state, (), (), n)
            for a, n in tally.grants.items() if n]
    rows += [_atom_row(_ACCESS, a.month, a.service_id, a.purpose, "", a.categories,
                       a.derived, n) for a, n in tally.accesses.items() if n]
    return sorted(rows, key=lambda r: r["atom"])  # one order: no deadlock between writers


def _known(conn: Connection, ids: Sequence[str]) -> dict[str, GrantFacts]:
    table = TransparencyGrantRow.__table__  # type: ignore[attr-defined]
    found: dict[str, GrantFacts] = {}
    for i in range(0, len(ids), _IN_BATCH):
        for gid, month, purpose, state in conn.execute(
                select(table.c.grant_id, table.c.month, table.c.purpose, table.c.state)
                .where(table.c.grant_id.in_(ids[i:i + _IN_BATCH]))):
            found[gid] = GrantFacts(month, purpose, state)
    return found


def _stretch(engine: Engine, *, to_head: bool, chunk: int) -> tuple[int, Tally] | None:
    """Read and count the next stretch: (cursor it starts at, its tally), or None when
    everything there is to count is counted."""
    with read_only(engine).begin() as conn:
        start = counted_size(conn)
        ledger = SqlLedger(conn)
        if to_head:
            end = ledger.size()
        else:
            latest = ledger.latest_checkpoint()
            end = latest[0] if latest is not None else 0
        end = min(end, start + chunk)
        if end <= start:
            return None
        # Straight to the driver, as the ledger store reads: no statement to compile.
        sql = _ENTRIES_QMARK if conn.dialect.paramstyle == "qmark" else _ENTRIES_FORMAT
        rows = [(seq, bytes(data)) for seq, data in conn.exec_driver_sql(sql, (start, end))]
        # The grants the stretch names, found in the bytes before anything is decoded, so
        # that each entry is decoded once and dropped at once: keeping thousands of
        # decoded entries alive costs more in garbage collection than decoding them.
        # Entries are canonical JSON, so a grant id is exactly what the pattern finds (a
        # few extra ids, from other fields, only cost a lookup).
        ids = sorted({gid.decode() for _, data in rows for gid in _GRANT_ID.findall(data)})
        tally = Tally(known=_known(conn, ids))
    for seq, data in rows:
        tally.feed_bytes(seq, data)
    if tally.size != end - start:  # a gap in the entries: count nothing rather than wrongly
        raise RuntimeError(f"ledger entries {start}..{end - 1} are not all there")
    return start, tally


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str,
            set_: Mapping[str, Any]) -> None:
    """Insert or update `rows`: one statement, compiled once and cached, run for every
    row (executemany): a VALUES list of thousands of rows costs more to compile than
    to run."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(table)
    conn.execute(insert.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={name: value(insert.excluded) for name, value in set_.items()}), rows)


def _write(engine: Engine, start: int, tally: Tally) -> bool:
    """Apply a stretch's tally and move the cursor past it, in one transaction; False
    (and nothing written) if another counter moved the cursor first."""
    cursor = TransparencyCursorRow.__table__  # type: ignore[attr-defined]
    atoms = TransparencyAtomRow.__table__  # type: ignore[attr-defined]
    facts = TransparencyGrantRow.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        moved = conn.execute(update(cursor).where(cursor.c.id == 1, cursor.c.next_seq == start)
                             .values(next_seq=start + tally.size))
        if moved.rowcount != 1:
            return False
        _upsert(conn, atoms, _atom_rows(tally), "atom",
                {"count": lambda new: atoms.c["count"] + new["count"]})
        _upsert(conn, facts, [
            {"grant_id": gid, "month": f.month, "purpose": f.purpose, "state": f.state}
            for gid, f in sorted(tally.facts.items())], "grant_id",
            {"state": lambda new: new.state})
    return True


def count_ledger(ctx: VaultContext, *, to_head: bool = False, chunk: int = CHUNK) -> int:
    """Count every entry the latest checkpoint covers (every entry, with `to_head`)
    that is not counted yet; returns how many entries are counted now."""
    while (found := _stretch(ctx.engine, to_head=to_head, chunk=chunk)) is not None:
        start, tally = found
        if tally.skipped:
            log.warning("transparency: %d entries from %d had nothing countable in their "
                        "public part", len(tally.skipped), start)
        _write(ctx.engine, start, tally)
    with read_only(ctx.engine).begin() as conn:
        return counted_size(conn)


class TransparencyCounter(Periodic):
    """Counts new entries in the background, soon after the publisher signs them."""

    def __init__(self, ctx: VaultContext, *, interval: float = POLL_SECONDS) -> None:
        super().__init__(lambda: count_ledger(ctx), name="transparency-counter",
                         interval=interval)
