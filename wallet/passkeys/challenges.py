"""Single-use, expiring challenges for the sign-up and sign-in ceremonies.

The server keeps each challenge it issues (WebAuthn L3 §13.4.3: random, at least 16
bytes, never reused) under a random ceremony id that the wallet keeps in the browser's
server-side session. `take` hands it back once: a second take of the same id, a take
after expiry, or a take for another purpose is refused, so a response captured once
cannot be played again.

Approvals need no store: their challenge is the grant's terms hash or an action
challenge, which the vault recomputes from the database.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta
from typing import Literal, Protocol

from wallet.errors import PasskeyRejected

__all__ = [
    "CHALLENGE_SIZE",
    "CHALLENGE_TTL",
    "ChallengeStore",
    "MemoryChallengeStore",
    "Purpose",
    "new_challenge",
]

CHALLENGE_SIZE = 32
#: How long a browser has to answer a ceremony (also the timeout hint in the options).
CHALLENGE_TTL = timedelta(minutes=5)

Purpose = Literal["register", "sign_in"]


def new_challenge() -> bytes:
    return secrets.token_bytes(CHALLENGE_SIZE)


class ChallengeStore(Protocol):
    def put(self, challenge: bytes, *, purpose: Purpose, now: datetime) -> str:
        """Keep `challenge` for one ceremony; return the ceremony id to hand back."""

    def take(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> bytes:
        """The challenge of `ceremony_id`, once; `PasskeyRejected` if unknown, already
        used, issued for another purpose or expired."""


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
        self._pending: dict[str, tuple[bytes, Purpose, datetime]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, challenge: bytes, *, purpose: Purpose, now: datetime) -> str:
        if len(challenge) < 16:
            raise ValueError("a WebAuthn challenge needs at least 16 random bytes")
        ceremony_id = secrets.token_urlsafe(16)
        with self._lock:
            self._purge(now)
            while len(self._pending) >= self._max:
                del self._pending[next(iter(self._pending))]
            self._pending[ceremony_id] = (challenge, purpose, now + self._ttl)
        return ceremony_id

    def take(self, ceremony_id: str, *, purpose: Purpose, now: datetime) -> bytes:
        with self._lock:
            found = self._pending.pop(ceremony_id, None)
        if found is None or found[1] != purpose:
            raise PasskeyRejected(
                "challenge_unknown",
                "this passkey request was already used or never started here; start again")
        challenge, _, expires_at = found
        if now >= expires_at:
            raise PasskeyRejected(
                "challenge_expired", "this passkey request took too long and expired; "
                "start again")
        return challenge

    def _purge(self, now: datetime) -> None:
        # Entries expire in issue order (one TTL for all), so only the front is checked.
        while self._pending:
            oldest = next(iter(self._pending))
            if now < self._pending[oldest][2]:
                break
            del self._pending[oldest]
