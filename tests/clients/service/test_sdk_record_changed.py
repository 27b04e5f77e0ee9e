"""`verify_webhook` types a `record.changed` delivery (ARCHITECTURE §8) as RecordChanged,
refuses one whose data is not what the vault sends, and leaves the grant events as they
were."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clients.service import RecordChanged, WebhookEvent, WebhookInvalid, verify_webhook
from vault.crypto.webhook_signing import printable, signature_headers, webhook_secret

SECRET = webhook_secret(b"\x01" * 32, "svc_council_tax")
NOW = 1_800_000_000
DATA = {"grant_id": "gr_1", "categories": ["benefits.attendance_allowance"],
        "derived": ["receives:attendance_allowance"], "ledger_index": 42}


def deliver(data: Any, event: str = "record.changed") -> tuple[dict[str, str], bytes]:
    body = json.dumps({"type": event, "timestamp": "2027-01-15T08:00:00.000Z",
                       "data": data}).encode()
    return signature_headers(SECRET, message_id="msg_7", timestamp=NOW, body=body), body


def test_record_changed_is_typed() -> None:
    event = verify_webhook(printable(SECRET), *deliver(DATA), now=NOW)
    assert isinstance(event, RecordChanged) and isinstance(event, WebhookEvent)
    assert (event.id, event.type, event.grant_id, event.ledger_index) == \
        ("msg_7", "record.changed", "gr_1", 42)
    assert event.categories == ("benefits.attendance_allowance",)
    assert event.derived == ("receives:attendance_allowance",)
    assert event.timestamp.isoformat() == "2027-01-15T08:00:00+00:00"
    assert event.data == DATA  # the raw data is still there
    # `derived` may be left out (nothing derived rests on the change).
    bare = verify_webhook(SECRET, *deliver({**DATA, "derived": []}), now=NOW)
    assert isinstance(bare, RecordChanged) and bare.derived == ()
    without = {k: v for k, v in DATA.items() if k != "derived"}
    assert verify_webhook(SECRET, *deliver(without), now=NOW).derived == ()  # type: ignore[attr-defined]


def test_grant_events_stay_plain() -> None:
    event = verify_webhook(SECRET, *deliver({"grant_id": "gr_1", "state": "revoked",
                                             "ledger_index": 9}, "grant.revoked"), now=NOW)
    assert type(event) is WebhookEvent and event.data["state"] == "revoked"


@pytest.mark.parametrize("change", [
    {"grant_id": None}, {"grant_id": ""}, {"grant_id": 7}, {"ledger_index": "42"},
    {"ledger_index": -1}, {"ledger_index": True}, {"ledger_index": 4.2},
    {"ledger_index": None}, {"categories": "benefits.attendance_allowance"},
    {"categories": [1]}, {"derived": {"a": 1}}, {"categories": None}])
def test_record_changed_with_wrong_data_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(WebhookInvalid, match=r"record\.changed"):
        verify_webhook(SECRET, *deliver({**DATA, **change}), now=NOW)


@pytest.mark.parametrize("key", ["grant_id", "ledger_index"])
def test_record_changed_without_its_grant_or_index_is_refused(key: str) -> None:
    with pytest.raises(WebhookInvalid, match=r"record\.changed"):
        verify_webhook(SECRET, *deliver({k: v for k, v in DATA.items() if k != key}),
                       now=NOW)
