"""Checking the vault's webhooks (Standard Webhooks signatures) before acting on them.

The vault POSTs `{"type": "grant.revoked", "timestamp": ..., "data": {...}}` with
`webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`: space-separated
`v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` (several while a secret is being
rotated). The key is the operator's `whsec_<base64>` secret. A delivery is trusted only
if one v1 signature matches the exact body bytes and the timestamp is within
`TOLERANCE` of now, which bounds how long a captured delivery can be replayed; an app
that must never act twice also remembers the `id`s it has handled.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clients.service.errors import WebhookInvalid
from clients.service.results import from_timestamp, parse_time

__all__ = ["EVENT_TYPES", "TOLERANCE", "WebhookEvent", "verify_webhook"]

TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
EVENT_TYPES = frozenset({"grant.approved", "grant.denied", "grant.paused", "grant.resumed",
                         "grant.revoked", "grant.expired", "grant.exhausted"})


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified delivery: its message `id` (the same on every retry), the event
    `type`, when the event happened, and its `data` (`grant_id`, `state`, ...)."""

    id: str
    type: str
    timestamp: datetime
    data: Mapping[str, Any]


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret is 'whsec_' followed by base64") from None


def _header(headers: Mapping[str, str], name: str) -> str:
    # HTTP header names are case-insensitive; a plain dict may carry any spelling.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookInvalid(f"the delivery has no {name} header")


def _signatures(header: str) -> list[bytes]:
    found = []
    for item in header.split():
        version, _, value = item.partition(",")
        if version != "v1":  # other schemes (v1a: asymmetric) are not ours
            continue
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if base64.b64encode(raw).decode("ascii") == value:  # one spelling per MAC
            found.append(raw)
    return found


def verify_webhook(secret: str | bytes, headers: Mapping[str, str], body: bytes | str, *,
                   now: datetime | float | None = None) -> WebhookEvent:
    """The event of a delivery whose signature and timestamp check out; WebhookInvalid
    (one opaque kind of refusal, with a reason in its message) otherwise.

    `secret` is the `whsec_...` text (or the raw key bytes); `headers` the request's
    headers (any mapping; names in any case); `body` the raw request body, exactly as
    received (parse it only after this returns). `now` is for tests.
    """
    key = _key(secret)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    message_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise WebhookInvalid("webhook-timestamp is not unix seconds")
    current = (time.time() if now is None
               else now.timestamp() if isinstance(now, datetime) else float(now))
    if abs(current - int(stamp)) > TOLERANCE.total_seconds():
        raise WebhookInvalid("webhook-timestamp is more than 5 minutes from now")
    signed = f"{message_id}.{stamp}.".encode() + raw
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    # Every candidate is compared, in constant time each, whatever matched before.
    matches = [hmac.compare_digest(expected, given)
               for given in _signatures(_header(headers, "webhook-signature"))]
    if not any(matches):
        raise WebhookInvalid("no webhook-signature matches the body")
    return _event(message_id, raw, int(stamp))


def _event(message_id: str, raw: bytes, stamp: int) -> WebhookEvent:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise WebhookInvalid("the body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise WebhookInvalid("the body is not an event object with a type")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise WebhookInvalid("the event's data is not an object")
    try:
        when = (parse_time(doc["timestamp"], "timestamp") if "timestamp" in doc
                else from_timestamp(stamp))
    except ValueError as exc:
        raise WebhookInvalid(f"the event's {exc}") from None
    return WebhookEvent(id=message_id, type=doc["type"], timestamp=when, data=data)
