"""The core of acting for others (ARCHITECTURE §9): terms, signatures, live checks, ends."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlmodel import Session, select
from support.vaultworld import Clock, add_passkey

from vault.domain.relationships import DelegatedAction, DelegationTerms, RelationshipRefused
from vault.services import citizens, delegations, records
from vault.services.context import VaultContext, unit_of_work
from vault.services.sweeper import sweep
from vault.storage.tables import RelationshipRow
from wallet.errors import PasskeyRejected


def _ledger(ctx: VaultContext) -> list[dict]:
    with unit_of_work(ctx) as work:
        size = work.ledger.size()
        return [orjson.loads(b) for b in work.ledger.entries(0, size)]


def _pair(ctx: VaultContext) -> tuple[str, str]:
    return citizens.enrol_citizen(ctx).id, citizens.enrol_citizen(ctx).id


def test_both_signatures_make_it_live_and_put_it_on_the_ledger(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _pair(ctx)
    p_dev, d_dev = add_passkey(ctx, principal), add_passkey(ctx, delegate)
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=principal, delegate_id=delegate,
                                  kind="attorney", actions=["view", "approve"],
                                  until=clock() + timedelta(days=365), origin="invited")
        rid, challenge = row.id, row.terms_hash
        delegations.sign(work, row, side="delegate", verifier=ctx.approvals,
                         proof=d_dev.proof(challenge=challenge))
        assert row.state == "proposed"
    with Session(ctx.engine) as s, pytest.raises(RelationshipRefused):
        delegations.authorize(s, actor_id=delegate, subject_id=principal,
                              action=DelegatedAction.VIEW, now=clock())
    with unit_of_work(ctx) as work:
        row = delegations.lock(work, rid)
        delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                         proof=p_dev.proof(challenge=challenge))
        assert row.state == "live"
        terms = delegations.terms_of(work.session, row)
    assert terms.terms_hash() == challenge
    granted = [e for e in _ledger(ctx) if e["kind"] == "delegation.granted"]
    assert len(granted) == 1
    assert granted[0]["public"] == {"relationship": "attorney", "issuer": None}
    with Session(ctx.engine) as s:
        assert delegations.authorize(s, actor_id=delegate, subject_id=principal,
                                     action=DelegatedAction.APPROVE, now=clock()) is not None
        with pytest.raises(RelationshipRefused) as refused:
            delegations.authorize(s, actor_id=delegate, subject_id=principal,
                                  action=DelegatedAction.EDIT, now=clock())
        assert refused.value.reason == "not_allowed"
        assert [a.principal_id for a in delegations.acting_for(s, delegate, now=clock())] \
            == [principal]
        fields = delegations.acting_fields(s, actor_id=delegate, subject_id=principal,
                                           action=DelegatedAction.VIEW, now=clock())
        assert fields["delegation_id"] == rid and fields["actor"].startswith("sub_")
        assert delegations.acting_fields(s, actor_id=principal, subject_id=principal,
                                         action=DelegatedAction.VIEW, now=clock()) == {}


def test_a_signature_over_other_terms_is_refused(ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _pair(ctx)
    d_dev = add_passkey(ctx, delegate)
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=principal, delegate_id=delegate,
                                  kind="helper", actions=["view"],
                                  until=clock() + timedelta(hours=2), origin="invited")
        with pytest.raises(PasskeyRejected):
            delegations.sign(work, row, side="delegate", verifier=ctx.approvals,
                             proof=d_dev.proof(challenge=b"\x00" * 32))


@pytest.mark.parametrize(("kind", "actions", "hours", "reason"), [
    ("helper", ["view"], 25, "too_long"),
    ("cousin", ["view"], 1, "unknown_kind"),
    ("parent", ["approve"], 1, "no_view"),
    ("parent", ["view", "sell"], 1, "unknown_action"),
    ("parent", ["view"], -1, "bad_until"),
])
def test_terms_outside_the_rules_are_refused_and_nothing_is_written(
        ctx: VaultContext, clock: Clock, kind: str, actions: list[str], hours: int,
        reason: str) -> None:
    principal, delegate = _pair(ctx)
    with pytest.raises(RelationshipRefused) as refused, unit_of_work(ctx) as work:
        delegations.propose(work, principal_id=principal, delegate_id=delegate, kind=kind,
                            actions=actions, until=clock() + timedelta(hours=hours),
                            origin="invited")
    assert refused.value.reason == reason
    with Session(ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).first() is None


def test_nobody_acts_for_themselves(ctx: VaultContext, clock: Clock) -> None:
    me = citizens.enrol_citizen(ctx).id
    with pytest.raises(RelationshipRefused) as refused, unit_of_work(ctx) as work:
        delegations.propose(work, principal_id=me, delegate_id=me, kind="helper",
                            actions=["view"], until=clock() + timedelta(hours=1),
                            origin="invited")
    assert refused.value.reason == "self"


def _live(ctx: VaultContext, clock: Clock, *, hours: int = 2) -> tuple[str, str, str]:
    principal, delegate = _pair(ctx)
    p_dev, d_dev = add_passkey(ctx, principal), add_passkey(ctx, delegate)
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=principal, delegate_id=delegate,
                                  kind="helper", actions=["view"],
                                  until=clock() + timedelta(hours=hours), origin="counter")
        for side, dev in (("principal", p_dev), ("delegate", d_dev)):
            delegations.sign(work, row, side=side, verifier=ctx.approvals,  # type: ignore[arg-type]
                             proof=dev.proof(challenge=row.terms_hash))
        return principal, delegate, row.id


def test_ending_stops_access_at_once_and_is_on_the_ledger(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate, rid = _live(ctx, clock)
    with unit_of_work(ctx) as work:
        delegations.end(work, delegations.lock(work, rid), by="principal", actor_id=principal)
    with Session(ctx.engine) as s, pytest.raises(RelationshipRefused):
        delegations.authorize(s, actor_id=delegate, subject_id=principal,
                              action=DelegatedAction.VIEW, now=clock())
    revoked = [e for e in _ledger(ctx) if e["kind"] == "delegation.revoked"]
    assert [e["public"] for e in revoked] == [{"by": "principal"}]
    with pytest.raises(RelationshipRefused), unit_of_work(ctx) as work:
        delegations.end(work, delegations.lock(work, rid), by="delegate")


def test_expiry_stops_access_at_the_end_date_and_the_sweeper_records_it(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate, rid = _live(ctx, clock, hours=1)
    clock.advance(hours=1)
    with Session(ctx.engine) as s, pytest.raises(RelationshipRefused):
        delegations.authorize(s, actor_id=delegate, subject_id=principal,
                              action=DelegatedAction.VIEW, now=clock())
    assert sweep(ctx).relationships == 1
    assert sweep(ctx).relationships == 0
    assert [e["kind"] for e in _ledger(ctx)][-1] == "delegation.expired"
    with Session(ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None and (row.state, row.ended_by) == ("ended", "expiry")


def test_terms_round_trip_through_json(clock: Clock) -> None:
    terms = DelegationTerms(delegation_id="dlg_x", principal="sub_a", delegate="sub_b",
                            kind=delegations.Kind.PARENT,
                            actions=frozenset(DelegatedAction), until=clock(), issuer=None)
    assert DelegationTerms.from_json(terms.to_json()) == terms
    assert terms.to_json()["actions"] == ["approve", "edit", "revoke", "view"]


def test_names_come_from_each_persons_own_name_record(ctx: VaultContext) -> None:
    named, unnamed = _pair(ctx)
    records.write_record(ctx, named, "identity.name", {"given": "Ada", "family": "Lovelace"})
    with Session(ctx.engine) as s:
        assert delegations.display_names(ctx, s, [named, unnamed]) == {
            named: "Ada Lovelace", unnamed: delegations.UNNAMED}
