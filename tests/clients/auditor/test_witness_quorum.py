"""A vault with two real witnesses and a quorum of two (the demo's set-up), and
`vault-audit verify|watch|receipt --witness VKEY ... --quorum N`: a checkpoint without N
valid cosignatures from the given keys is refused (exit 1, named), and forged or unknown
cosignatures do not count. A witness that is down stops publishing, never writing."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from livevault import LiveVault, free_port, serve
from support.livewitness import LiveWitness, live_witness
from typer.testing import CliRunner

from clients.auditor.cli import app
from clients.auditor.witnesses import QuorumMissing, WitnessPolicy
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import WitnessSigner
from ledger.note import Signer
from ledger.proof import root_at
from ledger.sqlstore import SqlLedger
from vault.config import Settings
from vault.storage.database import make_engine

runner = CliRunner()
ORIGIN = "vault.test/ledger"
LOG = Signer.generate(ORIGIN)
STRANGER = str(WitnessSigner.generate("stranger.example").verifier())


@dataclass
class World:
    vault: LiveVault
    witnesses: list[LiveWitness]

    @property
    def key(self) -> str:
        return str(LOG.verifier())


def settings(tmp: Path, witnesses: str, quorum: int) -> Settings:
    return Settings(data_dir=tmp, checkpoint_interval=0.05, ledger_public=True,
                    ledger_origin=ORIGIN, ledger_signing_key=str(LOG),  # type: ignore[arg-type]
                    witnesses=witnesses, witness_quorum=quorum)


def grow(s: Settings, n: int) -> None:
    engine = make_engine(s.database)
    with engine.begin() as conn:
        SqlLedger(conn).append_many([("test.filler", {"note": f"g{i}"}) for i in range(n)])
    engine.dispose()


def served_size(url: str) -> int:
    r = httpx.get(f"{url}/ledger/checkpoint")
    return int(r.text.split("\n")[1]) if r.status_code == 200 else -1


def wait_for(url: str, size: int, within: float = 2.0) -> str:
    deadline = time.monotonic() + within
    while served_size(url) < size:
        assert time.monotonic() < deadline, f"no published checkpoint of size {size}"
        time.sleep(0.02)
    return httpx.get(f"{url}/ledger/checkpoint").text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("witnessed")
    with ExitStack() as stack:
        ws = [stack.enter_context(live_witness(tmp, f"w{i}", [LOG.verifier()])) for i in (1, 2)]
        pairs = ";".join(f"{w.vkey} {w.url}" for w in ws)
        vault = stack.enter_context(serve(settings(tmp / "vault", pairs, 2)))
        grow(vault.settings, 30)
        wait_for(vault.url, 30)
        yield World(vault, ws)


def audit(*args: str) -> tuple[int, dict[str, object]]:
    r = runner.invoke(app, [*args, "--json"])
    return r.exit_code, json.loads(r.output.strip().splitlines()[-1])


def test_the_served_checkpoint_carries_both_cosignatures(world: World) -> None:
    note = wait_for(world.vault.url, 30)
    check = WitnessPolicy.from_options([w.vkey for w in world.witnesses], 2)
    assert check is not None and len(check.require(note).valid) == 2
    assert [w.held_size(ORIGIN) >= 30 for w in world.witnesses] == [True, True]


def test_verify_with_the_quorum(world: World) -> None:
    w1, w2 = (w.vkey for w in world.witnesses)
    code, doc = audit("verify", world.vault.url, "--key", world.key,
                      "--witness", w1, "--witness", w2, "--quorum", "2")
    assert code == 0 and doc["ok"], doc
    human = runner.invoke(app, ["verify", world.vault.url, "--key", world.key,
                                "--witness", w1, "--witness", w2])
    assert human.exit_code == 0
    assert "cosigned by 2 of the 2 witnesses given (quorum 2)" in human.stdout


def test_verify_refuses_too_few_cosignatures(world: World) -> None:
    w1 = world.witnesses[0].vkey
    code, doc = audit("verify", world.vault.url, "--key", world.key,
                      "--witness", w1, "--witness", STRANGER, "--quorum", "2")
    assert code == 1 and doc["problem"] == "witness-quorum"
    assert "1 valid cosignatures of the 2 needed" in str(doc["reason"])


def test_a_witness_key_with_another_key_under_the_same_name_does_not_count(
        world: World) -> None:
    impostor = str(WitnessSigner.generate(world.witnesses[0].signer.name).verifier())
    code, doc = audit("verify", world.vault.url, "--key", world.key,
                      "--witness", impostor, "--quorum", "1")
    assert code == 1 and "0 valid cosignatures" in str(doc["reason"])


def test_watch_refuses_a_checkpoint_without_quorum(world: World, tmp_path: Path) -> None:
    w1, w2 = (w.vkey for w in world.witnesses)
    state = str(tmp_path / "watch")
    ok = runner.invoke(app, ["watch", world.vault.url, "--state", state, "--once", "--key",
                             world.key, "--witness", w1, "--witness", w2, "--quorum", "2"])
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(app, ["watch", world.vault.url, "--state", state, "--once",
                                  "--witness", STRANGER, "--quorum", "1", "--json"])
    assert refused.exit_code == 1
    assert "witness-quorum" in json.loads(refused.output)["reason"]


def test_usage_errors_are_exit_2(world: World) -> None:
    for args in (["--witness", "not-a-key"], ["--quorum", "1"],
                 ["--witness", STRANGER, "--quorum", "2"]):
        r = runner.invoke(app, ["verify", world.vault.url, *args, "--json"])
        assert r.exit_code == 2, (args, r.output)


def test_a_forged_cosignature_is_named_and_does_not_count(world: World) -> None:
    note = wait_for(world.vault.url, 30)
    lines = note.splitlines(keepends=True)
    w1 = world.witnesses[0]
    i = next(n for n, line in enumerate(lines) if line.startswith(f"\u2014 {w1.signer.name} "))
    head, b64 = lines[i].rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[20] ^= 1
    lines[i] = f"{head} {base64.b64encode(bytes(raw)).decode()}\n"
    forged = "".join(lines)
    policy = WitnessPolicy.from_options([w.vkey for w in world.witnesses], 2)
    assert policy is not None
    with pytest.raises(QuorumMissing, match="forged or future-dated: " + w1.signer.name):
        policy.require(forged)
    # ... and the same from the command line, with the checkpoint given as a file.
    (path := Path(world.vault.settings.data_dir) / "forged.note").write_text(forged)
    export = Path(world.vault.settings.data_dir) / "export.ndjson"
    export.write_bytes(b"".join(
        line + b"\n" for line in httpx.get(f"{world.vault.url}/ledger/entries",
                                           params={"limit": 1000}).content.split(b"\n")[:-1]))
    code, doc = audit("verify", "--from-export", str(export), "--checkpoint", str(path),
                      "--key", world.key, "--rp-id", "localhost",
                      "--witness", w1.vkey, "--witness", world.witnesses[1].vkey)
    assert code == 1 and doc["problem"] == "witness-quorum", doc


def test_receipt_checkpoint_needs_the_quorum(world: World, tmp_path: Path) -> None:
    note = wait_for(world.vault.url, 30)
    w1, w2 = (w.vkey for w in world.witnesses)

    def witness_problems(checkpoint: str, *args: str) -> list[object]:
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps({"ledger_evidence": {"checkpoint": checkpoint}}))
        r = runner.invoke(app, ["receipt", str(path), "--json", *args])
        return [p for p in json.loads(r.output)["problems"] if p["check"] == "witnesses"]

    assert witness_problems(note, "--witness", w1, "--witness", w2) == []
    log_only = note[:note.index("\n\n") + 2] + note.split("\n\n", 1)[1].splitlines(True)[0]
    assert witness_problems(log_only, "--witness", w1, "--witness", w2)


def test_witness_down_stops_publishing_never_writing(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with live_witness(tmp_path, "up", [LOG.verifier()]) as up:
        pairs = f"{up.vkey} {up.url};{STRANGER} {dead}"
        with serve(settings(tmp_path / "vault", pairs, 2)) as vault:
            grow(vault.settings, 3)  # the writes commit
            time.sleep(0.3)
            r = httpx.get(f"{vault.url}/ledger/checkpoint")
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["type"].endswith("not-witnessed")
            documented = httpx.get(f"{vault.url}/openapi.json").json()
            assert "503" in documented["paths"]["/ledger/checkpoint"]["get"]["responses"]
            health = httpx.get(f"{vault.url}/readyz")
            assert health.status_code == 200
            assert up.held_size(ORIGIN) >= 3  # the witness that is up did cosign


def test_a_fork_a_witness_cosigned_is_refused_and_shown(world: World, tmp_path: Path) -> None:
    """The vault showed a third witness (one this auditor also knows, with its URL) another
    history at the same size: verify refuses it and shows both checkpoints."""
    served = wait_for(world.vault.url, 30)
    size = int(served.split("\n")[1])
    forked = sign_checkpoint(Checkpoint(ORIGIN, size, hashlib.sha256(b"other").digest()), LOG)
    w1, w2 = world.witnesses
    with live_witness(tmp_path, "w3", [LOG.verifier()]) as w3:
        r = httpx.post(f"{w3.url}/add-checkpoint", content=f"old 0\n\n{forked}".encode())
        assert r.status_code == 200
        honest = ["--key", world.key, "--witness", w1.vkey, "--witness", w2.vkey,
                  "--quorum", "2"]
        # What w1 last cosigned is the vault's own history: nothing to refuse.
        code, doc = audit("verify", world.vault.url, *honest[:2],
                          "--witness", f"{w1.vkey} {w1.url}", "--witness", w2.vkey,
                          "--quorum", "2")
        assert code == 0, doc
        code, doc = audit("verify", world.vault.url, *honest,
                          "--witness", f"{w3.vkey} {w3.url}")
        assert code == 1 and doc["problem"] == "witness-fork", doc
        assert forked in str(doc["reason"]) and served in str(doc["reason"])
        watched = runner.invoke(app, ["watch", world.vault.url, "--state",
                                      str(tmp_path / "watch"), "--once", *honest,
                                      "--witness", f"{w3.vkey} {w3.url}"])
        assert watched.exit_code == 1 and "witness-fork" in watched.output
    bad = runner.invoke(app, ["verify", world.vault.url, "--witness",
                              f"{w1.vkey} ftp://x", "--json"])
    assert bad.exit_code == 2


def test_a_witness_behind_is_checked_with_a_consistency_proof(world: World,
                                                              tmp_path: Path) -> None:
    wait_for(world.vault.url, 30)
    engine = make_engine(world.vault.settings.database)
    with engine.connect() as conn:
        real = root_at(SqlLedger(conn), 17)
    engine.dispose()
    w1, w2 = world.witnesses
    quorum = ["--key", world.key, "--witness", w1.vkey, "--witness", w2.vkey, "--quorum", "2"]
    for root, expected in ((real, 0), (hashlib.sha256(b"edited").digest(), 1)):
        older = sign_checkpoint(Checkpoint(ORIGIN, 17, root), LOG)
        with live_witness(tmp_path, f"behind{expected}", [LOG.verifier()]) as w:
            assert httpx.post(f"{w.url}/add-checkpoint",
                              content=f"old 0\n\n{older}".encode()).status_code == 200
            code, doc = audit("verify", world.vault.url, *quorum,
                              "--witness", f"{w.vkey} {w.url}")
        assert code == expected, doc
