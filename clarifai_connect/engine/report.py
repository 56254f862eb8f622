"""The run report: one bucket per item read, a JSON line per failed or changed item, a summary.

Every item the source yielded (a record, or a problem in its place) ends in exactly one of
``created``, ``updated``, ``skipped``, ``failed`` or ``not_attempted`` (read, but never sent
because the API stopped answering), so their sum is ``read``. Inputs removed by ``--delete`` were not read (they are gone from the
source): they are counted apart, in ``deleted``. The report file holds a JSON object per
created, updated, deleted or failed item (and per changed item left as it is), then a last
line ``{"summary": …}`` (see :mod:`clarifai_connect.reports`).

Beside the buckets, two counts of what the connector noticed (each with a JSON line
``{"status": "ignored"|"repaired", …}``): ``ignored``, files of the source that are no item
of its format (a README, a ``.py``), never failed and never silent; ``repaired``, values an
item held that meant one thing only and were made valid (a box with a negative width, a box
past the image's edge, clipped). A repaired item is counted in its bucket as well.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from ..errors import redact
from ..reports import JsonLinesReport

__all__ = ["BUCKETS", "Bucket", "RunReport"]

Bucket = Literal["created", "updated", "skipped", "failed", "not_attempted", "deleted"]
"""Where an item ends: one of ``BUCKETS`` for an item read, ``deleted`` for one gone."""
BUCKETS: tuple[Bucket, ...] = get_args(Bucket)[:5]  # the buckets of items read
_ALL_BUCKETS = frozenset(get_args(Bucket))
RERUN = "run the same command again to finish"


@dataclass
class RunReport(JsonLinesReport):
    """What a sync did. ``ok`` is False when anything failed; ``exit_code`` follows it."""

    source: str
    target: str
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    skipped: int = 0
    not_attempted: int = 0  # read, not sent: the API stopped answering (see ``unreachable``)
    deleted: int = 0
    problems: int = 0  # failed items the source itself reported (unreadable rows, files)
    annotations: int = 0  # region annotations that landed
    to_delete: int = 0  # inputs gone from the source (the number deleted, or that would be)
    filtered: int = 0  # records a --transform left out (read from the source, not synced)
    ignored: int = 0  # files of the source that are no item of its format
    repaired: int = 0  # values made valid (an item may have several)
    changed: int = 0  # skipped items that changed since they were synced (no --update)
    gone: int = 0  # synced inputs the source no longer holds (counted when it was all read)
    workers: int | None = None  # the most concurrent API calls the budget allowed (not summed)
    state_path: Path | None = None
    listener: Callable[[dict[str, str]], None] | None = field(default=None, repr=False)
    rerun: ClassVar[str] = RERUN
    kept: ClassVar[str] = "all checkpointed"

    @property
    def read(self) -> int:
        """Items read from the source (records and problems)."""
        return self.created + self.updated + self.skipped + self.failed + self.not_attempted

    @property
    def ok(self) -> bool:
        """True when nothing failed, everything read was sent and the run finished."""
        return super().ok and not self.not_attempted

    def add(self, bucket: Bucket, input_id: str, source: str = "", reason: str = "",
            line: bool = True) -> None:
        """Count one item in ``bucket`` (or ``deleted``); with ``line`` write its JSON line.
        An unknown bucket is a bug: ValueError, before anything is counted."""
        self.add_many([(bucket, input_id, source, reason, line)])

    def add_many(self, items: list[tuple[Bucket, str, str, str, bool]]) -> None:
        """:meth:`add` of each ``(bucket, id, source, reason, line)``, under one lock."""
        entries = []
        for bucket, input_id, source, reason, line in items:
            if bucket not in _ALL_BUCKETS:
                raise ValueError(f"unknown bucket {bucket!r}: one of "
                                 f"{', '.join(sorted(_ALL_BUCKETS))}")
            entry = {"status": bucket, "id": input_id, "source": source}
            if reason:
                entry["reason"] = redact(reason)
            entries.append((bucket, entry, line))
        with self._lock:
            for bucket, entry, line in entries:
                self._count(bucket, entry, line)
                if self.listener is not None:  # e.g. a caller that keeps every failure
                    self.listener(entry)

    def counts(self) -> str:
        """The buckets, as a stop line says them."""
        return (f"{self.created} created, {self.updated} updated, {self.skipped} skipped, "
                f"{self.failed} failed"
                + (f", {self.not_attempted} not attempted" if self.not_attempted else ""))

    def count_annotations(self, count: int) -> None:
        """``count`` more region annotations landed."""
        with self._lock:
            self.annotations += count

    def problem(self, source: str, reason: str, input_id: str = "") -> None:
        """A source item that could not be read: failed, with where and why."""
        with self._lock:
            self.problems += 1
        self.add("failed", input_id, source, reason)

    def notice(self, kind: str, source: str, reason: str, input_id: str = "") -> None:
        """A file ``ignored`` or a value ``repaired``: counted beside the buckets, one line."""
        entry = {"status": kind, "id": input_id, "source": source, "reason": redact(reason)}
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if self._file is not None:
                self._write_line(entry)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-able dict."""
        return {
            "source": self.source, "target": self.target, "dry_run": self.dry_run,
            "read": self.read, "created": self.created, "updated": self.updated,
            "skipped": self.skipped, "not_attempted": self.not_attempted,
            "deleted": self.deleted, "to_delete": self.to_delete, "changed": self.changed,
            "gone": self.gone,
            "problems": self.problems, "annotations": self.annotations,
            "filtered": self.filtered,
            "ignored": self.ignored, "repaired": self.repaired, "workers": self.workers,
            **super().as_dict(),
            "state": str(self.state_path) if self.state_path else None,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        seconds = self.seconds
        rate = self.read / seconds if seconds > 0 else 0.0
        verb = "would be " if self.dry_run else ""
        lines = [
            f"{'plan for' if self.dry_run else 'synced'} {self.source} → {self.target}",
            f"read {self.read} items in {seconds:.1f}s ({rate:.0f}/s): "
            f"{self.created} {verb}created, {self.updated} {verb}updated, "
            f"{self.skipped} {verb}skipped, {self.failed} failed"
            + (f" ({self.problems} unreadable in the source)" if self.problems else "")
            + (f", {self.not_attempted} not attempted" if self.not_attempted else ""),
        ]
        if self.deleted or self.to_delete:
            lines.append(f"gone from the source: {self.to_delete}; "
                         f"{'would be deleted' if self.dry_run else 'deleted'}: "
                         f"{self.to_delete if self.dry_run else self.deleted}")
        if self.annotations:
            lines.append(f"region annotations sent: {self.annotations}")
        if self.filtered:
            lines.append(f"left out by the transform: {self.filtered}")
        noticed = ([f"ignored {self.ignored} files that are not items of this format"]
                   if self.ignored else []) + \
            ([f"repaired {self.repaired} values"] if self.repaired else [])
        if noticed:
            lines.append("; ".join(noticed) + " (each is in the report)")
        lines.extend(self.hints())
        return self._ending(lines)

    def progress_counts(self) -> list[tuple[str, int]]:
        """The buckets so far, as progress shows them."""
        return [("created", self.created), ("updated", self.updated),
                ("skipped", self.skipped), ("failed", self.failed),
                ("not attempted", self.not_attempted)]

    def hints(self) -> list[str]:
        """What the user may want to do next, from what the state already knows."""
        hints = []
        if self.changed:
            hints.append(f"{self.changed} items changed since the last sync: pass --update "
                         "to send the changes")
        if self.gone and not self.to_delete:  # to_delete: --delete (or a plan) saw them
            hints.append(f"{self.gone} items are gone from the source: pass --delete to "
                         "remove them from the app")
        return hints
