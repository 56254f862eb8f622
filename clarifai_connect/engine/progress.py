"""Progress of a sync or an export that tells the truth: done/total, the buckets so far
(created, skipped, failed …), items/s over the last seconds, and an ETA from them.

On a terminal it is a live bar (rich); anywhere else a plain line every few seconds, so a
CI log or a cron mail shows the run moving. The total comes from the source's cheap count,
or from a background count (:meth:`RunProgress.count_in_background`) when it has none.
Workers advance it as the API acknowledges each batch; it is thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import IO, Any

__all__ = ["RunProgress", "SyncProgress", "format_eta"]

_WINDOW = 20.0  # seconds of history behind the rate and the ETA


def format_eta(seconds: float | None) -> str:
    """``1:02:03``, ``4:05`` or ``6s``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}" if minutes else f"{secs}s"


class RunProgress:
    """Progress of one run; ``advance(n)`` from any thread.

    ``counts`` returns the buckets so far (``[("created", 10), ("failed", 1)]``), read from
    the run's report. ``enabled`` None: on, as a bar when ``stream`` is a terminal and as a
    line every ``interval`` seconds otherwise; False: off.
    """

    def __init__(self, description: str, counts: Callable[[], Iterable[tuple[str, int]]] = list,
                 enabled: bool | None = None, interval: float = 5.0,
                 stream: IO[str] | None = None) -> None:
        self.description = description
        self.counts = counts
        self.stream = stream or sys.stderr
        self.enabled = True if enabled is None else enabled
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval
        self.total: int | None = None
        self.done = 0
        self._lock = threading.Lock()
        self._history: deque[tuple[float, int]] = deque()
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._bar: Any = None
        self._task: Any = None
        self._ticker: threading.Thread | None = None

    # -- what is shown ---------------------------------------------------------------------

    def rate(self) -> float | None:
        """Items per second over the last seconds (None before there is any)."""
        with self._lock:
            if not self.done:
                return None
            now = time.monotonic()
            then, before = self._history[0]
            if len(self._history) < 2 or now - then < 1.0:  # too little history: since start
                elapsed = now - self._started
                return self.done / elapsed if elapsed > 0 else None
            return (self.done - before) / (now - then)

    def eta(self) -> float | None:
        """Seconds left at the current rate, when the total is known."""
        rate = self.rate()
        if self.total is None or not rate:
            return None
        return max(self.total - self.done, 0) / rate

    def line(self) -> str:
        """One line: ``sync csv: 1200/5000 (24%) · 1100 created, 100 skipped · 950/s · ETA 4s``."""
        total = "?" if self.total is None else str(self.total)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        counts = ", ".join(f"{n} {name}" for name, n in self.counts() if n)
        rate = self.rate()
        parts = [f"{self.description}: {self.done}/{total}{share}"]
        if counts:
            parts.append(counts)
        parts.append(f"{rate:.0f} items/s" if rate else "- items/s")
        parts.append(f"ETA {format_eta(self.eta())}")
        return " · ".join(parts)

    # -- being told -----------------------------------------------------------------------

    def set_total(self, total: int | None) -> None:
        """The number of items the source holds, when known (enables the ETA)."""
        if total is None:
            return
        self.total = total
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def advance(self, count: int = 1) -> None:
        """``count`` more items are done (acknowledged, skipped or failed)."""
        if not count:
            return
        now = time.monotonic()
        with self._lock:
            self.done += count
            self._history.append((now, self.done))
            while len(self._history) > 2 and now - self._history[0][0] > _WINDOW:
                self._history.popleft()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=self._status())

    def count_in_background(self, items: Iterable[Any], is_item: Callable[[Any], bool]
                            ) -> None:
        """Set the total from a second pass over the source, in a daemon thread that stops
        with the run (the count is a nicety: an error just leaves the total unknown)."""
        if not self.enabled or self.total is not None:
            return

        def count() -> None:
            seen = 0
            try:
                for item in items:
                    if self._stop.is_set():
                        return
                    seen += bool(is_item(item))
            except Exception:
                return
            if self.total is None:
                self.set_total(max(seen, self.done))

        threading.Thread(target=count, name="count", daemon=True).start()

    # -- showing --------------------------------------------------------------------------

    def _status(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.counts() if n)
        rate = self.rate()
        eta = self.eta()
        return " · ".join(p for p in (counts, f"{rate:.0f} items/s" if rate else "",
                                      f"ETA {format_eta(eta)}" if eta is not None else "") if p)

    def __enter__(self) -> RunProgress:
        self._started = time.monotonic()
        if not self.enabled:
            return self
        if self.terminal:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                 console=Console(file=self.stream), refresh_per_second=4)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, status="")
        else:
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            print(self.line(), file=self.stream, flush=True)

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, status=self._status())
            self._bar.stop()
            self._bar = None
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None


SyncProgress = RunProgress  # the name earlier code used
