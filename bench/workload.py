"""The shared workload: realistic entry bodies, SQLite files, and the 1M-entry ledger.

Nothing here is measured. It builds what the benchmarks measure against: a stream of
`data.accessed` bodies (about 300 bytes of entry each, like the vault writes on every
read), fresh database files, the big ledger used by the proof and audit benchmarks
(built as fast as SQLite allows: 10,000 entries per transaction, `synchronous=OFF`
on the setup engine only), its NDJSON export and a signed checkpoint of it.
"""

from __future__ import annotations

import base64
import hashlib
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.note import Signer
from ledger.sqlstore import SqlLedger, init_schema
from ledger.store import EntryItem
from vault.storage.database import make_engine, read_only, sqlite_url

__all__ = [
    "BigLedger",
    "build_big_ledger",
    "fresh_db",
    "ledger_engine",
    "make_items",
    "progress",
]

KIND = "data.accessed"
SETUP_BATCH = 10_000
_CATEGORIES = ("address", "income", "tax_id", "household", "vehicle", "health_insurance")
_SERVICES = tuple(f"svc_{i:04d}" for i in range(40))
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def progress(message: str) -> None:
    """Setup progress goes to stderr so stdout stays the report."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


def make_items(n: int, seed: int = 1) -> list[EntryItem]:
    """`n` distinct `data.accessed` items, deterministic for a given seed."""
    rng = random.Random(seed)
    items: list[EntryItem] = []
    for _ in range(n):
        commitment = hashlib.sha256(rng.randbytes(16)).digest()
        body: dict[str, Any] = {
            "categories": sorted(rng.sample(_CATEGORIES, rng.randint(1, 3))),
            # A keyed commitment to the response: 32 bytes, base64url without padding.
            "commitment": base64.urlsafe_b64encode(commitment).rstrip(b"=").decode(),
            "grant_id": str(uuid.UUID(bytes=rng.randbytes(16), version=4)),
            "service_id": rng.choice(_SERVICES),
            "subject": "ps_" + "".join(rng.choices(_ALPHABET, k=16)),
        }
        items.append((KIND, body))
    return items


def fresh_db(path: Path) -> Path:
    """Remove a database file and its WAL companions so a run starts empty."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def ledger_engine(path: Path, *, fast_setup: bool = False) -> Engine:
    """The vault's SQLite engine (WAL, synchronous=FULL) with the ledger tables.

    `fast_setup` turns off fsync on this engine's connections: only for building
    fixtures, never for a measured append.
    """
    engine = make_engine(sqlite_url(str(path)), pool_size=2)
    if fast_setup:

        @event.listens_for(engine, "connect")
        def _no_fsync(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA synchronous=OFF")
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

    with engine.begin() as conn:
        init_schema(conn)
    return engine


def _checkpoint_wal(db: Path) -> None:
    """Move the WAL into the database file, so readers start from a plain file."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class BigLedger:
    """The large ledger fixture shared by the proof and audit benchmarks."""

    db: Path
    size: int
    root: bytes
    ndjson: Path
    signed_checkpoint: str
    verifier_key: str
    entry_bytes: int  # total bytes of all entries (without newlines)


def _batches(n: int, batch: int) -> Iterator[list[EntryItem]]:
    # Bodies repeat with period `batch` to keep setup cheap; seq, time and prev still
    # make every entry distinct.
    template = make_items(min(n, batch), seed=7)
    done = 0
    while done < n:
        k = min(batch, n - done)
        yield template[:k]
        done += k


def build_big_ledger(workdir: Path, size: int) -> BigLedger:
    """Append `size` entries, export them as NDJSON and sign a checkpoint of the head."""
    db = fresh_db(workdir / "big.db")
    engine = ledger_engine(db, fast_setup=True)
    t0 = time.perf_counter()
    for items in _batches(size, SETUP_BATCH):
        with engine.begin() as conn:
            SqlLedger(conn).append_many(items)
    engine.dispose()
    _checkpoint_wal(db)
    progress(f"built {size:,}-entry ledger in {time.perf_counter() - t0:.1f} s (setup)")

    t0 = time.perf_counter()
    ndjson = workdir / "big.ndjson"
    total = 0
    with read_only(engine).connect() as conn, ndjson.open("wb") as out:
        store = SqlLedger(conn)
        head = store.tree_head()
        for _seq, _leaf, data in store.iter_entries():
            out.write(data)
            out.write(b"\n")
            total += len(data)
    engine.dispose()
    if head.size != size:
        raise RuntimeError(f"ledger has {head.size} entries after appending {size}")
    progress(f"exported NDJSON ({ndjson.stat().st_size / 2**20:.0f} MiB) in "
             f"{time.perf_counter() - t0:.1f} s (setup)")

    signer = Signer.generate("bench.example/ledger")
    note = sign_checkpoint(Checkpoint(signer.name, head.size, head.root), signer)
    return BigLedger(db, head.size, head.root, ndjson, note, str(signer.verifier()), total)
