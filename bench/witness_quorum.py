"""A checkpoint to its quorum of 3 local witnesses (issue 13 §4: p99 <= 1 s).

Setup (not measured): three `vault-witness` processes (`python -m ledger.witness serve`)
on loopback ports, each with its own key and SQLite state (synchronous=FULL, so each
cosignature waits for an fsync), and a vault's database (SQLite, migrated) with its ledger
key. The vault's `Witnessing` is configured with the three and a quorum of three.

Measured, `rounds` times: entries are appended (10 per round, not timed), then
`publish_checkpoint` runs as the publisher thread runs it: the tree head read, the
checkpoint signed, a consistency proof read from the ledger for each witness, the three
POST /add-checkpoint in parallel (each witness verifies the log's signature and the
proof, stores its state and fsyncs, then cosigns), the three cosignatures verified, and
the cosigned checkpoint saved. p50 and p99 of the rounds.

Floor: the same three witnesses asked in parallel for GET /healthz over the same kind of
client, p50 and p99: the HTTP round trips alone, nothing checked, signed or stored.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.report import Goal, Result
from bench.servers import free_port
from bench.workload import progress
from ledger.cosignature import WitnessSigner
from ledger.note import Signer
from ledger.sqlstore import SqlLedger
from vault.services.checkpoints import publish_checkpoint
from vault.services.witnessing import WitnessEndpoint, Witnessing
from vault.storage.database import make_engine
from vault.storage.schema import migrate

__all__ = ["bench_witness_quorum"]

WITNESSES = 3
PER_ROUND = 10


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start_witnesses(workdir: Path, log_key: str) -> tuple[list[subprocess.Popen[bytes]],
                                                            list[WitnessEndpoint]]:
    children, endpoints = [], []
    for i in range(WITNESSES):
        signer = WitnessSigner.generate(f"bench/witness-{i + 1}")
        key = workdir / f"witness-{i + 1}.key"
        key.write_text(str(signer) + "\n")
        port = free_port()
        children.append(subprocess.Popen(
            [sys.executable, "-m", "ledger.witness", "serve", "--key", str(key),
             "--log", log_key, "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        endpoints.append(WitnessEndpoint(signer.verifier(), f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 60
    for child, e in zip(children, endpoints, strict=True):
        while True:
            try:
                if httpx.get(f"{e.url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"witness at {e.url} did not start")
            time.sleep(0.05)
    return children, endpoints


def _floor(endpoints: list[WitnessEndpoint], rounds: int) -> list[float]:
    samples = []
    with httpx.Client() as client, ThreadPoolExecutor(WITNESSES) as pool:
        for _ in range(rounds):
            t0 = time.perf_counter()
            list(pool.map(lambda e: client.get(f"{e.url}/healthz"), endpoints))
            samples.append((time.perf_counter() - t0) * 1000)
    return samples


def bench_witness_quorum(workdir: Path, *, rounds: int) -> list[Result]:
    folder = workdir / "witness-quorum"
    folder.mkdir()
    signer = Signer.generate("bench.local/ledger")
    engine = make_engine(f"sqlite:///{folder / 'vault.db'}")
    migrate(engine)
    progress(f"setup: {WITNESSES} vault-witness processes")
    children, endpoints = _start_witnesses(folder, str(signer.verifier()))
    witnessing = Witnessing(endpoints, quorum=WITNESSES)
    samples: list[float] = []
    try:
        for r in range(rounds + 5):  # the first rounds warm connections and caches
            with engine.begin() as conn:
                SqlLedger(conn).append_many(
                    [("test.filler", {"note": f"r{r}e{i}"}) for i in range(PER_ROUND)])
            t0 = time.perf_counter()
            published = publish_checkpoint(engine, signer, witnessing)
            elapsed = (time.perf_counter() - t0) * 1000
            if not published.new or published.note.count("\u2014") != 1 + WITNESSES:
                raise RuntimeError(f"round {r}: the checkpoint did not reach its quorum")
            if r >= 5:
                samples.append(elapsed)
        floor = _floor(endpoints, rounds)
    finally:
        witnessing.close()
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=10)
        engine.dispose()
    p50, p99 = statistics.median(samples), _percentile(samples, 0.99)
    f50, f99 = statistics.median(floor), _percentile(floor, 0.99)
    what = f"{WITNESSES} parallel GET /healthz to the same witnesses"
    notes = [f"{rounds} checkpoints, {PER_ROUND} new entries each; each witness checks "
             "the log's signature and the consistency proof and fsyncs before it cosigns",
             f"max {max(samples):.1f} ms"]
    return [
        Result(f"checkpoint -> quorum of {WITNESSES} local witnesses, p50", "ms", p50, f50,
               what + ", p50", Goal("<=", 1000), f"median of {rounds}", notes=notes),
        Result(f"checkpoint -> quorum of {WITNESSES} local witnesses, p99", "ms", p99, f99,
               what + ", p99", Goal("<=", 1000), f"p99 of {rounds}"),
    ]


if __name__ == "__main__":
    import tempfile

    from bench.report import print_table

    with tempfile.TemporaryDirectory(prefix="witness-bench-") as tmp:
        out = bench_witness_quorum(Path(tmp), rounds=int(sys.argv[1]) if len(sys.argv) > 1
                                   else 200)
    print_table(out, [], title="Checkpoint to a quorum of witnesses")
