"""`make bench` keeps working: its quick mode runs every benchmark at a small scale."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.service_load import QUICK_LOAD, bench_service_load

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_quick_runs_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results, "the benchmark wrote no results"
    text = json.dumps(results)
    for name in ("append", "proof", "verify_inclusion", "open_checkpoint", "audit",
                 "access token", "GET /v1/data", "watch: one poll", "held at source",
                 "series ingest", "quorum of 3 local witnesses"):
        assert name in text, f"no {name!r} benchmark in the results"


@pytest.mark.slow
def test_service_load_serves_and_loads_a_few_hundred_requests(tmp_path: Path) -> None:
    """The vault and its floors under uvicorn (2 workers each, SQLite), loaded from a
    generator process: a few hundred requests per window, well under 20 s."""
    assert not QUICK_LOAD.postgres and QUICK_LOAD.max_requests == 300
    results = bench_service_load(tmp_path, QUICK_LOAD)
    rate, p99, write = results
    assert rate.name.startswith("GET /v1/data, 8 connections (SQLite")
    assert rate.unit == "/s" and rate.measured > 0 and rate.floor and rate.floor > 0
    assert p99.unit == "ms" and math.isfinite(p99.measured) and p99.measured > 0
    # Every answer was a 200 (anything else raises), and the figures of all three
    # endpoints are in the notes, with the raised rate limit said out loud.
    text = " ".join(rate.notes)
    assert "rate limit raised" in text
    assert "PK-read floor" in text and "bare JSON floor" in text
    # The issuers' writes in the same run, beside /v1/data at the same connections.
    assert write.name.startswith("PUT /v1/records (issuer writes), 8 connections (SQLite")
    assert write.unit == "/s" and write.measured > 0 and write.floor == rate.measured


@pytest.mark.slow
def test_watch_bench_polls_the_new_entries_three_ways(tmp_path: Path) -> None:
    """A tiny `vault-audit watch` benchmark: each row is one poll that verified exactly
    the new entries (the benchmark raises otherwise), beside its fetch-only floor."""
    from bench.audit_watch import WatchScale, bench_watch

    results = bench_watch(tmp_path, WatchScale(before=60, new=90, repeats=1))
    assert [r.name.split(", ", 2)[2] for r in results] == [
        "HTTP to uvicorn on loopback", "in process (ASGI, no socket)",
        "answers served from memory"]
    for r in results:
        assert r.name.startswith("watch: one poll, 90 new entries")
        assert r.unit == "ms" and r.measured > 0 and r.floor and r.floor > 0
        assert "CPU" in r.notes[0] and "grant.approved" in r.notes[1]


def test_full_audit_bench_verifies_a_small_generated_export(tmp_path: Path) -> None:
    """A tiny run of the full-audit benchmark: the export it generates (real assertions,
    reads within their grants) verifies clean in the child process."""
    from bench.audit_full import bench_full_audit, generate_export

    export = generate_export(tmp_path / "small.ndjson", 3_000)
    assert export.size >= 3_000 and export.counts["data.accessed"] > 2_000
    assert {"grant.approved", "grant.paused", "grant.exhausted"} <= set(export.counts)
    assert export.counts["delegation.granted"] > 0  # someone acts for some citizens
    # Sealed as the vault writes (ledger v2), one opening a line beside the export.
    assert export.openings is not None
    assert len(export.openings.read_bytes().splitlines()) == export.size
    assert b'"sealed":' in export.path.read_bytes().split(b"\n", 1)[0]
    rate, public, cost, rss = bench_full_audit(tmp_path, size=3_000, repeats=1)  # raises on failure
    # Acting for others (issue 14 §7): the delegation checks' cost, against the same
    # generator's export without delegations, both verified clean.
    assert cost.unit == "%" and cost.goal.value == 10 and "delegations" in cost.name
    assert "with delegations" in cost.notes[0] and "wall clock" in cost.notes[0]
    assert rate.unit == public.unit == "/s" and rate.measured > 0 and public.measured > 0
    assert rate.floor and rate.floor > 0 and public.goal.value == 150_000
    assert "not checked: no openings" in public.notes[0]
    assert rss.unit == "MB" and 0 < rss.measured < 1_000


@pytest.mark.slow
def test_source_bench_reads_through_a_20_ms_source(tmp_path: Path) -> None:
    """The held-at-source benchmark: the vault and a 20 ms source under uvicorn, every
    read a 200 releasing the source's record (the benchmark raises otherwise)."""
    from bench.source_read import SourceScale, bench_source_read

    median, p95, cpu = bench_source_read(tmp_path, SourceScale(reads=10, warmup=2))
    assert median.unit == p95.unit == cpu.unit == "ms"
    assert math.isfinite(median.measured) and math.isfinite(p95.measured)
    assert median.stat == "median of 10 pairs" and median.goal.value == 5.0
    # The vault's CPU: a held read costs at least what it takes to verify and log it.
    assert cpu.measured > 0 and cpu.floor is not None and cpu.floor > 0
    assert "source's own answer" in " ".join(median.notes)


def test_witness_bench_takes_checkpoints_to_a_quorum_of_three(tmp_path: Path) -> None:
    """Three vault-witness processes cosign every checkpoint (issue 13 §4)."""
    from bench.witness_quorum import bench_witness_quorum

    p50, p99 = bench_witness_quorum(tmp_path, rounds=5)
    assert p50.name.endswith("quorum of 3 local witnesses, p50") and p50.unit == "ms"
    assert 0 < p50.measured <= p99.measured and p99.floor is not None and p99.floor > 0
