"""`make bench` keeps working: its quick mode runs every benchmark at a small scale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    for name in ("append", "proof", "verify_inclusion", "open_checkpoint", "audit"):
        assert name in text, f"no {name!r} benchmark in the results"
