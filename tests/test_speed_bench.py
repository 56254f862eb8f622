"""The speed benchmarks of issue 14 as slow tests (`pytest -m slow`), at a reduced size:
they check that every client landed everything and that paging saw every input; the
figures are printed, never asserted (DESIGN: no timed assertions)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_compare_sdk_bench_runs(capsys):
    pytest.importorskip("clarifai.client.user", reason="install the compat extra")
    from bench.compare_sdk import run

    figures = run(total=600, latencies=(0.0, 0.02))
    assert [row["latency_s"] for row in figures["rows"]] == [0.0, 0.02]
    for row in figures["rows"]:  # run() raises when a client landed less than everything
        assert row["raw_stub_per_s"] > 0 and row["sdk_per_s"] > 0 and row["sync_per_s"] > 0
    with capsys.disabled():
        print("\nclients side by side:", figures)


def test_list_pages_bench_runs(capsys):
    from bench.list_pages import run

    figures = run(total=3000, per_page=100, sample=3)  # raises unless all were listed
    assert figures["inputs"] == 3000 and figures["list_first_ms"] > 0
    with capsys.disabled():
        print("\nlist pages:", figures)


def test_server_post_inputs_bench_runs(capsys):
    from bench.server_post_inputs import run

    figures = run(total=2000, threads=4)
    assert figures["stored"] == 2000
    with capsys.disabled():
        print("\nserver PostInputs:", figures)
