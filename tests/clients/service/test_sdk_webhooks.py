"""Webhook verification (Standard Webhooks): deliveries signed by the vault's own signer
and by the standardwebhooks reference library verify; any changed byte, a foreign
secret, or a timestamp more than 5 minutes away does not; several v1 signatures (a
secret being rotated) are accepted when one matches."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from clients.service import WebhookInvalid, verify_webhook
from vault.crypto.webhook_signing import printable, signature_headers, webhook_secret

SECRET = webhook_secret(b"\x01" * 32, "svc_blue_badge")
WHSEC = printable(SECRET)
NOW = 1_800_000_000
BODY = json.dumps({"type": "grant.revoked", "timestamp": "2027-01-15T08:00:00Z",
                   "data": {"grant_id": "gr_1", "state": "revoked", "ledger_index": 9}}
                  ).encode()


def signed(body: bytes = BODY, *, secret: bytes = SECRET, at: int = NOW,
           message_id: str = "msg_1") -> dict[str, str]:
    return signature_headers(secret, message_id=message_id, timestamp=at, body=body)


def test_a_delivery_signed_by_the_vault_verifies() -> None:
    event = verify_webhook(WHSEC, signed(), BODY, now=NOW)
    assert (event.id, event.type) == ("msg_1", "grant.revoked")
    assert event.data == {"grant_id": "gr_1", "state": "revoked", "ledger_index": 9}
    assert event.timestamp.isoformat() == "2027-01-15T08:00:00+00:00"  # the event's time
    # The raw key and the secret without its prefix work too; header names in any case.
    upper = {k.title(): v for k, v in signed().items()}
    assert verify_webhook(SECRET, upper, BODY.decode(), now=NOW).id == "msg_1"
    assert verify_webhook(WHSEC.removeprefix("whsec_"), signed(), BODY, now=NOW).id == "msg_1"


def test_the_reference_library_agrees_both_ways() -> None:
    reference = Webhook(WHSEC)
    # Signed by the reference library, verified by the SDK.
    signature = reference.sign("msg_2", datetime.fromtimestamp(NOW, UTC), BODY.decode())
    headers = {"webhook-id": "msg_2", "webhook-timestamp": str(NOW),
               "webhook-signature": signature}
    assert verify_webhook(WHSEC, headers, BODY, now=NOW).id == "msg_2"
    # Signed by the vault, verified by the reference library (at the real time).
    now = int(time.time())
    vault_headers = signed(at=now)
    assert reference.verify(BODY, vault_headers)["type"] == "grant.revoked"
    assert verify_webhook(WHSEC, vault_headers, BODY).type == "grant.revoked"


def test_one_matching_signature_among_several_is_enough() -> None:
    good = signed()["webhook-signature"]
    old = signed(secret=b"\x02" * 32)["webhook-signature"]
    headers = {**signed(), "webhook-signature": f"v1a,Zm9v {old} v1,!!notbase64 {good}"}
    assert verify_webhook(WHSEC, headers, BODY, now=NOW).id == "msg_1"
    headers["webhook-signature"] = f"{old} v2,{good.split(',')[1]}"  # right MAC, wrong scheme
    with pytest.raises(WebhookInvalid, match="signature"):
        verify_webhook(WHSEC, headers, BODY, now=NOW)


def test_a_signature_spelt_another_way_is_refused() -> None:
    # 32 bytes of MAC leave 2 unused bits in the last base64 character: setting one
    # decodes to the same MAC, but it is not the signature that was sent.
    good = signed()["webhook-signature"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = good[-2]
    twin = good[:-2] + alphabet[alphabet.index(last) ^ 1] + "="
    assert base64.b64decode(twin.split(",")[1]) == base64.b64decode(good.split(",")[1])
    with pytest.raises(WebhookInvalid):
        verify_webhook(WHSEC, {**signed(), "webhook-signature": twin}, BODY, now=NOW)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_timestamps_more_than_5_minutes_away_are_refused(skew: int) -> None:
    with pytest.raises(WebhookInvalid, match="5 minutes"):
        verify_webhook(WHSEC, signed(at=NOW), BODY, now=NOW + skew)
    assert verify_webhook(WHSEC, signed(at=NOW), BODY, now=NOW + (300 if skew > 0 else -300))


@pytest.mark.parametrize("change", [
    {"webhook-timestamp": "17e8"}, {"webhook-timestamp": "-1"}, {"webhook-timestamp": ""},
    {"webhook-signature": ""}])
def test_malformed_headers_are_refused(change: dict[str, str]) -> None:
    with pytest.raises(WebhookInvalid):
        verify_webhook(WHSEC, {**signed(), **change}, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = {k: v for k, v in signed().items() if k != missing}
    with pytest.raises(WebhookInvalid, match=missing):
        verify_webhook(WHSEC, headers, BODY, now=NOW)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"data": {}}',
                                  b'{"type": "grant.paused", "data": []}',
                                  b'{"type": "grant.paused", "timestamp": "soon"}'])
def test_a_signed_body_that_is_not_an_event_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookInvalid):
        verify_webhook(WHSEC, signed(body), body, now=NOW)


def test_a_bad_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError):
        verify_webhook("whsec_not base64!", signed(), BODY, now=NOW)


# -- properties ----------------------------------------------------------------------------

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=30)
bodies = st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=20),
                         max_size=5).map(
    lambda d: json.dumps({"type": "grant.paused", "data": d}).encode())


@settings(max_examples=80, deadline=None)
@given(secret=st.binary(min_size=16, max_size=64), message_id=ids, body=bodies,
       at=st.integers(min_value=1_000_000_000, max_value=4_000_000_000),
       skew=st.integers(min_value=-300, max_value=300))
def test_every_signed_delivery_verifies(secret: bytes, message_id: str, body: bytes,
                                        at: int, skew: int) -> None:
    headers = signed(body, secret=secret, at=at, message_id=message_id)
    whsec = "whsec_" + base64.b64encode(secret).decode()
    event = verify_webhook(whsec, headers, body, now=at + skew)
    assert event.id == message_id and event.data == json.loads(body)["data"]


def flip(text: bytes, index: int, bit: int) -> bytes:
    data = bytearray(text)
    data[index % len(data)] ^= 1 << bit
    return bytes(data)


@settings(max_examples=120, deadline=None)
@given(body=bodies, where=st.sampled_from(["body", "id", "timestamp", "signature", "secret"]),
       index=st.integers(min_value=0, max_value=10_000), bit=st.integers(0, 7))
def test_any_changed_byte_fails(body: bytes, where: str, index: int, bit: int) -> None:
    headers = signed(body)
    secret = SECRET
    if where == "body":
        body = flip(body, index, bit)
    elif where == "secret":
        secret = flip(SECRET, index, bit)
    else:
        name = {"id": "webhook-id", "timestamp": "webhook-timestamp",
                "signature": "webhook-signature"}[where]
        value = headers[name].encode()
        start = 3 if where == "signature" else 0  # past "v1,": a changed scheme is not ours
        position = start + index % (len(value) - start)
        changed = flip(value, position, bit)
        headers = {**headers, name: changed.decode("latin-1")}
    with pytest.raises(WebhookInvalid):
        verify_webhook(secret, headers, body, now=NOW)
