"""Append throughput of the SQL ledger on SQLite, against bare sqlite3 on the same bytes.

Measured: `SqlLedger(conn, version=2).append_many(...)` (sealed entries, as the vault
writes them: split, a salt, one SHA-256 and the opening per entry) through the vault's
engine (`make_engine` on a file: WAL, synchronous=FULL, `BEGIN IMMEDIATE`), on a fresh
database, in transactions of 100 entries (goal >= 30,000 entries/s) and of one entry
(goal >= 50% of the floor). Each includes encoding, sealing, hashing, tree nodes and the
head. The batched figure's notes give v1 (unsealed) appends of the same items, measured
in the same rounds, for the cost of sealing.

Floor: the stdlib `sqlite3` module inserting the very entry bytes, leaf hashes and
openings the ledger produced into an equivalent table (seq INTEGER PRIMARY KEY,
leaf_hash, data, opening), same pragmas, same transaction size, same BEGIN IMMEDIATE ...
COMMIT.

Ledger and floor runs alternate, each on a fresh file; the best of the repeats is
reported (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from bench.report import Goal, Result, best, spread
from bench.workload import fresh_db, ledger_engine, make_items
from ledger.entry import SEALED_VERSION, VERSION
from ledger.sqlstore import SqlLedger
from ledger.store import Appended, EntryItem

__all__ = ["bench_batched_appends", "bench_single_appends"]

Row = tuple[int, bytes, bytes, bytes | None]


def _chunks(items: Sequence[EntryItem], size: int) -> list[Sequence[EntryItem]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _ledger_run(path: Path, items: Sequence[EntryItem], batch: int,
                version: int = SEALED_VERSION) -> tuple[float, list[Appended]]:
    """Seconds to append `items` in transactions of `batch`, and what was appended."""
    engine = ledger_engine(fresh_db(path))
    out: list[Appended] = []
    chunks = _chunks(items, batch)
    try:
        if batch == 1:
            t0 = time.perf_counter()
            for ((kind, body),) in chunks:
                with engine.begin() as conn:
                    out.append(SqlLedger(conn, version=version).append(kind, body))
            dt = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            for chunk in chunks:
                with engine.begin() as conn:
                    out.extend(SqlLedger(conn, version=version).append_many(chunk))
            dt = time.perf_counter() - t0
    finally:
        engine.dispose()
    if [a.seq for a in out] != list(range(len(items))):
        raise RuntimeError("the ledger did not assign seq 0..n-1 to a fresh ledger")
    return dt, out


def _bare_run(path: Path, rows: Sequence[Row], batch: int) -> float:
    """Seconds for stdlib sqlite3 to insert `rows` in transactions of `batch`."""
    conn = sqlite3.connect(fresh_db(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE entries (seq INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL, "
            "data BLOB NOT NULL, opening BLOB)"
        )
        sql = "INSERT INTO entries (seq, leaf_hash, data, opening) VALUES (?, ?, ?, ?)"
        execute, executemany = conn.execute, conn.executemany
        if batch == 1:
            t0 = time.perf_counter()
            for row in rows:
                execute("BEGIN IMMEDIATE")
                execute(sql, row)
                execute("COMMIT")
            return time.perf_counter() - t0
        chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
        t0 = time.perf_counter()
        for chunk in chunks:
            execute("BEGIN IMMEDIATE")
            executemany(sql, chunk)
            execute("COMMIT")
        return time.perf_counter() - t0
    finally:
        conn.close()


def _compare(
    workdir: Path, n: int, batch: int, repeats: int, *, with_v1: bool = False
) -> tuple[list[float], list[float], list[float], int]:
    """Entries/s of the sealed ledger, of the floor and (`with_v1`) of v1 appends, over
    `repeats` alternating runs."""
    items = make_items(n, seed=11)
    ledger_rates: list[float] = []
    bare_rates: list[float] = []
    v1_rates: list[float] = []
    rows: list[Row] = []
    avg_bytes = 0
    for _ in range(repeats):
        dt, appended = _ledger_run(workdir / "append-ledger.db", items, batch)
        ledger_rates.append(n / dt)
        if not rows:
            rows = [(a.seq, a.leaf_hash, a.data, a.opening) for a in appended]
            avg_bytes = round(sum(len(a.data) + len(a.opening or b"") for a in appended) / n)
        bare_rates.append(n / _bare_run(workdir / "append-bare.db", rows, batch))
        if with_v1:
            v1_rates.append(n / _ledger_run(workdir / "append-v1.db", items, batch, VERSION)[0])
    return ledger_rates, bare_rates, v1_rates, avg_bytes


def bench_batched_appends(workdir: Path, *, n: int, repeats: int, batch: int = 100) -> Result:
    ledger, bare, v1, avg = _compare(workdir, n, batch, repeats, with_v1=True)
    return Result(
        name=f"append, {batch} entries/txn (SQLite file, sync=FULL)",
        unit="/s",
        measured=best(ledger, higher_is_better=True),
        floor=best(bare, higher_is_better=True),
        floor_what="bare sqlite3",
        goal=Goal(">=", 30_000),
        stat=f"best of {repeats} x {n:,}",
        spread=spread(ledger),
        notes=[f"sealed (v2) entries with their openings average {avg} bytes; floor "
               f"spread {spread(bare):.0%}; v1 (unsealed) appends of the same items "
               f"{best(v1, higher_is_better=True):,.0f}/s"],
    )


def bench_single_appends(workdir: Path, *, n: int, repeats: int) -> Result:
    ledger, bare, _, _ = _compare(workdir, n, 1, repeats)
    return Result(
        name="append, 1 entry/txn (SQLite file, sync=FULL)",
        unit="/s",
        measured=best(ledger, higher_is_better=True),
        floor=best(bare, higher_is_better=True),
        floor_what="bare sqlite3 commits",
        goal=Goal(">=", 0.5, subject="ratio"),
        stat=f"best of {repeats} x {n:,}",
        spread=spread(ledger),
        notes=[f"floor spread {spread(bare):.0%}"],
    )
