"""What a witness remembers, in SQLite: per log, the checkpoint it last cosigned; and the
evidence of every checkpoint it refused as inconsistent with it.

Every change commits with ``synchronous=FULL`` before the witness answers: a cosignature
that a crash could take back would let the witness cosign a fork after restarting. The
check of the old size and the update happen in one ``BEGIN IMMEDIATE`` transaction, so two
submissions can never both pass against the same state (the race in tlog-witness).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Evidence", "Held", "WitnessState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (
    origin TEXT PRIMARY KEY,
    size TEXT NOT NULL,          -- decimal: tree sizes go up to 2**64 - 1
    root BLOB NOT NULL,
    note TEXT NOT NULL,          -- the log's note with this witness's cosignature
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    seen_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    held_note TEXT NOT NULL,     -- what the witness had cosigned
    old_size TEXT NOT NULL,
    proof TEXT NOT NULL,         -- base64 lines, as submitted
    submitted_note TEXT NOT NULL -- the log-signed checkpoint that contradicts it
);
"""


@dataclass(frozen=True, slots=True)
class Held:
    size: int
    root: bytes
    note: str


@dataclass(frozen=True, slots=True)
class Evidence:
    origin: str
    seen_at: int
    reason: str
    held_note: str
    old_size: int
    proof: str
    submitted_note: str


class _Txn:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def held(self, origin: str) -> Held | None:
        row = self._conn.execute(
            "SELECT size, root, note FROM logs WHERE origin = ?", (origin,)).fetchone()
        return Held(int(row[0]), bytes(row[1]), row[2]) if row else None

    def cosigned(self, origin: str, held: Held, at: int) -> None:
        self._conn.execute(
            "INSERT INTO logs (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
            "note = excluded.note, cosigned_at = excluded.cosigned_at",
            (origin, str(held.size), held.root, held.note, at))

    def refused(self, evidence: Evidence) -> None:
        self._conn.execute(
            "INSERT INTO evidence (origin, seen_at, reason, held_note, old_size, proof, "
            "submitted_note) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (evidence.origin, evidence.seen_at, evidence.reason, evidence.held_note,
             str(evidence.old_size), evidence.proof, evidence.submitted_note))


class WitnessState:
    def __init__(self, path: str | Path) -> None:
        # One connection behind a lock: submissions are few and small, and the lock keeps
        # this process's transactions from interleaving on it.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[_Txn]:
        """Read and change the state atomically; committed (and synced) on leaving."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _Txn(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def held(self, origin: str) -> Held | None:
        with self.transaction() as txn:
            return txn.held(origin)

    def evidence(self) -> list[Evidence]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT origin, seen_at, reason, held_note, old_size, proof, submitted_note "
                "FROM evidence ORDER BY id").fetchall()
        return [Evidence(r[0], r[1], r[2], r[3], int(r[4]), r[5], r[6]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
