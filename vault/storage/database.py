"""Database engines: SQLite (embedded default) and PostgreSQL (production).

SQLite runs in WAL mode with `synchronous=FULL` and `foreign_keys=ON`. The driver's own
implicit transactions are turned off and every transaction begins with
`BEGIN IMMEDIATE`, so a transaction that reads and then writes holds the write lock
from its first statement and waits (busy timeout) instead of failing on a stale
snapshot. Read-only work uses `read_only(engine)`, which begins a deferred transaction
and never waits for writers.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

__all__ = [
    "BUSY_TIMEOUT_MS",
    "flush_deleted",
    "is_sqlite",
    "make_engine",
    "read_only",
    "sqlite_url",
]

BUSY_TIMEOUT_MS = 30_000
_READ_ONLY = "vault_read_only"


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


def _sqlite_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
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
