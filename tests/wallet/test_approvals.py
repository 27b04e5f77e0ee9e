"""Approvals signed with a passkey: checked by `PasskeyApprovalVerifier` inside the
caller's transaction, and checkable again by anyone from the ledger alone."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from support.walletenv import ORIGIN, Wallet, make_wallet

from clients.auditor.assertion import load_cose_key, parse_assertion, verify_assertion
from ledger.entry import Entry
from vault.domain.grants import Access
from vault.services import grants, registry
from vault.services.approvals import ApprovalProof, action_challenge
from vault.services.context import unit_of_work
from vault.storage.tables import PasskeyRow
from wallet.errors import PasskeyRejected
from wallet.passkeys import AssertionRejected, verify_approval_offline
from wallet.passkeys.offline import b64url_decode, b64url_encode
from wallet.passkeys.software import Alg, SoftAuthenticator

TERMS_HASH = hashlib.sha256(b"the exact terms").digest()


@contextmanager
def rejected(reason: str) -> Iterator[None]:
    with pytest.raises(PasskeyRejected) as exc:
        yield
    assert exc.value.reason == reason, (exc.value.reason, str(exc.value))


def approve(wallet: Wallet, citizen_id: str, proof: ApprovalProof,
            challenge: bytes = TERMS_HASH) -> None:
    with unit_of_work(wallet.ctx) as work:
        wallet.ctx.approvals.verify(work.session, citizen_id=citizen_id, challenge=challenge,
                                    proof=proof)


def test_an_approval_verifies_and_moves_the_counter(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen_id, cid = wallet.sign_up(device)
    wallet.clock.advance(hours=1)
    approve(wallet, citizen_id, device.proof(challenge=TERMS_HASH))
    row = wallet.passkey(cid)
    assert row.sign_count == 1 and row.last_used_at == wallet.clock()
    approve(wallet, citizen_id, device.proof(challenge=TERMS_HASH))
    assert wallet.passkey(cid).sign_count == 2


@pytest.mark.parametrize(("knobs", "reason"), [
    ({"uv": False}, "user_not_verified"),
    ({"origin": "https://evil.example"}, "wrong_origin"),
    ({"rp_id": "evil.example"}, "wrong_rp_id"),
    ({"wrong_key": True}, "bad_signature"),
    ({"challenge": hashlib.sha256(b"other terms").digest()}, "challenge_mismatch"),
    ({"client_type": "webauthn.create"}, "wrong_type"),
])
def test_approval_refusals(wallet: Wallet, device: SoftAuthenticator,
                           knobs: dict[str, Any], reason: str) -> None:
    citizen_id, cid = wallet.sign_up(device)
    knobs = {"challenge": TERMS_HASH, **knobs}
    with rejected(reason):
        approve(wallet, citizen_id, device.proof(**knobs))
    assert wallet.passkey(cid).sign_count == 0


def test_an_rs256_approval_verifies_and_a_flipped_signature_byte_does_not(
        wallet: Wallet) -> None:
    device = SoftAuthenticator(origin=ORIGIN, alg="RS256")
    citizen_id, cid = wallet.sign_up(device)
    proof = device.proof(challenge=TERMS_HASH)
    signature = b64url_decode(proof.signature, what="signature")
    assert len(signature) == 256  # RSA 2048, PKCS#1 v1.5
    for pos in (0, 1, 127, 254, 255):
        damaged = bytearray(signature)
        damaged[pos] ^= 0x01
        with rejected("bad_signature"):
            approve(wallet, citizen_id, replace(proof, signature=b64url_encode(bytes(damaged))))
    assert wallet.passkey(cid).sign_count == 0
    approve(wallet, citizen_id, proof)
    assert wallet.passkey(cid).sign_count == 1


def test_an_approval_with_another_citizens_passkey_is_refused(wallet: Wallet) -> None:
    ada_phone, bob_phone = SoftAuthenticator(origin=ORIGIN), SoftAuthenticator(origin=ORIGIN)
    ada, _ = wallet.sign_up(ada_phone)
    _, bob_cid = wallet.sign_up(bob_phone)
    with rejected("other_citizen"):
        approve(wallet, ada, bob_phone.proof(challenge=TERMS_HASH))
    assert wallet.passkey(bob_cid).sign_count == 0


def test_an_approval_with_an_unknown_passkey_is_refused(wallet: Wallet) -> None:
    citizen_id, _ = wallet.sign_up(SoftAuthenticator(origin=ORIGIN))
    stranger = SoftAuthenticator(origin=ORIGIN)
    stranger.create({"rp": {"id": "localhost"}, "user": {"id": "AA"}, "challenge": "AA"})
    with pytest.raises(PasskeyRejected) as exc:
        approve(wallet, citizen_id, stranger.proof(challenge=TERMS_HASH))
    assert exc.value.reason == "unknown_credential"
    assert "or is no longer" in str(exc.value) and "another of your passkeys" in str(exc.value)


def test_a_replayed_approval_is_refused(wallet: Wallet, device: SoftAuthenticator) -> None:
    citizen_id, _ = wallet.sign_up(device)
    proof = device.proof(challenge=TERMS_HASH)
    approve(wallet, citizen_id, proof)
    with rejected("counter_regression"):
        approve(wallet, citizen_id, proof)


def test_an_approval_counter_going_backwards_is_refused(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen_id, cid = wallet.sign_up(device)
    approve(wallet, citizen_id, device.proof(challenge=TERMS_HASH, counter=7))
    with rejected("counter_regression"):
        approve(wallet, citizen_id, device.proof(challenge=TERMS_HASH, counter=6))
    assert wallet.passkey(cid).sign_count == 7


def test_the_counter_commits_with_the_callers_transaction(
    wallet: Wallet, device: SoftAuthenticator
) -> None:
    citizen_id, cid = wallet.sign_up(device)
    with pytest.raises(RuntimeError), unit_of_work(wallet.ctx) as work:
        wallet.ctx.approvals.verify(work.session, citizen_id=citizen_id,
                                    challenge=TERMS_HASH,
                                    proof=device.proof(challenge=TERMS_HASH))
        raise RuntimeError("the approval failed after the check")
    assert wallet.passkey(cid).sign_count == 0


def test_a_racing_use_with_the_same_counter_loses(pg_database_url: str, tmp_path: Path) -> None:
    """Two transactions read counter 0; the one that writes second is refused (CAS).

    PostgreSQL only: on SQLite the first statement of a write transaction takes the
    database lock, so the two cannot interleave at all.
    """
    wallet = make_wallet(pg_database_url, tmp_path)
    try:
        device = SoftAuthenticator(origin=ORIGIN)
        citizen_id, cid = wallet.sign_up(device)
        slow, fast = device.proof(challenge=TERMS_HASH), device.proof(challenge=TERMS_HASH)
        with Session(wallet.ctx.engine) as session, session.begin():
            assert session.get(PasskeyRow, cid) is not None  # reads counter 0
            approve(wallet, citizen_id, fast)  # another transaction moves it to 2
            with rejected("counter_regression"):
                wallet.ctx.approvals.verify(session, citizen_id=citizen_id,
                                            challenge=TERMS_HASH, proof=slow)
        assert wallet.passkey(cid).sign_count == 2
    finally:
        wallet.ctx.engine.dispose()


# -- the whole path: approve, pause and revoke a grant, then audit the ledger ----------

JWK = {"kty": "EC", "crv": "P-256",
       "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
       "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"}


ACTIONS = {"grant.paused": "pause", "grant.resumed": "resume", "grant.revoked": "revoke"}


def audit_signed_actions(entries: list[Entry], *, rp_id: str, origins: list[str]) -> int:
    """What an auditor does with the ledger alone: every signed grant action must verify
    against the key its credential registered, by the wallet's offline check and by the
    auditor's own (clients.auditor.assertion). Returns how many were checked."""
    keys = {e.body["credential_id"]: b64url_decode(e.body["public_key"], what="key")
            for e in entries if e.kind == "passkey.registered"}
    terms: dict[str, bytes] = {}
    last: dict[str, int] = {}
    checked = 0
    for e in entries:
        grant_id = str(e.body.get("grant_id", ""))
        if e.kind == "grant.requested":
            terms[grant_id] = base64.b64decode(e.body["terms_hash"])
        if "assertion" in e.body:
            a = e.body["assertion"]
            proof = ApprovalProof(a["credential_id"], a["authenticator_data"],
                                  a["client_data_json"], a["signature"])
            if e.kind == "grant.approved":
                challenge = terms[grant_id]
            else:  # recomputed, not taken from the entry: it must commit to the past
                challenge = action_challenge(grant_id=grant_id, action=ACTIONS[e.kind],
                                             terms_hash=terms[grant_id], after=last[grant_id])
            verify_approval_offline(public_key_cose=keys[proof.credential_id],
                                    challenge=challenge, proof=proof, rp_id=rp_id,
                                    origins=origins)
            verify_assertion(parse_assertion(a), public_key=load_cose_key(
                keys[proof.credential_id]), expected_challenge=challenge,
                expected_rp_id=rp_id, expected_origins=origins)
            checked += 1
        if grant_id:
            last[grant_id] = e.seq
    return checked


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_approvals_on_the_ledger_verify_offline(wallet: Wallet, alg: Alg) -> None:
    device = SoftAuthenticator(origin=ORIGIN, alg=alg)
    citizen_id, _ = wallet.sign_up(device)
    service_id = registry.register_service(wallet.ctx, registry.Registration(
        name="Blue Badge team", description="Decides Blue Badge applications",
        purposes=["eligibility_assessment"], categories=["address.home"], jwk=JWK,
        redirect_uris=["https://badges.example.gov/cb"],
        privacy_notice_url="https://badges.example.gov/privacy", max_days=90))
    grant = grants.request_grant(
        wallet.ctx, service_id=service_id, citizen_id=citizen_id,
        purpose="eligibility_assessment", categories=["address.home"],
        access=Access("periodic", max_reads=3), data_life="P30D",
        justification="To check you can have a Blue Badge.", duration=timedelta(days=30))
    grants.approve_grant(wallet.ctx, grant.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=grant.terms_hash))
    [approved] = wallet.entries("grant.approved")
    pause = action_challenge(grant_id=grant.id, action="pause", terms_hash=grant.terms_hash,
                             after=approved.seq)
    grants.pause_grant(wallet.ctx, grant.id, citizen_id=citizen_id,
                       proof=device.proof(challenge=pause))
    [paused] = wallet.entries("grant.paused")
    revoke = action_challenge(grant_id=grant.id, action="revoke", terms_hash=grant.terms_hash,
                              after=paused.seq)
    grants.revoke_grant(wallet.ctx, grant.id, citizen_id=citizen_id,
                        proof=device.proof(challenge=revoke))

    entries = wallet.entries()
    assert audit_signed_actions(entries, rp_id="localhost", origins=[ORIGIN]) == 3
    # The pause signature cannot stand for the revoke: the auditor would catch a swap.
    [revoked] = wallet.entries("grant.revoked")
    revoked.body["assertion"] = paused.body["assertion"]
    swapped = [revoked if e.seq == revoked.seq else e for e in entries]
    with pytest.raises(AssertionRejected) as exc:
        audit_signed_actions(swapped, rp_id="localhost", origins=[ORIGIN])
    assert exc.value.reason == "challenge_mismatch"
