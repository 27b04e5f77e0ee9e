

@pytest.mark.slow
def test_source_bench_reads_through_a_20_ms_source(tmp_path: Path) -> None:
    """The held-at-source benchmark: the vault and a 20 ms source under uvicorn, every
    read a 200 releasing the source's record (the benchmark raises otherwise)."""
    from bench.source_read import SourceScale, bench_source_read

    median, p95 = bench_source_read(tmp_path, SourceScale(reads=10, warmup=2))
    assert median.unit == p95.unit == "ms"
    assert math.isfinite(median.measured) and math.isfinite(p95.measured)
    assert "source's own answer" in " ".join(median.notes)
