"""A consent receipt of a sealed ledger (v2) carries the openings of its own entries: the
auditor checks each against its entry's commitment, then the approval and the claims on
the opened bodies. A receipt changed and signed again by the vault's key (the operator
lying about what its ledger holds) fails at the entry whose opening does not match."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.vaultworld import World, ask, blue_badge
from support.walletenv import ORIGIN, Wallet, make_wallet

from clients.auditor.receipt import verify_receipt
from ledger.note import Signer, Verifier
from vault.services import grants
from wallet import receipts
from wallet.passkeys.software import SoftAuthenticator


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Wallet, Signer, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("receipt-openings")
    wallet = make_wallet(f"sqlite:///{tmp / 'vault.db'}", tmp)
    device = SoftAuthenticator(origin=ORIGIN)
    citizen_id, _ = wallet.sign_up(device)
    grant = ask(wallet.ctx, World(blue_badge(wallet.ctx), citizen_id, ""))
    wallet.clock.advance(minutes=5)
    grants.approve_grant(wallet.ctx, grant.id, citizen_id=citizen_id,
                         proof=device.proof(challenge=grant.terms_hash))
    signer = Signer.generate("localhost/ledger")
    yield wallet, signer, receipts.build_receipt(wallet.ctx, signer, citizen_id=citizen_id,
                                                 grant_id=grant.id, rp=wallet.rp)
    wallet.ctx.engine.dispose()


def resigned(receipt: dict[str, Any], signer: Signer, change: Any) -> dict[str, Any]:
    """The receipt changed, and signed again with the vault's key."""
    r = {k: v for k, v in copy.deepcopy(receipt).items() if k != "signature"}
    change(r["ledger_evidence"])
    return receipts.sign_receipt(r, signer)


def problems(receipt: dict[str, Any], signer: Signer) -> list[tuple[str, int | None]]:
    return [(p.check, p.index) for p in verify_receipt(
        receipt, expected_key=signer.verifier()).problems]


def _opening(evidence: dict[str, Any], kind: str) -> dict[str, Any]:
    index = next(e["index"] for e in evidence["entries"] if e["kind"] == kind)
    found: dict[str, Any] = next(o for o in evidence["openings"] if o["seq"] == index)
    return found


def test_a_sealed_receipt_verifies_through_its_openings(
        approved: tuple[Wallet, Signer, dict[str, Any]]) -> None:
    _, signer, receipt = approved
    evidence = receipt["ledger_evidence"]
    sealed = [e["index"] for e in evidence["entries"] if '"sealed":' in e["entry"]]
    assert sealed and sorted(o["seq"] for o in evidence["openings"]) == sealed
    report = verify_receipt(receipt, expected_key=signer.verifier())
    assert report.ok, report.problems
    assert report.entries_opened == len(sealed) and report.signatures_verified == 1
    assert report.subject is not None and report.subject.startswith("sub_")


def test_a_changed_opening_or_salt_fails_at_its_entry(
        approved: tuple[Wallet, Signer, dict[str, Any]]) -> None:
    _, signer, receipt = approved
    approval = _opening(receipt["ledger_evidence"], "grant.approved")["seq"]
    other = resigned(receipt, signer, lambda ev: _opening(ev, "grant.approved")["private"]
                     .update(subject="sub_someone_else"))
    assert ("opening", approval) in problems(other, signer)
    salted = resigned(receipt, signer, lambda ev: _opening(ev, "grant.approved").update(
        salt=base64.b64encode(b"\0" * 32).decode()))
    assert ("opening", approval) in problems(salted, signer)


def test_a_missing_stray_or_malformed_opening_is_named(
        approved: tuple[Wallet, Signer, dict[str, Any]]) -> None:
    _, signer, receipt = approved
    requested = _opening(receipt["ledger_evidence"], "grant.requested")["seq"]

    def drop(ev: dict[str, Any]) -> None:
        ev["openings"] = [o for o in ev["openings"] if o["seq"] != requested]

    assert ("opening", requested) in problems(resigned(receipt, signer, drop), signer)

    def stray(ev: dict[str, Any]) -> None:
        ev["openings"].append({**ev["openings"][0], "seq": 10_000})

    assert ("opening", 10_000) in problems(resigned(receipt, signer, stray), signer)

    def malformed(ev: dict[str, Any]) -> None:
        ev["openings"][0]["salt"] = "not base64!"

    assert ("opening", None) in problems(resigned(receipt, signer, malformed), signer)


def test_the_approval_is_checked_on_the_opened_body(
        approved: tuple[Wallet, Signer, dict[str, Any]]) -> None:
    """An opening that matches its commitment but whose assertion was swapped cannot be
    made: so a swapped assertion shows as a bad opening, and no signature is counted."""
    _, signer, receipt = approved
    approval = _opening(receipt["ledger_evidence"], "grant.approved")["seq"]

    def swap(ev: dict[str, Any]) -> None:
        a = _opening(ev, "grant.approved")["private"]["assertion"]
        a["signature"] = a["signature"][::-1]

    report = verify_receipt(resigned(receipt, signer, swap), expected_key=signer.verifier())
    assert ("opening", approval) in [(p.check, p.index) for p in report.problems]
    assert report.signatures_verified == 0


def test_a_receipt_from_before_v2_keeps_verifying() -> None:
    """vectors/receipt_v1.json: a receipt the wallet made before ledger v2 (whole entries,
    no `openings`), with the key that signed it."""
    vector = json.loads((Path(__file__).parent / "vectors" / "receipt_v1.json").read_text())
    receipt = vector["receipt"]
    assert "openings" not in receipt["ledger_evidence"]
    report = verify_receipt(receipt, expected_key=Verifier.parse(vector["verifier_key"]))
    assert report.ok, report.problems
    assert report.entries_opened == 0 and report.signatures_verified == 1
    assert report.status == "approved"
    # Given an opening anyway, for a whole entry: named, not used.
    first = receipt["ledger_evidence"]["entries"][0]["index"]

    def stray(ev: dict[str, Any]) -> None:
        ev["openings"] = [{"seq": first, "salt": base64.b64encode(b"\1" * 32).decode(),
                           "private": {}}]

    signer_free = {k: v for k, v in copy.deepcopy(receipt).items() if k != "signature"}
    stray(signer_free["ledger_evidence"])
    assert ("opening", first) in [(p.check, p.index) for p in verify_receipt(
        signer_free, expected_key=Verifier.parse(vector["verifier_key"])).problems]
