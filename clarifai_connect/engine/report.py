"""The run report: one bucket per item read, a JSON line per failed or changed item, a summary.

Every item the source yielded (a record, or a problem in its place) ends in exactly one of
``created``, ``updated``, ``skipped`` or ``failed``, so ``created + updated + skipped +
failed == read``. Inputs removed by ``--delete`` were not read (they are gone from the
source): they are counted apart, in ``deleted``. The report file holds a JSON object per
created, updated, deleted or failed item (and per changed item left as it is), then a last
line ``{"summary": …}``. Only the first few failures are kept in memory, for the terminal.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import redact

__all__ = ["BUCKETS", "RunReport"]

BUCKETS = ("created", "updated", "skipped", "failed")
_KEEP_FAILURES = 20


@dataclass
class RunReport:
    """What a sync did. ``ok`` is False when anything failed; ``exit_code`` follows it."""

    source: str
    target: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    problems: int = 0  # failed items the source itself reported (unreadable rows, files)
    annotations: int = 0  # region annotations that landed
    to_delete: int = 0  # inputs gone from the source (the number deleted, or that would be)
    errors: list[str] = field(default_factory=list)  # run-level: deletion refused, aborted
    failures: list[dict[str, str]] = field(default_factory=list)  # the first few
    total: int | None = None  # items the source announced, when it knows
    path: Path | None = None
    state_path: Path | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    listener: Callable[[dict[str, str]], None] | None = field(default=None, repr=False)
    _file: IO[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def open(self, path: str | Path | None) -> RunReport:
        """Start writing JSON lines to ``path`` (None: no file)."""
        if path is not None:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        return self

    @property
    def read(self) -> int:
        """Items read from the source (records and problems)."""
        return self.created + self.updated + self.skipped + self.failed

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run finished its job."""
        return not self.failed and not self.errors

    @property
    def exit_code(self) -> int:
        """0 when ``ok``, else 1."""
        return 0 if self.ok else 1

    def add(self, bucket: str, input_id: str, source: str = "", reason: str = "",
            line: bool = True) -> None:
        """Count one item in ``bucket`` (or ``deleted``); with ``line`` write its JSON line."""
        reason = redact(reason)
        with self._lock:
            setattr(self, bucket, getattr(self, bucket) + 1)
            entry = {"status": bucket, "id": input_id, "source": source}
            if reason:
                entry["reason"] = reason
            if bucket == "failed" and len(self.failures) < _KEEP_FAILURES:
                self.failures.append(entry)
            if line and self._file is not None:
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            if self.listener is not None:  # e.g. a caller that keeps every failure
                self.listener(entry)

    def count_annotations(self, count: int) -> None:
        """``count`` more region annotations landed."""
        with self._lock:
            self.annotations += count

    def problem(self, source: str, reason: str, input_id: str = "") -> None:
        """A source item that could not be read: failed, with where and why."""
        with self._lock:
            self.problems += 1
        self.add("failed", input_id, source, reason)

    def error(self, message: str) -> None:
        """A run-level error (the run did not finish its job, or a deletion was refused)."""
        with self._lock:
            self.errors.append(redact(message))

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        return {
            "source": self.source, "target": self.target, "dry_run": self.dry_run,
            "read": self.read, "created": self.created, "updated": self.updated,
            "skipped": self.skipped, "failed": self.failed, "deleted": self.deleted,
            "to_delete": self.to_delete, "problems": self.problems,
            "annotations": self.annotations, "errors": list(self.errors),
            "seconds": round((self.finished_at or time.time()) - self.started_at, 3),
            "report": str(self.path) if self.path else None,
            "state": str(self.state_path) if self.state_path else None,
        }

    def close(self) -> None:
        """Finish: stamp the end, write the summary line, close the file."""
        with self._lock:
            if self.finished_at is None:
                self.finished_at = time.time()
            if self._file is not None:
                self._file.write(json.dumps({"summary": self.as_dict()},
                                            ensure_ascii=False) + "\n")
                self._file.close()
                self._file = None

    def summary(self) -> str:
        """A few lines for the terminal."""
        seconds = (self.finished_at or time.time()) - self.started_at
        rate = self.read / seconds if seconds > 0 else 0.0
        verb = "would be " if self.dry_run else ""
        lines = [
            f"{'plan for' if self.dry_run else 'synced'} {self.source} → {self.target}",
            f"read {self.read} items in {seconds:.1f}s ({rate:.0f}/s): "
            f"{self.created} {verb}created, {self.updated} {verb}updated, "
            f"{self.skipped} {verb}skipped, {self.failed} failed"
            + (f" ({self.problems} unreadable in the source)" if self.problems else ""),
        ]
        if self.deleted or self.to_delete:
            lines.append(f"gone from the source: {self.to_delete}; "
                         f"{'would be deleted' if self.dry_run else 'deleted'}: "
                         f"{self.to_delete if self.dry_run else self.deleted}")
        if self.annotations:
            lines.append(f"region annotations sent: {self.annotations}")
        for failure in self.failures[:10]:
            where = failure["source"] or failure["id"]
            lines.append(f"  failed: {where}: {failure.get('reason', '')}")
        if self.failed > len(self.failures[:10]):
            lines.append(f"  … {self.failed - len(self.failures[:10])} more failures"
                         + (f" in {self.path}" if self.path else ""))
        lines.extend(f"error: {e}" for e in self.errors)
        if self.path:
            lines.append(f"report: {self.path}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
