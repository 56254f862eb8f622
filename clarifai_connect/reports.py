"""What sync and export reports share: counted buckets, a JSON line per item, a summary line.

A report file holds one JSON object per item worth a line, then a last line
``{"summary": …}``. Only the first few failures are kept in memory, for the terminal;
the file has them all.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import redact

__all__ = ["JsonLinesReport"]

_KEEP_FAILURES = 20
_SHOW_FAILURES = 10


@dataclass(kw_only=True)
class JsonLinesReport:
    """The base of :class:`~clarifai_connect.engine.report.RunReport` and
    :class:`~clarifai_connect.exports.report.ExportReport`. Subclasses add their buckets
    (int fields), ``as_dict`` and ``summary``. ``ok`` is False when anything failed or a
    run-level error was recorded; ``exit_code`` follows it."""

    failed: int = 0
    errors: list[str] = field(default_factory=list)  # run-level: the job is incomplete
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first few
    total: int | None = None  # items the source announced, when it knows
    path: Path | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    _file: IO[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def open(self, path: str | Path | None):
        """Start writing JSON lines to ``path`` (None: no file); returns self."""
        if path is not None:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        return self

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run finished its job."""
        return not self.failed and not self.errors

    @property
    def exit_code(self) -> int:
        """0 when ``ok``, else 1."""
        return 0 if self.ok else 1

    @property
    def seconds(self) -> float:
        """How long the run took (so far, while it runs)."""
        return (self.finished_at or time.time()) - self.started_at

    def error(self, message: str) -> None:
        """A run-level error (the output is incomplete, a deletion was refused…)."""
        with self._lock:
            self.errors.append(redact(message))

    def _count(self, bucket: str, entry: dict[str, Any], line: bool = True) -> None:
        """Count ``entry`` in ``bucket``, keep it if it is an early failure, write its line.
        The caller holds ``_lock``."""
        setattr(self, bucket, getattr(self, bucket) + 1)
        if bucket == "failed" and len(self.failures) < _KEEP_FAILURES:
            self.failures.append(entry)
        if line and self._file is not None:
            self._write_line(entry)

    def _write_line(self, entry: dict[str, Any]) -> None:
        """Write one JSON line (the caller holds ``_lock`` and checked the file is open)."""
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict (subclasses add their buckets)."""
        return {"failed": self.failed, "errors": list(self.errors),
                "seconds": round(self.seconds, 3),
                "report": str(self.path) if self.path else None}

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

    def _tail_lines(self, leave_out: str = "", path: bool = True) -> list[str]:
        """The summary's last lines: the first failures, run-level errors (but
        ``leave_out``), the file (unless not ``path``)."""
        shown = self.failures[:_SHOW_FAILURES]
        lines = [f"  failed: {f.get('source') or f['id']}: {f.get('reason', '')}"
                 for f in shown]
        if self.failed > len(shown):
            lines.append(f"  … {self.failed - len(shown)} more failures"
                         + (f" in {self.path}" if self.path else ""))
        lines.extend(f"error: {e}" for e in self.errors if e != leave_out)
        if self.path and path:
            lines.append(f"report: {self.path}")
        return lines

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        """A few lines for the terminal."""
        return "\n".join(self._tail_lines())
