"""Database engines: SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with `synchronous=FULL` and `foreign_keys=ON`. The driver's own
implicit transactions are turned off and every transaction begins with
`BEGIN IMMEDIATE`, so a transaction that reads and then writes holds the write lock
from its first statement and waits (busy timeout) instead of failing on a stale
snapshot. Read-only work uses `read_only(engine)`, which begins a deferred transaction
and never waits for writers.

A database file is private to its owner (0600) whatever the umask: it is created 0600
before SQLite opens it, and SQLite gives its -wal and -shm files the database file's
mode; files left looser by an older vault are tightened when the engine is made.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

__all__ = [
    "BUSY_TIMEOUT_MS",
    "flush_deleted",
    "is_sqlite",
    "make_engine",
    "private_sqlite_files",
    "read_only",
    "sqlite_url",
]

BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "vault_read_only"
#: The database and its write-ahead log, shared-memory index and rollback journal.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def sqlite_url(path: str) -> str:
    return f"sqlite:///{path}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, pool_size: int = 20, echo: bool = False) -> Engine:
    """An engine configured for the vault's transactions on SQLite or PostgreSQL."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size=pool_size, echo=echo)
    # Keep the pool above the number of threads that may hold a connection at once
    # (FastAPI runs sync endpoints on a 40-thread pool).
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=2 * pool_size, pool_pre_ping=True, echo=echo
    )


def private_sqlite_files(path: Path) -> None:
    """Create the database file `path` with mode 0600 if it is missing, and make it and
    any -wal, -shm or -journal file beside it 0600. Best effort: a folder that does not
    exist or a file this user does not own is left for SQLite to report."""
    with contextlib.suppress(FileExistsError, FileNotFoundError, PermissionError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in _SQLITE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(f"{path}{suffix}", 0o600)


def _sqlite_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_sqlite_files(Path(database))
    engine = sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=2 * pool_size,
        connect_args={
            "check_same_thread": False,
            "timeout": BUSY_TIMEOUT_MS / 1000,
            "isolation_level": None,  # we issue BEGIN ourselves
        },
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are overwritten with zeros, so an erased citizen's wrapped key does
        # not linger in free pages (crypto-shredding must leave no copy of the key).
        cur.execute("PRAGMA secure_delete=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # Straight to the driver: this runs once per transaction, on the hot path.
        read_only = conn.get_execution_options().get(_READ_ONLY)
        conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "BEGIN" if read_only else "BEGIN IMMEDIATE"
        )

    return engine


def flush_deleted(engine: Engine) -> bool:
    """Best effort: push deleted pages out of SQLite's write-ahead log and truncate it.

    After an erasure the WAL may still hold old copies of the deleted pages; a TRUNCATE
    checkpoint writes the (zeroed) pages back and empties the log. Returns False when
    readers kept it from completing (the next checkpoint will); PostgreSQL: nothing to do
    here (VACUUM reclaims dead rows).
    """
    if not is_sqlite(engine):
        return True
    with engine.connect() as conn:
        busy, _, _ = conn.connection.driver_connection.execute(  # type: ignore[union-attr]
            "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(busy == 0)


def read_only(engine: Engine) -> Engine:
    """The same engine and pool, for transactions that only read."""
    return engine.execution_options(**{_READ_ONLY: True})
