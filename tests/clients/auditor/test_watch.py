"""`vault-audit watch`: a real vault over a loopback socket grows through a journey; each
poll checks a consistency proof and only the new entries; rewritten, forked and
foreign-signed histories are caught, with evidence kept and the trusted state intact."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from livevault import LiveVault, serve
from sqlalchemy import Connection
from support.vaultworld import World, add_passkey, ask, blue_badge, give_ada_data
from typer.testing import CliRunner

from clients.auditor import cli
from clients.auditor import watch as watch_module
from clients.auditor.cli import app
from clients.auditor.fetch import LedgerClient
from clients.auditor.verify import verify_url
from clients.auditor.watch import Outcome, WatchError, WatchReport, poll
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.entry import encode_entry
from ledger.hasher import leaf_hash, node_hash
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.domain.grants import GrantAction
from vault.services import access, citizens, grants
from vault.services.context import VaultContext
from wallet.passkeys.software import SoftAuthenticator

runner = CliRunner()
ORIGIN_NAME = "localhost/ledger"
#: The auditor's key: with it, `watch` opens sealed entries and checks their stories.
AUDITOR_KEY = "auditor-key"


def vault_settings(tmp: Path, signer: Signer | None = None) -> Settings:
    extra: dict[str, Any] = {}
    if signer is not None:
        extra = {"ledger_signing_key": str(signer), "ledger_origin": signer.name}
    return Settings(data_dir=tmp, checkpoint_interval=0.05, ledger_public=True,
                    sweep_interval=3600, auditor_api_keys=AUDITOR_KEY, **extra)


def written(conn: Connection) -> SqlLedger:
    """The vault's ledger, appending entries of the version the vault writes (a ledger
    never goes back from sealed entries to whole ones)."""
    size = SqlLedger(conn).size()
    last = SqlLedger(conn).entries(size - 1, 1)[0] if size else b""
    return SqlLedger(conn, version=2 if b'"sealed"' in last else 1)


def ctx_of(vault: LiveVault) -> VaultContext:
    assert vault.app is not None
    return vault.app.state.vault.ctx  # type: ignore[no-any-return]


def settle(vault: LiveVault) -> int:
    """The ledger's size, once a published checkpoint covers it (the vault's 1 s, with
    room for a loaded test machine: this is not the test of that promise)."""
    with ctx_of(vault).engine.connect() as conn:
        size = SqlLedger(conn).size()
    deadline = time.monotonic() + 10.0
    while int(httpx.get(f"{vault.url}/ledger/checkpoint").text.split("\n")[1]) < size:
        assert time.monotonic() < deadline, "no checkpoint covered the ledger"
        time.sleep(0.02)
    return size


@dataclass
class Journey:
    """A citizen with a passkey, a service, and one grant, driven through the services."""

    ctx: VaultContext
    world: World
    device: SoftAuthenticator
    grant: grants.GrantView

    @classmethod
    def start(cls, vault: LiveVault) -> Journey:
        ctx = ctx_of(vault)
        service = blue_badge(ctx)
        c = citizens.enrol_citizen(ctx)
        give_ada_data(ctx, c.id)
        device = add_passkey(ctx, c.id, SoftAuthenticator(origin=vault.url))
        world = World(service, c.id, c.subject)
        return cls(ctx, world, device, ask(ctx, world))

    def approve_read_revoke(self) -> None:
        cid, gid = self.world.citizen_id, self.grant.id
        grants.approve_grant(self.ctx, gid, citizen_id=cid,
                             proof=self.device.proof(challenge=self.grant.terms_hash))
        for _ in range(2):
            access.read_under_grant(self.ctx, service_id=self.world.service_id, grant_id=gid)
        challenge = grants.signing_challenge(self.ctx, gid, citizen_id=cid,
                                             action=GrantAction.REVOKE)
        grants.revoke_grant(self.ctx, gid, citizen_id=cid,
                            proof=self.device.proof(challenge=challenge))


def watch(url: str, state: Path, *args: str) -> tuple[int, dict[str, Any]]:
    r = runner.invoke(app, ["watch", url, "--state", str(state), "--once", "--json",
                            "--api-key", AUDITOR_KEY, *args])
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.output
    return r.exit_code, json.loads(lines[0])


def snapshot(state: Path) -> dict[str, bytes]:
    """The trusted state's files (not the evidence, nor the lock)."""
    return {p.name: p.read_bytes() for p in state.iterdir() if p.is_file() and p.name != ".lock"}


# -- a growing ledger -----------------------------------------------------------------------


def test_first_poll_verifies_everything_and_later_polls_only_what_is_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = tmp_path / "watch"
    with serve(vault_settings(tmp_path / "vault")) as vault:
        journey = Journey.start(vault)
        first = settle(vault)
        code, doc = watch(vault.url, state)
        assert code == 0, doc
        assert (doc["outcome"], doc["key_source"], doc["size"]) == ("first", "first use", first)
        assert doc["new_entries"] == first and doc["failures"] == []
        assert {"checkpoint.txt", "size", "story.json", "key.txt", "watch.json"} <= set(
            snapshot(state))
        assert (state / "size").read_text() == f"{first}\n"

        journey.approve_read_revoke()  # approval, 2 accesses, revocation
        second = settle(vault)
        assert second == first + 4
        code, doc = watch(vault.url, state)
        assert code == 0, doc
        assert (doc["outcome"], doc["key_source"]) == ("grew", "pinned")
        assert (doc["previous_size"], doc["size"], doc["new_entries"]) == (first, second, 4)

        code, doc = watch(vault.url, state)
        assert (code, doc["outcome"], doc["new_entries"]) == (0, "unchanged", 0)

        human = runner.invoke(app, ["watch", vault.url, "--state", str(state), "--once"])
        assert human.exit_code == 0 and "unchanged" in human.stdout

        # Without --once it polls until Ctrl-C, one JSON line a poll.
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) == 2:
                raise KeyboardInterrupt

        monkeypatch.setattr(cli.time, "sleep", sleep)
        looped = runner.invoke(app, ["watch", vault.url, "--state", str(state), "--json",
                                     "--interval", "0.5"])
    assert looped.exit_code == 0, looped.output
    assert sleeps == [0.5, 0.5]
    assert [json.loads(line)["outcome"] for line in looped.stdout.splitlines()] == [
        "unchanged", "unchanged"]


class Recording(httpx.BaseTransport):
    """The real transport, remembering each request's path and query."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str, dict[str, str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, dict(request.url.params)))
        return self.inner.handle_request(request)


def test_a_poll_fetches_only_the_new_entries(tmp_path: Path) -> None:
    """After a first run (which keeps no entry), the first poll fetches the last trusted
    entry again, with an inclusion proof; later polls only the new entries."""
    state = tmp_path / "watch"
    with serve(vault_settings(tmp_path / "vault")) as vault:
        journey = Journey.start(vault)
        filler(vault, 1500)  # two pages of earlier entries
        first = settle(vault)
        with LedgerClient(vault.url) as client:
            assert poll(client, state, url=vault.url).outcome is Outcome.FIRST
        journey.approve_read_revoke()
        second = settle(vault)
        polls, third = [], second
        for grow in (0, 1200):
            if grow:
                filler(vault, grow)
                third = settle(vault)
            rec = Recording()
            with LedgerClient(vault.url, transport=rec) as client:
                polls.append((poll(client, state, url=vault.url), rec.seen))
    (one, seen_one), (two, seen_two) = polls
    assert one.outcome is Outcome.GREW and one.ok and one.new_entries == second - first
    assert seen_one == [
        ("/ledger/checkpoint", {}), ("/ledger/proofs/consistency", {"from": str(first),
                                                                   "to": str(second)}),
        ("/ledger/entries", {"start": str(first - 1), "limit": str(second - first + 1)}),
        ("/ledger/proofs/inclusion", {"index": str(first - 1), "tree_size": str(first)})]
    assert two.outcome is Outcome.GREW and two.ok and two.new_entries == third - second
    assert seen_two == [
        ("/ledger/checkpoint", {}), ("/ledger/proofs/consistency", {"from": str(second),
                                                                   "to": str(third)}),
        ("/ledger/entries", {"start": str(second), "limit": "1000"}),
        ("/ledger/entries", {"start": str(second + 1000), "limit": str(third - second - 1000)})]


def filler(vault: LiveVault, n: int) -> None:
    """`n` entries appended straight to the vault's ledger, of a kind that names nobody."""
    with ctx_of(vault).engine.begin() as conn:
        written(conn).append_many(filler_items(n))


def filler_items(n: int, start: int = 0) -> list[tuple[str, dict[str, Any]]]:
    return [("test.filler", {"n": i}) for i in range(start, start + n)]


# -- rewritten, forked and foreign histories ------------------------------------------------


def test_entries_changed_after_signing_are_a_rewritten_history(tmp_path: Path) -> None:
    state = tmp_path / "watch"
    with serve(vault_settings(tmp_path / "vault")) as vault:
        journey = Journey.start(vault)
        settle(vault)
        assert watch(vault.url, state)[0] == 0
        trusted = snapshot(state)
        journey.approve_read_revoke()
        size = settle(vault)
        db = sqlite3.connect(tmp_path / "vault" / "vault.db")
        (data,) = db.execute("SELECT data FROM ledger_entries WHERE seq = ?",
                             (size - 2,)).fetchone()
        db.execute("UPDATE ledger_entries SET data = ? WHERE seq = ?",
                   (data.replace(b'"data.accessed"', b'"data.accesses"'), size - 2))
        db.commit()
        db.close()
        code, doc = watch(vault.url, state)
    assert code == 3, doc
    assert doc["outcome"] == "rewritten" and "do not give the signed root" in doc["reason"]
    assert snapshot(state) == trusted  # the trusted state is untouched
    assert_evidence(state, doc, trusted_size=doc["previous_size"], served_size=size)


def assert_evidence(state: Path, doc: dict[str, Any], *, trusted_size: int,
                    served_size: int) -> None:
    kept = sorted(Path(p) for p in doc["evidence"])
    assert kept and all(p.parent == state / "evidence" and p.exists() for p in kept)
    names = " ".join(p.name for p in kept)
    assert f"trusted-{trusted_size}.checkpoint" in names
    assert f"served-{served_size}.checkpoint" in names
    trusted_note = next(p for p in kept if "-trusted-" in p.name).read_text()
    assert trusted_note == (state / "checkpoint.txt").read_text()
    report = json.loads(next(p for p in kept if p.name.endswith("report.json")).read_text())
    assert report["reason"] == doc["reason"]
    assert (report["trusted"]["size"], report["served"]["size"]) == (trusted_size, served_size)


def test_forks_signed_by_the_same_key_are_caught(tmp_path: Path) -> None:
    """The operator shows this auditor one history, then another, both signed: a
    smaller tree, one of the same size, and a larger one (one vault, grown between)."""
    signer = Signer.generate(ORIGIN_NAME)
    state = tmp_path / "watch"
    with serve(vault_settings(tmp_path / "a", signer)) as a:
        Journey.start(a)
        size = settle(a)
        code, first = watch(a.url, state, "--key", str(signer.verifier()))
        assert code == 0, first
    trusted = snapshot(state)
    with serve(vault_settings(tmp_path / "b", signer)) as b:
        for delta, why in ((-2, "fewer than"), (0, "another root"), (5, "consistency proof")):
            with ctx_of(b).engine.begin() as conn:  # another history, of the wanted size
                store = SqlLedger(conn)
                store.append_many(filler_items(size + delta - store.size()))
            assert settle(b) == size + delta
            code, doc = watch(b.url, state)
            assert code == 3 and doc["outcome"] == "rewritten", doc
            assert why in doc["reason"]
            assert snapshot(state) == trusted
            assert_evidence(state, doc, trusted_size=size, served_size=size + delta)
        loud = runner.invoke(app, ["watch", b.url, "--state", str(state), "--once"])
    assert loud.exit_code == 3
    assert "HISTORY REWRITTEN" in loud.stderr and "evidence kept" in loud.stderr
    assert len(list((state / "evidence").iterdir())) == 4 * 3
    gone = runner.invoke(app, ["watch", b.url, "--state", str(state), "--once"])
    assert gone.exit_code == 2 and "cannot reach" in gone.output  # an error, not a verdict


def test_a_checkpoint_signed_by_another_key_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "watch"
    ours, theirs = Signer.generate(ORIGIN_NAME), Signer.generate(ORIGIN_NAME)
    with serve(vault_settings(tmp_path / "a", ours)) as a:
        Journey.start(a)
        settle(a)
        first = runner.invoke(app, ["watch", a.url, "--state", str(state), "--once"])
    assert first.exit_code == 0, first.output
    assert "trusting on first use" in first.stderr and str(ours.verifier()) in first.stderr
    trusted = snapshot(state)
    assert (state / "key.txt").read_text().strip() == str(ours.verifier())
    with serve(vault_settings(tmp_path / "b", theirs)) as b:
        Journey.start(b)
        settle(b)
        code, doc = watch(b.url, state)
        assert code == 1 and "refused" in doc["reason"], doc
        assert "not signed by any expected key" in doc["reason"]
        code, doc = watch(b.url, state, "--key", str(theirs.verifier()))
        assert code == 2 and "pins the key" in doc["reason"], doc
        human = runner.invoke(app, ["watch", b.url, "--state", str(state), "--once"])
    assert human.exit_code == 1 and "refused" in human.output
    assert snapshot(state) == trusted and not (state / "evidence").exists()


# -- what the new entries say ---------------------------------------------------------------


def test_a_story_failure_in_new_entries_is_named_and_remembered(tmp_path: Path) -> None:
    """Through the openings of the new entries, fetched with the auditor's key; without
    the key a sealed ledger's stories cannot be checked, and nothing is named."""
    state, public = tmp_path / "watch", tmp_path / "public"
    with serve(vault_settings(tmp_path / "vault")) as vault:
        journey = Journey.start(vault)
        settle(vault)
        assert watch(vault.url, state)[0] == 0
        keyless = runner.invoke(app, ["watch", vault.url, "--state", str(public), "--once"])
        assert keyless.exit_code == 0, keyless.output
        with ctx_of(vault).engine.begin() as conn:  # a read under a grant never approved
            ledger = written(conn)
            forged = ledger.append("data.accessed", {
                "grant_id": journey.grant.id, "service_id": journey.world.service_id,
                "subject": journey.world.subject, "categories": ["address.home"],
                "derived": [], "commitment": "A" * 43}).seq
            sealed = b'"sealed"' in ledger.entries(forged, 1)[0]
        settle(vault)
        code, doc = watch(vault.url, state)
        assert code == 1 and doc["outcome"] == "grew", doc
        assert [(f["index"], f["rule"]) for f in doc["failures"]] == [(forged, "access.state")]
        human = runner.invoke(app, ["watch", vault.url, "--state", str(state), "--once"])
        # The key now, on a state saved without it: that state knows no sealed story, so
        # none is checked on (rather than every read named under an unknown grant).
        late_code, late = watch(vault.url, public)
    assert human.exit_code == 1  # the ledger holds the failure for good
    assert "found by earlier polls" in human.stdout
    assert doc["stories"] == "checked"
    if sealed:  # the public ledger alone shows nothing wrong: the subject is sealed
        assert "stories not checked" in keyless.stdout
        assert late_code == 0 and late["failures"] == [], late
        assert late["stories"] == "not checked: no openings"


def test_a_whole_entry_after_sealed_ones_is_named_across_polls(tmp_path: Path) -> None:
    """The state remembers that the ledger is sealed: a v1 entry appended after the last
    poll is a failure (rule `version`), as it is within one verification."""
    state = tmp_path / "watch"
    with serve(vault_settings(tmp_path / "vault")) as vault:
        Journey.start(vault)
        settle(vault)
        assert watch(vault.url, state)[0] == 0
        with ctx_of(vault).engine.begin() as conn:
            ledger = SqlLedger(conn)  # v1, by hand, after the vault's sealed entries
            assert b'"sealed":' in ledger.entries(ledger.size() - 1, 1)[0]
            whole = ledger.append("test.filler", {"n": 1}).seq
        settle(vault)
        code, doc = watch(vault.url, state)
    assert code == 1 and doc["outcome"] == "grew", doc
    assert [(f["index"], f["rule"]) for f in doc["failures"]] == [(whole, "version")]


# -- against a fake vault: any sizes, tampered proofs, crashes ---------------------------
#
# A vault served from a list of entry bytes through httpx.MockTransport, its tree and
# proofs computed the naive recursive way of RFC 9162 §2.1 (an independent reference
# for the store's proofs and the watcher's border arithmetic).


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaves: list[bytes]) -> bytes:
    """MTH (RFC 9162 §2.1.1) of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    """SUBPROOF (RFC 9162 §2.1.4.1)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """PATH (RFC 9162 §2.1.3.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


@dataclass
class FakeVault:
    signer: Signer
    entries: list[bytes] = field(default_factory=list)
    size: int = 0  # what its checkpoint covers
    tamper: Callable[[list[bytes]], list[bytes]] | None = None  # of consistency proofs
    seen: list[tuple[str, dict[str, int]]] = field(default_factory=list)

    def append(self, n: int, *, bad_prev_at: int | None = None) -> FakeVault:
        for _ in range(n):
            seq = len(self.entries)
            prev = leaf_hash(self.entries[-1]) if self.entries else b""
            if seq == bad_prev_at:
                prev = bytes(32)
            self.entries.append(encode_entry(seq, "2026-11-22T09:00:00.000Z", "test.filler",
                                             prev, {"n": seq}))
        self.size = len(self.entries)
        return self

    def leaves(self) -> list[bytes]:
        return [leaf_hash(e) for e in self.entries[:self.size]]

    def handle(self, request: httpx.Request) -> httpx.Response:
        q = {k: int(v) for k, v in request.url.params.items()}
        self.seen.append((request.url.path, q))
        match request.url.path:
            case "/ledger/key":
                return httpx.Response(200, text=f"{self.signer.verifier()}\n")
            case "/ledger/checkpoint":
                cp = Checkpoint(self.signer.name, self.size, mth(self.leaves()))
                return httpx.Response(200, text=sign_checkpoint(cp, self.signer))
            case "/ledger/entries":
                page = self.entries[q["start"]:min(q["start"] + q["limit"], self.size)]
                return httpx.Response(200, content=b"".join(e + b"\n" for e in page))
            case "/ledger/proofs/consistency":
                proof = subproof(q["from"], self.leaves()[:q["to"]], True)
                proof = self.tamper(proof) if self.tamper else proof
                return httpx.Response(200, json={"hashes": [_b64(h) for h in proof]})
            case "/ledger/proofs/inclusion":
                proof = path(q["index"], self.leaves()[:q["tree_size"]])
                return httpx.Response(200, json={"hashes": [_b64(h) for h in proof]})
        return httpx.Response(404)

    def poll(self, state: Path, **kw: Any) -> WatchReport:
        with LedgerClient(URL, transport=httpx.MockTransport(self.handle)) as client:
            return poll(client, state, url=URL, **kw)


URL = "https://vault.example"


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _flip(j: int, bit: int) -> Callable[[list[bytes]], list[bytes]]:
    def tamper(proof: list[bytes]) -> list[bytes]:
        k = j % len(proof)
        h = bytearray(proof[k])
        h[bit // 8 % 32] ^= 1 << bit % 8
        return [*proof[:k], bytes(h), *proof[k + 1:]]
    return tamper


@settings(max_examples=40, deadline=None)
@given(first=st.integers(1, 40), more=st.integers(1, 40),
       how=st.sampled_from(["honest", "proof", "smaller", "fork"]),
       j=st.integers(0, 63), bit=st.integers(0, 255))
def test_any_sizes_grow_and_any_tampering_is_a_rewrite(
    first: int, more: int, how: str, j: int, bit: int,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        vault = FakeVault(Signer.generate("vault.example/ledger")).append(first)
        assert vault.poll(state).outcome is Outcome.FIRST
        trusted = snapshot(state)
        vault.append(more)
        if how == "proof":
            vault.tamper = _flip(j, bit)
        elif how == "smaller":
            vault.size = j % first
        elif how == "fork":  # a trusted entry rewritten, and the tree signed again
            k = j % first
            vault.entries[k] = vault.entries[k].replace(b'"n":', b'"m":')
        report = vault.poll(state)
        if how == "honest":
            assert report.outcome is Outcome.GREW and report.ok, report
            assert report.new_entries == more
            assert open_checkpoint((state / "checkpoint.txt").read_text(),
                                   expected_verifier=vault.signer.verifier()).root == mth(
                                       vault.leaves())
        else:
            assert report.outcome is Outcome.REWRITTEN and report.exit_code == 3, report
            assert snapshot(state) == trusted and len(report.evidence) == 3


def test_a_broken_chain_the_vault_signed_is_a_failure_not_a_rewrite(tmp_path: Path) -> None:
    """The entries give the signed root, so nothing was rewritten; but the vault signed
    an entry whose prev is not the hash of the one before."""
    vault = FakeVault(Signer.generate("vault.example/ledger")).append(5)
    assert vault.poll(tmp_path).ok
    vault.append(5, bad_prev_at=7)
    report = vault.poll(tmp_path)
    assert report.outcome is Outcome.GREW and report.exit_code == 1
    assert [(f.index, f.rule) for f in report.failures] == [(7, "chain")]
    again = vault.poll(tmp_path)  # remembered: the ledger holds it for good
    assert again.outcome is Outcome.UNCHANGED and again.exit_code == 1
    assert again.earlier_failures == report.failures


def test_a_state_written_by_verify_is_watched_on(tmp_path: Path) -> None:
    """`vault-audit verify --state DIR` keeps no entry hash: the first poll fetches the
    last verified entry again and proves it is in the verified tree."""
    vault = FakeVault(Signer.generate("vault.example/ledger")).append(6)
    with LedgerClient(URL, transport=httpx.MockTransport(vault.handle)) as client:
        done = verify_url(client, expected_key=vault.signer.verifier(),
                          rp_id="vault.example", origins=[URL], state_dir=tmp_path)
    assert done.ok and not (tmp_path / "watch.json").exists()
    vault.append(3)
    vault.seen.clear()
    report = vault.poll(tmp_path, expected_key=vault.signer.verifier())
    assert report.outcome is Outcome.GREW and report.ok and report.new_entries == 3
    assert ("/ledger/entries", {"start": 5, "limit": 4}) in vault.seen
    assert ("/ledger/proofs/inclusion", {"index": 5, "tree_size": 6}) in vault.seen
    assert (tmp_path / "key.txt").read_text().strip() == str(vault.signer.verifier())
    vault.append(1)
    vault.seen.clear()
    assert vault.poll(tmp_path).ok  # its hash is remembered now: fetched no more
    assert [q for p, q in vault.seen if p == "/ledger/entries"] == [{"start": 9, "limit": 1}]


def test_a_crash_leaves_the_old_state_or_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault = FakeVault(Signer.generate("vault.example/ledger")).append(4)
    vault.poll(tmp_path)
    replace = os.replace

    def crash_at(n: int) -> None:
        """os.replace fails at its n-th call that writes into the state directory."""
        calls = []

        def failing(src: Any, dst: Any) -> None:
            if Path(dst).parent == tmp_path:
                calls.append(dst)
                if len(calls) == n:
                    raise OSError("power cut")
            replace(src, dst)
        monkeypatch.setattr(watch_module.os, "replace", failing)

    vault.append(2)  # 6
    crash_at(1)  # the commit itself fails: the old state stays
    with pytest.raises(WatchError, match="power cut"):
        vault.poll(tmp_path)
    monkeypatch.setattr(watch_module.os, "replace", replace)
    assert (tmp_path / "size").read_text() == "4\n"
    vault.size = 4
    assert vault.poll(tmp_path).outcome is Outcome.UNCHANGED
    assert not (tmp_path / ".staging").exists()
    vault.size = 6
    crash_at(3)  # committed, one file moved: the next load finishes the move
    with pytest.raises(WatchError, match="power cut"):
        vault.poll(tmp_path)
    monkeypatch.setattr(watch_module.os, "replace", replace)
    assert (tmp_path / ".staging").exists()
    assert (tmp_path / "size").read_text() == "4\n"
    assert vault.poll(tmp_path).outcome is Outcome.UNCHANGED
    assert (tmp_path / "size").read_text() == "6\n"
    assert not (tmp_path / ".staging").exists()


def test_one_watcher_per_directory_and_a_broken_state_is_refused(tmp_path: Path) -> None:
    vault = FakeVault(Signer.generate("vault.example/ledger")).append(3)
    vault.poll(tmp_path)
    with (tmp_path / ".lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(WatchError, match="another watcher"):
            vault.poll(tmp_path)
    story = json.loads((tmp_path / "story.json").read_text())
    story["border"] = [_b64(bytes(32))] * len(story["border"])
    (tmp_path / "story.json").write_text(json.dumps(story))
    with pytest.raises(WatchError, match="does not give the saved checkpoint's root"):
        vault.poll(tmp_path)
