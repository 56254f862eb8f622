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
from typing import IO, Any, ClassVar

from .errors import EXIT_UNREACHABLE, redact
from .records import one_shot_encoder

__all__ = ["JsonLinesReport"]

_KEEP_FAILURES = 20
# ``json.dumps(entry, ensure_ascii=False)``, without building an encoder per line.
_line_json = one_shot_encoder(ensure_ascii=False)
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
    unreachable: str = ""  # why the run stopped, when the API stopped answering
    stopped: str = ""  # why the run ended early (Ctrl-C, the API stopped answering)
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

    rerun: ClassVar[str] = "run the same command again"  # what to do after an early end
    kept: ClassVar[str] = ""  # what an early end keeps, e.g. "all checkpointed"
    unit: ClassVar[str] = "items"

    @property
    def ok(self) -> bool:
        """True when nothing failed and the run finished its job."""
        return not self.failed and not self.errors and not self.unreachable

    @property
    def exit_code(self) -> int:
        """0 when ``ok``; 4 when the API stopped answering; else 1 (README: exit codes)."""
        if self.unreachable:
            return EXIT_UNREACHABLE
        return 0 if self.ok else 1

    @property
    def read(self) -> int:  # pragma: no cover - every subclass defines it
        """Items read (the sum of the buckets)."""
        return self.failed

    def counts(self) -> str:  # pragma: no cover - every subclass defines it
        """The buckets, as a stop line says them."""
        return f"{self.failed} failed"

    def stop(self, why: str) -> None:
        """The run ends early (``why``: ``interrupted``, or what the API stopped doing): a
        run-level error, and the one line the summary ends with (:meth:`stop_line`)."""
        self.stopped = redact(why)
        self.error(f"{self.stopped}; {self.rerun}")

    def stop_line(self) -> str:
        """One line for a run that ended early: why, what was done (and kept), what was
        not read, where the report is, what to do next."""
        unread = self.total - self.read if self.total is not None else 0
        return (f"{self.stopped} after {self.read} {self.unit} ({self.counts()}"
                + (f"; {self.kept}" if self.kept else "") + ")"
                + (f", {unread} not read" if unread > 0 else "")
                + (f"; report: {self.path}" if self.path else "") + f"; {self.rerun}")

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
        self._file.write(_line_json(entry) + "\n")

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

    def _ending(self, lines: list[str]) -> str:
        """``lines`` (the subclass's summary), then the failures and errors, then the
        report path, or for a run that ended early the stop line (which says it all)."""
        if self.stopped:
            stop = f"{self.stopped}; {self.rerun}"
            return "\n".join(lines + self._tail_lines(leave_out=stop, path=False)
                             + [self.stop_line()])
        return "\n".join(lines + self._tail_lines())

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:  # pragma: no cover - every subclass defines it
        """A few lines for the terminal."""
        return "\n".join(self._tail_lines())
