"""Webhooks: queued with the change they report, signed per Standard Webhooks, retried."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import Session, col, select
from standardwebhooks import Webhook, WebhookVerificationError
from support.vaultworld import JWK, Clock, World, add_passkey, ask

from vault.crypto.webhook_signing import printable, signature_headers, webhook_secret
from vault.domain.errors import IllegalTransition
from vault.services import citizens, grants, records, registry
from vault.services.context import VaultContext
from vault.services.webhooks import (
    BACKOFF,
    WebhookDispatcher,
    deliver_due,
    delivery_log,
)
from vault.storage.tables import WebhookDeliveryRow, WebhookMessageRow

APP_SECRET = b"s" * 32
HOOK = "https://badges.example.gov/hooks"


def _world(ctx: VaultContext, webhook_url: str | None = HOOK) -> World:
    service_id = registry.register_service(ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["address.home"],
        derived=["age_over_65"], jwk=JWK, redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy", webhook_url=webhook_url))
    c = citizens.enrol_citizen(ctx)
    records.write_record(ctx, c.id, "address.home", {
        "lines": ["1 High Street"], "town": "Leeds", "postcode": "LS1 1AA",
        "local_authority": "Leeds"})
    return World(service_id, c.id, c.subject)


def _messages(ctx: VaultContext) -> list[WebhookMessageRow]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(WebhookMessageRow)
                            .order_by(col(WebhookMessageRow.created_at))).all())


def _approved(ctx: VaultContext, w: World) -> grants.GrantView:
    device = add_passkey(ctx, w.citizen_id)
    g = ask(ctx, w)
    return grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                                proof=device.proof(challenge=g.terms_hash))


def test_signature_verifies_with_the_reference_library() -> None:
    secret = webhook_secret(APP_SECRET, "svc_1")
    body = b'{"type":"grant.revoked","timestamp":"2026-11-22T09:00:00.000Z","data":{}}'
    headers = signature_headers(secret, message_id="msg_1", timestamp=int(time.time()),
                                body=body)
    hook = Webhook(printable(secret))
    assert hook.verify(body, headers)["type"] == "grant.revoked"
    with pytest.raises(WebhookVerificationError):
        hook.verify(body.replace(b"revoked", b"approved"), headers)
    with pytest.raises(WebhookVerificationError):  # another service's secret
        Webhook(printable(webhook_secret(APP_SECRET, "svc_2"))).verify(body, headers)


def test_transitions_queue_messages_in_their_transaction(ctx: VaultContext) -> None:
    w = _world(ctx)
    g = _approved(ctx, w)
    msgs = _messages(ctx)
    assert [m.event for m in msgs] == ["grant.approved"]  # not the request itself
    body = json.loads(msgs[0].body)
    assert body["type"] == "grant.approved"
    assert body["data"] == {"grant_id": g.id, "state": "approved",
                            "ledger_index": body["data"]["ledger_index"]}
    # A refused transition rolls back, and its message with it.
    with pytest.raises(IllegalTransition):
        grants.deny_grant(ctx, g.id, citizen_id=w.citizen_id)
    assert len(_messages(ctx)) == 1


def test_no_webhook_url_no_message(ctx: VaultContext) -> None:
    w = _world(ctx, webhook_url=None)
    _approved(ctx, w)
    assert _messages(ctx) == []


def test_erasure_tells_the_service(ctx: VaultContext) -> None:
    w = _world(ctx)
    g = _approved(ctx, w)
    citizens.erase_citizen(ctx, w.citizen_id)
    last = json.loads(_messages(ctx)[-1].body)
    assert last["type"] == "grant.revoked"
    assert last["data"]["grant_id"] == g.id and last["data"]["reason"] == "citizen_erased"


def _recorder(statuses: list[int]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[min(len(seen), len(statuses)) - 1])

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def test_delivery_is_signed_and_logged(ctx: VaultContext, clock: Clock) -> None:
    clock.now = datetime.now(UTC)  # the reference verifier checks against the real time
    w = _world(ctx)
    _approved(ctx, w)
    client, seen = _recorder([204])
    attempts = deliver_due(ctx, app_secret=APP_SECRET, client=client)
    assert [a.delivered for a in attempts] == [True]
    (request,) = seen
    assert str(request.url) == HOOK
    secret = printable(webhook_secret(APP_SECRET, w.service_id))
    assert Webhook(secret).verify(request.content, dict(request.headers))["type"] == \
        "grant.approved"
    assert deliver_due(ctx, app_secret=APP_SECRET, client=client) == []  # sent once
    with Session(ctx.engine) as s:
        (log,) = delivery_log(s, w.service_id)
        assert (log.attempt, log.status, log.error) == (1, 204, None)


def test_failures_retry_with_backoff_then_give_up(ctx: VaultContext, clock: Clock) -> None:
    w = _world(ctx)
    _approved(ctx, w)
    client, seen = _recorder([500])
    for attempt, delay in enumerate(BACKOFF, start=1):
        (a,) = deliver_due(ctx, app_secret=APP_SECRET, client=client)
        assert (a.attempt, a.delivered, a.status) == (attempt, False, 500)
        clock.advance(seconds=delay.total_seconds() - 1)
        assert deliver_due(ctx, app_secret=APP_SECRET, client=client) == []  # not yet
        clock.advance(seconds=1)
    (last,) = deliver_due(ctx, app_secret=APP_SECRET, client=client)
    assert last.attempt == len(BACKOFF) + 1
    clock.advance(days=2)
    assert deliver_due(ctx, app_secret=APP_SECRET, client=client) == []
    (msg,) = _messages(ctx)
    assert msg.failed_at is not None and msg.delivered_at is None
    assert len(seen) == len(BACKOFF) + 1
    # The same message id on every retry: services deduplicate by it.
    assert {r.headers["webhook-id"] for r in seen} == {msg.id}


def test_gone_stops_at_once_and_errors_are_logged(ctx: VaultContext, clock: Clock) -> None:
    w = _world(ctx)
    _approved(ctx, w)
    client, _ = _recorder([410])
    (a,) = deliver_due(ctx, app_secret=APP_SECRET, client=client)
    assert not a.delivered
    clock.advance(days=1)
    assert deliver_due(ctx, app_secret=APP_SECRET, client=client) == []

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    g2 = ask(ctx, w)
    grants.deny_grant(ctx, g2.id, citizen_id=w.citizen_id)
    broken = httpx.Client(transport=httpx.MockTransport(refuse))
    (b,) = deliver_due(ctx, app_secret=APP_SECRET, client=broken)
    assert b.status is None and b.error is not None and "ConnectError" in b.error
    with Session(ctx.engine) as s:
        assert s.exec(select(WebhookDeliveryRow)).all()[-1].error == b.error


def test_a_claimed_message_is_not_sent_twice(ctx: VaultContext) -> None:
    """While one dispatcher sends, another finds nothing due (the lease)."""
    w = _world(ctx)
    _approved(ctx, w)
    inside = threading.Event()
    release = threading.Event()
    sent: list[str] = []

    def slow(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["webhook-id"])
        inside.set()
        release.wait(5)
        return httpx.Response(200)

    first = threading.Thread(target=deliver_due, kwargs={
        "ctx": ctx, "app_secret": APP_SECRET,
        "client": httpx.Client(transport=httpx.MockTransport(slow))})
    first.start()
    assert inside.wait(5)
    client, seen = _recorder([200])
    assert deliver_due(ctx, app_secret=APP_SECRET, client=client) == []
    release.set()
    first.join(5)
    assert len(sent) == 1 and seen == []


def test_dispatcher_delivers_after_a_nudge(ctx: VaultContext, clock: Clock) -> None:
    w = _world(ctx)
    got = threading.Event()

    def handle(request: httpx.Request) -> httpx.Response:
        got.set()
        return httpx.Response(200)

    dispatcher = WebhookDispatcher(
        ctx, app_secret=APP_SECRET, interval=60,
        client_factory=lambda: httpx.Client(transport=httpx.MockTransport(handle)))
    dispatcher.start()
    try:
        _approved(ctx, w)
        dispatcher.nudge()
        assert got.wait(5), "the nudge did not deliver"
    finally:
        dispatcher.stop()
    deadline = time.monotonic() + 5
    while _messages(ctx)[0].delivered_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _messages(ctx)[0].delivered_at is not None
    assert timedelta(0) <= clock() - _messages(ctx)[0].created_at
