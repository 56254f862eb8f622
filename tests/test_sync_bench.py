"""The sync benchmarks as slow tests (`pytest -m slow`): they run the benches at a reduced
size and check that everything landed; the memory bounds are peak RSS growth per record
and a ratio of peaks, not a time.
The throughput figure is printed, never asserted (DESIGN: no timed assertions)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_sync_throughput_bench_runs(capsys):
    from bench.sync_throughput import run

    figures = run(total=4000, threads=4)
    assert figures["created"] == 4000 and figures["failed"] == 0
    with capsys.disabled():
        print("\nsync throughput:", figures)


def test_sync_memory_is_bounded_by_batches_not_source_size(capsys):
    from bench.sync_memory import run

    fixed = run(small=10_000, large=100_000, workers="4")
    adaptive = run(small=10_000, large=100_000)
    with capsys.disabled():
        print("\nsync memory, --workers 4:", fixed, "\nsync memory, --workers auto:", adaptive)
    assert fixed["tiny_peak_rss_mb"] < fixed["small_peak_rss_mb"]  # the baseline is real
    # Measured here with the concurrency fixed: 78–85 bytes per extra record (7 MB for the
    # 90k more, caches warming; flat from 50k to 300k records). A Parquet scan that read
    # ahead of the engine, growing with the file, gave 210–240 bytes (18–20 MB).
    assert fixed["bytes_per_extra_record"] < 150
    # The figure: 1.11–1.13 with the budget growing to 16 calls (32 threads) in the
    # longer run; bounded by that ceiling, not by the source.
    assert adaptive["ratio"] <= 1.3
