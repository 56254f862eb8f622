"""Bulk upload of inputs (and their annotations) in concurrent batches of at most 128.

Per batch, as the API expects: PostInputs with an inputs-add job → wait for the job →
ListInputs of the batch's ids to see which landed → DeleteInputs of the failed ones → one
retry of those whose failure may be transient → PostAnnotations for the inputs that landed.
An id that already exists is "already present", never deleted. Every item ends in exactly
one bucket of the :class:`UploadSummary`. Items are pulled lazily and at most
``2 × num_workers`` batches are in flight, so memory is bounded by the batch size.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..errors import ApiClientError, ApiError, UserError
from .utils import batched

log = logging.getLogger("clarifai_connect.client")
MAX_BATCH = 128
_PENDING = frozenset({codes.INPUT_DOWNLOAD_PENDING, codes.INPUT_DOWNLOAD_IN_PROGRESS})
_ACCEPTED = _PENDING | {codes.INPUT_DOWNLOAD_SUCCESS, codes.SUCCESS}


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
    already_present or failed."""

    total: int = 0
    uploaded: int = 0
    already_present: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    annotations_uploaded: int = 0
    annotations_failed: list[FailedItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed."""
        return not self.failed and not self.annotations_failed

    def merge(self, other: UploadSummary) -> None:
        """Add the counts of ``other`` to this summary."""
        self.total += other.total
        self.uploaded += other.uploaded
        self.already_present += other.already_present
        self.failed.extend(other.failed)
        self.annotations_uploaded += other.annotations_uploaded
        self.annotations_failed.extend(other.annotations_failed)

    def __str__(self) -> str:
        text = (f"{self.total} inputs: {self.uploaded} uploaded, {self.already_present} already "
                f"present, {len(self.failed)} failed")
        if self.annotations_uploaded or self.annotations_failed:
            text += (f"; {self.annotations_uploaded} annotations uploaded, "
                     f"{len(self.annotations_failed)} failed")
        return text


@dataclass
class UploadItem:
    """One input to upload, the annotations to add once it landed, and its source."""

    input: resources_pb2.Input
    annotations: list[resources_pb2.Annotation] = field(default_factory=list)
    source: str = ""

    @property
    def label(self) -> str:
        """How reports name the item."""
        return f"input '{self.input.id}'" + (f" ({self.source})" if self.source else "")


@dataclass(frozen=True)
class BadItem:
    """A source item that could not even be turned into an input."""

    source: str
    reason: str


def _reason(status: Any) -> str:
    text = status.description or f"status {status.code}"
    return f"{text}: {status.details}" if status.details else text


def post_annotations(client: Any, annotations: list[resources_pb2.Annotation],
                     ) -> list[tuple[resources_pb2.Annotation, str]]:
    """PostAnnotations; returns the annotations that failed, each with its reason."""
    request = service_pb2.PostAnnotationsRequest(user_app_id=client.user_app_id,
                                                 annotations=annotations)
    try:
        client._call("PostAnnotations", request)
        return []
    except ApiError as err:
        items = list(err.response.annotations) if err.response is not None else []
        if len(items) != len(annotations):
            return [(a, str(err)) for a in annotations]
        return [(sent, _reason(got.status)) for sent, got in zip(annotations, items, strict=True)
                if got.status.code not in (codes.ANNOTATION_SUCCESS, codes.SUCCESS)]


class BulkUploader:
    """Uploads a stream of :class:`UploadItem` through an Inputs client (see module doc)."""

    def __init__(self, client: Any, batch_size: int = MAX_BATCH, num_workers: int = 4,
                 wait_timeout: float = 600.0) -> None:
        if not 1 <= batch_size:
            raise UserError(f"batch_size must be 1 or more, got {batch_size}.")
        self.client = client
        self.batch_size = min(batch_size, MAX_BATCH)
        self.num_workers = max(1, num_workers)
        self.wait_timeout = wait_timeout

    def run(self, items: Iterable[UploadItem | BadItem]) -> UploadSummary:
        """Upload every item; returns the summary (failures are in it, not raised)."""
        summary = UploadSummary()
        in_flight: set[Future] = set()
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="upload") as pool:
            for batch in batched(self._good(items, summary), self.batch_size):
                in_flight.add(pool.submit(self._batch, batch))
                if len(in_flight) >= 2 * self.num_workers:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    self._collect(done, summary)
            self._collect(in_flight, summary)
        level = logging.WARNING if not summary.ok else logging.INFO
        log.log(level, "upload finished: %s", summary)
        for failure in (summary.failed + summary.annotations_failed)[:10]:
            log.warning("upload failed: %s", failure)
        return summary

    @staticmethod
    def _good(items: Iterable[UploadItem | BadItem], summary: UploadSummary,
              ) -> Iterator[UploadItem]:
        for item in items:
            if isinstance(item, BadItem):
                summary.total += 1
                summary.failed.append(FailedItem(item.source, item.reason))
            else:
                yield item

    @staticmethod
    def _collect(done: Iterable[Future], summary: UploadSummary) -> None:
        for future in done:
            summary.merge(future.result())
            log.info("upload progress: %s", summary)

    def _batch(self, items: list[UploadItem]) -> UploadSummary:
        summary = UploadSummary(total=len(items))
        unique: dict[str, UploadItem] = {}
        for item in items:
            if item.input.id in unique:
                summary.failed.append(FailedItem(item.label, "the same input id appears twice "
                                                 "in one batch of the source"))
            else:
                unique[item.input.id] = item
        landed, present, failed = self._attempt(list(unique.values()))
        retry = [unique[i] for i, (_, transient) in failed.items() if transient]
        if retry:
            log.info("retrying %d failed inputs once", len(retry))
            again_landed, again_present, again_failed = self._attempt(retry)
            landed += again_landed
            present += again_present
            failed = {**{i: f for i, f in failed.items() if not f[1]}, **again_failed}
        summary.uploaded = len(landed)
        summary.already_present = len(present)
        summary.failed.extend(FailedItem(unique[i].label, reason)
                              for i, (reason, _) in failed.items())
        annotations = [a for i in landed for a in unique[i].annotations]
        self._annotate(annotations, summary)
        return summary

    def _annotate(self, annotations: list[resources_pb2.Annotation],
                  summary: UploadSummary) -> None:
        for chunk in batched(annotations, MAX_BATCH):
            failures = post_annotations(self.client, chunk)
            if failures:  # once more: a failure may be transient
                failures = post_annotations(self.client, [a for a, _ in failures])
            summary.annotations_uploaded += len(chunk) - len(failures)
            summary.annotations_failed.extend(
                FailedItem(f"annotation of input '{a.input_id}'", reason) for a, reason in failures)

    def _attempt(self, items: list[UploadItem],
                 ) -> tuple[list[str], list[str], dict[str, tuple[str, bool]]]:
        """Post ``items`` once: (landed ids, already present ids, {failed id: (reason,
        transient)}). Failed inputs that were created are deleted again."""
        ids = [item.input.id for item in items]
        job_id = uuid.uuid4().hex
        request = service_pb2.PostInputsRequest(
            user_app_id=self.client.user_app_id, inputs=[item.input for item in items],
            inputs_add_job_id=job_id)
        try:
            response = self.client._call("PostInputs", request,
                                         ok=(codes.SUCCESS, codes.MIXED_STATUS))
        except ApiError as err:
            response = err.response
            if response is None or not response.inputs:
                return [], [], {i: (str(err), False) for i in ids}
        except ApiClientError as err:
            return [], [], {i: (str(err), False) for i in ids}
        present, failed, check = [], {}, []
        answered = {got.id: got.status for got in response.inputs}
        for input_id in ids:
            code = answered[input_id].code if input_id in answered else 0
            if code == codes.INPUT_DUPLICATE:
                present.append(input_id)
            elif code in _ACCEPTED or not code:
                check.append(input_id)
            else:
                failed[input_id] = (_reason(answered[input_id]), False)
        landed, broken = [], []
        if check:
            statuses = self._settle(job_id, check)
            for input_id in check:
                status = statuses.get(input_id)
                if status is None:
                    failed[input_id] = ("the API did not keep the input", True)
                elif status.code == codes.INPUT_DOWNLOAD_SUCCESS:
                    landed.append(input_id)
                elif status.code in _PENDING:
                    failed[input_id] = (f"media still processing after {self.wait_timeout:.0f}s",
                                        False)
                    broken.append(input_id)
                else:
                    failed[input_id] = (_reason(status), True)
                    broken.append(input_id)
        if broken:
            self.client._call("DeleteInputs", service_pb2.DeleteInputsRequest(
                user_app_id=self.client.user_app_id, ids=broken))
        return landed, present, failed

    def _settle(self, job_id: str, ids: list[str]) -> dict[str, Any]:
        """Wait until the inputs-add job has nothing pending; returns {id: status}."""
        deadline = time.monotonic() + self.wait_timeout
        delay = 0.05
        while True:
            try:
                job = self.client._call("GetInputsAddJob", service_pb2.GetInputsAddJobRequest(
                    user_app_id=self.client.user_app_id, id=job_id)).inputs_add_job
                settled = job.progress.pending_count == 0 and job.progress.in_progress_count == 0
                statuses = None
            except ApiError:  # no job bookkeeping: look at the inputs themselves
                statuses = self._statuses(ids)
                settled = not any(s.code in _PENDING for s in statuses.values())
            if settled or time.monotonic() > deadline:
                if not settled:
                    self._cancel(job_id)
                return statuses if statuses is not None else self._statuses(ids)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _statuses(self, ids: list[str]) -> dict[str, Any]:
        response = self.client._call("ListInputs", service_pb2.ListInputsRequest(
            user_app_id=self.client.user_app_id, ids=ids, per_page=len(ids)))
        return {inp.id: inp.status for inp in response.inputs}

    def _cancel(self, job_id: str) -> None:
        try:
            self.client._call("CancelInputsAddJob", service_pb2.CancelInputsAddJobRequest(
                user_app_id=self.client.user_app_id, id=job_id))
        except (ApiError, ApiClientError) as err:
            log.warning("could not cancel inputs-add job %s: %s", job_id, err)
