"""What every use case needs, passed in once: database, keys, clock, approval checks."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from ledger.entry import SEALED_VERSION, Clock, utc_now
from ledger.sqlstore import SqlLedger
from vault.crypto import Keyring
from vault.services.approvals import ApprovalVerifier
from vault.services.witnessing import Witnessing
from vault.storage.database import read_only

__all__ = ["VaultContext", "Work", "new_id", "reading", "unit_of_work"]


def new_id(prefix: str) -> str:
    """A random identifier: 128 bits, URL-safe, with a prefix saying what it names."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


@dataclass(frozen=True)
class VaultContext:
    engine: Engine
    keyring: Keyring
    approvals: ApprovalVerifier
    clock: Clock = utc_now
    #: Called after every commit (the checkpoint publisher's nudge).
    after_commit: Callable[[], None] = field(default=lambda: None)
    #: Called after a commit that queued work for a background thread, with what it
    #: queued (`Work.queued`): only those threads wake, not every thread on every read.
    after_queue: Callable[[frozenset[str]], None] = field(default=lambda queued: None)
    #: The witnesses whose quorum of cosignatures publishes a checkpoint (None: no witnesses).
    witnessing: Witnessing | None = None
    #: A transaction whose record changes have at most this many grants to tell queues
    #: their `record.changed` messages itself; beyond, or at 0, the change teller does
    #: (`vault.services.changes`).
    tell_inline: int = 0


@dataclass(frozen=True)
class Work:
    """One transaction: the session, the ledger on the same connection, and its time."""

    session: Session
    ledger: SqlLedger
    now: datetime
    #: What this transaction queued for background threads ("changes", "webhooks").
    queued: set[str] = field(default_factory=set)
    #: `VaultContext.tell_inline`, for the changes this transaction makes.
    tell_inline: int = 0


@contextmanager
def reading(ctx: VaultContext) -> Iterator[Session]:
    """A read-only transaction: a deferred BEGIN on SQLite, so it never waits for (or
    holds up) writers, and no ledger, because nothing changes."""
    with Session(read_only(ctx.engine), expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def unit_of_work(ctx: VaultContext) -> Iterator[Work]:
    """A state change and its ledger entries commit together, or neither does."""
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        conn = session.connection()  # BEGIN (IMMEDIATE on SQLite: the write lock) first
        now = ctx.clock()
        # Entries carry the time the change was checked at (never earlier than the
        # entry before), so an auditor re-checking a read at the recorded time agrees.
        # Entries are sealed (ledger v2, ARCHITECTURE §10): what links a citizen is
        # committed to in public and kept in the entry's opening.
        work = Work(session, SqlLedger(conn, clock=lambda: now, version=SEALED_VERSION), now,
                    tell_inline=ctx.tell_inline)
        yield work
    ctx.after_commit()
    if work.queued:
        ctx.after_queue(frozenset(work.queued))
