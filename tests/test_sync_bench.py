"""The sync benchmarks as slow tests (`pytest -m slow`): they run the benches at a reduced
size and check that everything landed; the memory bound is a ratio of peak RSS growth over
a tiny run's baseline, not a time.
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


@pytest.mark.xfail(strict=True, reason="measured net of the interpreter, a Parquet sync still "
                   "grows ~230 bytes a record (native: pyarrow's scan of the file; the Python "
                   "heap stays flat): 2.25x from 10k to 100k. Strict: passing means it is fixed")
def test_sync_memory_is_bounded_by_batches_not_source_size(capsys):
    from bench.sync_memory import run

    figures = run(small=5000, large=50000)
    with capsys.disabled():
        print("\nsync memory:", figures)
    assert figures["tiny_peak_rss_mb"] < figures["small_peak_rss_mb"]  # the baseline is real
    assert figures["ratio"] <= 1.3
