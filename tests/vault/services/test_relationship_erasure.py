"""Erasing a citizen ends every relationship of theirs, on either side, on the ledger
(issue 14 §1: "Ending"; delegation.revoked by citizen_erased), before the rows go."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlmodel import Session, select
from support.vaultworld import Clock, add_passkey

from vault.domain.relationships import DelegatedAction, RelationshipRefused
from vault.services import citizens, delegations
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import RelationshipRow


def _ledger(ctx: VaultContext) -> list[dict]:
    with unit_of_work(ctx) as work:
        return [orjson.loads(b) for b in work.ledger.entries(0, work.ledger.size())]


def _live(ctx: VaultContext, clock: Clock, principal: str, delegate: str) -> str:
    p_dev, d_dev = add_passkey(ctx, principal), add_passkey(ctx, delegate)
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=principal, delegate_id=delegate,
                                  kind="attorney", actions=["view", "approve"],
                                  until=clock() + timedelta(days=30), origin="invited")
        for side, dev in (("delegate", d_dev), ("principal", p_dev)):
            delegations.sign(work, row, side=side, verifier=ctx.approvals,  # type: ignore[arg-type]
                             proof=dev.proof(challenge=row.terms_hash))
        assert row.state == "live"
        return row.id


@pytest.mark.parametrize("erased_side", ["principal", "delegate"])
def test_erasure_ends_every_relationship_on_the_ledger(
        ctx: VaultContext, clock: Clock, erased_side: str) -> None:
    principal, delegate = citizens.enrol_citizen(ctx).id, citizens.enrol_citizen(ctx).id
    _live(ctx, clock, principal, delegate)
    third = citizens.enrol_citizen(ctx).id
    erased = principal if erased_side == "principal" else delegate
    with unit_of_work(ctx) as work:  # one only proposed: it never was, so no entry
        delegations.propose(work, principal_id=erased, delegate_id=third, kind="helper",
                            actions=["view"], until=clock() + timedelta(hours=2),
                            origin="invited")
    citizens.erase_citizen(ctx, erased)
    entries = _ledger(ctx)
    revoked = [e for e in entries if e["kind"] == "delegation.revoked"]
    assert len(revoked) == 1
    assert revoked[0]["public"] == {"by": "citizen_erased"}
    # In the erasure's transaction, before citizen.erased.
    kinds = [e["kind"] for e in entries]
    assert kinds.index("delegation.revoked") < kinds.index("citizen.erased")
    with Session(ctx.engine) as s:
        assert s.exec(select(RelationshipRow)).all() == []
        other = delegate if erased == principal else principal
        with pytest.raises(RelationshipRefused):
            delegations.authorize(s, actor_id=delegate, subject_id=principal,
                                  action=DelegatedAction.VIEW, now=clock())
        assert delegations.acting_for(s, other, now=clock()) == []
