"""Building inclusion and consistency proofs from the SQL ledger at 1,000,000 entries.

Measured: `SqlLedger.inclusion_proof(index, size)` for random indices at the full
size, and `SqlLedger.consistency_proof(first, second)` for random 1 <= first < second
<= size, each call timed alone inside one read-only transaction (`read_only(engine)`).
Goal: median <= 1 ms each.

Floor: the database reads such a proof cannot avoid: the stdlib `sqlite3` module
fetching exactly the stored hashes the proof needs (the leaf hashes by seq, with those
under the nodes below `STORED_LEVEL`, which are not stored, and the interior nodes by
id, one `IN (...)` query each) from the same file.

The median over all calls is reported; p90 goes in a note.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from bench.report import Goal, Result, median
from bench.workload import BigLedger
from ledger.proof import consistency_ranges, inclusion_ranges
from ledger.sqlstore import STORED_LEVEL, SqlLedger
from ledger.tree import node_id, perfect_subtrees
from ledger.verify import verify_consistency
from vault.storage.database import make_engine, read_only, sqlite_url

__all__ = ["bench_proofs"]

Ranges = list[tuple[int, int]]
WARMUP = 50


def _stored_nodes(ranges: Ranges) -> tuple[list[int], list[int]]:
    """Leaf seqs and interior node ids holding the subtrees that cover `ranges`."""
    nodes = sorted({t for b, e in ranges for t in perfect_subtrees(b, e)})
    leaves = sorted({seq for level, i in nodes if level < STORED_LEVEL
                     for seq in range(i << level, (i + 1) << level)})
    return leaves, [node_id(level, i) for level, i in nodes if level >= STORED_LEVEL]


def _floor_reader(db: Path) -> tuple[sqlite3.Connection, Callable[[list[int], list[int]], int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

    def read(leaves: list[int], inner: list[int]) -> int:
        got = 0
        if leaves:
            marks = ",".join("?" * len(leaves))
            got += len(conn.execute(
                f"SELECT seq, leaf_hash FROM ledger_entries WHERE seq IN ({marks})", leaves
            ).fetchall())
        if inner:
            marks = ",".join("?" * len(inner))
            got += len(conn.execute(
                f"SELECT id, hash FROM ledger_nodes WHERE id IN ({marks})", inner
            ).fetchall())
        return got

    return conn, read


def _time_each(calls: Sequence[Callable[[], object]]) -> list[float]:
    """Seconds per call, after a short warm-up on the first calls."""
    for call in calls[:WARMUP]:
        call()
    samples = []
    perf = time.perf_counter
    for call in calls:
        t0 = perf()
        call()
        samples.append(perf() - t0)
    return samples


def _result(name: str, samples: list[float], floor: list[float], shape: str) -> Result:
    p90 = statistics.quantiles(samples, n=10)[-1] * 1e3
    return Result(
        name=name,
        unit="ms",
        measured=median(samples) * 1e3,
        floor=median(floor) * 1e3,
        floor_what="sqlite3 reads",
        goal=Goal("<=", 1.0),
        stat=f"median of {len(samples):,}",
        notes=[f"{shape}; p90 {p90:.3g} ms"],
    )


def bench_proofs(big: BigLedger, *, count: int, seed: int = 3) -> list[Result]:
    rng = random.Random(seed)
    size = big.size
    indices = [rng.randrange(size) for _ in range(count)]
    pairs = [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(count)]
    engine = make_engine(sqlite_url(str(big.db)), pool_size=1)
    floor_conn, floor_read = _floor_reader(big.db)
    try:
        with read_only(engine).connect() as conn:
            store = SqlLedger(conn)
            incl = _time_each([partial(store.inclusion_proof, i, size) for i in indices])
            cons = _time_each([partial(store.consistency_proof, a, b) for a, b in pairs])
            # Not timed: the proofs must be right, or their speed means nothing.
            for a, b in pairs[:20]:
                verify_consistency(first=a, second=b, proof=store.consistency_proof(a, b),
                                   first_root=store.root_at(a), second_root=store.root_at(b))
        incl_nodes = [_stored_nodes(inclusion_ranges(i, size)) for i in indices]
        cons_nodes = [_stored_nodes(consistency_ranges(a, b)) for a, b in pairs]
        incl_floor = _time_each([partial(floor_read, *n) for n in incl_nodes])
        cons_floor = _time_each([partial(floor_read, *n) for n in cons_nodes])
    finally:
        floor_conn.close()
        engine.dispose()
    avg_incl = sum(len(a) + len(b) for a, b in incl_nodes) / count
    avg_cons = sum(len(a) + len(b) for a, b in cons_nodes) / count
    return [
        _result(f"inclusion proof build @ {size:,} (SQLite)", incl, incl_floor,
                f"random index, size {size:,}; {avg_incl:.1f} stored hashes read on average"),
        _result(f"consistency proof build @ {size:,} (SQLite)", cons, cons_floor,
                f"random 1 <= first < second <= {size:,}; "
                f"{avg_cons:.1f} stored hashes read on average"),
    ]
