"""Actions taken in someone else's vault (issue 14 §3, part B): checked in the action's
own transaction, marked on the ledger with the actor and the delegation, and written down
for the principal."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from support.acting import end_relationship, live_relationship
from support.ledgerview import full_entries
from support.vaultworld import Clock, add_passkey, ask, world

from vault.domain.grants import GrantState
from vault.domain.relationships import RelationshipRefused
from vault.services import behalf, blocks, citizens, grants, records, series
from vault.services.context import VaultContext
from vault.services.grants import get_grant
from vault.storage.database import read_only
from vault.storage.tables import DelegatedActionRow, RecordRow
from wallet.errors import PasskeyRejected


def _all(ctx: VaultContext) -> list[dict]:  # type: ignore[type-arg]
    with read_only(ctx.engine).begin() as conn:
        return full_entries(conn)


def _entries(ctx: VaultContext, kind: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in _all(ctx) if e["kind"] == kind]


def _people(ctx: VaultContext, actions: tuple[str, ...]):  # type: ignore[no-untyped-def]
    w = world(ctx)
    p_dev = add_passkey(ctx, w.citizen_id)
    delegate = citizens.enrol_citizen(ctx)
    d_dev = add_passkey(ctx, delegate.id)
    rid = live_relationship(ctx, principal=w.citizen_id, delegate=delegate.id,
                            principal_device=p_dev, delegate_device=d_dev, actions=actions)
    return w, p_dev, delegate, d_dev, rid


def test_a_delegate_approves_with_their_own_passkey_and_the_entry_names_them(
        ctx: VaultContext) -> None:
    w, p_dev, delegate, d_dev, rid = _people(ctx, ("view", "approve"))
    grant = ask(ctx, w)
    # The principal's passkey is not the actor's: refused, nothing written.
    with pytest.raises(PasskeyRejected):
        grants.approve_grant(ctx, grant.id, citizen_id=w.citizen_id, actor_id=delegate.id,
                             proof=p_dev.proof(challenge=grant.terms_hash))
    assert get_grant(ctx, grant.id).state is GrantState.REQUESTED
    grants.approve_grant(ctx, grant.id, citizen_id=w.citizen_id, actor_id=delegate.id,
                         proof=d_dev.proof(challenge=grant.terms_hash))
    [entry] = _entries(ctx, "grant.approved")
    assert entry["body"]["subject"] == w.subject
    assert entry["body"]["actor"] == delegate.subject
    assert entry["body"]["delegation_id"] == rid
    assert entry["body"]["terms_hash"]  # the same challenge as the citizen's own
    with Session(ctx.engine) as s:
        assert behalf.approved_by(s, [grant.id]) == {grant.id: delegate.id}
        done, more = behalf.done_for(s, w.citizen_id)
    assert [(d.kind, d.grant_id, d.actor_id) for d in done] == [
        ("grant.approved", grant.id, delegate.id)]
    assert more is None


def test_actions_outside_the_relationship_are_refused_and_nothing_is_written(
        ctx: VaultContext) -> None:
    w, _, delegate, d_dev, _ = _people(ctx, ("view",))
    grant = ask(ctx, w)
    size = len(_all(ctx))
    with pytest.raises(RelationshipRefused) as refused:
        grants.approve_grant(ctx, grant.id, citizen_id=w.citizen_id, actor_id=delegate.id,
                             proof=d_dev.proof(challenge=grant.terms_hash))
    assert refused.value.reason == "not_allowed"
    for attempt in (
        lambda: grants.deny_grant(ctx, grant.id, citizen_id=w.citizen_id,
                                  actor_id=delegate.id),
        lambda: records.write_record(ctx, w.citizen_id, "contact.email", "x@example.org",
                                     actor_id=delegate.id),
        lambda: series.append_own(ctx, w.citizen_id, "health.observations", [
            {"kind": "heart_rate", "value": 70, "unit": "bpm", "at": "2026-11-22T08:00:00Z"}],
            actor_id=delegate.id),
        lambda: records.delete_records(ctx, w.citizen_id, "address.home",
                                       actor_id=delegate.id),
        lambda: blocks.block_service(ctx, citizen_id=w.citizen_id,
                                     service_id=w.service_id, actor_id=delegate.id),
        lambda: blocks.unblock_service(ctx, citizen_id=w.citizen_id,
                                       service_id=w.service_id, actor_id=delegate.id),
    ):
        with pytest.raises(RelationshipRefused):
            attempt()
    assert len(_all(ctx)) == size
    assert get_grant(ctx, grant.id).state is GrantState.REQUESTED
    with Session(ctx.engine) as s:
        assert s.exec(select(DelegatedActionRow)).all() == []
        assert not blocks.is_blocked(s, citizen_id=w.citizen_id, service_id=w.service_id)


def test_a_record_written_for_someone_carries_the_actor_and_ending_ends_it_at_once(
        ctx: VaultContext, clock: Clock) -> None:
    w, _, delegate, _, rid = _people(ctx, ("view", "edit"))
    records.write_record(ctx, w.citizen_id, "contact.email", "ada@example.org",
                         actor_id=delegate.id)
    [*_, entry] = _entries(ctx, "record.written")
    assert entry["body"]["actor"] == delegate.subject
    assert entry["body"]["delegation_id"] == rid
    # A series batch (the readings form) too.
    series.append_own(ctx, w.citizen_id, "health.observations", [
        {"kind": "heart_rate", "value": 70, "unit": "bpm", "at": "2026-11-22T08:00:00Z"}],
        actor_id=delegate.id)
    [*_, batch] = _entries(ctx, "record.written")
    assert (batch["body"]["items"], batch["body"]["actor"]) == (1, delegate.subject)
    with Session(ctx.engine) as s:
        done, _ = behalf.done_for(s, w.citizen_id)
    assert [(d.kind, d.category) for d in done] == [
        ("record.written", "health.observations"), ("record.written", "contact.email")]
    # Her own writes carry neither and are not "done for her".
    records.write_record(ctx, w.citizen_id, "contact.email", "ada@example.com")
    [*_, own] = _entries(ctx, "record.written")
    assert "actor" not in own["body"] and "delegation_id" not in own["body"]
    end_relationship(ctx, rid)
    with pytest.raises(RelationshipRefused):
        records.write_record(ctx, w.citizen_id, "contact.email", "late@example.org",
                             actor_id=delegate.id)
    # Past its end date a live relationship already refuses, before the sweeper runs.
    other = citizens.enrol_citizen(ctx)
    o_dev = add_passkey(ctx, other.id)
    p_dev = add_passkey(ctx, w.citizen_id)
    live_relationship(ctx, principal=w.citizen_id, delegate=other.id, principal_device=p_dev,
                      delegate_device=o_dev, actions=("view", "edit"), days=1)
    clock.advance(days=2)
    with pytest.raises(RelationshipRefused):
        records.delete_records(ctx, w.citizen_id, "contact.email", actor_id=other.id)
    with Session(ctx.engine) as s:
        assert len(s.exec(select(RecordRow).where(
            RecordRow.citizen_id == w.citizen_id, RecordRow.category == "contact.email")
        ).all()) == 2


def test_revoking_and_stopping_need_revoke_and_name_the_actor(ctx: VaultContext) -> None:
    w, _, delegate, d_dev, rid = _people(ctx, ("view", "approve", "revoke"))
    grant = ask(ctx, w)
    grants.approve_grant(ctx, grant.id, citizen_id=w.citizen_id, actor_id=delegate.id,
                         proof=d_dev.proof(challenge=grant.terms_hash))
    challenge = grants.signing_challenge(ctx, grant.id, citizen_id=w.citizen_id,
                                         action=grants.GrantAction.REVOKE)
    grants.revoke_grant(ctx, grant.id, citizen_id=w.citizen_id, actor_id=delegate.id,
                        proof=d_dev.proof(challenge=challenge))
    [revoked] = _entries(ctx, "grant.revoked")
    assert (revoked["body"]["actor"], revoked["body"]["delegation_id"]) == \
        (delegate.subject, rid)
    waiting = ask(ctx, w)
    declined = blocks.block_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id,
                                    actor_id=delegate.id)
    assert declined == [waiting.id]
    [denied] = _entries(ctx, "grant.denied")
    assert denied["body"]["actor"] == delegate.subject
    assert blocks.unblock_service(ctx, citizen_id=w.citizen_id, service_id=w.service_id,
                                  actor_id=delegate.id)
    with Session(ctx.engine) as s:
        done, _ = behalf.done_for(s, w.citizen_id)
    # The principal's lines, newest first (allowing asking again writes no entry).
    assert [d.kind for d in done] == ["grant.denied", "grant.revoked", "grant.approved"]
