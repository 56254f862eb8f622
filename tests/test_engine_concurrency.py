"""The concurrency budget: fixed, or growing while the throughput grows with it (a hill
climb on a clock the test drives), and a sync against a distant server that grows it."""

from __future__ import annotations

import threading

import pytest

import clarifai_connect
from clarifai_connect.engine.concurrency import HOLD_WINDOWS, MIN_WINDOW, ConcurrencyLimit
from clarifai_connect.engine.run import concurrency_limit
from clarifai_connect.errors import ConfigError
from clarifai_connect.server import FaultInjector, LocalServer

from .sync_support import png


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _window(limit: ConcurrencyLimit, clock: Clock, rate_at) -> None:
    """One measurement window with every slot busy, at ``rate_at(limit)`` items/s."""
    holders = [limit.__enter__() for _ in range(limit.limit)]
    batches = 2 * limit.limit
    seconds = max(MIN_WINDOW * 1.01, batches * 10 / rate_at(limit.limit))
    for _ in range(batches):
        clock.now += seconds / batches
        limit.done(10)
    for held in holders:
        held.__exit__(None, None, None)


def test_a_fixed_budget_never_moves_and_blocks_the_one_too_many():
    limit = ConcurrencyLimit(2)
    clock = Clock()
    limit._clock = clock
    for _ in range(5):
        _window(limit, clock, lambda n: 100.0 * n)
    assert (limit.limit, limit.highest, limit.adaptive) == (2, 2, False)
    entered = threading.Event()
    with limit, limit:
        third = threading.Thread(target=lambda: (limit.__enter__(), entered.set()))
        third.start()
        assert not entered.wait(0.2)  # both slots are held
    assert entered.wait(10)
    limit.__exit__(None, None, None)
    third.join()


def test_it_grows_while_the_throughput_grows_and_stops_at_its_maximum():
    clock = Clock()
    limit = ConcurrencyLimit(4, 16, clock=clock)
    for _ in range(12):
        _window(limit, clock, lambda n: 100.0 * n)  # latency-bound: rate ∝ calls in flight
    assert limit.limit == limit.highest == 16


def test_a_step_that_brings_nothing_is_undone_and_tried_again_later():
    clock = Clock()
    limit = ConcurrencyLimit(4, 16, clock=clock)
    flat = lambda n: 100.0  # noqa: E731 (a server that is CPU-bound already)
    _window(limit, clock, flat)
    assert limit.limit == 6  # a first step up
    _window(limit, clock, flat)
    assert limit.limit == 4 and limit.highest == 6  # no gain: back where it was
    for _ in range(HOLD_WINDOWS):
        _window(limit, clock, flat)
        assert limit.limit == 4  # held
    _window(limit, clock, flat)
    assert limit.limit == 6  # probing again


def test_it_does_not_grow_when_the_slots_were_not_all_in_use():
    clock = Clock()
    limit = ConcurrencyLimit(4, 16, clock=clock)
    for _ in range(8):  # the source is slower than the API: one call at a time
        with limit:
            clock.now += MIN_WINDOW
            limit.done(10)
    assert limit.limit == 4


@pytest.mark.parametrize("given, start, maximum", [
    (None, 4, 16), ("auto", 4, 16), (" AUTO ", 4, 16), (3, 3, 3), ("7", 7, 7)])
def test_workers_is_a_number_or_auto(given, start, maximum):
    limit = concurrency_limit(given)
    assert (limit.start, limit.maximum) == (start, maximum)


@pytest.mark.parametrize("given", [0, -1, "many", 2.5, True])
def test_a_bad_workers_value_is_one_clear_sentence(given):
    with pytest.raises(ConfigError, match="workers must be"):
        concurrency_limit(given)


def test_a_sync_to_a_distant_server_grows_its_budget_and_lands_each_input_once(tmp_path):
    root = tmp_path / "images"
    for n in range(960):
        folder = root / f"c{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.png").write_bytes(png(n))
    faults = FaultInjector(latency=0.05, methods=frozenset({"PostInputs"}))
    with LocalServer(data_dir=tmp_path / "server", user="u", faults=faults) as server:
        report = clarifai_connect.sync(str(root), "u/far", base_url=server.base_url,
                                       pat=server.keys[0], batch_size=8,
                                       state=tmp_path / "state.sqlite")
        assert (report.created, report.failed) == (960, 0), report.summary()
        assert report.workers > 4  # 50 ms a call: more calls in flight sent more
        again = clarifai_connect.sync(str(root), "u/far", base_url=server.base_url,
                                      pat=server.keys[0], batch_size=8, workers=2,
                                      state=tmp_path / "state.sqlite")
        assert (again.created, again.skipped, again.workers) == (0, 960, 2)
