"""The export report: every input in exactly one bucket, a JSON line each, and a summary.

Buckets: ``exported`` (its files are written), ``skipped`` (the format holds nothing of it,
e.g. a text input in a COCO export) and ``failed`` (with the reason: media that could not
be downloaded, a file that could not be written, an input the API returned broken).
``exported + skipped + failed == read``. What a format could not hold of an exported input
is counted in ``warnings`` (by kind) and listed on its line. The report file holds one
JSON object per input, then a last line ``{"summary": …}``, like sync's report (see
:mod:`clarifai_connect.reports`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, get_args

from ..errors import redact
from ..reports import JsonLinesReport

__all__ = ["EXPORT_BUCKETS", "ExportBucket", "ExportReport"]

ExportBucket = Literal["exported", "skipped", "failed"]
EXPORT_BUCKETS: tuple[ExportBucket, ...] = get_args(ExportBucket)


@dataclass
class ExportReport(JsonLinesReport):
    """What an export did. ``ok`` is False when anything failed; ``exit_code`` follows it."""

    source: str
    destination: str
    format: str
    exported: int = 0
    skipped: int = 0
    warnings: Counter = field(default_factory=Counter)  # message → inputs it concerns
    rerun: ClassVar[str] = "run the same command again to export it all"
    kept: ClassVar[str] = "the output is incomplete"
    unit: ClassVar[str] = "inputs"

    @property
    def read(self) -> int:
        """Inputs read from the API (and broken ones in their place)."""
        return self.exported + self.skipped + self.failed

    def add(self, bucket: ExportBucket, input_id: str, source: str = "", reason: str = "",
            warnings: list[str] | None = None) -> None:
        """Count one input in ``bucket`` and write its JSON line."""
        if bucket not in EXPORT_BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}")
        entry: dict[str, Any] = {"status": bucket, "id": input_id}
        if source:
            entry["source"] = source
        if reason:
            entry["reason"] = redact(reason)
        with self._lock:
            if warnings:
                entry["warnings"] = list(dict.fromkeys(warnings))
                self.warnings.update(entry["warnings"])
            self._count(bucket, entry)

    def counts(self) -> str:
        """The buckets, as a stop line says them."""
        return f"{self.exported} exported, {self.skipped} skipped, {self.failed} failed"

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        return {
            "source": self.source, "destination": self.destination, "format": self.format,
            "read": self.read, "exported": self.exported, "skipped": self.skipped,
            "warnings": dict(self.warnings), "unreachable": self.unreachable,
            **super().as_dict(),
        }

    def progress_counts(self) -> list[tuple[str, int]]:
        """The buckets so far, as progress shows them."""
        return [("exported", self.exported), ("skipped", self.skipped), ("failed", self.failed)]

    def summary(self) -> str:
        """A few lines for the terminal."""
        seconds = self.seconds
        rate = self.read / seconds if seconds > 0 else 0.0
        lines = [f"exported {self.source} → {self.destination} ({self.format})",
                 f"read {self.read} inputs in {seconds:.1f}s ({rate:.0f}/s): {self.counts()}"]
        for message, count in self.warnings.most_common():
            lines.append(f"  warning: {message} ({count} input{'s' if count != 1 else ''})")
        return self._ending(lines)
