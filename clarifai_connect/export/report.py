"""The export report: every input in exactly one bucket, a JSON line each, and a summary.

Buckets: ``exported`` (its files are written), ``skipped`` (the format holds nothing of it,
e.g. a text input in a COCO export) and ``failed`` (with the reason: media that could not
be downloaded, a file that could not be written, an input the API returned broken).
``exported + skipped + failed == read``. What a format could not hold of an exported input
is counted in ``warnings`` (by kind) and listed on its line. The report file holds one
JSON object per input, then a last line ``{"summary": …}``, like sync's report.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import redact

__all__ = ["EXPORT_BUCKETS", "ExportReport"]

EXPORT_BUCKETS = ("exported", "skipped", "failed")
_KEEP_FAILURES = 20


@dataclass
class ExportReport:
    """What an export did. ``ok`` is False when anything failed; ``exit_code`` follows it."""

    source: str
    destination: str
    format: str
    exported: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: Counter = field(default_factory=Counter)  # message → inputs it concerns
    errors: list[str] = field(default_factory=list)  # run-level: the output is incomplete
    failures: list[dict[str, Any]] = field(default_factory=list)  # the first few
    total: int | None = None
    path: Path | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    _file: IO[str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def open(self, path: str | Path | None) -> ExportReport:
        """Start writing JSON lines to ``path`` (None: no file)."""
        if path is not None:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8")
        return self

    @property
    def read(self) -> int:
        """Inputs read from the API (and broken ones in their place)."""
        return self.exported + self.skipped + self.failed

    @property
    def ok(self) -> bool:
        """True when nothing failed and the output is complete."""
        return not self.failed and not self.errors

    @property
    def exit_code(self) -> int:
        """0 when ``ok``, else 1."""
        return 0 if self.ok else 1

    def add(self, bucket: str, input_id: str, source: str = "", reason: str = "",
            warnings: list[str] | None = None) -> None:
        """Count one input in ``bucket`` and write its JSON line."""
        if bucket not in EXPORT_BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}")
        reason = redact(reason)
        with self._lock:
            setattr(self, bucket, getattr(self, bucket) + 1)
            entry: dict[str, Any] = {"status": bucket, "id": input_id}
            if source:
                entry["source"] = source
            if reason:
                entry["reason"] = reason
            if warnings:
                entry["warnings"] = list(dict.fromkeys(warnings))
                self.warnings.update(entry["warnings"])
            if bucket == "failed" and len(self.failures) < _KEEP_FAILURES:
                self.failures.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def error(self, message: str) -> None:
        """A run-level error: the output is incomplete or was not finished."""
        with self._lock:
            self.errors.append(redact(message))

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        return {
            "source": self.source, "destination": self.destination, "format": self.format,
            "read": self.read, "exported": self.exported, "skipped": self.skipped,
            "failed": self.failed, "warnings": dict(self.warnings),
            "errors": list(self.errors),
            "seconds": round((self.finished_at or time.time()) - self.started_at, 3),
            "report": str(self.path) if self.path else None,
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
        lines = [f"exported {self.source} → {self.destination} ({self.format})",
                 f"read {self.read} inputs in {seconds:.1f}s ({rate:.0f}/s): "
                 f"{self.exported} exported, {self.skipped} skipped, {self.failed} failed"]
        for message, count in self.warnings.most_common():
            lines.append(f"  warning: {message} ({count} input{'s' if count != 1 else ''})")
        for failure in self.failures[:10]:
            lines.append(f"  failed: {failure.get('source') or failure['id']}: "
                         f"{failure.get('reason', '')}")
        if self.failed > 10:
            lines.append(f"  … {self.failed - 10} more failures"
                         + (f" in {self.path}" if self.path else ""))
        lines.extend(f"error: {e}" for e in self.errors)
        if self.path:
            lines.append(f"report: {self.path}")
        return "\n".join(lines)
