"""A live progress bar for a sync on the terminal (rich): items done, items/s, ETA when the
source announced its size. Thread-safe: workers advance it as batches finish."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["SyncProgress"]


class SyncProgress:
    """A context manager around a rich progress bar; ``advance(n)`` from any thread.

    ``enabled=None`` shows it only when stderr is a terminal.
    """

    def __init__(self, description: str = "sync", enabled: bool | None = None) -> None:
        self.description = description
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SyncProgress:
        if not self.enabled:
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} items/s"), TimeElapsedColumn(),
            TextColumn("ETA"), TimeRemainingColumn(),
            console=Console(file=sys.stderr), refresh_per_second=4)
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=None, rate="-")
        return self

    def set_total(self, total: int | None) -> None:
        """The number of items the source holds, when known (enables the ETA)."""
        if self._progress is not None and total is not None:
            self._progress.update(self._task, total=total)

    def advance(self, count: int = 1) -> None:
        """``count`` more items are done."""
        if self._progress is None or not count:
            return
        self._progress.advance(self._task, count)
        task = self._progress.tasks[0]
        speed = task.speed
        self._progress.update(self._task, rate=f"{speed:.0f}" if speed else "-")

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
