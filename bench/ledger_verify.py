"""What an auditor pays: auditing a whole export, checking proofs and checkpoints.

Audit (goal >= 100,000 entries/s, peak memory < 150 MB): a child process
(`bench.verify_child`) opens the signed checkpoint and runs
`audit_log(read_ndjson(f), checkpoint=...)` over the 1M-entry NDJSON export; it
reports its own time and peak RSS, so this process's memory does not count. Floor:
the same child doing only a JSON parse and a leaf hash per line (rate and RSS).
Best rate and worst peak RSS over the repeats.

Proofs (goal <= 20 us each): `verify_inclusion` over inclusion proofs built by the
store at the full size (about 20 hashes each). Floor: raw `hashlib.sha256` of 65 bytes
as many times as the proof has hashes. Checkpoints (goal <= 100 us):
`open_checkpoint` on the signed note. Floor: raw `nacl` `VerifyKey.verify` of the same
signature with the key already loaded. Mean per call over a loop, best of the repeats.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nacl.signing

from bench.report import Goal, Result, best, spread
from bench.workload import BigLedger
from ledger.checkpoint import open_checkpoint
from ledger.note import Verifier, parse_note
from ledger.sqlstore import SqlLedger
from ledger.verify import verify_inclusion
from vault.storage.database import make_engine, read_only, sqlite_url

__all__ = ["bench_audit", "bench_proof_checks"]

REPO = Path(__file__).resolve().parents[1]
_MB = 1024 / 1e6  # KiB -> MB (10**6 bytes)


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.verify_child", *args],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def bench_audit(big: BigLedger, workdir: Path, *, repeats: int) -> list[Result]:
    note = workdir / "checkpoint.note"
    note.write_text(big.signed_checkpoint)
    audits: list[dict[str, Any]] = []
    floors: list[dict[str, Any]] = []
    for _ in range(repeats):
        audits.append(_child([str(big.ndjson), "--note", str(note), "--vkey", big.verifier_key]))
        floors.append(_child([str(big.ndjson), "--floor"]))
    for run in audits + floors:
        if run["entries"] != big.size:
            raise RuntimeError(f"child saw {run['entries']} entries, the export has {big.size}")
    rates = [r["entries"] / r["seconds"] for r in audits]
    floor_rates = [r["entries"] / r["seconds"] for r in floors]
    rss = [r["peak_rss_kib"] * _MB for r in audits]
    floor_rss = [r["peak_rss_kib"] * _MB for r in floors]
    base = min(r["base_rss_kib"] for r in audits) * _MB
    stat = f"{repeats} child run{'s' if repeats > 1 else ''}"
    return [
        Result(
            name=f"audit NDJSON export of {big.size:,} entries",
            unit="/s",
            measured=best(rates, higher_is_better=True),
            floor=best(floor_rates, higher_is_better=True),
            floor_what="parse+hash only",
            goal=Goal(">=", 100_000),
            stat=f"best of {stat}",
            spread=spread(rates),
            notes=[f"export is {big.ndjson.stat().st_size / 1e6:.0f} MB; "
                   f"floor spread {spread(floor_rates):.0%}"],
        ),
        Result(
            name="audit peak RSS (child process)",
            unit="MB",
            measured=max(rss),
            floor=max(floor_rss),
            floor_what="parse+hash only",
            goal=Goal("<=", 150),
            stat=f"worst of {stat}",
            notes=[f"the child's RSS after imports, before reading: {base:.1f} MB"],
        ),
    ]


def _per_call(loop: Callable[[], int], repeats: int) -> list[float]:
    """Seconds per call of each repeat of `loop` (which returns how many calls it made)."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = loop()
        out.append((time.perf_counter() - t0) / n)
    return out


def _sample_proofs(big: BigLedger, count: int, seed: int) -> list[tuple[int, bytes, list[bytes]]]:
    rng = random.Random(seed)
    indices = [rng.randrange(big.size) for _ in range(count)]
    engine = make_engine(sqlite_url(str(big.db)), pool_size=1)
    try:
        with read_only(engine).connect() as conn:
            store = SqlLedger(conn)
            leaves = store.node_hashes([(0, i) for i in indices])
            proofs = [store.inclusion_proof(i, big.size) for i in indices]
    finally:
        engine.dispose()
    return list(zip(indices, leaves, proofs, strict=True))


def bench_proof_checks(big: BigLedger, *, count: int, repeats: int) -> list[Result]:
    size, root = big.size, big.root
    samples = _sample_proofs(big, count, seed=5)
    for i, leaf, path in samples:  # not timed: every proof must verify
        verify_inclusion(leaf_hash=leaf, index=i, tree_size=size, proof=path, expected_root=root)

    def verify_all() -> int:
        for i, leaf, path in samples:
            verify_inclusion(leaf_hash=leaf, index=i, tree_size=size, proof=path,
                             expected_root=root)
        return len(samples)

    block = b"\x01" + bytes(64)
    sha256 = hashlib.sha256

    def hash_all() -> int:
        for _i, _leaf, path in samples:
            for _h in path:
                sha256(block).digest()
        return len(samples)

    verifier = Verifier.parse(big.verifier_key)
    note = big.signed_checkpoint
    parsed = parse_note(note)
    text, sig = parsed.text.encode(), parsed.signatures[0].signature
    key = nacl.signing.VerifyKey(verifier.public_key)

    def open_all() -> int:
        for _ in range(count):
            open_checkpoint(note, expected_verifier=verifier)
        return count

    def nacl_all() -> int:
        for _ in range(count):
            key.verify(text, sig)
        return count

    incl = [t * 1e6 for t in _per_call(verify_all, repeats)]
    incl_floor = [t * 1e6 for t in _per_call(hash_all, repeats)]
    cps = [t * 1e6 for t in _per_call(open_all, repeats)]
    cp_floor = [t * 1e6 for t in _per_call(nacl_all, repeats)]
    avg_len = sum(len(p) for _i, _l, p in samples) / len(samples)
    return [
        Result(
            name=f"verify_inclusion @ {size:,}",
            unit="us",
            measured=best(incl, higher_is_better=False),
            floor=best(incl_floor, higher_is_better=False),
            floor_what="raw sha256 x len",
            goal=Goal("<=", 20),
            stat=f"best of {repeats}, mean of {count:,}",
            spread=spread(incl),
            notes=[f"{avg_len:.1f} hashes per proof on average"],
        ),
        Result(
            name="open_checkpoint (Ed25519 note)",
            unit="us",
            measured=best(cps, higher_is_better=False),
            floor=best(cp_floor, higher_is_better=False),
            floor_what="raw nacl verify",
            goal=Goal("<=", 100),
            stat=f"best of {repeats}, mean of {count:,}",
            spread=spread(cps),
        ),
    ]
