"""Grant requests, answers and time: every transition is exactly one ledger entry."""

from __future__ import annotations

import pytest
from support.ledgerview import full_entries
from support.vaultworld import Clock, ask, world

from ledger.canonical import canonical_json
from vault.domain.errors import AccessDenied, GrantRefused, IllegalTransition
from vault.domain.grants import GrantState
from vault.errors import NotFound
from vault.services import access, citizens, grants
from vault.services.context import VaultContext
from vault.services.sweeper import sweep
from vault.storage.database import read_only


def entries(ctx: VaultContext) -> list[dict]:  # type: ignore[type-arg]
    with read_only(ctx.engine).begin() as conn:
        return full_entries(conn)


def test_request_records_terms_and_hash(ctx: VaultContext) -> None:
    w = world(ctx)
    g = ask(ctx, w)
    assert g.state is GrantState.REQUESTED
    entry = entries(ctx)[-1]
    assert entry["kind"] == "grant.requested"
    body = entry["body"]
    assert body["grant_id"] == g.id and body["subject"] == w.subject
    import base64
    import hashlib
    assert base64.b64decode(body["terms_hash"]) == hashlib.sha256(
        canonical_json(body["terms"])).digest() == g.terms_hash
    assert g.terms.to_json() == body["terms"]


def test_requests_outside_the_registration_are_refused(ctx: VaultContext) -> None:
    w = world(ctx)
    before = len(entries(ctx))
    for bad in ({"purpose": "research_with_consent"}, {"categories": ["health.prescriptions"]},
                {"derived": ["age_over_18"]}):
        with pytest.raises(GrantRefused):
            ask(ctx, w, **bad)
    from datetime import timedelta
    with pytest.raises(GrantRefused, match="90"):
        ask(ctx, w, duration=timedelta(days=91))
    assert len(entries(ctx)) == before


def test_deny_cancel_and_lapse(ctx: VaultContext, clock: Clock) -> None:
    w = world(ctx)
    a, b, c = ask(ctx, w), ask(ctx, w), ask(ctx, w)
    assert grants.deny_grant(ctx, a.id, citizen_id=w.citizen_id).state is GrantState.DENIED
    assert grants.cancel_grant(ctx, b.id, service_id=w.service_id).state is GrantState.CANCELLED
    with pytest.raises(IllegalTransition):
        grants.deny_grant(ctx, a.id, citizen_id=w.citizen_id)
    assert sweep(ctx).lapsed == 0
    clock.advance(days=8)
    assert sweep(ctx).lapsed == 1
    assert grants.get_grant(ctx, c.id).state is GrantState.LAPSED
    kinds = [e["kind"] for e in entries(ctx) if e["body"].get("grant_id") in {a.id, b.id, c.id}]
    assert kinds.count("grant.denied") == kinds.count("grant.cancelled") == 1
    assert kinds.count("grant.lapsed") == 1


def test_another_citizen_or_service_cannot_touch_a_grant(ctx: VaultContext) -> None:
    w = world(ctx)
    g = ask(ctx, w)
    other = citizens.enrol_citizen(ctx)
    with pytest.raises(NotFound):
        grants.deny_grant(ctx, g.id, citizen_id=other.id)
    with pytest.raises(NotFound):
        grants.cancel_grant(ctx, g.id, service_id="svc_other")
    with pytest.raises(NotFound):
        access.read_under_grant(ctx, service_id="svc_other", grant_id=g.id)
    assert grants.get_grant(ctx, g.id).state is GrantState.REQUESTED


def test_no_read_before_approval(ctx: VaultContext) -> None:
    w = world(ctx)
    g = ask(ctx, w)
    before = len(entries(ctx))
    with pytest.raises(AccessDenied) as denied:
        access.read_under_grant(ctx, service_id=w.service_id, grant_id=g.id)
    assert denied.value.reason == "not_approved"
    assert len(entries(ctx)) == before  # a refused read writes nothing
