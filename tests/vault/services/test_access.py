"""Approving with a passkey, reading under a grant, and everything that ends a grant.

Approvals are real WebAuthn assertions from a software authenticator, checked by the
same verifier the wallet uses; the ledger keeps them so anyone can check them offline.
"""

from __future__ import annotations

import base64

import orjson
import pytest
from support.ledgerview import full_entries
from support.vaultworld import Clock, World, add_passkey, ask, world

from vault.domain.errors import AccessDenied
from vault.domain.grants import Access, GrantAction, GrantState
from vault.services import access, citizens, grants, registry
from vault.services.approvals import ApprovalProof, action_challenge
from vault.services.context import VaultContext
from vault.services.sweeper import sweep
from vault.storage.database import read_only
from wallet.errors import WalletError
from wallet.passkeys import verify_approval_offline
from wallet.passkeys.software import SoftAuthenticator

ORIGIN = "http://localhost:8000"


def entries(ctx: VaultContext) -> list[dict]:  # type: ignore[type-arg]
    with read_only(ctx.engine).begin() as conn:
        return full_entries(conn)


def approved(ctx: VaultContext, **kw: object) -> tuple[World, SoftAuthenticator, str]:
    w = world(ctx)
    device = add_passkey(ctx, w.citizen_id)
    g = ask(ctx, w, **kw)
    grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id,
                         proof=device.proof(challenge=g.terms_hash))
    return w, device, g.id


def read(ctx: VaultContext, w: World, grant_id: str) -> access.Release:
    return access.read_under_grant(ctx, service_id=w.service_id, grant_id=grant_id)


def reason(ctx: VaultContext, w: World, grant_id: str) -> str:
    before = len(entries(ctx))
    with pytest.raises(AccessDenied) as denied:
        read(ctx, w, grant_id)
    assert len(entries(ctx)) == before, "a refused read must write nothing"
    return denied.value.reason


def test_approval_is_recorded_and_verifies_offline(ctx: VaultContext) -> None:
    w, _, gid = approved(ctx)
    log = entries(ctx)
    registered = next(e for e in log if e["kind"] == "passkey.registered")
    approval = next(e for e in log if e["kind"] == "grant.approved")
    requested = next(e for e in log if e["kind"] == "grant.requested")
    assert approval["body"]["grant_id"] == gid
    assert registered["body"]["subject"] == approval["body"]["subject"] == w.subject
    # Anyone with the ledger alone can check it: the key from passkey.registered, the
    # challenge from grant.requested's terms hash.
    proof = ApprovalProof(**approval["body"]["assertion"])
    cose = base64.urlsafe_b64decode(registered["body"]["public_key"] + "==")
    verify_approval_offline(public_key_cose=cose,
                            challenge=base64.b64decode(requested["body"]["terms_hash"]),
                            proof=proof, rp_id="localhost", origins=[ORIGIN])


def test_read_releases_exactly_the_terms(ctx: VaultContext) -> None:
    w, _, gid = approved(ctx)
    r = read(ctx, w, gid)
    assert set(r.data) == {"address.home"}  # name and date of birth are never released
    assert r.data["address.home"]["postcode"] == "SW1Y 4JH"
    assert r.derived == {"age_over_65": True}
    last = entries(ctx)[r.ledger_index]
    assert last["kind"] == "data.accessed"
    assert last["body"]["categories"] == ["address.home"]
    assert last["body"]["derived"] == ["age_over_65"]
    assert b"SW1Y" not in orjson.dumps(entries(ctx))


def test_reads_exhaust_the_grant(ctx: VaultContext) -> None:
    w, _, gid = approved(ctx, access=Access("periodic", max_reads=2))
    read(ctx, w, gid)
    read(ctx, w, gid)
    assert grants.get_grant(ctx, gid).state is GrantState.EXHAUSTED
    assert entries(ctx)[-1]["kind"] == "grant.exhausted"
    assert reason(ctx, w, gid) == "exhausted"


def test_one_time_and_min_interval(ctx: VaultContext, clock: Clock) -> None:
    w, _, gid = approved(ctx, access=Access("one_time"))
    read(ctx, w, gid)
    assert reason(ctx, w, gid) == "exhausted"
    w2, _, gid2 = approved(ctx, access=Access("periodic", min_interval="P1D"))
    read(ctx, w2, gid2)
    assert reason(ctx, w2, gid2) == "too_soon"
    clock.advance(days=1)
    read(ctx, w2, gid2)


def test_pause_resume_revoke_take_effect_on_the_next_read(ctx: VaultContext) -> None:
    w, device, gid = approved(ctx)
    read(ctx, w, gid)
    def signed(action: GrantAction) -> ApprovalProof:
        return device.proof(challenge=grants.signing_challenge(
            ctx, gid, citizen_id=w.citizen_id, action=action))

    grants.pause_grant(ctx, gid, citizen_id=w.citizen_id, proof=signed(GrantAction.PAUSE))
    assert reason(ctx, w, gid) == "paused"
    grants.resume_grant(ctx, gid, citizen_id=w.citizen_id, proof=signed(GrantAction.RESUME))
    read(ctx, w, gid)
    grants.revoke_grant(ctx, gid, citizen_id=w.citizen_id, proof=signed(GrantAction.REVOKE))
    assert reason(ctx, w, gid) == "revoked"
    revoke = entries(ctx)[-1]
    assert revoke["kind"] == "grant.revoked" and revoke["body"]["by"] == "citizen"


def g_last_seq(ctx: VaultContext, gid: str) -> int:
    """The index of the grant's latest transition (grant.* entry; reads do not count)."""
    return max(i for i, e in enumerate(entries(ctx))
               if e["kind"].startswith("grant.") and e["body"].get("grant_id") == gid)


def test_an_old_signature_cannot_be_replayed(ctx: VaultContext) -> None:
    w, device, gid = approved(ctx)
    g = grants.get_grant(ctx, gid)
    first = device.proof(challenge=action_challenge(
        grant_id=gid, action="pause", terms_hash=g.terms_hash, after=g_last_seq(ctx, gid)))
    grants.pause_grant(ctx, gid, citizen_id=w.citizen_id, proof=first)
    grants.resume_grant(ctx, gid, citizen_id=w.citizen_id, proof=device.proof(
        challenge=action_challenge(grant_id=gid, action="resume", terms_hash=g.terms_hash,
                                   after=g_last_seq(ctx, gid))))
    with pytest.raises(WalletError):
        grants.pause_grant(ctx, gid, citizen_id=w.citizen_id, proof=first)
    assert grants.get_grant(ctx, gid).state is GrantState.APPROVED


def test_expiry_and_the_sweeper(ctx: VaultContext, clock: Clock) -> None:
    w, _, gid = approved(ctx)
    clock.advance(days=30)
    assert reason(ctx, w, gid) == "expired"
    assert sweep(ctx).expired == 1
    assert grants.get_grant(ctx, gid).state is GrantState.EXPIRED


def test_suspending_the_service_stops_reads_at_once(ctx: VaultContext) -> None:
    w, _, gid = approved(ctx)
    registry.suspend_service(ctx, w.service_id)
    assert reason(ctx, w, gid) == "service_suspended"


def test_approvals_that_do_not_prove_consent_are_refused(ctx: VaultContext) -> None:
    w = world(ctx)
    device = add_passkey(ctx, w.citizen_id)
    g = ask(ctx, w)
    stranger = citizens.enrol_citizen(ctx)
    strangers_device = add_passkey(ctx, stranger.id)
    bad = [
        strangers_device.proof(challenge=g.terms_hash),           # another citizen's passkey
        device.proof(challenge=b"\x00" * 32),                    # other terms
        device.proof(challenge=g.terms_hash, uv=False),          # no user verification
        device.proof(challenge=g.terms_hash, origin="https://evil.example"),
        device.proof(challenge=g.terms_hash, wrong_key=True),
    ]
    for proof in bad:
        with pytest.raises(WalletError):
            grants.approve_grant(ctx, g.id, citizen_id=w.citizen_id, proof=proof)
        assert grants.get_grant(ctx, g.id).state is GrantState.REQUESTED
    assert not [e for e in entries(ctx) if e["kind"] == "grant.approved"]
