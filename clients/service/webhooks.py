"""Checking the vault's webhooks (Standard Webhooks signatures) before acting on them.

The vault POSTs `{"type": "grant.revoked", "timestamp": ..., "data": {...}}` with
`webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`: space-separated
`v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` (several while a secret is being
rotated). The key is the operator's `whsec_<base64>` secret. A delivery is trusted only
if one v1 signature matches the exact body bytes and the timestamp is within
`TOLERANCE` of now, which bounds how long a captured delivery can be replayed; an app
that must never act twice also remembers the `id`s it has handled.

A `record.disputed` delivery (ARCHITECTURE §8, to an issuer) comes back as a
`RecordDisputed`: the citizen says the record this service issued (its `category` and
`version`) is wrong, with a `reason` code ("not_me", "details_wrong", "out_of_date",
"other", "not_given"; treat an unknown one as "other"). It names the citizen only as
this service knows them: its pairwise `sub` and its write grant, each when it has one.

A `record.changed` delivery (ARCHITECTURE §8) comes back as a `RecordChanged`, a
`WebhookEvent` with its data typed: the grant, which of its categories and derived
answers rest on what changed, and the ledger index of the change. The service then reads
as usual, within its grant's limits.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clients.service.errors import WebhookInvalid
from clients.service.results import from_timestamp, parse_time

__all__ = ["EVENT_TYPES", "TOLERANCE", "RecordChanged", "RecordDisputed", "WebhookEvent",
           "verify_webhook"]

TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
EVENT_TYPES = frozenset({"grant.approved", "grant.denied", "grant.paused", "grant.resumed",
                         "grant.revoked", "grant.expired", "grant.exhausted",
                         "record.changed"})

# The citizen says an issued record is wrong (to its issuer; ARCHITECTURE §8).
EVENT_TYPES |= {"record.disputed"}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified delivery: its message `id` (the same on every retry), the event
    `type`, when the event happened, and its `data` (`grant_id`, `state`, ...)."""

    id: str
    type: str
    timestamp: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RecordChanged(WebhookEvent):
    """`record.changed`: a record that grant `grant_id` reads changed at ledger entry
    `ledger_index`; `categories` are the grant's categories that changed, `derived` its
    derived answers resting on them (their value may or may not have changed)."""

    grant_id: str
    categories: tuple[str, ...]
    derived: tuple[str, ...]
    ledger_index: int


def _names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WebhookInvalid(f"record.changed's {key} is not a list of names")
    return tuple(value)


def _record_changed(base: WebhookEvent) -> RecordChanged:
    data = base.data
    grant_id, index = data.get("grant_id"), data.get("ledger_index")
    if not isinstance(grant_id, str) or not grant_id:
        raise WebhookInvalid("record.changed has no grant_id")
    if type(index) is not int or index < 0:
        raise WebhookInvalid("record.changed's ledger_index is not a ledger index")
    return RecordChanged(id=base.id, type=base.type, timestamp=base.timestamp, data=data,
                         grant_id=grant_id, categories=_names(data, "categories"),
                         derived=_names(data, "derived"), ledger_index=index)


@dataclass(frozen=True, slots=True)
class RecordDisputed(WebhookEvent):
    """`record.disputed`: the citizen says version `version` of their `category`, which
    this service issued, is wrong, for `reason` (a code; see the module's docstring), at
    ledger entry `ledger_index`. `sub` (the citizen's pairwise subject for this service)
    and `grant_id` (its write grant over the category) are None when it has none. The
    issuer checks its record and, if it agrees, writes a corrected one or withdraws it."""

    category: str
    version: int
    reason: str
    sub: str | None
    grant_id: str | None
    ledger_index: int


def _text_or_none(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or (isinstance(value, str) and value):
        return value
    raise WebhookInvalid(f"record.disputed's {key} is not text")


def _record_disputed(base: WebhookEvent) -> RecordDisputed:
    data = base.data
    category, reason = data.get("category"), data.get("reason")
    version, index = data.get("version"), data.get("ledger_index")
    if not isinstance(category, str) or not category:
        raise WebhookInvalid("record.disputed has no category")
    if type(version) is not int or version < 1:
        raise WebhookInvalid("record.disputed's version is not a version number")
    if not isinstance(reason, str) or not reason:
        raise WebhookInvalid("record.disputed has no reason")
    if type(index) is not int or index < 0:
        raise WebhookInvalid("record.disputed's ledger_index is not a ledger index")
    return RecordDisputed(id=base.id, type=base.type, timestamp=base.timestamp, data=data,
                          category=category, version=version, reason=reason,
                          sub=_text_or_none(data, "sub"),
                          grant_id=_text_or_none(data, "grant_id"), ledger_index=index)


#: The events whose data the SDK types (the grant events stay plain WebhookEvents).
_TYPED: dict[str, Callable[[WebhookEvent], WebhookEvent]] = {
    "record.changed": _record_changed, "record.disputed": _record_disputed}


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
    event = _event(message_id, raw, int(stamp))
    typed = _TYPED.get(event.type)
    return typed(event) if typed is not None else event


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
