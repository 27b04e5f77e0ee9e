"""bench/transparency_count.py runs and measures what it says (a small smoke run)."""

from __future__ import annotations

from pathlib import Path

from bench.transparency_count import (
    bench_count_vs_reads,
    bench_transparency_count,
    make_vault_items,
)


def test_the_workload_is_the_vaults_mix() -> None:
    kinds = [kind for kind, _ in make_vault_items(300)]
    assert kinds.count("grant.requested") == kinds.count("grant.approved") == 3
    assert kinds.count("data.accessed") == 294


def test_counting_is_measured_against_appends_and_against_reads(tmp_path: Path) -> None:
    appends = bench_transparency_count(tmp_path, n=600, repeats=1)
    reads = bench_count_vs_reads(tmp_path, n=50, repeats=1)
    for r in (appends, reads):
        assert r.unit == "%" and r.measured > 0 and r.goal.value == 5
    assert "counted" in appends.notes[0]
