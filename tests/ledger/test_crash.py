"""A writer killed with SIGKILL mid-append leaves a ledger that audits clean, on SQLite
and PostgreSQL: every batch is all or nothing, and later writers continue the chain."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ledger.audit import audit_log
from ledger.entry import parse_entry
from ledger.hasher import EMPTY_ROOT
from ledger.sqlstore import SqlLedger, init_schema, metadata
from ledger.tree import TreeHead
from ledger.verify import verify_consistency
from vault.storage.database import make_engine, read_only

WRITER = Path(__file__).with_name("_ledger_writer.py")
REPO = Path(__file__).resolve().parents[2]
ROUNDS = 5

pytestmark = pytest.mark.slow


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_and_kill(url: str, tag: str, seed: int, delay: float) -> None:
    """Start a writer, wait until it appends, SIGKILL it `delay` seconds later."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), "crash", url, tag, str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            proc.kill()
            pytest.fail(f"writer did not start: {line!r} {proc.communicate()[1].decode()}")
        time.sleep(delay)
        assert proc.poll() is None, f"writer died by itself: {proc.communicate()[1].decode()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check_ledger(engine: Engine, before: TreeHead) -> TreeHead:
    """Audit everything; each batch whole or absent; the old head is a prefix."""
    with read_only(engine).begin() as conn:
        led = SqlLedger(conn)
        head = led.tree_head()
        rows = list(led.iter_entries())
        stored = conn.execute(
            sa.select(sa.func.count()).select_from(metadata.tables["ledger_entries"])
        ).scalar_one()
        proof = led.consistency_proof(before.size, head.size) if before.size else []
    assert stored == len(rows) == head.size  # no rows beyond the head, none missing
    assert audit_log((data, h) for _, h, data in rows).head == head
    counts: Counter[str] = Counter()
    expected: dict[str, int] = {}
    for _, _, data in rows:
        entry = parse_entry(data)
        if entry.kind != "test.batched":
            continue
        body = entry.body
        assert body["i"] == counts[body["batch"]], f"batch {body['batch']} out of order"
        counts[body["batch"]] += 1
        expected[body["batch"]] = body["n"]
    partial = {b: (c, expected[b]) for b, c in counts.items() if c != expected[b]}
    assert not partial, f"batches written in part (found, size): {partial}"
    assert head.size >= before.size
    if before.size:
        verify_consistency(first=before.size, second=head.size, proof=proof,
                           first_root=before.root, second_root=head.root)
    return head


def test_sigkill_during_appends_leaves_a_clean_ledger(database_url: str) -> None:
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            init_schema(conn)
        head = TreeHead(0, EMPTY_ROOT)
        sizes = []
        for r in range(ROUNDS):
            run_and_kill(database_url, f"r{r}", rng.randrange(2**32), rng.uniform(0.05, 0.5))
            head = check_ledger(engine, head)
            sizes.append(head.size)
        assert head.size > 0, f"nothing was ever committed (seed {seed})"
        # The chain goes on after the last crash.
        with engine.begin() as conn:
            a = SqlLedger(conn).append("test.after", {"sizes": sizes})
        assert a.seq == head.size
        final = check_ledger(engine, head)
        assert final.size == head.size + 1
    finally:
        engine.dispose()
