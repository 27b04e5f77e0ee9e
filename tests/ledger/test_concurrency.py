"""Four OS processes append to one ledger at the same time, on SQLite and PostgreSQL:
no entry is lost or duplicated, seqs are contiguous, and the chain and tree never fork."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import pytest

from ledger.audit import audit_log
from ledger.entry import parse_entry
from ledger.sqlstore import SqlLedger, init_schema
from ledger.tree import CompactRange
from vault.storage.database import make_engine, read_only

WRITER = Path(__file__).with_name("_ledger_writer.py")
REPO = Path(__file__).resolve().parents[2]
PROCESSES = 4
PER_PROCESS = 150

pytestmark = pytest.mark.slow


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def start_writers(url: str, tmp: Path) -> tuple[list[subprocess.Popen[str]], Path]:
    go = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), "race", url, str(w), str(PER_PROCESS),
             str(tmp / f"ready-{w}"), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )
        for w in range(PROCESSES)
    ]
    return procs, go


def test_concurrent_processes_append_without_loss_or_fork(database_url: str,
                                                          tmp_path: Path) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:
        init_schema(conn)
    procs, go = start_writers(database_url, tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not all((tmp_path / f"ready-{w}").exists() for w in range(PROCESSES)):
            for p in procs:
                if p.poll() is not None:
                    pytest.fail(f"a writer exited early ({p.returncode}): {p.communicate()[1]}")
            assert time.monotonic() < deadline, "the writers never became ready"
            time.sleep(0.01)
        go.touch()  # all four start appending together
        outputs = [p.communicate(timeout=30) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err

    with read_only(engine).begin() as conn:
        led = SqlLedger(conn)
        head = led.tree_head()
        rows = list(led.iter_entries())
        total = PROCESSES * PER_PROCESS
        sample = [1, 2, 3, 150, 257, 511, 512, 513, total - 1, total]
        stored_roots = {s: led.root_at(s) for s in sample}
    engine.dispose()

    total = PROCESSES * PER_PROCESS
    assert head.size == total
    assert [seq for seq, _, _ in rows] == list(range(total))
    # Every prev link, leaf hash and seq checks out, and the head root is the root of
    # exactly these entries: no fork.
    assert audit_log((data, h) for _, h, data in rows).head == head
    # The stored interior nodes agree too, at every sampled historical size.
    border = CompactRange()
    for seq, h, _ in rows:
        border.append(h)
        if seq + 1 in stored_roots:
            assert stored_roots[seq + 1] == border.root(), seq + 1

    entries = [parse_entry(data) for _, _, data in rows]
    per_writer: dict[int, list[int]] = defaultdict(list)
    for e in entries:
        per_writer[e.body["writer"]].append(e.body["n"])
    assert per_writer == {w: list(range(PER_PROCESS)) for w in range(PROCESSES)}
    # What each writer was told it committed is what the ledger holds.
    leaves = {seq: h.hex() for seq, h, _ in rows}
    for w, (out, _) in enumerate(outputs):
        reported = json.loads(out)
        assert len(reported) == PER_PROCESS
        for seq, h in reported:
            assert leaves[seq] == h
            assert entries[seq].body["writer"] == w
    # The writers really did run at the same time (their transactions interleave).
    switches = sum(a.body["writer"] != b.body["writer"] for a, b in pairwise(entries))
    assert switches >= PROCESSES, f"only {switches} switches between writers"
