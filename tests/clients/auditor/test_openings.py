"""Sealed entries (ledger v2) in the full verification: each opening is checked against
its entry's commitment and split, at its index; ledgers may go from v1 to v2, never
back; without openings the public ledger is checked and the stories are said not to be.

The story rules through openings are `test_verify_tamper` (its forger writes v2)."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.auditjourney import RP_ID, Forge, Journey, shared_journey
from support.webwallet import ORIGIN
from typer.testing import CliRunner

from clients.auditor.cli import app
from clients.auditor.openings import Opener
from clients.auditor.verify import VerifyReport, verify_entries
from ledger.checkpoint import open_checkpoint
from ledger.entry import encode_entry, encode_sealed_entry
from ledger.hasher import leaf_hash
from ledger.sealing import commitment, encode_opening, seal

runner = CliRunner()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Journey:
    return shared_journey(tmp_path_factory)


def verify(lines: list[bytes], openings: list[bytes] | None, forge: Forge, *,
           parallel: bool = False) -> VerifyReport:
    report, _ = verify_entries(lines, checkpoint=open_checkpoint(
        forge.note(lines), expected_verifier=forge.verifier), rp_id=RP_ID, origins=[ORIGIN],
        openings=openings, parallel=parallel)
    return report


def found(report: VerifyReport) -> list[tuple[int | None, str]]:
    return [(f.index, f.rule) for f in report.failures]


def _opening(line: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(line)
    return doc


def _reopen(openings: list[bytes], k: int, change: Any) -> list[bytes]:
    """The openings with the one of entry `k` changed (and written canonically again)."""
    out = list(openings)
    n = next(i for i, o in enumerate(out) if _opening(o)["seq"] == k)
    doc = _opening(out[n])
    change(doc)
    out[n] = encode_opening(doc["seq"], base64.b64decode(doc["salt"]), doc["private"])
    return out


def test_a_sealed_ledger_verifies_through_its_openings(journey: Journey) -> None:
    forge = Forge.of(journey)
    lines, openings = forge.written()
    assert all(b'"sealed"' in d for d in lines) and len(openings) == len(lines)
    report = verify(lines, openings, forge)
    assert report.ok, found(report)
    assert report.stories == "checked" and report.sealed == report.opened == len(lines)
    assert report.stats.approvals_verified == 9 and report.stats.accesses_checked == 7


# -- a changed opening, salt or public field, at its index ---------------------------------


@pytest.mark.parametrize("parallel", [False, True], ids=["inline", "worker"])
def test_a_changed_private_body_is_caught_at_its_index(journey: Journey, parallel: bool
                                                       ) -> None:
    """The operator edits what an opening says (a read's subject), but cannot make it hash
    to the commitment the signed entry holds."""
    forge = Forge.of(journey)
    lines, openings = forge.written()
    k = journey.index("data.accessed", "main")
    changed = _reopen(openings, k, lambda d: d["private"].update(subject="sub_someone_else"))
    report = verify(lines, changed, forge, parallel=parallel)
    assert (k, "opening") in found(report)
    assert {i for i, _ in found(report)} == {k}, found(report)  # named there, and only there
    assert "sealed commitment" in report.failures[0].detail


def test_a_changed_salt_is_caught_at_its_index(journey: Journey) -> None:
    forge = Forge.of(journey)
    lines, openings = forge.written()
    k = journey.index("grant.approved", "once")
    changed = _reopen(openings, k, lambda d: d.update(salt=base64.b64encode(b"\0" * 32).decode()))
    report = verify(lines, changed, forge)
    assert found(report) == [(k, "opening")]


def test_a_changed_public_field_breaks_the_chain_at_its_index(journey: Journey) -> None:
    forge = Forge.of(journey)
    lines, openings = forge.written()
    k = journey.index("data.accessed", "main")
    edited = lines[k].replace(b'"categories":["', b'"categories":["health.', 1)
    assert edited != lines[k]
    report = verify([*lines[:k], edited, *lines[k + 1:]], openings, forge)
    chain = [f for f in report.failures if f.rule == "chain"]
    assert [f.index for f in chain] == [k]


def test_a_public_field_changed_and_resigned_is_caught_by_its_story(journey: Journey) -> None:
    """Re-chained and re-signed, the public part of a read names a category the grant
    does not cover: its commitment still opens, and the story fails at it."""
    k = journey.index("data.accessed", "main")
    forge = Forge.of(journey).edit(k, lambda b: b.update(categories=["health.prescriptions"]))
    report = verify(*forge.written(), forge)
    assert found(report) == [(k, "access.scope")]


def _rechain(head: list[bytes], entries: list[dict[str, Any]]
             ) -> tuple[list[bytes], list[bytes]]:
    """`head` as it is, then `entries` sealed and chained after it, and their openings."""
    lines, openings = list(head), []
    for e in entries:
        seq = len(lines)
        s = seal(seq, e["kind"], e["body"], os.urandom(32))
        lines.append(encode_sealed_entry(seq, e["time"], e["kind"], leaf_hash(lines[-1]),
                                         s.public, s.sealed))
        openings.append(s.opening)
    return lines, openings


def _split_otherwise(journey: Journey, k: int, move: Any) -> tuple[list[bytes], list[bytes],
                                                                    Forge]:
    """The sealed journey with entry `k`'s public and private parts changed by `move`,
    sealed consistently under its salt, and every later entry re-chained."""
    forge = Forge.of(journey)
    lines, openings = forge.written()
    entry, doc = orjson.loads(lines[k]), _opening(openings[k])
    public, private, salt = entry["public"], doc["private"], base64.b64decode(doc["salt"])
    move(public, private)
    new = encode_sealed_entry(k, entry["time"], entry["kind"], leaf_hash(lines[k - 1]),
                              public, commitment(salt, private))
    lines, later = _rechain([*lines[:k], new], journey.entries[k + 1:])
    return lines, [*openings[:k], encode_opening(k, salt, private), *later], forge


@pytest.mark.parametrize(("kind", "field"), [("data.accessed", "subject"),
                                             ("grant.approved", "assertion")])
def test_a_private_field_shown_in_public_is_caught(journey: Journey, kind: str,
                                                  field: str) -> None:
    """A vault that publishes what links a citizen, sealed consistently otherwise."""
    k = journey.index(kind, "main")
    lines, openings, forge = _split_otherwise(
        journey, k, lambda public, private: public.update({field: private.pop(field)}))
    report = verify(lines, openings, forge)
    assert found(report) == [(k, "sealing")], found(report)
    assert field in report.failures[0].detail and "keep sealed" in report.failures[0].detail


def test_a_public_field_sealed_instead_is_caught(journey: Journey) -> None:
    """The counts need a read's categories in public: sealing them is a failure."""
    k = journey.index("data.accessed", "main")
    lines, openings, forge = _split_otherwise(
        journey, k, lambda public, private: private.update(categories=public.pop(
            "categories")))
    report = verify(lines, openings, forge)
    assert found(report) == [(k, "sealing")], found(report)
    assert "categories" in report.failures[0].detail


def test_a_field_both_shown_and_sealed_is_caught(journey: Journey) -> None:
    """The private part cannot override what the public ledger shows."""
    k = journey.index("data.accessed", "main")
    lines, openings, forge = _split_otherwise(
        journey, k, lambda public, private: private.update(service_id="svc_other"))
    report = verify(lines, openings, forge)
    assert found(report) == [(k, "sealing")], found(report)
    assert "service_id" in report.failures[0].detail


def test_missing_stray_and_malformed_openings_are_named(journey: Journey) -> None:
    forge = Forge.of(journey)
    lines, openings = forge.written()
    k = journey.index("grant.requested", "once")
    report = verify(lines, [*openings[:k], *openings[k + 1:]], forge)
    assert (k, "opening") in found(report)
    assert "no opening" in report.failures[0].detail
    assert (report.sealed, report.opened) == (len(lines), len(lines) - 1)
    report = verify(lines, [*openings[:k + 1], openings[k], *openings[k + 1:]], forge)
    assert found(report) == [(k, "opening")]  # repeated
    assert "out of order or repeated" in report.failures[0].detail
    report = verify(lines, [*openings[:k], b'{"seq":1}', *openings[k:]], forge)
    assert found(report) == [(None, "opening")]
    far = encode_opening(len(lines) + 5, b"\1" * 32, {"subject": "sub_x"})
    report = verify(lines, [*openings, far], forge)
    assert found(report) == [(len(lines) + 5, "opening")]


# -- v1, then v2 -------------------------------------------------------------------------------


def test_a_ledger_of_v1_then_v2_entries_verifies(journey: Journey) -> None:
    middle = len(journey.lines) // 2
    forge = Forge(journey.entries, sealed_from=middle)
    lines, openings = forge.written()
    assert b'"body"' in lines[middle - 1] and b'"sealed"' in lines[middle]
    report = verify(lines, openings, forge, parallel=True)
    assert report.ok, found(report)
    assert (report.sealed, report.opened) == (len(lines) - middle, len(lines) - middle)
    assert report.stats.approvals_verified == 9
    # An opening for a whole (v1) entry opens nothing: it is named.
    stray = encode_opening(middle - 1, b"\1" * 32, {"subject": "sub_x"})
    report = verify(lines, [stray, *openings], forge)
    assert found(report) == [(middle - 1, "opening")]


def test_a_v1_entry_after_a_v2_entry_is_refused(journey: Journey) -> None:
    forge = Forge.of(journey)
    lines, openings = forge.written()
    k = len(lines) // 2
    tail, prev = [], leaf_hash(lines[k - 1])
    for seq, e in enumerate(journey.entries[k:], start=k):  # whole again from k on
        data = encode_entry(seq, e["time"], e["kind"], prev, e["body"])
        tail.append(data)
        prev = leaf_hash(data)
    report = verify([*lines[:k], *tail], openings[:k], forge)
    assert (k, "version") in found(report) and (k, "chain") in found(report)
    assert not [i for i, _ in found(report) if i is not None and i < k]


# -- the public ledger alone -------------------------------------------------------------------


def test_without_openings_the_log_is_checked_and_the_stories_are_said_not_to_be(
        journey: Journey, tmp_path: Path) -> None:
    forge = Forge.of(journey)
    lines, _ = forge.written()
    report = verify(lines, None, forge, parallel=True)
    assert report.ok and report.root is not None
    assert report.stories == "not checked: no openings" and report.opened == 0
    assert report.stats.approvals_verified == 0
    doc = report.to_json()
    assert doc["stories"] == "not checked: no openings" and doc["sealed"] == len(lines)
    # A forged approval is invisible without the openings, and caught with them.
    k = journey.index("grant.approved", "once")
    bad = Forge.of(journey).edit(k, lambda b: b["assertion"].update(signature="AAAA"))
    lines, openings = bad.written()
    assert verify(lines, None, bad).ok
    assert (k, "approval") in found(verify(lines, openings, bad))
    # The CLI says it in words, on a file given as the argument.
    export = tmp_path / "ledger.ndjson"
    export.write_bytes(b"".join(d + b"\n" for d in lines))
    r = runner.invoke(app, ["verify", str(export), "--rp-id", RP_ID, "--origin", ORIGIN])
    assert r.exit_code == 0, r.output
    assert "stories not checked" in r.output and "no openings" in r.output
    (tmp_path / "openings.ndjson").write_bytes(b"".join(o + b"\n" for o in openings))
    r = runner.invoke(app, ["verify", str(export), "--openings", str(tmp_path / "openings.ndjson"),
                            "--rp-id", RP_ID, "--origin", ORIGIN, "--json"])
    assert r.exit_code == 1 and json.loads(r.output)["stories"] == "checked"


def test_personal_data_in_a_public_part_is_caught_without_openings(journey: Journey) -> None:
    import hashlib

    from ledger.canonical import canonical_json
    k = journey.index("grant.requested", "main")
    forge = Forge.of(journey)
    terms = forge.entries[k]["body"]["terms"]
    terms["justification"] = "Call 07700 900123 to discuss."
    forge.entries[k]["body"]["terms_hash"] = base64.b64encode(
        hashlib.sha256(canonical_json(terms)).digest()).decode()
    lines, _ = forge.written()
    report = verify(lines, None, forge)
    assert found(report) == [(k, "personal_data")]
    assert "public.terms.justification" in report.failures[0].detail


def test_an_opener_pairs_openings_by_seq() -> None:
    """Openings skip whole entries: the opener pairs by seq, not by position."""
    o3 = encode_opening(3, b"\2" * 32, {"subject": "s"})
    opener = Opener([o3])
    assert opener.open(1, "citizen.enrolled", {}, "x") is None  # none for entry 1
    assert [(f.index, f.rule) for f in opener.failures] == [(1, "opening")]
    assert opener.open(3, "citizen.enrolled", {}, "AAAA") == {"subject": "s"}  # bad commitment
    assert [(f.index, f.rule) for f in opener.failures][-1] == (3, "opening")
