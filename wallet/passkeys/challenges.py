"""Single-use, expiring challenges for the sign-up and sign-in ceremonies.

The server keeps each challenge it issues (WebAuthn L3 §13.4.3: random, at least 16
bytes, never reused) under a random ceremony id that the wallet keeps in the browser's
server-side session. `take` hands it back once: a second take of the same id, a take
after expiry, or a take for another purpose is refused, so a response captured once
cannot be played again.

Approvals need no store: their challenge is the grant's terms hash or an action
challenge, which the vault recomputes from the database.

`SqlChallengeStore` keeps them in the database, so any worker can finish a ceremony
another one started; `MemoryChallengeStore` is for one process (tests, tools).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import col

from vault.storage.tables import CeremonyRow
from wallet.errors import PasskeyRejected

__all__ = [
    "CHALLENGE_SIZE",
    "CHALLENGE_TTL",
    "Ceremony",
    "ChallengeStore",
    "MemoryChallengeStore",
    "Purpose",
    "SqlChallengeStore",
    "new_challenge",
]

CHALLENGE_SIZE = 32
#: How long a browser has to answer a ceremony (also the timeout hint in the options).
CHALLENGE_TTL = timedelta(minutes=5)

#: sign_up: a new citizen's first passkey; register: another passkey for a citizen;
#: sign_in: who is this; confirm: a signed-in citizen confirms deleting their account;
#: remove_passkey: ... removing a passkey (its own purpose, so neither answer can
#: stand in for the other); handover: a child's first passkey for the vault a parent
#: made them; counter: who is the citizen at a helper's counter (a discoverable assertion).
Purpose = Literal["sign_up", "register", "sign_in", "confirm", "remove_passkey", "handover",
                  "counter"]


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_SIZE)


@dataclass(frozen=True, slots=True)
class Ceremony:
    challenge: bytes
    #: The citizen the ceremony is for (chosen by the server), if any.
    citizen_id: str | None


def _unknown() -> PasskeyRejected:
    return PasskeyRejected(
        "challenge_unknown",
        "this passkey request was already used or never started here; start again")


def _expired() -> PasskeyRejected:
    return PasskeyRejected(
        "challenge_expired", "this passkey request took too long and expired; start again")


def _check_challenge(challenge: bytes) -> None:
    if len(challenge) < 16:
        raise ValueError("a WebAuthn challenge needs at least 16 random bytes")


class ChallengeStore(Protocol):
    def put(self, challenge: bytes, *, purpose: Purpose, now: datetime,
            citizen_id: str | None = None) -> str:
        """Keep `challenge` for one ceremony; return the ceremony id to hand back."""

    def claim(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> Ceremony:
        """The ceremony `ceremony_id`, once; `PasskeyRejected` if unknown, already
        used, issued for another purpose or expired."""

    def take(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> bytes:
        """`claim(...).challenge`."""


class MemoryChallengeStore:
    """A `ChallengeStore` in this process's memory (one worker; lost on restart).

    Bounded: expired entries go on every `put`, and past `max_pending` the oldest go.
    Several workers need a shared store (a database table); this one is for one process.
    """

    def __init__(self, *, ttl: timedelta = CHALLENGE_TTL, max_pending: int = 100_000) -> None:
        if ttl <= timedelta(0) or max_pending < 1:
            raise ValueError("ttl must be positive and max_pending at least 1")
        self._ttl = ttl
        self._max = max_pending
        self._lock = threading.Lock()
        # Insertion order is issue order, so the oldest entries come first.
        self._pending: dict[str, tuple[Ceremony, Purpose, datetime]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, challenge: bytes, *, purpose: Purpose, now: datetime,
            citizen_id: str | None = None) -> str:
        _check_challenge(challenge)
        ceremony_id = secrets.token_urlsafe(16)
        with self._lock:
            self._purge(now)
            while len(self._pending) >= self._max:
                del self._pending[next(iter(self._pending))]
            self._pending[ceremony_id] = (Ceremony(challenge, citizen_id), purpose,
                                          now + self._ttl)
        return ceremony_id

    def claim(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> Ceremony:
        with self._lock:
            found = self._pending.pop(ceremony_id, None)
        if found is None or found[1] != purpose:
            raise _unknown()
        ceremony, _, expires_at = found
        if now >= expires_at:
            raise _expired()
        return ceremony

    def take(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> bytes:
        return self.claim(ceremony_id, purpose=purpose, now=now).challenge

    def _purge(self, now: datetime) -> None:
        # Entries expire in issue order (one TTL for all), so only the front is checked.
        while self._pending:
            oldest = next(iter(self._pending))
            if now < self._pending[oldest][2]:
                break
            del self._pending[oldest]


class SqlChallengeStore:
    """A `ChallengeStore` in the vault's database, shared by every worker.

    `claim` deletes the row and reads it back in one statement (DELETE ... RETURNING),
    so of two workers answering the same ceremony at once, exactly one gets it.
    """

    def __init__(self, engine: Engine, *, ttl: timedelta = CHALLENGE_TTL) -> None:
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self._engine = engine
        self._ttl = ttl

    def put(self, challenge: bytes, *, purpose: Purpose, now: datetime,
            citizen_id: str | None = None) -> str:
        _check_challenge(challenge)
        ceremony_id = secrets.token_urlsafe(16)
        table = CeremonyRow.__table__  # type: ignore[attr-defined]
        with self._engine.begin() as conn:
            conn.execute(delete(CeremonyRow).where(col(CeremonyRow.expires_at) <= now))
            conn.execute(table.insert().values(
                id=ceremony_id, challenge=challenge, purpose=purpose, citizen_id=citizen_id,
                expires_at=now + self._ttl))
        return ceremony_id

    def claim(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> Ceremony:
        if not isinstance(ceremony_id, str) or not 0 < len(ceremony_id) <= 40:
            raise _unknown()
        with self._engine.begin() as conn:
            row = conn.execute(
                delete(CeremonyRow).where(col(CeremonyRow.id) == ceremony_id)
                .returning(col(CeremonyRow.challenge), col(CeremonyRow.purpose),
                           col(CeremonyRow.citizen_id), col(CeremonyRow.expires_at))
            ).first()
        if row is None or row.purpose != purpose:
            raise _unknown()
        if now >= row.expires_at:
            raise _expired()
        return Ceremony(bytes(row.challenge), row.citizen_id)

    def take(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> bytes:
        return self.claim(ceremony_id, purpose=purpose, now=now).challenge
