"""The benchmark of someone acting for others (issue 14 §7) runs, at a small scale."""

from __future__ import annotations

from pathlib import Path

from bench.wallet_acting import bench_acting_pages


def test_acting_bench_times_the_pages_of_someone_acting_for_others(tmp_path: Path) -> None:
    results = bench_acting_pages(tmp_path, people=2, grants_n=10, accesses_n=50, n=5)
    assert [r.name.split(",")[0] for r in results] == [
        "wallet dashboard", "wallet dashboard", "wallet activity page"]
    assert "own vault" in results[0].name and "acting for 1 of 2" in results[1].name
    for r in results:
        assert r.unit == "ms" and r.measured > 0 and r.floor is not None
        assert r.stat == "median of 5"
