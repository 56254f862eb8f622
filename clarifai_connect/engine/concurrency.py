"""The concurrency budget of a sync: how many API calls are in flight at once.

A fixed budget is a semaphore. An adaptive one (``workers="auto"``) starts at a few calls
and grows while the throughput grows with it: against a remote API every call waits on
the network, so more calls in flight send more per second, up to where the server (or the
client's own CPU) is the bound; against a server that is CPU-bound already, more calls
only queue, and the budget stays where it started.

The control is a hill climb on acknowledged items per second, measured in windows of at
least ``2 × limit`` batches (and ``MIN_WINDOW`` seconds): when every slot was in use
during a window, the limit grows by half; the next window judges the step — a gain under
``MIN_GAIN`` undoes it and holds the limit for ``HOLD_WINDOWS`` windows before trying
again. It never goes below where it started, nor above its maximum.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

__all__ = ["AUTO_MAXIMUM", "AUTO_START", "ConcurrencyLimit"]

log = logging.getLogger("clarifai_connect.engine")

AUTO_START = 4  # the fixed default of earlier versions: where an adaptive budget starts
AUTO_MAXIMUM = 16  # bounds memory as well: at most 2 × this many batches are read ahead
MIN_WINDOW = 0.2  # seconds a measurement lasts at the least
MIN_GAIN = 1.1  # a step up must bring 10% more items per second to stay
HOLD_WINDOWS = 4


class ConcurrencyLimit:
    """At most ``limit`` holders at once (``with budget:``), ``limit`` between ``start``
    and ``maximum``; fixed when they are equal. :meth:`done` feeds the hill climb."""

    def __init__(self, start: int, maximum: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if start < 1:
            raise ValueError(f"a concurrency of {start}: it must be 1 or more")
        self.start = start
        self.maximum = max(start, maximum or start)
        self.limit = start
        self.highest = start  # the highest limit reached (for reports and benchmarks)
        self._clock = clock
        self._cond = threading.Condition()
        self._busy = 0
        self._window_reset(clock())
        self._judging: tuple[int, float] | None = None  # (limit before the step, its rate)
        self._hold = 0

    @property
    def adaptive(self) -> bool:
        """Whether the limit may change."""
        return self.maximum > self.start

    def __enter__(self) -> ConcurrencyLimit:
        with self._cond:
            while self._busy >= self.limit:
                self._cond.wait()
            self._busy += 1
            self._peak = max(self._peak, self._busy)
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify()

    def done(self, items: int) -> None:
        """A batch of ``items`` was acknowledged: count it in the current window, and move
        the limit when the window is over."""
        if not self.adaptive:
            return
        with self._cond:
            self._items += items
            self._batches += 1
            now = self._clock()
            elapsed = now - self._started
            if self._batches < 2 * self.limit or elapsed < MIN_WINDOW:
                return
            self._step(self._items / elapsed, saturated=self._peak >= self.limit)
            self._window_reset(now)

    def _window_reset(self, now: float) -> None:
        self._started, self._items, self._batches = now, 0, 0
        self._peak = getattr(self, "_busy", 0)

    def _step(self, rate: float, saturated: bool) -> None:
        """One decision of the hill climb (the caller holds the condition)."""
        if self._judging is not None:
            before, before_rate = self._judging
            self._judging = None
            if rate < before_rate * MIN_GAIN:  # the step did not pay: undo it, for a while
                log.debug("concurrency %d → %d (%.0f/s, was %.0f/s)", self.limit, before,
                          rate, before_rate)
                self.limit, self._hold = before, HOLD_WINDOWS
                return
        if self._hold:
            self._hold -= 1
            return
        if saturated and self.limit < self.maximum:
            self._judging = (self.limit, rate)
            self.limit = min(self.maximum, self.limit + max(1, self.limit // 2))
            self.highest = max(self.highest, self.limit)
            log.debug("concurrency → %d (at %.0f items/s)", self.limit, rate)
            self._cond.notify_all()

    def __repr__(self) -> str:
        kind = f"adaptive {self.start}..{self.maximum}" if self.adaptive else "fixed"
        return f"ConcurrencyLimit({self.limit}, {kind})"
