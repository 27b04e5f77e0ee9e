"""Server-side state, kept in memory: one visit per browser, and the webhook log.

The browser holds only a random visit id (an HttpOnly, SameSite=Lax cookie: Lax so it
comes back with the vault's top-level redirect to /callback). The pending
authorization (its PKCE verifier and state), the grant and its tokens stay here.
A real service would keep these in its own database; this is a demo that forgets
everything when it stops.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from clients.examples.bluebadge.application import Application, Prefill
from clients.service import Grant, WebhookEvent

__all__ = ["EventLog", "ReceivedEvent", "Visit", "Visits"]


@dataclass
class Visit:
    """One browser's application in progress."""

    id: str
    touched: float
    #: `PendingAuthorization.to_json()` while the citizen is at the vault.
    pending: dict[str, Any] | None = None
    #: The pending authorization was started for another device (the QR code).
    on_phone: bool = False
    grant: Grant | None = None
    form: Prefill = field(default_factory=Prefill)
    submitted: Application | None = None


class Visits:
    """Visits by id, dropped after `idle` seconds unused, at most `limit` of them.

    Used from one event loop only (every route is async), so it needs no lock.
    """

    def __init__(self, *, idle: float = 3600.0, limit: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._visits: OrderedDict[str, Visit] = OrderedDict()
        self._by_state: dict[str, str] = {}
        self._idle, self._limit, self._clock = idle, limit, clock

    def _expire(self) -> None:
        cutoff = self._clock() - self._idle
        while self._visits:
            oldest = next(iter(self._visits.values()))
            if oldest.touched >= cutoff and len(self._visits) <= self._limit:
                break
            self._forget(oldest.id)

    def _forget(self, visit_id: str) -> None:
        visit = self._visits.pop(visit_id, None)
        if visit is not None and visit.pending is not None:
            self._by_state.pop(visit.pending.get("state", ""), None)

    def get(self, visit_id: str | None) -> Visit | None:
        self._expire()
        visit = self._visits.get(visit_id) if visit_id else None
        if visit is not None:
            visit.touched = self._clock()
            self._visits.move_to_end(visit.id)
        return visit

    def new(self) -> Visit:
        visit = Visit(secrets.token_urlsafe(32), self._clock())
        self._visits[visit.id] = visit
        self._expire()
        return visit

    def start(self, visit: Visit, pending: dict[str, Any], *, on_phone: bool) -> None:
        """Remember a new pending authorization (replacing any earlier one)."""
        self.finish(visit)
        visit.pending, visit.on_phone = pending, on_phone
        if on_phone:
            self._by_state[str(pending["state"])] = visit.id

    def finish(self, visit: Visit) -> dict[str, Any] | None:
        """Take the visit's pending authorization: each is answered at most once."""
        pending, visit.pending = visit.pending, None
        if pending is not None:
            self._by_state.pop(str(pending.get("state", "")), None)
        return pending

    def started_on_another_device(self, state: str) -> Visit | None:
        """The visit whose QR code carried `state`, if one is waiting for it."""
        visit_id = self._by_state.get(state)
        return self.get(visit_id)


@dataclass(frozen=True)
class ReceivedEvent:
    received_at: datetime
    event: WebhookEvent


class EventLog:
    """The latest verified webhook events, newest first; each message id kept once
    (Standard Webhooks deliveries may repeat)."""

    def __init__(self, *, limit: int = 200) -> None:
        self._events: deque[ReceivedEvent] = deque(maxlen=limit)
        self._ids: deque[str] = deque(maxlen=limit)

    def record(self, event: WebhookEvent, *, now: datetime) -> bool:
        """Keep `event`; False if it was delivered before."""
        if event.id in self._ids:
            return False
        self._ids.append(event.id)
        self._events.appendleft(ReceivedEvent(now, event))
        return True

    def __iter__(self) -> Iterator[ReceivedEvent]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)
