"""Invitations to act for someone (issue 14 §1, §6): single-use codes, accepted with a
passkey over the exact terms, refused with a reason and nothing written."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select
from support.vaultworld import Clock, add_passkey

from vault.crypto import typed_codes
from vault.domain.relationships import RelationshipRefused
from vault.services import citizens, delegations, invitations
from vault.services.context import VaultContext, unit_of_work
from vault.storage.tables import RelationshipInviteRow, RelationshipRow
from wallet.errors import PasskeyRejected

SECRET = b"s" * 32


def _people(ctx: VaultContext) -> tuple[str, str]:
    return citizens.enrol_citizen(ctx).id, citizens.enrol_citizen(ctx).id


def _invite(ctx: VaultContext, clock: Clock, principal: str, *, kind: str = "attorney",
            actions: list[str] | None = None, days: float = 365
            ) -> invitations.NewInvitation:
    return invitations.invite(ctx, SECRET, principal_id=principal, kind=kind,
                              actions=actions or ["view", "approve"],
                              until=clock() + timedelta(days=days))


def _relationships(ctx: VaultContext) -> list[RelationshipRow]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(RelationshipRow)).all())


def test_accepting_signs_the_terms_and_uses_the_code_once(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _people(ctx)
    p_dev, d_dev = add_passkey(ctx, principal), add_passkey(ctx, delegate)
    new = _invite(ctx, clock, principal)
    assert len(typed_codes.normalise(new.code)) == invitations.CODE_CHARS
    with Session(ctx.engine) as s:
        stored = s.exec(select(RelationshipInviteRow)).one()
    assert stored.code_hash == new.code_hash != new.code  # only the keyed hash is kept
    assert stored.expires_at == clock() + invitations.INVITE_TTL
    # Typed in lower case with spaces, as people do.
    typed = new.code.lower().replace("-", " ")
    terms = invitations.signing_terms(ctx, SECRET, typed, delegate_id=delegate)
    rid = invitations.accept(ctx, SECRET, typed, delegate_id=delegate,
                             proof=d_dev.proof(challenge=terms.terms_hash()))
    assert rid == terms.delegation_id
    [row] = _relationships(ctx)
    assert (row.state, row.origin, row.principal_id, row.delegate_id) == \
        ("proposed", "invited", principal, delegate)
    assert row.terms_hash == terms.terms_hash() and row.delegate_assertion is not None
    with Session(ctx.engine) as s:
        assert s.exec(select(RelationshipInviteRow)).one().relationship_id == rid
    with pytest.raises(RelationshipRefused) as again:
        invitations.accept(ctx, SECRET, new.code, delegate_id=delegate,
                           proof=d_dev.proof(challenge=terms.terms_hash()))
    assert again.value.reason == "invitation_used"
    # The principal confirms: live, on the ledger.
    with unit_of_work(ctx) as work:
        row = delegations.lock(work, rid)
        delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                         proof=p_dev.proof(challenge=row.terms_hash))
        assert row.state == "live"


def test_an_expired_code_is_refused_and_nothing_is_written(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _people(ctx)
    d_dev = add_passkey(ctx, delegate)
    new = _invite(ctx, clock, principal)
    terms = invitations.signing_terms(ctx, SECRET, new.code, delegate_id=delegate)
    clock.advance(days=7)
    with pytest.raises(RelationshipRefused) as refused:
        invitations.accept(ctx, SECRET, new.code, delegate_id=delegate,
                           proof=d_dev.proof(challenge=terms.terms_hash()))
    assert refused.value.reason == "invitation_expired"
    assert _relationships(ctx) == []


def test_ones_own_invitation_cannot_be_accepted(ctx: VaultContext, clock: Clock) -> None:
    principal, _ = _people(ctx)
    new = _invite(ctx, clock, principal)
    with pytest.raises(RelationshipRefused) as refused:
        invitations.signing_terms(ctx, SECRET, new.code, delegate_id=principal)
    assert refused.value.reason == "self"


def test_a_helper_over_a_day_is_refused_when_invited(ctx: VaultContext, clock: Clock) -> None:
    principal, _ = _people(ctx)
    with pytest.raises(RelationshipRefused) as refused:
        _invite(ctx, clock, principal, kind="helper", actions=["view"], days=1.5)
    assert refused.value.reason == "too_long"
    with Session(ctx.engine) as s:
        assert s.exec(select(RelationshipInviteRow)).first() is None


def test_nobody_invites_or_accepts_while_acting_for_someone(
        ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _people(ctx)
    other = citizens.enrol_citizen(ctx).id
    with pytest.raises(RelationshipRefused) as refused:
        invitations.invite(ctx, SECRET, principal_id=delegate, kind="helper",
                           actions=["view"], until=clock() + timedelta(hours=2),
                           acting_for=principal)
    assert refused.value.reason == "further"
    new = _invite(ctx, clock, principal)
    with pytest.raises(RelationshipRefused) as accepting:
        invitations.signing_terms(ctx, SECRET, new.code, delegate_id=delegate,
                                  acting_for=other)
    assert accepting.value.reason == "further"
    with Session(ctx.engine) as s:
        assert len(s.exec(select(RelationshipInviteRow)).all()) == 1


def test_a_relationship_already_live_is_refused(ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _people(ctx)
    p_dev, d_dev = add_passkey(ctx, principal), add_passkey(ctx, delegate)
    for attempt in range(2):
        new = _invite(ctx, clock, principal)
        terms = invitations.signing_terms(ctx, SECRET, new.code, delegate_id=delegate)
        proof = d_dev.proof(challenge=terms.terms_hash())
        if attempt == 1:
            with pytest.raises(RelationshipRefused) as refused:
                invitations.accept(ctx, SECRET, new.code, delegate_id=delegate, proof=proof)
            assert refused.value.reason == "already"
            break
        rid = invitations.accept(ctx, SECRET, new.code, delegate_id=delegate, proof=proof)
        with unit_of_work(ctx) as work:
            row = delegations.lock(work, rid)
            delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                             proof=p_dev.proof(challenge=row.terms_hash))
    assert len(_relationships(ctx)) == 1
    with Session(ctx.engine) as s:  # the second code was not used up
        assert sum(r.used_at is None for r in s.exec(select(RelationshipInviteRow))) == 1


def test_unknown_and_cancelled_codes(ctx: VaultContext, clock: Clock) -> None:
    principal, delegate = _people(ctx)
    with pytest.raises(invitations.UnknownInvitation):
        invitations.find(ctx, SECRET, "ABCD-EFGH-JKMN", delegate_id=delegate)
    with pytest.raises(invitations.UnknownInvitation):
        invitations.find(ctx, SECRET, "not a code", delegate_id=delegate)
    new = _invite(ctx, clock, principal)
    with Session(ctx.engine) as s:
        assert [i.code_hash for i in invitations.unused(s, principal, now=clock())] \
            == [new.code_hash]
    with pytest.raises(invitations.UnknownInvitation):  # only its principal cancels it
        invitations.cancel(ctx, principal_id=delegate, invite_hash=new.code_hash)
    invitations.cancel(ctx, principal_id=principal, invite_hash=new.code_hash)
    with pytest.raises(invitations.UnknownInvitation):
        invitations.find(ctx, SECRET, new.code, delegate_id=delegate)


def test_a_signature_for_another_delegate_is_refused(ctx: VaultContext, clock: Clock) -> None:
    """The terms name the delegate: what one person signed does not accept for another."""
    principal, delegate = _people(ctx)
    mallory = citizens.enrol_citizen(ctx).id
    add_passkey(ctx, delegate)
    m_dev = add_passkey(ctx, mallory)
    new = _invite(ctx, clock, principal)
    theirs = invitations.signing_terms(ctx, SECRET, new.code, delegate_id=delegate)
    assert theirs.delegation_id != invitations.signing_terms(
        ctx, SECRET, new.code, delegate_id=mallory).delegation_id
    with pytest.raises(PasskeyRejected):
        invitations.accept(ctx, SECRET, new.code, delegate_id=mallory,
                           proof=m_dev.proof(challenge=theirs.terms_hash()))
    assert _relationships(ctx) == []


def test_an_end_in_another_zone_is_kept_in_utc(ctx: VaultContext, clock: Clock) -> None:
    """Terms are signed in UTC (format_utc writes the fields with a Z): an end given on
    London's summer clock must not be signed an hour off."""
    from zoneinfo import ZoneInfo

    principal, delegate = _people(ctx)
    d_dev = add_passkey(ctx, delegate)
    summer = datetime(2027, 7, 1, 23, 59, 59, tzinfo=ZoneInfo("Europe/London"))
    new = invitations.invite(ctx, SECRET, principal_id=principal, kind="parent",
                             actions=["view"], until=summer)
    terms = invitations.signing_terms(ctx, SECRET, new.code, delegate_id=delegate)
    assert terms.to_json()["until"] == "2027-07-01T22:59:59Z"
    rid = invitations.accept(ctx, SECRET, new.code, delegate_id=delegate,
                             proof=d_dev.proof(challenge=terms.terms_hash()))
    with Session(ctx.engine) as s:
        row = s.get(RelationshipRow, rid)
        assert row is not None
        assert delegations.terms_of(s, row).terms_hash() == row.terms_hash
