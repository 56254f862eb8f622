"""The YOLO read benchmark as a slow test (`pytest -m slow`): it runs at a reduced size and
checks that every image became a record; the ratio is printed, never asserted."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_yolo_read_bench_runs(capsys):
    from bench.yolo_read import run

    figures = run(images=600, repeat=1)
    assert figures["images"] == 600 and figures["regions"] > 600
    with capsys.disabled():
        print("\nyolo read:", figures)
