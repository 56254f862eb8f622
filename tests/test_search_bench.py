"""The search and embedding benchmarks as slow tests (`pytest -m slow`), at a reduced size:
they check that everything was embedded and every query answered; the figures are printed,
never asserted (DESIGN: no timed assertions)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_search_latency_bench_runs(capsys):
    from bench.search_latency import run

    (figures,) = run(sizes=(3000,), repeats=5)
    assert figures["vectors"] == 3000
    assert all(figures[f"{name}_ratio"] > 0 for name in ("rank", "filter_rank", "filter"))
    with capsys.disabled():
        print("\nsearch latency:", figures)


def test_ingest_embeddings_bench_runs(capsys):
    from bench.ingest_embeddings import run

    figures = run(total=1500, threads=4, kind="image", rounds=1)
    assert figures["embedded"] == 1500 and figures["embedded_when_off"] == 0
    with capsys.disabled():
        print("\ningest with embeddings:", figures)
