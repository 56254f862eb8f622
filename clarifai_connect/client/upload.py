"""The client's bulk uploads (``Inputs._bulk_upload``, ``Dataset.upload_*``): the items they
take, the :class:`UploadSummary` they return, and :func:`upload_items`, which runs them on
the sync engine.

The engine sends them as it sends records (one concurrency budget, batches of at most 128,
inputs posted with their ids, annotations only for inputs in the app, failed downloads
deleted, memory bounded by the batch size), with an in-memory state instead of a state file.
Every item ends in exactly one bucket of the summary: uploaded, already present or failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from clarifai_grpc.grpc.api import resources_pb2

from ..errors import UserError
from .base import BaseClient
from .record_upload import MAX_BATCH, Prepared, RecordUploader

__all__ = ["BadItem", "FailedItem", "UploadItem", "UploadSummary", "upload_items"]

log = logging.getLogger("clarifai_connect.client")


@dataclass(frozen=True)
class FailedItem:
    """An item that did not make it, with where it came from and why."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass
class UploadSummary:
    """What a bulk upload did: every item read is in exactly one of uploaded,
    already_present or failed. ``errors`` are run-level (the source stopped being read)."""

    total: int = 0
    uploaded: int = 0
    already_present: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    annotations_uploaded: int = 0
    annotations_failed: list[FailedItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.failed and not self.annotations_failed and not self.errors

    def __str__(self) -> str:
        text = (f"{self.total} inputs: {self.uploaded} uploaded, {self.already_present} already "
                f"present, {len(self.failed)} failed")
        if self.annotations_uploaded or self.annotations_failed:
            text += (f"; {self.annotations_uploaded} annotations uploaded, "
                     f"{len(self.annotations_failed)} failed")
        return text + "".join(f"; {error}" for error in self.errors)


@dataclass
class UploadItem:
    """One input to upload, the annotations to add once it landed, and its source."""

    input: resources_pb2.Input
    annotations: list[resources_pb2.Annotation] = field(default_factory=list)
    source: str = ""


@dataclass(frozen=True)
class BadItem:
    """A source item that could not even be turned into an input."""

    source: str
    reason: str


def upload_items(client: BaseClient, items: Iterable[UploadItem | BadItem],
                 batch_size: int = MAX_BATCH, num_workers: int = 4) -> UploadSummary:
    """Upload ``items`` into the client's app on the sync engine; returns the summary
    (every failure in it, with its source; nothing raised for a bad item)."""
    # Imported here: the engine imports this package's record_upload.
    from ..engine.pipeline import ANNOTATIONS_FAILED, SyncOptions, UploadEngine
    from ..engine.report import RunReport
    from ..engine.state import SyncState
    from ..records import Problem

    if not 1 <= batch_size <= MAX_BATCH:
        raise UserError(f"batch_size must be between 1 and {MAX_BATCH}, got {batch_size}.")
    num_workers = max(1, num_workers)
    summary = UploadSummary()

    def collect(entry: dict[str, str]) -> None:
        if entry["status"] != "failed":
            return
        reason = entry.get("reason", "")
        if reason.startswith(ANNOTATIONS_FAILED):  # the input did land
            summary.uploaded += 1
            summary.annotations_failed.append(FailedItem(
                f"annotation of input '{entry['id']}'", reason[len(ANNOTATIONS_FAILED):]))
        elif entry["id"]:
            where = f" ({entry['source']})" if entry["source"] else ""
            summary.failed.append(FailedItem(f"input '{entry['id']}'{where}", reason))
        else:
            summary.failed.append(FailedItem(entry["source"] or entry["id"], reason))

    def stream() -> Iterator[Prepared | Problem]:
        for item in items:
            if isinstance(item, BadItem):
                yield Problem(item.source, item.reason)
            else:
                yield Prepared(None, item.input, list(item.annotations), source=item.source)

    uploader = RecordUploader(client.auth, budget=threading.BoundedSemaphore(num_workers))
    uploader.retry_policy = client.retry_policy
    report = RunReport(source="upload", target=client.app_id, listener=collect)
    with SyncState(":memory:", "upload", client.app_id) as state:
        UploadEngine(uploader, state, report,
                     SyncOptions(workers=num_workers, batch_size=batch_size)).run(stream())
    summary.total = report.read
    summary.uploaded += report.created
    summary.already_present = report.skipped
    summary.annotations_uploaded = report.annotations
    summary.errors = list(report.errors)
    log.log(logging.INFO if summary.ok else logging.WARNING, "upload finished: %s", summary)
    for failure in (summary.failed + summary.annotations_failed)[:10]:
        log.warning("upload failed: %s", failure)
    return summary
