"""Webhooks: a service learns at once when one of its grants changes.

A transactional outbox: the message is written in the same transaction as the grant's
transition (so it exists exactly when the change does, and never for a change that
rolled back), then a dispatcher delivers it with Standard Webhooks signatures,
retrying with growing delays; every attempt is kept in a delivery log per service.

Several workers may run dispatchers: a message is claimed (its next attempt moved a
lease ahead, under a row lock on PostgreSQL, the write lock on SQLite) before it is
sent, so two workers do not send it at the same moment. Delivery is at least once:
services deduplicate by `webhook-id`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from ledger.entry import format_time
from vault.crypto.webhook_signing import signature_headers, webhook_secret
from vault.services.background import Periodic
from vault.services.context import VaultContext, Work, new_id, reading, unit_of_work
from vault.storage.tables import ServiceRow, WebhookDeliveryRow, WebhookMessageRow

__all__ = [
    "BACKOFF",
    "EVENTS",
    "QUEUE",
    "Attempt",
    "WebhookDispatcher",
    "deliver_due",
    "delivery_log",
    "enqueue",
]

log = logging.getLogger(__name__)

#: The webhook event types a service hears about: its grants' changes of state (named
#: as their ledger entries), `record.changed` (a record its grant reads changed) and the
#: events added below, one a line.
EVENTS = frozenset({"grant.approved", "grant.denied", "grant.paused", "grant.resumed",
                    "grant.revoked", "grant.expired", "grant.exhausted",
                    "record.changed"})
EVENTS |= {"record.disputed"}  # the citizen says an issued record is wrong (to its issuer)
#: What a transaction that calls `enqueue` has queued (`Work.queued`).
QUEUE = "webhooks"
#: Delay before each retry; after the last, the message is given up (and logged).
BACKOFF = (timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2),
           timedelta(minutes=10), timedelta(hours=1), timedelta(hours=3),
           timedelta(hours=6), timedelta(hours=12))
#: How long a claimed message is left alone by other dispatchers.
LEASE = timedelta(seconds=60)
_TIMEOUT = httpx.Timeout(5.0)
_ERROR_CHARS = 300


def enqueue(work: Work, *, service_id: str, event: str, data: dict[str, Any]) -> str | None:
    """Queue `event` for the service in the caller's transaction; None if the service
    has no webhook URL (or the event is not one services hear about)."""
    if event not in EVENTS:
        return None
    service = work.session.get(ServiceRow, service_id)
    if service is None or not service.webhook_url:
        return None
    message_id = new_id("msg")
    body = orjson.dumps({"type": event, "timestamp": format_time(work.now), "data": data})
    work.session.add(WebhookMessageRow(
        id=message_id, service_id=service_id, event=event, body=body.decode("utf-8"),
        created_at=work.now, attempts=0, next_attempt_at=work.now))
    work.queued.add(QUEUE)
    return message_id


@dataclass(frozen=True, slots=True)
class Attempt:
    message_id: str
    service_id: str
    attempt: int
    status: int | None
    error: str | None
    delivered: bool


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    service_id: str
    url: str
    body: bytes
    attempts: int


_ANY_DUE = (select(WebhookMessageRow.id)
            .where(col(WebhookMessageRow.delivered_at).is_(None),
                   col(WebhookMessageRow.failed_at).is_(None),
                   col(WebhookMessageRow.next_attempt_at) <= bindparam("now")).limit(1))


def _nothing() -> None:
    pass


def _claim(ctx: VaultContext, now: datetime, limit: int) -> list[_Claimed]:
    # Look first without the write lock: nearly every nudge finds nothing due.
    with reading(ctx) as session:
        if session.connection().execute(_ANY_DUE, {"now": now}).first() is None:
            return []
    with unit_of_work(ctx) as work:
        rows = work.session.execute(
            select(WebhookMessageRow, col(ServiceRow.webhook_url))
            .join(ServiceRow, col(ServiceRow.id) == col(WebhookMessageRow.service_id))
            .where(col(WebhookMessageRow.delivered_at).is_(None),
                   col(WebhookMessageRow.failed_at).is_(None),
                   col(WebhookMessageRow.next_attempt_at) <= now)
            .order_by(col(WebhookMessageRow.next_attempt_at)).limit(limit)
            .with_for_update(of=WebhookMessageRow, skip_locked=True)).all()
        claimed = []
        for msg, url in rows:
            msg.next_attempt_at = now + LEASE
            work.session.add(msg)
            if url:
                claimed.append(_Claimed(msg.id, msg.service_id, url, msg.body.encode(),
                                        msg.attempts))
        return claimed


def _send(client: httpx.Client, app_secret: bytes, msg: _Claimed, now: datetime
          ) -> tuple[int | None, str | None]:
    headers = signature_headers(webhook_secret(app_secret, msg.service_id),
                                message_id=msg.id, timestamp=int(now.timestamp()),
                                body=msg.body)
    try:
        response = client.post(msg.url, content=msg.body, headers=headers,
                               timeout=_TIMEOUT, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


def _record(ctx: VaultContext, msg: _Claimed, status: int | None, error: str | None,
            now: datetime, took: float) -> Attempt:
    attempt = msg.attempts + 1
    delivered = error is None
    with unit_of_work(ctx) as work:
        row = work.session.get(WebhookMessageRow, msg.id)
        if row is not None:
            row.attempts = attempt
            row.last_status = status
            row.last_error = error
            if delivered:
                row.delivered_at = now
            elif attempt > len(BACKOFF) or status == 410:  # 410 Gone: they want no more
                row.failed_at = now
            else:
                row.next_attempt_at = now + BACKOFF[attempt - 1]
            work.session.add(row)
            work.session.add(WebhookDeliveryRow(
                message_id=msg.id, service_id=msg.service_id, attempt=attempt, at=now,
                status=status, error=error, ms=int(took * 1000)))
    return Attempt(msg.id, msg.service_id, attempt, status, error, delivered)


def deliver_due(ctx: VaultContext, *, app_secret: bytes, client: httpx.Client,
                limit: int = 20) -> list[Attempt]:
    """Send every message whose time has come (up to `limit`); one attempt each."""
    now = ctx.clock()
    attempts = []
    for msg in _claim(ctx, now, limit):
        t0 = time.perf_counter()
        status, error = _send(client, app_secret, msg, now)
        attempts.append(_record(ctx, msg, status, error, now, time.perf_counter() - t0))
        if error is not None:
            log.warning("webhook not delivered", extra={
                "message_id": msg.id, "service_id": msg.service_id, "error": error})
    return attempts


def delivery_log(session: Session, service_id: str, *, limit: int = 50
                 ) -> list[WebhookDeliveryRow]:
    """A service's latest delivery attempts, newest first."""
    return list(session.exec(
        select(WebhookDeliveryRow).where(col(WebhookDeliveryRow.service_id) == service_id)
        .order_by(col(WebhookDeliveryRow.id).desc()).limit(limit)).all())


class WebhookDispatcher(Periodic):
    """A daemon thread delivering due messages every `interval` seconds, and at once
    when nudged (after a commit that queued one)."""

    def __init__(self, ctx: VaultContext, *, app_secret: bytes, interval: float = 1.0,
                 client_factory: Callable[[], httpx.Client] = httpx.Client) -> None:
        super().__init__(self._deliver_all, name="webhooks", interval=interval)
        # Its own commits queue nothing: they must not nudge anyone (least of all itself).
        self._ctx = dataclasses.replace(ctx, after_commit=_nothing,
                                        after_queue=lambda queued: None)
        self._secret = app_secret
        self._client_factory = client_factory
        self._client: httpx.Client | None = None

    def start(self) -> None:
        self._client = self._client_factory()
        super().start()

    def stop(self, timeout: float = 10) -> None:
        super().stop(timeout)
        if self._client is not None:
            self._client.close()

    def _deliver_all(self) -> None:
        assert self._client is not None  # set by start()
        while deliver_due(self._ctx, app_secret=self._secret, client=self._client):
            pass
