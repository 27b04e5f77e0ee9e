"""Children's vaults (issue 14 §2): made by a parent in one transaction, handed over once."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, col, select
from support.ledgerview import full_entries
from support.vaultworld import Clock, World, add_passkey, ask, blue_badge

from vault.domain.errors import InvalidValue
from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.errors import NotFound
from vault.services import citizens, delegations, dependants, grants, records
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import (
    CitizenRow,
    DelegatedActionRow,
    RelationshipInviteRow,
    RelationshipRow,
)
from wallet.errors import PasskeyRejected
from wallet.passkeys.software import SoftAuthenticator

SECRET = b"s" * 32


def _ledger(ctx: VaultContext) -> list[dict]:
    """Every entry with its full body under "body" (sealed parts opened)."""
    with ctx.engine.connect() as conn:
        return full_entries(conn)


def _plan(parent: str, clock: Clock, **kw: object) -> dependants.ChildPlan:
    args: dict = {"given": "Ada", "family": "Byron", "date_of_birth": "2018-12-10",
                  "until": None, **kw}
    return dependants.plan_child(parent_id=parent, now=clock(), **args)


def _child(ctx: VaultContext, clock: Clock, device: SoftAuthenticator | None = None
           ) -> tuple[str, str, str]:
    parent = citizens.enrol_citizen(ctx).id
    device = add_passkey(ctx, parent, device)
    plan = _plan(parent, clock)
    with Session(ctx.engine) as s:
        challenge = dependants.child_terms(s, plan).terms_hash()
    made = dependants.create_child(ctx, plan, proof=device.proof(challenge=challenge),
                                   verifier=ctx.approvals)
    return parent, made.child_id, made.relationship_id


def test_a_parent_makes_a_childs_vault_live_at_once_with_its_first_records(
        ctx: VaultContext, clock: Clock) -> None:
    parent, child, rid = _child(ctx, clock)
    with Session(ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None
        assert (row.state, row.kind, row.origin, row.principal_id, row.delegate_id) == (
            "live", "parent", "dependant", child, parent)
        assert row.actions == "approve,edit,revoke,view"
        assert row.until == datetime(2036, 12, 10, tzinfo=UTC)  # the 18th birthday
        assert row.principal_assertion is None and row.delegate_assertion is not None
        assert not delegations.has_passkey(s, child)
        assert delegations.authorize(s, actor_id=parent, subject_id=child,
                                     action=DelegatedAction.APPROVE, now=clock()) is not None
        assert [c.child_id for c in dependants.children_of(s, parent, now=clock())] == [child]
    assert {k: v.value for k, v in records.read_records(ctx, child).items()} == {
        "identity.name": {"given": "Ada", "family": "Byron"},
        "identity.date_of_birth": "2018-12-10"}
    new = _ledger(ctx)[-4:]
    assert [e["kind"] for e in new] == ["citizen.enrolled", "delegation.granted",
                                        "record.written", "record.written"]
    with Session(ctx.engine) as s:
        parent_subject = citizens.get_citizen(s, parent).subject
        child_subject = citizens.get_citizen(s, child).subject
    granted = new[1]["body"]
    assert (granted["subject"], granted["delegate"], granted["delegation_id"]) == (
        child_subject, parent_subject, rid)
    assert granted["principal_assertion"] is None and granted["delegate_assertion"]
    # The parent wrote the child's first records, acting for the child.
    for entry in new[2:]:
        assert entry["body"]["subject"] == child_subject
        assert entry["body"]["actor"] == parent_subject
        assert entry["body"]["delegation_id"] == rid
    # ... and the child's list of what was done for them says so.
    with Session(ctx.engine) as s:
        done = s.exec(select(DelegatedActionRow).where(
            col(DelegatedActionRow.principal_id) == child)).all()
        assert sorted((d.actor_id, d.relationship_id, d.category) for d in done) == [
            (parent, rid, "identity.date_of_birth"), (parent, rid, "identity.name")]


@pytest.mark.parametrize(("kw", "error"), [
    ({"given": " "}, InvalidValue),
    ({"date_of_birth": "10/12/2018"}, InvalidValue),
    ({"date_of_birth": "2030-01-01"}, InvalidValue),   # not born yet
    ({"date_of_birth": "2000-01-01"}, InvalidValue),   # an adult
    ({"until": datetime(2026, 1, 1, tzinfo=UTC)}, RelationshipRefused),   # past
    ({"until": datetime(2037, 1, 1, tzinfo=UTC)}, RelationshipRefused),   # after 18
])
def test_a_plan_outside_the_rules_is_refused(ctx: VaultContext, clock: Clock,
                                            kw: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        _plan("cit_x", clock, **kw)


def test_a_signature_over_other_terms_writes_nothing(ctx: VaultContext, clock: Clock) -> None:
    parent = citizens.enrol_citizen(ctx).id
    device = add_passkey(ctx, parent)
    plan = _plan(parent, clock)
    before = len(_ledger(ctx))
    other = _plan(parent, clock, until=datetime(2030, 1, 1, tzinfo=UTC))
    with Session(ctx.engine) as s:
        wrong = dependants.child_terms(s, other).terms_hash()
    with pytest.raises(PasskeyRejected):
        dependants.create_child(ctx, plan, proof=device.proof(challenge=wrong),
                                verifier=ctx.approvals)
    assert len(_ledger(ctx)) == before
    with Session(ctx.engine) as s:
        assert s.get(CitizenRow, plan.child_id) is None


def test_a_plan_is_made_once(ctx: VaultContext, clock: Clock) -> None:
    parent = citizens.enrol_citizen(ctx).id
    device = add_passkey(ctx, parent)
    plan = _plan(parent, clock)
    with Session(ctx.engine) as s:
        challenge = dependants.child_terms(s, plan).terms_hash()
    dependants.create_child(ctx, plan, proof=device.proof(challenge=challenge),
                            verifier=ctx.approvals)
    with pytest.raises(RelationshipRefused) as refused:
        dependants.create_child(ctx, plan, proof=device.proof(challenge=challenge),
                                verifier=ctx.approvals)
    assert refused.value.reason == "already"


def test_the_eighteenth_birthday_of_a_leap_day_child() -> None:
    assert dependants.eighteenth_birthday(date(2016, 2, 29)) == datetime(2034, 3, 1, tzinfo=UTC)


def _issue(ctx: VaultContext, parent: str, child: str) -> str:
    return dependants.issue_handover(ctx, SECRET, parent_id=parent, child_id=child).code


def test_handing_over_ends_the_parents_relationship_unless_kept(
        ctx: VaultContext, clock: Clock) -> None:
    parent, child, rid = _child(ctx, clock)
    code = _issue(ctx, parent, child)
    with unit_of_work(ctx) as work:
        handover = dependants.claim_handover(work, SECRET, code.lower())  # typed loosely
        assert (handover.child_id, handover.parent_id) == (child, parent)
        assert dependants.settle_handover(work, handover, keep=False) is False
    with Session(ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None and (row.state, row.ended_by) == ("ended", "handover")
        with pytest.raises(RelationshipRefused):
            delegations.authorize(s, actor_id=parent, subject_id=child,
                                  action=DelegatedAction.VIEW, now=clock())
    revoked = [e for e in _ledger(ctx) if e["kind"] == "delegation.revoked"]
    assert [e["public"] for e in revoked] == [{"by": "handover"}]
    with Session(ctx.engine) as s:
        assert revoked[0]["body"]["actor"] == citizens.get_citizen(s, child).subject


def test_a_child_may_keep_the_parent(ctx: VaultContext, clock: Clock) -> None:
    parent, child, _ = _child(ctx, clock)
    code = _issue(ctx, parent, child)
    with unit_of_work(ctx) as work:
        handover = dependants.claim_handover(work, SECRET, code)
        assert dependants.settle_handover(work, handover, keep=True) is True
    with Session(ctx.engine) as s:
        assert delegations.authorize(s, actor_id=parent, subject_id=child,
                                     action=DelegatedAction.EDIT, now=clock()) is not None


def test_a_used_expired_or_unknown_code_is_refused(ctx: VaultContext, clock: Clock) -> None:
    parent, child, _ = _child(ctx, clock)
    code = _issue(ctx, parent, child)
    with unit_of_work(ctx) as work:
        dependants.claim_handover(work, SECRET, code)
    with pytest.raises(RelationshipRefused) as used, unit_of_work(ctx) as work:
        dependants.claim_handover(work, SECRET, code)
    assert used.value.reason == "invitation_used"
    late = _issue(ctx, parent, child)
    clock.advance(days=14)
    with Session(ctx.engine) as s:
        with pytest.raises(RelationshipRefused) as expired:
            dependants.check_handover(s, SECRET, late, now=clock())
        assert expired.value.reason == "invitation_expired"
        with pytest.raises(NotFound):
            dependants.check_handover(s, SECRET, "ABCD-EFGH-JKMN-PQRS", now=clock())
        with pytest.raises(NotFound):
            dependants.check_handover(s, SECRET, "not a code", now=clock())


def test_no_handover_for_a_child_with_a_passkey(ctx: VaultContext, clock: Clock) -> None:
    parent, child, _ = _child(ctx, clock)
    code = _issue(ctx, parent, child)
    add_passkey(ctx, child)
    with Session(ctx.engine) as s, pytest.raises(RelationshipRefused) as refused:
        dependants.check_handover(s, SECRET, code, now=clock())
    assert "taken over" in str(refused.value)
    with pytest.raises(RelationshipRefused):
        _issue(ctx, parent, child)


def test_only_the_childs_parent_issues_a_handover_and_a_new_code_replaces_the_old(
        ctx: VaultContext, clock: Clock) -> None:
    parent, child, _ = _child(ctx, clock)
    stranger = citizens.enrol_citizen(ctx).id
    with pytest.raises(RelationshipRefused) as refused:
        _issue(ctx, stranger, child)
    assert refused.value.reason == "not_allowed"
    first, second = _issue(ctx, parent, child), _issue(ctx, parent, child)
    with Session(ctx.engine) as s:
        with pytest.raises(NotFound):
            dependants.check_handover(s, SECRET, first, now=clock())
        assert dependants.check_handover(s, SECRET, second, now=clock()).child_id == child
        assert len(s.exec(select(RelationshipInviteRow).where(
            col(RelationshipInviteRow.principal_id) == child)).all()) == 1


def test_a_parent_whose_relationship_ended_at_handover_cannot_approve_for_the_child(
        ctx: VaultContext, clock: Clock) -> None:
    device = SoftAuthenticator()
    parent, child, _ = _child(ctx, clock, device)
    asked = ask(ctx, World(blue_badge(ctx), child, ""))
    code = _issue(ctx, parent, child)
    with unit_of_work(ctx) as work:
        handover = dependants.claim_handover(work, SECRET, code)
        dependants.settle_handover(work, handover, keep=False)
    size = len(_ledger(ctx))
    with pytest.raises(RelationshipRefused) as refused:
        grants.approve_grant(ctx, asked.id, citizen_id=child, actor_id=parent,
                             proof=device.proof(challenge=asked.terms_hash))
    assert refused.value.reason == "not_allowed"
    assert len(_ledger(ctx)) == size
    assert grants.get_grant(ctx, asked.id).state == "requested"
