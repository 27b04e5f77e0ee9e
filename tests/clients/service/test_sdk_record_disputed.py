"""`verify_webhook` types a `record.disputed` delivery (ARCHITECTURE §8) as
RecordDisputed, for the issuer to act on, and refuses one whose data is not what the
vault sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clients.service import RecordDisputed, WebhookEvent, WebhookInvalid, verify_webhook
from vault.crypto.webhook_signing import printable, signature_headers, webhook_secret

SECRET = webhook_secret(b"\x01" * 32, "svc_agency")
NOW = 1_800_000_000
DATA = {"category": "benefits.attendance_allowance", "version": 3, "reason": "not_me",
        "sub": "ps_abc", "grant_id": "gr_1", "ledger_index": 42}


def deliver(data: Any) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"type": "record.disputed", "timestamp": "2027-01-15T08:00:00.000Z",
                       "data": data}).encode()
    return signature_headers(SECRET, message_id="msg_9", timestamp=NOW, body=body), body


def test_record_disputed_is_typed() -> None:
    event = verify_webhook(printable(SECRET), *deliver(DATA), now=NOW)
    assert isinstance(event, RecordDisputed) and isinstance(event, WebhookEvent)
    assert (event.id, event.type, event.category, event.version, event.reason, event.sub,
            event.grant_id, event.ledger_index) == (
        "msg_9", "record.disputed", "benefits.attendance_allowance", 3, "not_me", "ps_abc",
        "gr_1", 42)
    assert event.data == DATA
    # A citizen the issuer was never told of, under no write grant: no sub, no grant.
    bare = {k: v for k, v in DATA.items() if k not in ("sub", "grant_id")}
    event = verify_webhook(SECRET, *deliver(bare), now=NOW)
    assert isinstance(event, RecordDisputed) and (event.sub, event.grant_id) == (None, None)


@pytest.mark.parametrize("change", [
    {"category": None}, {"category": ""}, {"version": 0}, {"version": "3"},
    {"version": True}, {"reason": ""}, {"reason": 1}, {"ledger_index": -1},
    {"ledger_index": 4.0}, {"sub": ""}, {"sub": 5}, {"grant_id": ["gr_1"]},
])
def test_data_not_as_the_vault_sends_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(WebhookInvalid, match=r"record\.disputed"):
        verify_webhook(SECRET, *deliver({**DATA, **change}), now=NOW)
