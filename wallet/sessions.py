"""Server-side wallet sessions: a random token in the cookie, its SHA-256 in the database.

A stolen database gives no usable cookie; a session ends on sign-out, after
`idle` without a request, after `absolute` in all, and with its citizen (erasure
cascades). `seen_at` is refreshed at most once a minute, so reading pages does not
turn into a write per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from vault.storage.tables import WalletSessionRow

__all__ = ["SessionPolicy", "SessionStore", "SignedIn", "token_hash"]

_TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.idle <= self.absolute:
            raise ValueError("a session's idle timeout must be positive and at most its "
                             "absolute timeout")


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is signed in with a session, and whose vault they chose to act in (None:
    their own; not yet checked against a live relationship: `wallet.acting` does)."""

    citizen_id: str
    acting_for: str | None = None


class SessionStore:
    def __init__(self, engine: Engine, policy: SessionPolicy) -> None:
        self._engine = engine
        self.policy = policy

    def start(self, session: Session, citizen_id: str, *, now: datetime) -> str:
        """A new session for `citizen_id`, inside the caller's transaction (so a sign-up
        and its first session commit together). Returns the cookie's token."""
        token = secrets.token_urlsafe(32)
        session.add(WalletSessionRow(token_hash=token_hash(token), citizen_id=citizen_id,
                                     created_at=now, seen_at=now))
        return token

    def resolve(self, token: str | None, *, now: datetime) -> str | None:
        """The citizen signed in with `token`, or None (unknown, ended or timed out)."""
        found = self.lookup(token, now=now)
        return found.citizen_id if found is not None else None

    def lookup(self, token: str | None, *, now: datetime) -> SignedIn | None:
        """The session of `token` (None: unknown, ended or timed out)."""
        if not token or len(token) > 100:
            return None
        key = token_hash(token)
        with Session(self._engine) as session:
            row = session.get(WalletSessionRow, key)
            if row is None:
                return None
            idle, age = now - row.seen_at, now - row.created_at
            if idle >= self.policy.idle or age >= self.policy.absolute:
                session.execute(delete(WalletSessionRow)
                                .where(col(WalletSessionRow.token_hash) == key))
                session.commit()
                return None
            found = SignedIn(row.citizen_id, row.acting_for)
            if now - row.seen_at >= _TOUCH_EVERY:
                session.execute(update(WalletSessionRow)
                                .where(col(WalletSessionRow.token_hash) == key)
                                .values(seen_at=now))
                session.commit()
            return found

    def act_for(self, token: str | None, principal_id: str | None) -> None:
        """Act in `principal_id`'s vault from now on in this session (None: one's own).
        The caller has checked the relationship; every request checks it again."""
        if not token:
            return
        with self._engine.begin() as conn:
            conn.execute(update(WalletSessionRow)
                         .where(col(WalletSessionRow.token_hash) == token_hash(token))
                         .values(acting_for=principal_id))

    def end(self, token: str | None) -> None:
        if not token:
            return
        with self._engine.begin() as conn:
            conn.execute(delete(WalletSessionRow)
                         .where(col(WalletSessionRow.token_hash) == token_hash(token)))
