"""Acting for others, through the vault's own services (issue 14 §4): a ledger where a
delegate approved and paused a grant for the principal verifies in the auditor as the
vault wrote it; the consent receipt of that grant carries the delegation it was approved
under, and a receipt without it, or with it changed, fails at the entries concerned."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.vaultworld import World, ask, blue_badge
from support.walletenv import ORIGIN, Wallet, make_wallet
from typer.testing import CliRunner

from clients.auditor.cli import app
from clients.auditor.delegations import NEEDS
from clients.auditor.receipt import verify_receipt
from clients.auditor.story import StoryChecker
from ledger.entry import Entry, encode_sealed_entry, parse_entry
from ledger.note import Signer
from ledger.sealing import seal
from vault.domain.grants import ENTRY_KIND, GrantAction
from vault.services import citizens, delegations, dependants, grants
from vault.services.citizens import get_citizen
from vault.services.context import reading, unit_of_work
from vault.services.grants import DELEGATED
from wallet import receipts
from wallet.passkeys import register_passkey
from wallet.passkeys.software import SoftAuthenticator

RP_ID = "localhost"


@dataclass
class Delegated:
    wallet: Wallet
    signer: Signer
    receipt: dict[str, Any]
    principal: str  # ledger pseudonyms
    delegate: str
    denied: dict[str, Any]  # the receipt of a request the delegate declined


@pytest.fixture(scope="module")
def delegated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delegated]:
    tmp = tmp_path_factory.mktemp("delegated")
    wallet = make_wallet(f"sqlite:///{tmp / 'vault.db'}", tmp)
    ctx = wallet.ctx
    ada_device, bob_device = SoftAuthenticator(origin=ORIGIN), SoftAuthenticator(origin=ORIGIN)
    ada, _ = wallet.sign_up(ada_device)
    bob, _ = wallet.sign_up(bob_device)
    # Bob may act for Ada: both sign the terms with their passkeys.
    with unit_of_work(ctx) as work:
        row = delegations.propose(work, principal_id=ada, delegate_id=bob, kind="attorney",
                                  actions=["approve", "revoke", "view"],
                                  until=wallet.clock() + timedelta(days=30), origin="invited")
        delegations.sign(work, row, side="delegate", verifier=ctx.approvals,
                         proof=bob_device.proof(challenge=row.terms_hash))
        delegations.sign(work, row, side="principal", verifier=ctx.approvals,
                         proof=ada_device.proof(challenge=row.terms_hash))
    grant = ask(ctx, World(blue_badge(ctx), ada, ""))
    wallet.clock.advance(minutes=5)
    grants.approve_grant(ctx, grant.id, citizen_id=ada, actor_id=bob,
                         proof=bob_device.proof(challenge=grant.terms_hash))
    wallet.clock.advance(minutes=5)
    challenge = grants.signing_challenge(ctx, grant.id, citizen_id=ada,
                                         action=GrantAction.PAUSE)
    grants.pause_grant(ctx, grant.id, citizen_id=ada, actor_id=bob,
                       proof=bob_device.proof(challenge=challenge))
    declined = ask(ctx, World(blue_badge(ctx), ada, ""))
    grants.deny_grant(ctx, declined.id, citizen_id=ada, actor_id=bob)  # unsigned
    signer = Signer.generate("localhost/ledger")
    with reading(ctx) as session:
        subjects = get_citizen(session, ada).subject, get_citizen(session, bob).subject
    yield Delegated(wallet, signer, receipts.build_receipt(
        ctx, signer, citizen_id=ada, grant_id=grant.id, rp=wallet.rp), *subjects,
        receipts.build_receipt(ctx, signer, citizen_id=ada, grant_id=declined.id,
                               rp=wallet.rp))
    ctx.engine.dispose()


def _story_checked(wallet: Wallet) -> tuple[StoryChecker, list[Entry]]:
    """Every entry the vault wrote, opened, through the auditor's story checks."""
    checker = StoryChecker(rp_id=RP_ID, origins=[ORIGIN])
    entries = wallet.entries()
    for e in entries:
        checker.feed_parts(e.seq, e.kind, e.time, dict(e.body))
    checker.finish()
    return checker, entries


def test_the_auditor_needs_what_the_vault_asks_for() -> None:
    for action, needed in DELEGATED.items():
        assert NEEDS[ENTRY_KIND[action]] == needed.value, action


def test_a_ledger_with_a_delegates_actions_verifies_as_the_vault_wrote_it(
        delegated: Delegated) -> None:
    checker, entries = _story_checked(delegated.wallet)
    assert checker.failures == [] and checker.warnings == []
    assert (checker.stats.delegations, checker.stats.delegated_actions) == (1, 3)
    acted = [e for e in entries if e.body.get("actor") == delegated.delegate]
    assert [e.kind for e in acted] == ["grant.approved", "grant.paused", "grant.denied"]
    assert all(e.body["subject"] == delegated.principal for e in acted)


def test_a_childs_vault_made_and_handed_over_verifies(tmp_path: Path) -> None:
    """A parent makes a child's vault (the delegation live on the parent's signature
    alone, the child's first records written by the parent for the child), approves a
    grant for the child, and hands the vault over: the child's own passkey, the parent's
    delegation ended by "handover", and the child approving for themself."""
    wallet = make_wallet(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)
    ctx = wallet.ctx
    parent_device, child_device = SoftAuthenticator(origin=ORIGIN), SoftAuthenticator(
        origin=ORIGIN)
    parent, _ = wallet.sign_up(parent_device)
    plan = dependants.plan_child(parent_id=parent, given="Ada", family="Byron",
                                 date_of_birth="2018-12-10", until=None, now=wallet.clock())
    with reading(ctx) as session:
        challenge = dependants.child_terms(session, plan).terms_hash()
    child = dependants.create_child(ctx, plan, proof=parent_device.proof(challenge=challenge),
                                    verifier=ctx.approvals).child_id
    first = ask(ctx, World(blue_badge(ctx), child, ""))
    grants.approve_grant(ctx, first.id, citizen_id=child, actor_id=parent,
                         proof=parent_device.proof(challenge=first.terms_hash))
    code = dependants.issue_handover(ctx, b"s" * 32, parent_id=parent, child_id=child).code
    options, ceremony = wallet.start_registration(child)
    answer, key = child_device.create(options), wallet.data_key(child)
    with unit_of_work(ctx) as work:  # as the wallet does: one transaction
        handover = dependants.claim_handover(work, b"s" * 32, code)
        register_passkey(work, wallet.rp, citizen_id=child, credential=answer, data_key=key,
                         expected_challenge=wallet.store.take(ceremony, purpose="register",
                                                              now=wallet.clock()),
                         label="My phone")
        dependants.settle_handover(work, handover, keep=False)
    second = ask(ctx, World(blue_badge(ctx), child, ""))
    grants.approve_grant(ctx, second.id, citizen_id=child,
                         proof=child_device.proof(challenge=second.terms_hash))
    checker, entries = _story_checked(wallet)
    assert checker.failures == [], checker.failures
    # The child's two first records and the first approval were the parent's.
    assert (checker.stats.delegations, checker.stats.delegated_actions) == (1, 3)
    assert [e.body["by"] for e in entries if e.kind == "delegation.revoked"] == ["handover"]
    ctx.engine.dispose()


def test_an_erasure_ending_the_erased_persons_delegations_verifies(tmp_path: Path) -> None:
    """Bob acts for Ada, and Cy for Bob; Bob, with a live grant, leaves the vault: his
    delegations on both sides end as citizen_erased in the erasure's transaction."""
    wallet = make_wallet(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)
    ctx = wallet.ctx
    devices = {name: SoftAuthenticator(origin=ORIGIN) for name in ("ada", "bob", "cy")}
    ids = {name: wallet.sign_up(device)[0] for name, device in devices.items()}
    for principal, delegate in (("ada", "bob"), ("bob", "cy")):
        with unit_of_work(ctx) as work:
            row = delegations.propose(work, principal_id=ids[principal],
                                      delegate_id=ids[delegate], kind="attorney",
                                      actions=["approve", "view"], origin="invited",
                                      until=wallet.clock() + timedelta(days=30))
            for side, who in (("delegate", delegate), ("principal", principal)):
                delegations.sign(work, row, side=side, verifier=ctx.approvals,
                                 proof=devices[who].proof(challenge=row.terms_hash))
    grant = ask(ctx, World(blue_badge(ctx), ids["bob"], ""))
    grants.approve_grant(ctx, grant.id, citizen_id=ids["bob"], actor_id=ids["cy"],
                         proof=devices["cy"].proof(challenge=grant.terms_hash))
    citizens.erase_citizen(ctx, ids["bob"])
    checker, entries = _story_checked(wallet)
    assert checker.failures == [], checker.failures
    assert [e.body.get("by") for e in entries if e.kind == "delegation.revoked"] == [
        "citizen_erased", "citizen_erased"]
    assert entries[-1].kind == "citizen.erased"
    ctx.engine.dispose()


# -- the consent receipt ------------------------------------------------------------------


def _index(receipt: dict[str, Any], kind: str) -> int:
    found: int = next(e["index"] for e in receipt["ledger_evidence"]["entries"]
                      if e["kind"] == kind)
    return found


def problems(receipt: dict[str, Any], signer: Signer) -> list[tuple[str, int | None]]:
    return [(p.check, p.index) for p in verify_receipt(
        receipt, expected_key=signer.verifier()).problems]


def resigned(d: Delegated, change: Any) -> dict[str, Any]:
    """The receipt changed, and signed again with the vault's key."""
    r = {k: v for k, v in copy.deepcopy(d.receipt).items() if k != "signature"}
    change(r["ledger_evidence"])
    return receipts.sign_receipt(r, d.signer)


def test_a_receipt_of_a_grant_a_delegate_approved_verifies_with_its_delegation(
        delegated: Delegated) -> None:
    receipt = delegated.receipt
    evidence = receipt["ledger_evidence"]
    granted = _index(receipt, "delegation.granted")
    assert granted in [o["seq"] for o in evidence["openings"]]
    assert [e["kind"] for e in evidence["entries"]].count("passkey.registered") == 2
    report = verify_receipt(receipt, expected_key=delegated.signer.verifier())
    assert report.ok, report.problems
    assert (report.delegated, report.signatures_verified) == (2, 2)
    by = {e["event_type"]: e["entity_id"] for e in receipt["events"]}
    assert by["grant.approved"] == by["grant.paused"] == delegated.delegate


def test_a_request_a_delegate_declined_is_checked_against_the_delegation_too(
        delegated: Delegated) -> None:
    """A refusal is not signed, but it is the delegate's: the receipt shows under which
    delegation, and without it the refusal is named."""
    report = verify_receipt(delegated.denied, expected_key=delegated.signer.verifier())
    assert report.ok, report.problems
    assert (report.delegated, report.signatures_verified, report.status) == (1, 0, "denied")
    by = {e["event_type"]: e["entity_id"] for e in delegated.denied["events"]}
    assert by["grant.denied"] == delegated.delegate
    granted = _index(delegated.denied, "delegation.granted")
    r = {k: v for k, v in copy.deepcopy(delegated.denied).items() if k != "signature"}
    ev = r["ledger_evidence"]
    ev["entries"] = [e for e in ev["entries"] if e["index"] != granted]
    ev["openings"] = [o for o in ev["openings"] if o["seq"] != granted]
    found = problems(receipts.sign_receipt(r, delegated.signer), delegated.signer)
    assert found == [("delegation", _index(delegated.denied, "grant.denied"))]


def test_vault_audit_receipt_says_how_many_steps_a_delegate_took(
        delegated: Delegated, tmp_path: Path) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(delegated.receipt))
    pins = ["--key", str(delegated.signer.verifier()), "--rp-id", RP_ID, "--origin", ORIGIN]
    r = CliRunner().invoke(app, ["receipt", str(path), "--json", *pins])
    assert r.exit_code == 0 and json.loads(r.stdout)["delegated"] == 2
    r = CliRunner().invoke(app, ["receipt", str(path), *pins])
    assert r.exit_code == 0
    assert "delegates: 2 steps taken by someone acting for the citizen" in r.stdout


def test_a_receipt_without_the_delegation_fails_at_each_delegated_step(
        delegated: Delegated) -> None:
    granted = _index(delegated.receipt, "delegation.granted")

    def drop(ev: dict[str, Any]) -> None:
        ev["entries"] = [e for e in ev["entries"] if e["index"] != granted]
        ev["openings"] = [o for o in ev["openings"] if o["seq"] != granted]

    found = problems(resigned(delegated, drop), delegated.signer)
    assert found == [("delegation", _index(delegated.receipt, "grant.approved")),
                     ("delegation", _index(delegated.receipt, "grant.paused"))]


def test_a_receipt_whose_delegation_was_changed_fails(delegated: Delegated) -> None:
    granted = _index(delegated.receipt, "delegation.granted")
    approved = _index(delegated.receipt, "grant.approved")

    def other_delegate(ev: dict[str, Any]) -> None:  # the opening changed, not re-sealed
        next(o for o in ev["openings"] if o["seq"] == granted)["private"]["delegate"] = \
            "sub_someone_else"

    found = problems(resigned(delegated, other_delegate), delegated.signer)
    assert ("opening", granted) in found and ("delegation", approved) in found

    def resealed(actions: list[str]) -> Any:
        """The delegation written again with other actions, sealed consistently (so only
        the inclusion proof, and the delegation's own checks, can tell)."""
        def change(ev: dict[str, Any]) -> None:
            item = next(e for e in ev["entries"] if e["index"] == granted)
            opening = next(o for o in ev["openings"] if o["seq"] == granted)
            entry = parse_entry(item["entry"].encode())
            body = {**entry.body, **opening["private"], "actions": actions}
            s = seal(granted, entry.kind, body, bytes(32))
            item["entry"] = encode_sealed_entry(granted, entry.time, entry.kind, entry.prev,
                                                s.public, s.sealed).decode()
            ev["openings"] = [orjson.loads(s.opening) if o["seq"] == granted else o
                              for o in ev["openings"]]
        return change

    found = problems(resigned(delegated, resealed(["view"])), delegated.signer)
    assert ("inclusion", granted) in found
    assert ("delegation", approved) in found  # it does not allow approve
    # Allowing what was done, but no longer what both people signed.
    found = problems(resigned(delegated, resealed(["approve", "edit", "revoke", "view"])),
                     delegated.signer)
    assert ("inclusion", granted) in found and ("delegation", granted) in found
