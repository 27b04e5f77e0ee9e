"""A ledger the real app wrote through a whole journey verifies; every kind of tampering
is caught at the entry it happened to.

Chain tampering (an edited or dropped entry) is caught against the vault's own
checkpoint. Story tampering is done as an operator holding the signing key would: the
export is re-chained and a fresh checkpoint signed (`Forge`), so the log checks pass and
only the story rules can catch it. The forger writes sealed (v2) entries and re-seals
what it edits, so every story rule is shown to hold through the openings.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.auditjourney import RP_ID, Forge, Journey, resign, shared_journey
from support.webwallet import ORIGIN
from typer.testing import CliRunner

from clients.auditor import receipt as receipt_module
from clients.auditor.cli import app
from clients.auditor.state import load_state
from clients.auditor.story import StoryChecker
from clients.auditor.verify import (
    SEALED_SEEN,
    STORIES_UNCHECKED,
    VerifyReport,
    verify_entries,
    verify_export,
)
from ledger import verify as ledger_verify
from ledger.checkpoint import open_checkpoint
from ledger.note import Signer, Verifier

ORIGINS = [ORIGIN]
runner = CliRunner()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    return shared_journey(tmp_path_factory)


def check(lines: list[bytes], note: str, key: Verifier, *, parallel: bool = False,
          openings: list[bytes] | None = None) -> VerifyReport:
    report, _ = verify_entries(lines, checkpoint=open_checkpoint(note, expected_verifier=key),
                               rp_id=RP_ID, origins=ORIGINS, parallel=parallel,
                               openings=openings)
    return report


def checked(journey: Journey, lines: list[bytes] | None = None, *, parallel: bool = False
            ) -> VerifyReport:
    """The journey's ledger (or `lines` instead) against its own checkpoint."""
    return check(journey.lines if lines is None else lines, journey.note, journey.verifier,
                 parallel=parallel, openings=journey.openings)


def forged(forge: Forge, *, parallel: bool = False) -> VerifyReport:
    lines, openings = forge.written()
    return check(lines, forge.note(lines), forge.verifier, parallel=parallel,
                 openings=openings)


def found(report: VerifyReport) -> list[tuple[int | None, str]]:
    return [(f.index, f.rule) for f in report.failures]


def only_story(report: VerifyReport) -> None:
    """The forger re-chained and re-signed: no log failure, only broken stories."""
    assert report.failures, "the forgery went unnoticed"
    assert not {"chain", "checkpoint"} & {f.rule for f in report.failures}, found(report)


# -- the honest ledger -------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_the_whole_journey_verifies(journey: Journey, parallel: bool) -> None:
    report = checked(journey, parallel=parallel)
    assert report.ok, [str(f) for f in report.failures]
    assert not report.warnings, [str(w) for w in report.warnings]
    assert report.size == len(journey.lines) and report.uncovered == 0
    s = report.stats
    # 6 approvals + the citizen's pause, resume and revoke; every read of the journey.
    assert (s.grants, s.approvals_verified, s.accesses_checked) == (9, 9, 7)
    assert (s.subjects, s.passkeys, s.services) == (2, 3, 3)
    assert report.counts["citizen.erased"] == 1 and report.counts["passkey.removed"] == 1
    assert {"grant.expired", "grant.exhausted", "grant.denied", "grant.cancelled",
            "grant.paused", "grant.resumed", "grant.revoked",
            "service.suspended"} <= set(report.counts)


def test_the_cli_verifies_an_export_and_saves_the_state(journey: Journey,
                                                        tmp_path: Path) -> None:
    export = journey.write(tmp_path / "ledger.ndjson")
    openings = journey.write_openings(tmp_path / "openings.ndjson")
    (tmp_path / "cp.txt").write_text(journey.note)
    args = ["verify", "--from-export", str(export), "--openings", str(openings),
            "--checkpoint", str(tmp_path / "cp.txt"),
            "--key", str(journey.verifier), "--rp-id", RP_ID, "--origin", ORIGIN,
            "--state", str(tmp_path / "state")]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["ok"] and doc["key_pinned"] and doc["failures"] == []
    assert doc["checkpoint"]["size"] == len(journey.lines)
    saved = load_state(tmp_path / "state")
    assert saved is not None and saved.size == len(journey.lines)
    assert saved.checkpoint == journey.note
    # The story checker's own state, and that the ledger is sealed (no v1 entry may follow).
    assert saved.story.pop(SEALED_SEEN) is True and STORIES_UNCHECKED not in saved.story
    assert StoryChecker.from_state(saved.story, rp_id=RP_ID, origins=ORIGINS).to_state() \
        == saved.story
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "approvals and citizen actions verified" in text.output
    assert "7 accesses checked" in text.output


def test_an_export_alone_is_checked_but_said_to_be_unsigned(journey: Journey,
                                                            tmp_path: Path) -> None:
    export = journey.write(tmp_path / "ledger.ndjson")
    r = runner.invoke(app, ["verify", "--from-export", str(export), "--rp-id", RP_ID,
                            "--origin", ORIGIN])
    assert r.exit_code == 0, r.output
    assert "no signed checkpoint covered these entries" in r.output
    report = verify_export(export, rp_id=RP_ID, origins=ORIGINS)
    assert report.ok and report.checkpoint is None and report.root is not None


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert runner.invoke(app, ["verify"]).exit_code == 2
    assert runner.invoke(app, ["verify", "--from-export", str(tmp_path / "none")]
                         ).exit_code == 2  # no relying party
    r = runner.invoke(app, ["verify", "--from-export", str(tmp_path / "missing.ndjson"),
                            "--rp-id", RP_ID, "--origin", ORIGIN, "--json"])
    assert r.exit_code == 2 and "missing.ndjson" in json.loads(r.output)["error"]
    r = runner.invoke(app, ["verify", "http://localhost:9", "--json"])
    assert r.exit_code == 2 and "cannot reach" in json.loads(r.output)["error"]


# -- the log -------------------------------------------------------------------------------


def _edit_bytes(data: bytes) -> bytes:
    """Another value in the entry, still canonical JSON (so it parses, but hashes anew)."""
    entry = json.loads(data)
    if "sealed" in entry:  # another commitment, in canonical base64
        other = base64.b64encode(hashlib.sha256(entry["sealed"].encode()).digest()).decode()
        return data.replace(entry["sealed"].encode(), other.encode())
    old = json.dumps(entry["body"], separators=(",", ":"), sort_keys=True)
    new = old.replace("sub_", "sux_", 1) if "sub_" in old else old.replace('"', '"x', 2)
    return data.replace(old.encode(), new.encode())


@pytest.mark.parametrize(("where", "parallel"), [
    ("first", False), ("middle", False), ("approval", False), ("last", False),
    ("middle", True), ("last", True)])
def test_an_edited_entry_is_named_though_every_later_link_breaks(journey: Journey,
                                                                 where: str,
                                                                 parallel: bool) -> None:
    lines = journey.lines
    k = {"first": 0, "middle": len(lines) // 2, "approval": journey.index("grant.approved"),
         "last": len(lines) - 1}[where]
    tampered = [*lines[:k], _edit_bytes(lines[k]), *lines[k + 1:]]
    assert tampered[k] != lines[k]
    report = checked(journey, tampered, parallel=parallel)
    chain = [f for f in report.failures if f.rule == "chain"]
    assert [f.index for f in chain] == [k], found(report)


def test_a_dropped_entry_is_named(journey: Journey) -> None:
    k = journey.index("data.accessed", "main")
    report = checked(journey, [*journey.lines[:k], *journey.lines[k + 1:]])
    chain = [f for f in report.failures if f.rule == "chain"]
    assert [f.index for f in chain] == [k] and "missing" in chain[0].detail


def test_a_checkpoint_signed_by_another_key_is_refused(journey: Journey) -> None:
    other = Signer.generate(journey.verifier.name)
    note = resign(journey.lines, other)
    with pytest.raises(Exception, match="not signed by any expected key"):
        open_checkpoint(note, expected_verifier=journey.verifier)
    report = verify_export_lines(journey, note)
    assert found(report) == [(None, "checkpoint")]


def verify_export_lines(journey: Journey, note: str) -> VerifyReport:
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        export = journey.write(Path(tmp) / "ledger.ndjson")
        return verify_export(export, note=note, expected_key=journey.verifier, rp_id=RP_ID,
                             origins=ORIGINS)


def test_a_forger_who_rechains_passes_the_log_checks(journey: Journey) -> None:
    """The baseline for the story tests below: re-chaining alone changes nothing."""
    report = forged(Forge.of(journey))
    assert report.ok, found(report)


# -- forged approvals ------------------------------------------------------------------------


def _assertion(journey: Journey, device: str, challenge: bytes, **knobs: Any
               ) -> dict[str, str]:
    proof: dict[str, str] = journey.devices[device].proof(challenge=challenge,
                                                          **knobs).to_json()
    return proof


def _terms_hash(journey: Journey, role: str) -> bytes:
    import base64
    body = journey.entries[journey.index("grant.requested", role)]["body"]
    return base64.b64decode(body["terms_hash"])


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_an_approval_signed_by_another_key_is_caught(journey: Journey, parallel: bool
                                                     ) -> None:
    k = journey.index("grant.approved", "once")
    forged_assertion = _assertion(journey, "alice", _terms_hash(journey, "once"),
                                  wrong_key=True)
    report = forged(Forge.of(journey).edit(k, lambda b: b.update(assertion=forged_assertion)),
                    parallel=parallel)
    only_story(report)
    assert found(report) == [(k, "approval")]  # the read under it rests on it
    assert report.failures[0].detail.startswith("bad_signature")
    assert report.stats.approvals_verified == 8


def test_an_approval_by_a_passkey_never_registered_is_caught(journey: Journey) -> None:
    from wallet.passkeys.software import SoftAuthenticator
    stranger = SoftAuthenticator(origin=ORIGIN)
    stranger.create({"rp": {"id": RP_ID}, "user": {"id": "dXNlcg"}, "challenge": "AAAA"})
    k = journey.index("grant.approved", "once")
    a = stranger.proof(challenge=_terms_hash(journey, "once")).to_json()
    report = forged(Forge.of(journey).edit(k, lambda b: b.update(assertion=a)))
    only_story(report)
    assert report.failures[0].index == k and report.failures[0].rule == "approval.credential"


def test_an_approval_with_a_removed_passkey_is_caught(journey: Journey) -> None:
    """The old phone signs a new approval after it was removed: it no longer counts."""
    removed = journey.index("passkey.removed")
    k = journey.index("grant.approved", "short")
    assert k > removed
    a = _assertion(journey, "phone", _terms_hash(journey, "short"))
    report = forged(Forge.of(journey).edit(k, lambda b: b.update(assertion=a)))
    only_story(report)
    assert report.failures[0].index == k and report.failures[0].rule == "approval.credential"


def test_an_approval_over_other_terms_is_caught(journey: Journey) -> None:
    """The terms are changed, and their hash with them everywhere, but the citizen's
    signature is over the terms she saw."""
    import base64
    import hashlib

    from ledger.canonical import canonical_json
    req, k = journey.index("grant.requested", "once"), journey.index("grant.approved", "once")
    forge = Forge.of(journey)
    terms = forge.entries[req]["body"]["terms"]
    terms["justification"] = "To sell your address to whoever pays most."
    new_hash = base64.b64encode(hashlib.sha256(canonical_json(terms)).digest()).decode()
    forge.edit(req, lambda b: b.update(terms_hash=new_hash))
    forge.edit(k, lambda b: b.update(terms_hash=new_hash))
    report = forged(forge)
    only_story(report)
    first = report.failures[0]
    assert (first.index, first.rule) == (k, "approval"), found(report)
    assert first.detail.startswith("challenge_mismatch")


def test_a_revocation_by_the_vault_without_the_citizen_is_caught(journey: Journey) -> None:
    k = journey.index("grant.revoked", "main")
    report = forged(Forge.of(journey).edit(k, lambda b: (b.pop("assertion"), b.pop("by"))))
    only_story(report)
    assert found(report)[0] == (k, "transition.unsigned")


def test_an_entry_slipped_in_before_a_signed_action_voids_the_next_signature(
        journey: Journey) -> None:
    """The citizen's pause, resume and revoke sign the index of the grant's previous
    entry: shifting it (here with an innocent-looking entry) breaks the later signatures."""
    pause = journey.index("grant.paused", "main")
    resume, revoke = journey.index("grant.resumed", "main"), journey.index("grant.revoked", "main")
    report = forged(Forge.of(journey).insert(pause, "key.rotated",
                                             {"kek_id": "kek_0", "retired": [], "rewrapped": 0}))
    only_story(report)
    assert found(report) == [(resume + 1, "approval.terms"), (resume + 1, "approval"),
                             (revoke + 1, "approval.terms"), (revoke + 1, "approval")]


# -- forged reads ------------------------------------------------------------------------------


def _read(journey: Journey, role: str, **changes: Any) -> dict[str, Any]:
    body = dict(journey.entries[journey.index("data.accessed", role)]["body"])
    body.update(changes)
    return body


def test_a_read_outside_the_window_is_caught(journey: Journey) -> None:
    """A read of the short grant after its end, before the sweeper recorded the expiry."""
    k = journey.index("grant.expired", "short")
    report = forged(Forge.of(journey).insert(k, "data.accessed", _read(journey, "short")))
    only_story(report)
    assert found(report) == [(k, "access.window")]


def test_a_read_outside_the_scope_is_caught(journey: Journey) -> None:
    k = journey.index("grant.resumed", "main") + 1
    body = _read(journey, "main", categories=["address.home", "identity.date_of_birth"])
    report = forged(Forge.of(journey).insert(k, "data.accessed", body))
    only_story(report)
    assert found(report) == [(k, "access.scope")]


def test_a_read_after_revocation_is_caught(journey: Journey) -> None:
    k = journey.index("grant.revoked", "main") + 1
    report = forged(Forge.of(journey).insert(k, "data.accessed", _read(journey, "main")))
    only_story(report)
    assert found(report) == [(k, "access.state")]
    assert "revoked" in report.failures[0].detail


def test_a_second_read_of_a_one_time_grant_is_caught(journey: Journey) -> None:
    k = journey.index("data.accessed", "once") + 1  # before grant.exhausted
    report = forged(Forge.of(journey).insert(k, "data.accessed", _read(journey, "once")))
    only_story(report)
    assert found(report) == [(k, "access.limit")]


def test_a_read_sooner_than_the_interval_is_caught(journey: Journey) -> None:
    k = journey.index("data.accessed", "phone") + 1
    report = forged(Forge.of(journey).insert(k, "data.accessed", _read(journey, "phone")))
    only_story(report)
    assert found(report) == [(k, "access.interval")]


def test_a_read_for_an_erased_citizen_is_caught(journey: Journey) -> None:
    k = len(journey.lines)
    report = forged(Forge.of(journey).insert(k, "data.accessed", _read(journey, "bob"),
                                             time=journey.entries[-1]["time"]))
    only_story(report)
    assert found(report) == [(k, "access.state")]


def test_personal_data_in_an_entry_is_caught(journey: Journey) -> None:
    k = journey.index("grant.requested", "main")
    forge = Forge.of(journey)
    forge.entries[k]["body"]["note"] = {"given": "Ada", "family": "Lovelace"}
    report = forged(forge)
    assert found(report) == [(k, "personal_data")]
    assert "identity.name" in report.failures[0].detail


@pytest.mark.parametrize("change", [{"commitment": "ada@example.org"},
                                    {"commitment": "SW1A 1AA"},
                                    {"to": "+447700900123"}])
def test_personal_data_in_a_read_in_order_is_caught(journey: Journey,
                                                    change: dict[str, str]) -> None:
    """A read that breaks no story rule is scanned only for what it adds to its grant's
    values: that must still be everything it adds."""
    k = journey.index("data.accessed", "main")
    report = forged(Forge.of(journey).edit(k, lambda b: b.update(change)))
    assert found(report) == [(k, "personal_data")]


# -- the log worker --------------------------------------------------------------------------


def test_the_worker_keeps_the_same_state_for_watch(journey: Journey, tmp_path: Path) -> None:
    export = journey.write(tmp_path / "ledger.ndjson")
    openings = journey.write_openings(tmp_path / "openings.ndjson")
    for parallel in (False, True):
        report = verify_export(export, note=journey.note, expected_key=journey.verifier,
                               rp_id=RP_ID, origins=ORIGINS, parallel=parallel,
                               state_dir=tmp_path / str(parallel), openings=openings)
        assert report.ok and report.state_saved is not None
        assert (report.worker_rss_kib is not None) == parallel
    inline, worker = load_state(tmp_path / "False"), load_state(tmp_path / "True")
    assert inline is not None and inline == worker and len(inline.border) > 0


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")),
                      max_size=30),
       blanks=st.lists(st.booleans(), max_size=30), chunk=st.integers(1, 40),
       last_newline=st.booleans())
def test_exports_are_split_as_the_ledger_splits_them(lines: list[bytes], blanks: list[bool],
                                                     chunk: int, last_newline: bool) -> None:
    import io

    from clients.auditor._logworker import read_lines
    from ledger.audit import read_ndjson
    text = b"".join(line + b"\n" + (b"\n" if blank else b"")
                    for line, blank in zip(lines, blanks + [False] * len(lines),
                                           strict=False))
    if not last_newline:
        text = text.rstrip(b"\n")
    assert list(read_lines(io.BytesIO(text).read, chunk)) == list(
        read_ndjson(io.BytesIO(text)))


# -- proofs ------------------------------------------------------------------------------------


def test_the_auditors_proof_checks_are_the_ledgers_vector_tested_ones() -> None:
    """The auditor has no Merkle proof code of its own: the receipt check calls
    `ledger.verify`, which tests/ledger/test_vectors.py runs over every vector in
    shared/testdata/merkle/; the full verification recomputes the root itself."""
    assert vars(receipt_module)["verify_leaf_inclusion"] is ledger_verify.verify_leaf_inclusion


# -- over HTTP ----------------------------------------------------------------------------------


def test_the_cli_verifies_the_journey_over_http(journey: Journey, tmp_path: Path) -> None:
    """The vault that wrote the journey, served again on a free port: the passkeys were
    made for http://localhost:8000, so that origin must be named."""
    import shutil

    from livevault import serve

    from vault.config import Settings
    assert journey.data_dir is not None
    shutil.copytree(journey.data_dir, tmp_path / "vault")
    settings = Settings(data_dir=tmp_path / "vault", ledger_public=True, log_level="WARNING",
                        auditor_api_keys="auditor-secret")
    key = str(journey.verifier)
    export = journey.write(tmp_path / "ledger.ndjson")
    openings = journey.write_openings(tmp_path / "openings.ndjson")
    rp = ["--rp-id", RP_ID, "--origin", ORIGIN, "--json"]
    auditor = ["--api-key", "auditor-secret"]
    with serve(settings) as vault:
        named = runner.invoke(app, ["verify", vault.url, "--key", key, *auditor, *rp])
        unnamed = runner.invoke(app, ["verify", vault.url, "--key", key, *auditor, "--json"])
        # The public ledger alone: no openings, so no stories.
        public = runner.invoke(app, ["verify", vault.url, "--key", key, *rp])
        public_text = runner.invoke(app, ["verify", vault.url, "--key", key, *rp[:-1]])
        # An export and its openings, held against the checkpoint the vault serves.
        served = runner.invoke(app, ["verify", vault.url, "--from-export", str(export),
                                     "--openings", str(openings), *rp])
    assert named.exit_code == 0, named.output
    doc = json.loads(named.output)
    assert doc["ok"] and doc["size"] == len(journey.lines) and doc["stats"]["grants"] == 9
    sealed = sum(b'"sealed"' in d for d in journey.lines)  # all, once the vault writes v2
    assert sealed == len(journey.openings)
    assert doc["stories"] == "checked" and doc["opened"] == doc["sealed"] == sealed
    assert served.exit_code == 0, served.output
    doc = json.loads(served.output)
    assert doc["checkpoint"]["size"] == len(journey.lines) and not doc["key_pinned"]
    assert doc["stats"]["approvals_verified"] == 9
    assert public.exit_code == 0, public.output
    doc = json.loads(public.output)
    if sealed:
        assert doc["ok"] and doc["stories"] == "not checked: no openings"
        assert doc["opened"] == 0 and doc["stats"]["approvals_verified"] == 0
        assert "stories not checked" in public_text.output and public_text.exit_code == 0
    else:  # a v1 ledger: everything is public, stories and all
        assert doc["stories"] == "checked" and doc["stats"]["approvals_verified"] == 9
    assert unnamed.exit_code == 1
    failures = json.loads(unnamed.output)["failures"]
    assert {f["rule"] for f in failures} >= {"approval"}
    assert all("wrong_origin" in f["detail"] for f in failures if f["rule"] == "approval")


def test_the_auditor_loads_nothing_of_the_vault_or_the_wallet() -> None:
    """Its checks are its own (`ledger`'s pure functions aside): not the vault's code
    paths, whose mistakes they are there to catch."""
    import subprocess
    import sys
    code = ("import sys, clients.auditor.cli, clients.auditor.verify, clients.auditor._logworker;"
            " print(sorted(n for n in sys.modules if n.split('.')[0] in ('vault', 'wallet')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
