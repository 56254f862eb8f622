"""When ingest is busy, the server's background work (embeddings, search facts) waits.

Handlers and background threads share one interpreter lock. Profiling PostInputs under a
steady upload showed the background embedder and the search-fact catch-up taking more of
it than the requests themselves (and the catch-up holding the write lock for a chunk of
2,000 inputs at a time), so uploads ran at less than half their speed. PostInputs
therefore calls :meth:`IngestActivity.touch`, and a background round first calls
:meth:`IngestActivity.give_way`: it waits until no PostInputs has arrived for ``quiet``
seconds, but at most ``patience`` seconds, so background work still progresses (one round
per ``patience``) during an upload that never pauses, and catches up as soon as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable

QUIET = 0.15  # seconds without a PostInputs that count as "ingest has paused"
PATIENCE = 5.0  # seconds a background round waits at most


class IngestActivity:
    """The time of the latest ingest request, and the wait that background work does."""

    def __init__(self, quiet: float = QUIET, patience: float = PATIENCE) -> None:
        self.quiet = quiet
        self.patience = patience
        self._last = float("-inf")

    def touch(self) -> None:
        """Note an ingest request now (a plain store: no lock on the hot path)."""
        self._last = time.monotonic()

    def give_way(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Return once ingest has been quiet for ``quiet`` seconds, after ``patience``
        seconds at most, or as soon as ``stopping()`` is true (checked every ``quiet``)."""
        deadline = time.monotonic() + self.patience
        while not stopping():
            now = time.monotonic()
            idle = now - self._last
            if idle >= self.quiet or now >= deadline:
                return
            time.sleep(min(self.quiet - idle, deadline - now))
