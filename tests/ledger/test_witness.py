"""vault-witness against a hand-made log over HTTP (C2SP tlog-witness add-checkpoint): it
cosigns growth, and answers 409/404/403/400/422 as the spec says; it never cosigns a
smaller tree or a fork, keeps the evidence, and remembers across a restart."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from typer.testing import CliRunner

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.cosignature import WitnessKey, WitnessSigner, check_cosignatures
from ledger.hasher import EMPTY_ROOT, leaf_hash
from ledger.note import Signer
from ledger.proof import consistency_proof, root_at
from ledger.tree import CompactRange
from ledger.witness import Inconsistent, Witness, WitnessState
from ledger.witness.cli import app as cli_app
from ledger.witness.server import TLOG_SIZE, create_witness_app

ORIGIN = "example.org/ledger"
LOG = Signer.generate(ORIGIN)
WITNESS = WitnessSigner.generate("witness.example/w1")


class HandLog:
    """A tree built leaf by leaf with ledger.tree, keeping every node it completes."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.nodes: dict[tuple[int, int], bytes] = {}
        rng = CompactRange()
        for i, data in enumerate(leaves):
            h = leaf_hash(data)
            self.nodes[(0, i)] = h
            for level, index, node in rng.append(h):
                self.nodes[(level, index)] = node
        self.size = len(leaves)

    def node_hashes(self, nodes: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.nodes[n] for n in nodes]

    def root(self, size: int) -> bytes:
        return root_at(self, size)

    def note(self, size: int, signer: Signer = LOG) -> str:
        return sign_checkpoint(Checkpoint(ORIGIN, size, self.root(size)), signer)

    def proof(self, old: int, new: int) -> list[bytes]:
        return [] if old == 0 else consistency_proof(self, old, new)


def body(old: int, proof: Sequence[bytes], note: str) -> bytes:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note}".encode()


LEAVES = [f"entry {i}".encode() for i in range(40)]
TREE = HandLog(LEAVES)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "witness.db"


@pytest.fixture
def client(db: Path) -> Iterator[TestClient]:
    state = WitnessState(db)
    with TestClient(create_witness_app(Witness(WITNESS, [LOG.verifier()], state,
                                               clock=lambda: 1_700_000_000))) as c:
        yield c
    state.close()


def submit(client: TestClient, old: int, new: int, tree: HandLog = TREE,
           proof: Sequence[bytes] | None = None) -> tuple[int, str]:
    note = tree.note(new)
    r = client.post("/add-checkpoint",
                    content=body(old, tree.proof(old, new) if proof is None else proof, note))
    return r.status_code, r.text


def cosigns(note: str, answer: str) -> bool:
    check = check_cosignatures(note + answer, expected_witnesses=[WITNESS.verifier()])
    return len(check.valid) == 1 and check.valid[0].timestamp == 1_700_000_000


def test_cosigns_growth_from_nothing_and_then_with_proofs(client: TestClient) -> None:
    for old, new in [(0, 1), (1, 7), (7, 8), (8, 8), (8, 33)]:
        status, answer = submit(client, old, new)
        assert status == 200, answer
        assert cosigns(TREE.note(new), answer)
    held = client.get(f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint")
    assert held.status_code == 200 and held.text.startswith(TREE.note(33))
    assert cosigns(TREE.note(33), held.text[len(TREE.note(33)):])


def test_empty_tree(client: TestClient) -> None:
    status, _ = submit(client, 0, 0)
    assert status == 200
    bad = sign_checkpoint(Checkpoint(ORIGIN, 0, leaf_hash(b"x")), LOG)
    assert client.post("/add-checkpoint", content=body(0, [], bad)).status_code == 422
    assert TREE.root(0) == EMPTY_ROOT


def test_wrong_old_size_is_409_with_the_size_held(client: TestClient) -> None:
    assert submit(client, 0, 10)[0] == 200
    r = client.post("/add-checkpoint", content=body(5, TREE.proof(5, 12), TREE.note(12)))
    assert r.status_code == 409
    assert r.headers["content-type"].startswith(TLOG_SIZE) and r.text == "10\n"
    r = client.post("/add-checkpoint", content=body(0, [], TREE.note(12)))
    assert (r.status_code, r.text) == (409, "10\n")
    assert submit(client, 10, 12)[0] == 200  # a client that learnt the size goes on


def test_never_cosigns_a_smaller_tree(client: TestClient) -> None:
    assert submit(client, 0, 20)[0] == 200
    assert submit(client, 20, 15, proof=[])[0] == 400  # old above the checkpoint's size
    status, answer = submit(client, 15, 15)
    assert (status, answer) == (409, "20\n")


def test_fork_at_the_same_size_is_refused_and_kept(client: TestClient, db: Path) -> None:
    assert submit(client, 0, 9)[0] == 200
    forked = HandLog([*LEAVES[:8], b"edited entry 8"])
    status, _ = submit(client, 9, 9, tree=forked)
    assert status == 422
    # Growth from the fork's point of view does not help either: the proof cannot link.
    other = HandLog([*LEAVES[:3], b"edited entry 3", *LEAVES[4:12]])
    assert submit(client, 9, 12, tree=other, proof=other.proof(9, 12))[0] == 422
    evidence = WitnessState(db).evidence()
    assert [e.reason.split(":")[0] for e in evidence] == [
        "a different root at size 9", "no consistency from size 9 to size 12"]
    assert evidence[0].held_note.startswith(TREE.note(9))
    assert evidence[0].submitted_note == forked.note(9)
    assert submit(client, 9, 10)[0] == 200  # the honest log goes on
    shown = CliRunner().invoke(cli_app, ["evidence", "--db", str(db)])
    assert shown.exit_code == 1 and "2 inconsistent checkpoints refused" in shown.output
    assert TREE.note(9) in shown.output and forked.note(9) in shown.output
    as_json = CliRunner().invoke(cli_app, ["evidence", "--db", str(db), "--json"])
    first = json.loads(as_json.output.splitlines()[0])
    assert first["refused"] == forked.note(9) and first["cosigned"].startswith(TREE.note(9))


def test_bad_proofs(client: TestClient) -> None:
    assert submit(client, 0, 5)[0] == 200
    proof = TREE.proof(5, 13)
    flipped = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
    assert submit(client, 5, 13, proof=flipped)[0] == 422
    assert submit(client, 5, 13, proof=proof[:-1])[0] == 422
    assert submit(client, 5, 13, proof=[])[0] == 422
    assert submit(client, 5, 13)[0] == 200


def test_proof_from_zero_must_be_empty(client: TestClient) -> None:
    assert submit(client, 0, 4, proof=[bytes(32)])[0] == 422


def test_unknown_log_is_404(client: TestClient) -> None:
    other = Signer.generate("elsewhere.example/log")
    note = sign_checkpoint(Checkpoint(other.name, 3, TREE.root(3)), other)
    r = client.post("/add-checkpoint", content=body(0, [], note))
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_bad_or_missing_log_signature_is_403(client: TestClient) -> None:
    impostor = Signer.generate(ORIGIN)  # same origin, other key: no trusted signature
    assert submit(client, 0, 3, tree=HandLog(LEAVES[:3]))[0] == 200
    r = client.post("/add-checkpoint", content=body(3, TREE.proof(3, 6), TREE.note(6, impostor)))
    assert r.status_code == 403
    note = TREE.note(6)
    text, sig = note.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1  # the trusted key's line, a signature that fails
    forged = f"{text} {base64.b64encode(bytes(raw)).decode()}\n"
    r = client.post("/add-checkpoint", content=body(3, TREE.proof(3, 6), forged))
    assert r.status_code == 403
    assert submit(client, 3, 6)[0] == 200  # nothing was cosigned meanwhile


@pytest.mark.parametrize("raw", [
    b"",
    b"old 1\n",
    b"old 01\n\n" + TREE.note(2).encode(),
    b"new 1\n\n" + TREE.note(2).encode(),
    b"old 0\nnot base64!\n\n" + TREE.note(2).encode(),
    b"old 0\n" + base64.b64encode(b"short") + b"\n\n" + TREE.note(2).encode(),
    b"old 0\n" + b"".join([base64.b64encode(bytes(32)) + b"\n"] * 64) + b"\n"
    + TREE.note(2).encode(),
    b"old 0\n\nnot a checkpoint\n",
    b"\xff\xfe",
    b"old 0\n\n" + b"x" * 70_000,
])
def test_malformed_requests_are_400(client: TestClient, raw: bytes) -> None:
    r = client.post("/add-checkpoint", content=raw)
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 400


def test_restart_keeps_what_it_cosigned(db: Path) -> None:
    state = WitnessState(db)
    with TestClient(create_witness_app(Witness(WITNESS, [LOG.verifier()], state))) as c:
        assert submit(c, 0, 16)[0] == 200
    state.close()
    state = WitnessState(db)
    with TestClient(create_witness_app(Witness(WITNESS, [LOG.verifier()], state))) as c:
        assert submit(c, 0, 17) == (409, "16\n")
        assert submit(c, 16, 17)[0] == 200
    state.close()


def test_no_evidence_is_exit_0(db: Path) -> None:
    WitnessState(db).close()
    shown = CliRunner().invoke(cli_app, ["evidence", "--db", str(db)])
    assert shown.exit_code == 0 and "0 inconsistent checkpoints refused" in shown.output


def test_unknown_origin_on_the_monitoring_route(client: TestClient) -> None:
    assert client.get(f"/{'0' * 64}/checkpoint").status_code == 404
    assert client.get(f"/{hashlib.sha256(ORIGIN.encode()).hexdigest()}/checkpoint"
                      ).status_code == 404  # known, but nothing cosigned yet


def test_keygen_and_key(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "w.key"
    made = runner.invoke(cli_app, ["keygen", "--out", str(out), "--name", "w.example/1"])
    assert made.exit_code == 0, made.output
    vkey = WitnessKey.parse(made.output.strip())
    assert vkey.name == "w.example/1"
    assert out.stat().st_mode & 0o777 == 0o600
    shown = runner.invoke(cli_app, ["key", "--key", str(out)])
    assert shown.output.strip() == made.output.strip()
    again = runner.invoke(cli_app, ["keygen", "--out", str(out)])
    assert again.exit_code == 1 and "keeps its key" in again.output
    assert WitnessKey.parse(runner.invoke(cli_app, ["key", "--key", str(out)]).output) == vkey


def test_vault_witness_serve_as_a_process(tmp_path: Path) -> None:
    """`python -m ledger.witness serve` (the `vault-witness` script, as make run starts it)."""
    import subprocess
    import sys
    import time

    import httpx
    from livevault import free_port

    key = tmp_path / "w.key"
    assert CliRunner().invoke(cli_app, ["keygen", "--out", str(key)]).exit_code == 0
    port = free_port()
    child = subprocess.Popen([sys.executable, "-m", "ledger.witness", "serve", "--key", str(key),
                              "--log", str(LOG.verifier()), "--port", str(port)])
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and child.poll() is None
                time.sleep(0.1)
        r = httpx.post(f"{url}/add-checkpoint", content=body(0, [], TREE.note(5)))
        signer = WitnessSigner.parse(key.read_text())
        check = check_cosignatures(TREE.note(5) + r.text, expected_witnesses=[signer.verifier()])
        assert r.status_code == 200 and len(check.valid) == 1
        assert (tmp_path / "w.db").is_file()  # default: beside the key
    finally:
        child.terminate()
        child.wait(timeout=10)
    bad = CliRunner().invoke(cli_app, ["serve", "--key", str(key), "--log", "nonsense"])
    assert bad.exit_code == 2 and "not a log verifier key" in bad.output


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6), data=st.data())
def test_any_flipped_proof_bit_is_refused_and_honest_growth_cosigned(
        tmp_path_factory: pytest.TempPathFactory, sizes: list[int], data: st.DataObject) -> None:
    """Property: along any growth of an honest log, a proof with one bit flipped is never
    cosigned (and leaves the state alone), and the true proof always is."""
    state = WitnessState(tmp_path_factory.mktemp("prop") / "w.db")
    witness = Witness(WITNESS, [LOG.verifier()], state, clock=lambda: 1)
    held = 0
    try:
        for size in sorted(set(sizes)):
            proof = TREE.proof(held, size)
            if proof:
                i = data.draw(st.integers(0, len(proof) * 32 * 8 - 1))
                bad = [bytearray(h) for h in proof]
                bad[i // 256][(i // 8) % 32] ^= 1 << (i % 8)
                with pytest.raises(Inconsistent):
                    witness.add_checkpoint(body(held, [bytes(h) for h in bad], TREE.note(size)))
            assert witness.add_checkpoint(body(held, proof, TREE.note(size))).size == size
            held = size
    finally:
        state.close()
