"""Consent receipts: ISO/IEC TS 27560 fields with DPV terms, and ledger evidence that
anyone can check offline; any changed byte of that evidence is caught."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session
from support.vaultworld import JWK, World, ask, blue_badge
from support.walletenv import ORIGIN, Wallet, make_wallet
from support.webwallet import open_wallet

from clients.auditor import receipt as auditor
from clients.auditor.receipt import verify_receipt
from ledger.canonical import canonical_json
from ledger.checkpoint import open_checkpoint
from ledger.entry import Entry, encode_sealed_entry, parse_entry
from ledger.note import Signer, Verifier
from ledger.sealing import commitment, full_body, parse_opening, split
from ledger.sqlstore import SqlLedger
from ledger.verify import verify_leaf_inclusion
from vault.domain.grants import ENTRY_KIND, GrantAction, GrantState
from vault.domain.purposes import purposes
from vault.errors import NotFound
from vault.services import grants, records, registry
from vault.services.approvals import ApprovalProof, action_challenge
from vault.services.checkpoints import publish_checkpoint
from vault.services.citizens import get_citizen
from vault.services.context import unit_of_work
from wallet import receipts
from wallet.passkeys import remove_passkey
from wallet.passkeys.offline import b64url_decode, verify_approval_offline
from wallet.passkeys.software import SoftAuthenticator
from wallet.receipts import build_receipt

REPO = Path(__file__).resolve().parents[2]
#: The citizen's records: none of these may appear anywhere in a receipt.
NAME = {"given": "Augusta", "family": "Lovelace"}
BIRTH = "1950-12-10"
HOME = {"lines": ["12 St James's Square"], "town": "Marylebone", "postcode": "SW1Y 4JH",
        "local_authority": "Westminster"}
PERSONAL = ["Augusta", "Lovelace", BIRTH, "St James", "Marylebone", "SW1Y"]


@dataclass
class Case:
    """A citizen with a passkey and personal records, a service, and one grant."""

    wallet: Wallet
    signer: Signer
    device: SoftAuthenticator
    citizen_id: str
    credential_id: str
    world: World
    grant: grants.GrantView

    def receipt(self, citizen_id: str | None = None, grant_id: str | None = None
                ) -> dict[str, Any]:
        return build_receipt(self.wallet.ctx, self.signer,
                             citizen_id=citizen_id or self.citizen_id,
                             grant_id=grant_id or self.grant.id, rp=self.wallet.rp)

    def approve(self) -> None:
        self.wallet.clock.advance(minutes=5)
        grants.approve_grant(self.wallet.ctx, self.grant.id, citizen_id=self.citizen_id,
                             proof=self.device.proof(challenge=self.grant.terms_hash))

    def sign(self, action: GrantAction, credential_id: str | None = None) -> ApprovalProof:
        challenge = grants.signing_challenge(self.wallet.ctx, self.grant.id,
                                             citizen_id=self.citizen_id, action=action)
        return self.device.proof(challenge=challenge, credential_id=credential_id)

    def filler(self, n: int) -> None:
        filler(self.wallet, n)


def new_case(wallet: Wallet, *, before_sign_up: int = 0) -> Case:
    device = SoftAuthenticator(origin=ORIGIN)
    filler(wallet, before_sign_up)
    wallet.clock.advance(minutes=1)
    citizen_id, credential_id = wallet.sign_up(device)
    for category, value in (("identity.name", NAME), ("identity.date_of_birth", BIRTH),
                            ("address.home", HOME)):
        records.write_record(wallet.ctx, citizen_id, category, value)
    with Session(wallet.ctx.engine) as session:
        subject = get_citizen(session, citizen_id).subject
    world = World(blue_badge(wallet.ctx), citizen_id, subject)
    return Case(wallet, Signer.generate("localhost/ledger"), device, citizen_id,
                credential_id, world, ask(wallet.ctx, world))


def filler(wallet: Wallet, n: int) -> None:
    """`n` unrelated ledger entries (other people's business)."""
    with wallet.ctx.engine.begin() as conn:
        SqlLedger(conn, clock=wallet.clock).append_many(
            [("data.accessed", {"grant_id": f"gr_other{i}"}) for i in range(n)])


@pytest.fixture
def sqlite_wallet(tmp_path: Path) -> Iterator[Wallet]:
    w = make_wallet(f"sqlite:///{tmp_path / 'vault.db'}", tmp_path)
    yield w
    w.ctx.engine.dispose()


def evidence_of(receipt: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in receipt["ledger_evidence"]["entries"] if e["kind"] == kind]


def opened_evidence(receipt: dict[str, Any], kind: str) -> list[Entry]:
    """The receipt's entries of `kind`, each with its full body: a sealed one opened (and
    checked) with the receipt's own opening of it."""
    openings = {o["seq"]: parse_opening(canonical_json(o))
                for o in receipt["ledger_evidence"]["openings"]}
    out = []
    for item in evidence_of(receipt, kind):
        entry = parse_entry(item["entry"].encode())
        out.append(entry._replace(body=full_body(entry, openings.get(entry.seq))))
    return out


def edit_entry(receipt: dict[str, Any], item: dict[str, Any],
               edit: Callable[[dict[str, Any]], None]) -> None:
    """Change what the receipt's entry says, as a forger would: its full body edited, then
    split and sealed again under the same salt, so the opening still opens the entry and
    only its bytes (its inclusion) and what it says give it away."""
    entry = parse_entry(item["entry"].encode())
    [opening] = [o for o in receipt["ledger_evidence"]["openings"] if o["seq"] == entry.seq]
    full = {**entry.body, **opening["private"]}
    edit(full)
    public, private = split(entry.kind, full)
    opening["private"] = private
    sealed = commitment(base64.b64decode(opening["salt"]), private)
    item["entry"] = encode_sealed_entry(entry.seq, entry.time, entry.kind, entry.prev,
                                        public, sealed).decode()


def problems(receipt: Any, **kw: Any) -> list[tuple[str, int | None]]:
    return [(p.check, p.index) for p in verify_receipt(receipt, **kw).problems]


# -- an approved grant ------------------------------------------------------------------


def test_a_receipt_proves_an_approval_offline(wallet: Wallet) -> None:
    """Every check an outside auditor makes, done here with the ledger's and the
    passkeys' pure functions alone, from the receipt alone."""
    case = new_case(wallet)
    case.approve()
    receipt = json.loads(json.dumps(case.receipt()))  # as downloaded
    ev = receipt["ledger_evidence"]
    key = Verifier.parse(ev["verifier_key"])
    assert key == case.signer.verifier()
    checkpoint = open_checkpoint(ev["checkpoint"], expected_verifier=key)
    assert [e["kind"] for e in ev["entries"]] == [
        "passkey.registered", "grant.requested", "grant.approved"]
    for item in ev["entries"]:
        verify_leaf_inclusion(
            entry=item["entry"].encode("utf-8"), index=item["index"],
            tree_size=checkpoint.size,
            proof=[base64.b64decode(h) for h in item["inclusion_proof"]],
            expected_root=checkpoint.root)
    # Each sealed entry's opening, {seq, salt, private}, in the entries' order; the
    # entries themselves name no subject and no passkey.
    assert [o["seq"] for o in ev["openings"]] == [e["index"] for e in ev["entries"]]
    assert all(o.keys() == {"seq", "salt", "private"} for o in ev["openings"])
    for item in ev["entries"]:
        assert receipt["pii_principal_id"] not in item["entry"]
        assert case.credential_id not in item["entry"]
    [requested], [approved], [registered] = (
        opened_evidence(receipt, kind)
        for kind in ("grant.requested", "grant.approved", "passkey.registered"))
    terms_hash = hashlib.sha256(canonical_json(requested.body["terms"])).digest()
    assert terms_hash == case.grant.terms_hash
    assert base64.b64encode(terms_hash).decode() == receipt["terms_hash"] \
        == requested.body["terms_hash"] == approved.body["terms_hash"]
    a = approved.body["assertion"]
    assert registered.body["credential_id"] == a["credential_id"] == case.credential_id
    verify_approval_offline(
        public_key_cose=b64url_decode(registered.body["public_key"], what="key"),
        challenge=terms_hash, proof=ApprovalProof(**a), rp_id=ev["passkeys"]["rp_id"],
        origins=ev["passkeys"]["origins"])

    report = verify_receipt(json.dumps(receipt), expected_key=case.signer.verifier(),
                            expected_rp_id="localhost", expected_origins=[ORIGIN])
    assert report.ok, report.problems
    assert (report.record_id, report.status) == (case.grant.id, "approved")
    assert report.entries_included == 3 and report.signatures_verified == 1
    assert report.key_pinned and report.rp_pinned


def test_the_27560_fields_with_dpv_terms(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet)
    case.approve()
    r = case.receipt()
    purpose = purposes()["eligibility_assessment"]
    assert r["schema_version"] == receipts.RECEIPT_SCHEMA
    assert r["@context"]["dpv"] == "https://w3id.org/dpv#"
    assert r["@type"] == "dpv:ConsentReceipt"
    assert r["receipt_id"].startswith("rcp_") and r["receipt_timestamp"].endswith("Z")
    assert r["record_id"] == case.grant.id
    assert r["pii_principal_id"] == case.world.subject
    approval = r["events"][-1]
    assert r["status"] == {"state": "approved", "consent_status": "dpv:ConsentGiven",
                           "ledger_index": approval["ledger_index"],
                           "since": approval["event_time"], "as_of": r["receipt_timestamp"],
                           "snapshot": r["status"]["snapshot"]}
    [p] = r["purposes"]
    assert p["purpose"] == "eligibility_assessment"
    assert p["purpose_type"] == purpose.dpv_iri == "https://w3id.org/dpv#ServiceAccessDetermination"
    assert p["lawful_basis"] == {"code": "public_task", "description": purpose.lawful_basis_text,
                                 "dpv": "https://w3id.org/dpv#PublicInterest"}
    assert p["pii_information"] == [{"pii_type": "address.home", "label": "Home address",
                                     "@type": "dpv:PersonalData"}]
    assert [d["name"] for d in p["derived_answers"]] == ["age_over_65"]
    assert p["processing_method"] == ["dpv:Disclose", "dpv:Derive"]
    assert p["pii_controllers"] == [case.world.service_id]
    terms = case.grant.terms
    assert p["validity"] == {"not_before": terms.not_before, "expires_at": terms.expires_at}
    assert p["retention_period"]["duration"] == "P30D"
    assert p["access_frequency"] == {"mode": "periodic", "max_reads": 3, "min_interval": None}
    assert p["privacy_notice"] == "https://badges.example.gov/privacy"
    assert r["parties"][0]["party_name"] == "Blue Badge team"
    assert [(e["event_type"], e["event_state"], e["entity_id"]) for e in r["events"]] == [
        ("grant.requested", "dpv:ConsentRequested", case.world.service_id),
        ("grant.approved", "dpv:ConsentGiven", case.world.subject)]
    assert any("Blue Badge team" in line for line in r["notice"]["text"])


def test_a_write_grants_receipt_says_the_service_adds_to_the_vault(
        sqlite_wallet: Wallet) -> None:
    """Issue 12: an issuer's grant to write is a DPV data source that stores, not a
    recipient that is disclosed to; the receipt still verifies offline."""
    case = new_case(sqlite_wallet)
    issuer = registry.register_service(sqlite_wallet.ctx, registry.Registration(
        name="Benefits agency", description="Awards Attendance Allowance",
        purposes=["eligibility_assessment"], categories=[], jwk=JWK,
        redirect_uris=["https://benefits.example.gov/cb"],
        privacy_notice_url="https://benefits.example.gov/privacy",
        issues=["benefits.attendance_allowance"]))
    case.world = dataclasses.replace(case.world, service_id=issuer)
    case.grant = ask(sqlite_wallet.ctx, case.world, categories=[
        "benefits.attendance_allowance"], derived=[], actions=["write"])
    case.approve()
    r = case.receipt()
    [p] = r["purposes"]
    assert p["actions"] == ["write"]
    assert p["processing_method"] == ["dpv:Store"]
    assert p["pii_information"][0]["pii_type"] == "benefits.attendance_allowance"
    assert r["parties"][0]["party_role"] == ["dpv:DataController", "dpv:DataSource"]
    assert p["withdrawal_method"].endswith("can no longer add to your vault from that moment.")
    assert r["notice"]["text"][0] == "Benefits agency is asking to add information to your vault."
    report = verify_receipt(json.dumps(r), expected_key=case.signer.verifier(),
                            expected_rp_id="localhost", expected_origins=[ORIGIN])
    assert report.ok, report.problems
    # An ordinary grant's receipt says it reads.
    read = new_case(sqlite_wallet).receipt()["purposes"][0]
    assert read["actions"] == ["read"] and "dpv:Store" not in read["processing_method"]


def test_a_receipt_holds_no_personal_data(sqlite_wallet: Wallet) -> None:
    """Only the ledger pseudonym: not the citizen's id, nor any value they stored."""
    case = new_case(sqlite_wallet)
    case.approve()
    text = json.dumps(case.receipt(), ensure_ascii=False)
    assert case.world.subject in text
    for value in [*PERSONAL, case.citizen_id]:
        assert value not in text, value


def test_the_download_from_the_grants_page_verifies(tmp_path: Path) -> None:
    """Through the route, which leaves the relying party to the vault's own verifier."""
    with open_wallet(tmp_path) as web:
        b = web.sign_up()
        grant = ask(web.ctx, web.world_for(b))
        assert b.passkey_post(f"/wallet/grants/{grant.id}/approve").status_code == 200
        r = b.client.get(f"/wallet/grants/{grant.id}/receipt.json",
                         headers={"accept": "application/json"})
        assert r.status_code == 200, r.text
        assert "attachment" in r.headers["content-disposition"]
        page = b.get(f"/wallet/grants/{grant.id}").text
        assert " ".join(page.split()).count(
            "It shows this grant as it is at the moment you download it, and does not "
            "change afterwards: if you pause or revoke access later, download a new one.") == 1
        report = verify_receipt(r.content, expected_key=web.state.signer.verifier(),
                                expected_rp_id=web.state.rp.rp_id,
                                expected_origins=web.state.rp.origins)
        assert report.ok and report.signatures_verified == 1, report.problems
        assert "Lovelace" not in r.text and str(b.citizen_id) not in r.text


def test_entries_are_utf8_text_and_survive_any_json_spelling(sqlite_wallet: Wallet) -> None:
    """Entries are JCS, which leaves non-ASCII characters as UTF-8 (not escaped): the
    receipt holds them as text, and the auditor hashes their UTF-8 bytes."""
    case = new_case(sqlite_wallet)
    grant = ask(sqlite_wallet.ctx, case.world,
                justification="Caf\u00e9 \u201cbadge\u201d check \U0001f697")
    r = case.receipt(grant_id=grant.id)
    [item] = evidence_of(r, "grant.requested")
    with sqlite_wallet.ctx.engine.connect() as conn:
        [stored] = SqlLedger(conn).entries(item["index"], 1)
    assert not stored.isascii() and item["entry"].encode("utf-8") == stored
    for ascii_only in (True, False):
        assert verify_receipt(json.dumps(r, ensure_ascii=ascii_only)).ok


# -- whose receipt, and which grants have one -------------------------------------------


def test_another_citizens_grant_or_an_unknown_one_is_not_found(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet)
    stranger, _ = sqlite_wallet.sign_up(SoftAuthenticator(origin=ORIGIN))
    with pytest.raises(NotFound):
        case.receipt(citizen_id=stranger)
    with pytest.raises(NotFound):
        case.receipt(grant_id="gr_nonexistent")


def test_an_unanswered_request_has_a_receipt_without_signatures(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet)
    r = case.receipt()
    assert r["status"]["state"] == "requested"
    assert r["status"]["consent_status"] == "dpv:ConsentRequested"
    assert [e["kind"] for e in r["ledger_evidence"]["entries"]] == ["grant.requested"]
    report = verify_receipt(r)
    assert report.ok and report.signatures_verified == 0 and not report.key_pinned


def test_a_declined_request(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet)
    grants.deny_grant(sqlite_wallet.ctx, case.grant.id, citizen_id=case.citizen_id)
    r = case.receipt()
    assert (r["status"]["state"], r["status"]["consent_status"]) == ("denied",
                                                                     "dpv:ConsentRefused")
    assert verify_receipt(r).ok


def test_pause_resume_and_revoke_are_each_proved(wallet: Wallet) -> None:
    case = new_case(wallet)
    case.approve()
    ctx, cid = wallet.ctx, case.citizen_id
    grants.pause_grant(ctx, case.grant.id, citizen_id=cid, proof=case.sign(GrantAction.PAUSE))
    r = case.receipt()
    assert r["status"]["consent_status"] == "dpv:ConsentStatusInvalidForProcessing"
    grants.resume_grant(ctx, case.grant.id, citizen_id=cid, proof=case.sign(GrantAction.RESUME))
    grants.revoke_grant(ctx, case.grant.id, citizen_id=cid, proof=case.sign(GrantAction.REVOKE))
    r = case.receipt()
    assert [e["event_state"] for e in r["events"]] == [
        "dpv:ConsentRequested", "dpv:ConsentGiven", "dpv:ConsentStatusInvalidForProcessing",
        "dpv:ConsentGiven", "dpv:ConsentWithdrawn"]
    assert r["status"]["state"] == "revoked"
    report = verify_receipt(r, expected_key=case.signer.verifier())
    assert report.ok, report.problems
    assert report.signatures_verified == 4
    # Leaving out the pause breaks the chain the resume signed (its "after" index).
    without_pause = copy.deepcopy(r)
    ev = without_pause["ledger_evidence"]
    ev["entries"] = [e for e in ev["entries"] if e["kind"] != "grant.paused"]
    without_pause["events"] = [e for e in r["events"] if e["event_type"] != "grant.paused"]
    resumed = evidence_of(r, "grant.resumed")[0]["index"]
    assert ("approval", resumed) in problems(without_pause)


# -- a snapshot, and receipts made before it said so --------------------------------------


def test_a_receipt_says_it_is_a_snapshot_of_the_grant_when_it_was_made(
    sqlite_wallet: Wallet,
) -> None:
    """A receipt downloaded before a revocation still says "approved": it must say that
    this was the state when it was made, at what time, and where to see the state now."""
    wallet = sqlite_wallet
    case = new_case(wallet)
    case.approve()
    wallet.clock.advance(minutes=3)
    before = case.receipt()
    made_at, status = before["receipt_timestamp"], before["status"]
    approved_at = before["events"][-1]["event_time"]
    assert made_at == "2026-11-22T09:09:00.000Z" and approved_at == "2026-11-22T09:06:00.000Z"
    assert (status["state"], status["since"], status["as_of"]) == (
        "approved", approved_at, made_at)
    words = status["snapshot"]
    assert words.startswith(f"This receipt shows the grant as it was at {made_at} (UTC), "
                            f"when the receipt was made: approved since {approved_at} "
                            f"(ledger entry {status['ledger_index']}).")
    assert "does not change afterwards" in words
    assert f"vault-audit receipt RECEIPT-FILE --live {ORIGIN}" in words

    wallet.clock.advance(minutes=1)
    grants.revoke_grant(wallet.ctx, case.grant.id, citizen_id=case.citizen_id,
                        proof=case.sign(GrantAction.REVOKE))
    report = verify_receipt(before, expected_key=case.signer.verifier())
    assert report.ok and report.status == "approved" and report.made_at == made_at
    assert [(e.kind, e.time) for e in report.events][-1] == ("grant.approved", approved_at)
    after = case.receipt()["status"]
    assert (after["state"], after["since"]) == ("revoked", "2026-11-22T09:10:00.000Z")


def test_a_receipt_made_before_receipts_said_they_were_snapshots_still_verifies(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    """Old receipts have no status.since, as_of or snapshot: the vault signed them
    without, and the auditor must still accept them."""
    case, receipt = approved
    old = {k: v for k, v in copy.deepcopy(receipt).items() if k != "signature"}
    for name in ("since", "as_of", "snapshot"):
        del old["status"][name]
    old = receipts.sign_receipt(old, case.signer)
    report = verify_receipt(json.dumps(old), expected_key=case.signer.verifier())
    assert report.ok, report.problems
    assert report.status == "approved" and report.made_at == receipt["receipt_timestamp"]


def test_a_snapshot_time_that_is_not_the_receipts_is_refused_even_when_signed(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    """The vault's signature binds the words; the auditor also checks they are right."""
    case, receipt = approved
    for name in ("since", "as_of"):
        r = {k: v for k, v in copy.deepcopy(receipt).items() if k != "signature"}
        r["status"][name] = "2020-01-01T00:00:00.000Z"
        assert problems(receipts.sign_receipt(r, case.signer)) == [("claims", None)], name


# -- the checkpoint and the passkey's registration ----------------------------------------


def test_the_latest_saved_checkpoint_is_used_when_it_covers_the_entries(
    sqlite_wallet: Wallet,
) -> None:
    case = new_case(sqlite_wallet)
    case.approve()
    saved = publish_checkpoint(sqlite_wallet.ctx.engine, case.signer)
    case.filler(5)  # the ledger grows past the saved checkpoint
    r = case.receipt()
    assert r["ledger_evidence"]["checkpoint"] == saved.note
    assert verify_receipt(r).ok


def test_a_checkpoint_is_published_when_the_saved_one_is_too_old(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet)
    old = publish_checkpoint(sqlite_wallet.ctx.engine, case.signer)
    case.approve()
    r = case.receipt()
    cp = open_checkpoint(r["ledger_evidence"]["checkpoint"],
                         expected_verifier=case.signer.verifier())
    assert cp.size > old.size
    with sqlite_wallet.ctx.engine.connect() as conn:
        assert SqlLedger(conn).latest_checkpoint() == (cp.size, r["ledger_evidence"]["checkpoint"])
    assert verify_receipt(r).ok


def test_the_registration_is_found_among_many_entries(sqlite_wallet: Wallet) -> None:
    case = new_case(sqlite_wallet, before_sign_up=2500)
    sqlite_wallet.clock.advance(hours=1)
    case.filler(1200)
    case.approve()
    [registered] = sqlite_wallet.entries("passkey.registered")
    [item] = evidence_of(case.receipt(), "passkey.registered")
    assert item["index"] == registered.seq > 2500


def test_the_registration_search_starts_near_the_passkeys_row(
    sqlite_wallet: Wallet, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A binary search by the row's time, not a read of everything since the approval."""
    case = new_case(sqlite_wallet, before_sign_up=3000)
    sqlite_wallet.clock.advance(hours=1)
    case.filler(6000)
    case.approve()
    read: list[int] = []
    entries = SqlLedger.entries

    def counted(self: SqlLedger, start: int, limit: int) -> list[bytes]:
        read.append(limit)
        return entries(self, start, limit)

    monkeypatch.setattr(SqlLedger, "entries", counted)
    assert verify_receipt(case.receipt()).ok
    assert sum(read) < 1100, f"{sum(read)} entries read in {len(read)} pages"


def test_a_removed_passkeys_registration_is_still_found(sqlite_wallet: Wallet) -> None:
    """Its row is gone, so the ledger is searched backwards from the approval."""
    case = new_case(sqlite_wallet)
    options, ceremony = sqlite_wallet.start_registration(case.citizen_id)
    second = sqlite_wallet.finish_registration(case.citizen_id, ceremony,
                                               case.device.create(options)).credential_id
    case.filler(2300)  # more than two pages between the registration and the approval
    sqlite_wallet.clock.advance(minutes=5)
    grants.approve_grant(sqlite_wallet.ctx, case.grant.id, citizen_id=case.citizen_id,
                         proof=case.device.proof(challenge=case.grant.terms_hash,
                                                 credential_id=case.credential_id))
    with unit_of_work(sqlite_wallet.ctx) as work:
        remove_passkey(work, citizen_id=case.citizen_id, credential_id=case.credential_id,
                       can_recover=False)
    r = case.receipt()
    [registered] = opened_evidence(r, "passkey.registered")
    assert registered.body["credential_id"] == case.credential_id != second
    assert verify_receipt(r).ok


# -- what the offline check catches -------------------------------------------------------


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Case, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("receipt")
    wallet = make_wallet(f"sqlite:///{tmp / 'vault.db'}", tmp)
    case = new_case(wallet)
    case.approve()
    yield case, case.receipt()
    wallet.ctx.engine.dispose()


def index_of(receipt: dict[str, Any], kind: str) -> int:
    return int(evidence_of(receipt, kind)[0]["index"])


def other_char(c: str, pick: int) -> str:
    pool = [x for x in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\"{}:,"
            if x != c]
    return pool[pick % len(pool)]


_FAST = settings(max_examples=150, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FAST
@given(n=st.integers(0, 2), pos=st.integers(0, 10_000), pick=st.integers(0, 100))
def test_any_changed_entry_character_fails_its_check(
    approved: tuple[Case, dict[str, Any]], n: int, pos: int, pick: int,
) -> None:
    _, receipt = approved
    r = copy.deepcopy(receipt)
    item = r["ledger_evidence"]["entries"][n]
    i = pos % len(item["entry"])
    item["entry"] = item["entry"][:i] + other_char(item["entry"][i], pick) + item["entry"][i + 1:]
    found = problems(r)
    assert any(check in ("entry", "inclusion") and index == item["index"]
               for check, index in found), found


@_FAST
@given(n=st.integers(0, 2), h=st.integers(0, 100), byte=st.integers(0, 31),
       bit=st.integers(0, 7), text=st.booleans(), pick=st.integers(0, 100))
def test_any_changed_proof_byte_or_character_fails_inclusion(
    approved: tuple[Case, dict[str, Any]], n: int, h: int, byte: int, bit: int, text: bool,
    pick: int,
) -> None:
    _, receipt = approved
    r = copy.deepcopy(receipt)
    item = r["ledger_evidence"]["entries"][n]
    proof = item["inclusion_proof"]
    assert proof, "every entry here sits in a tree of more than one leaf"
    j = h % len(proof)
    if text:  # any character of the base64 text, padding bits included
        i = byte % len(proof[j])
        proof[j] = proof[j][:i] + other_char(proof[j][i], pick) + proof[j][i + 1:]
    else:
        raw = bytearray(base64.b64decode(proof[j]))
        raw[byte] ^= 1 << bit
        proof[j] = base64.b64encode(bytes(raw)).decode()
    assert ("inclusion", item["index"]) in problems(r)


@_FAST
@given(pos=st.integers(0, 10_000), pick=st.integers(0, 100))
def test_any_changed_checkpoint_character_fails_the_checkpoint(
    approved: tuple[Case, dict[str, Any]], pos: int, pick: int,
) -> None:
    case, receipt = approved
    r = copy.deepcopy(receipt)
    note = r["ledger_evidence"]["checkpoint"]
    i = pos % len(note)
    r["ledger_evidence"]["checkpoint"] = note[:i] + other_char(note[i], pick) + note[i + 1:]
    assert ("checkpoint", None) in problems(r, expected_key=case.signer.verifier())


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def respelt(text: str) -> str:
    """Base64 `text` spelt another way that decodes to the same bytes (a spare bit set
    in the last character before the padding)."""
    body = text.rstrip("=")
    assert len(body) < len(text), "only padded base64 has spare bits"
    other = body[:-1] + _B64[_B64.index(body[-1]) | 1] + text[len(body):]
    assert other != text and base64.b64decode(other) == base64.b64decode(text)
    return other


def test_another_spelling_of_the_same_bytes_is_refused(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    """Python's base64 decoder ignores spare bits: the receipt must still hold exactly
    one spelling of its checkpoint signature and of each proof hash."""
    case, receipt = approved
    r = copy.deepcopy(receipt)
    note = r["ledger_evidence"]["checkpoint"]
    head, _, sig = note[:-1].rpartition(" ")
    r["ledger_evidence"]["checkpoint"] = f"{head} {respelt(sig)}\n"
    assert ("checkpoint", None) in problems(r, expected_key=case.signer.verifier())
    r = copy.deepcopy(receipt)
    item = r["ledger_evidence"]["entries"][0]
    item["inclusion_proof"][0] = respelt(item["inclusion_proof"][0])
    assert ("inclusion", item["index"]) in problems(r)


@_FAST
@given(field=st.sampled_from(["authenticator_data", "client_data_json", "signature"]),
       pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_changed_assertion_byte_fails_the_approval(
    approved: tuple[Case, dict[str, Any]], field: str, pos: int, bit: int,
) -> None:
    """Changing the assertion changes the entry (inclusion fails) and, on its own, the
    signature check fails too."""
    _, receipt = approved
    r = copy.deepcopy(receipt)
    [item] = evidence_of(r, "grant.approved")

    def flip(body: dict[str, Any]) -> None:
        raw = bytearray(b64url_decode(body["assertion"][field], what=field))
        raw[pos % len(raw)] ^= 1 << bit
        body["assertion"][field] = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    edit_entry(r, item, flip)
    found = problems(r)
    assert ("inclusion", item["index"]) in found and ("approval", item["index"]) in found


def test_a_pinned_key_or_relying_party_that_differs_is_refused(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    _, receipt = approved
    other = Signer.generate("localhost/ledger").verifier()
    assert ("checkpoint", None) in problems(receipt, expected_key=other)
    approval = index_of(receipt, "grant.approved")
    assert ("approval", approval) in problems(
        receipt, expected_rp_id="evil.example", expected_origins=["https://evil.example"])
    assert ("approval", approval) in problems(
        receipt, expected_rp_id="localhost", expected_origins=["http://localhost:9999"])


def test_an_approval_without_its_passkey_registration_is_refused(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    _, receipt = approved
    r = copy.deepcopy(receipt)
    ev = r["ledger_evidence"]
    ev["entries"] = [e for e in ev["entries"] if e["kind"] != "passkey.registered"]
    assert ("approval", index_of(r, "grant.approved")) in problems(r)


@pytest.mark.parametrize(("path", "value"), [
    (("record_id",), "gr_someone_else"),
    (("pii_principal_id",), "sub_someone_else"),
    (("terms_hash",), base64.b64encode(bytes(32)).decode()),
    (("status", "state"), "requested"),
    (("status", "since"), "2020-01-01T00:00:00.000Z"),
    (("status", "as_of"), "2020-01-01T00:00:00.000Z"),
    (("events", 1, "event_time"), "2020-01-01T00:00:00.000Z"),
    (("purposes", 0, "purpose"), "research_with_consent"),
    (("purposes", 0, "pii_information", 0, "pii_type"), "health.prescriptions"),
    (("purposes", 0, "derived_answers"), []),
    (("purposes", 0, "validity", "expires_at"), "2099-01-01T00:00:00Z"),
    (("purposes", 0, "retention_period", "duration"), "P3650D"),
    (("purposes", 0, "access_frequency", "max_reads"), 1000),
    (("purposes", 0, "pii_controllers"), ["svc_other"]),
    (("purposes", 0, "actions"), ["read", "write"]),
])
def test_claims_that_differ_from_the_ledger_are_refused(
    approved: tuple[Case, dict[str, Any]], path: tuple[str | int, ...], value: Any,
) -> None:
    _, receipt = approved
    r = copy.deepcopy(receipt)
    target: Any = r
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    assert ("claims", None) in problems(r)


def test_terms_that_do_not_hash_to_the_terms_hash_are_refused(
    approved: tuple[Case, dict[str, Any]],
) -> None:
    """A forged log could hold both: the check does not rest on inclusion alone."""
    _, receipt = approved
    r = copy.deepcopy(receipt)
    [item] = evidence_of(r, "grant.requested")
    edit_entry(r, item, lambda body: body["terms"].update(justification="Something else."))
    assert ("terms", item["index"]) in problems(r)


@pytest.mark.parametrize("junk", ["", "[]", "{}", '{"ledger_evidence": {"entries": 3}}',
                                  b"\xff", '{"ledger_evidence": {}}'])
def test_a_malformed_receipt_is_reported_not_raised(junk: str | bytes) -> None:
    report = verify_receipt(junk)
    assert not report.ok and report.problems


# -- the auditor's copy of the rules --------------------------------------------------------


def test_every_grant_entry_kind_has_a_state_and_a_dpv_status() -> None:
    kinds = {"grant.requested", *ENTRY_KIND.values()}
    assert set(receipts.CONSENT_STATUS) == set(auditor.STATE_AFTER) == kinds
    assert set(auditor.STATE_AFTER.values()) <= {s.value for s in GrantState}
    assert set(auditor.ACTIONS) == {ENTRY_KIND[a] for a in
                                    (GrantAction.PAUSE, GrantAction.RESUME, GrantAction.REVOKE)}


@given(grant_id=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40),
       action=st.sampled_from(["pause", "revoke"]),
       terms_hash=st.binary(min_size=32, max_size=32), after=st.integers(0, 2**53 - 1))
def test_the_auditors_action_challenge_is_the_vaults(
    grant_id: str, action: str, terms_hash: bytes, after: int,
) -> None:
    kw = {"grant_id": grant_id, "action": action, "terms_hash": terms_hash, "after": after}
    assert auditor.action_challenge(**kw) == action_challenge(**kw)  # type: ignore[arg-type]


def test_the_receipt_check_loads_nothing_from_the_vault() -> None:
    code = ("import sys, clients.auditor.receipt; "
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'vault' "
            "or (n.startswith('wallet.') and n not in ('wallet.passkeys', "
            "'wallet.passkeys.offline'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
