"""The API calls of a sync, on plain values: the engine hands records in and gets per-id
outcomes back, never a proto (DESIGN: protos stay in ``client/`` and ``server/``).

Every RPC goes through one shared concurrency ``budget`` (a semaphore), inputs and
annotations alike, and through :meth:`BaseClient._call`, which retries transient faults
with capped exponential backoff and jitter.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..errors import ApiClientError, ApiError
from ..records import Record
from .auth import ClientAuth
from .base import BaseClient
from .records import record_annotations, record_input
from .utils import batched

__all__ = ["LANDED", "EXISTS", "FAILED", "Prepared", "RecordUploader"]

LANDED, EXISTS, FAILED = "landed", "exists", "failed"
MAX_BATCH = 128
_PENDING = frozenset({codes.INPUT_DOWNLOAD_PENDING, codes.INPUT_DOWNLOAD_IN_PROGRESS})
_STORED = frozenset({codes.SUCCESS, codes.INPUT_DOWNLOAD_SUCCESS})
_ANNOTATION_OK = frozenset({codes.SUCCESS, codes.ANNOTATION_SUCCESS})


@dataclass
class Prepared:
    """What the API takes for one item (its media read): the Input proto and its region
    annotations, with the ``source`` location and ``fingerprint`` the engine tracks.
    Made from a Record by :meth:`RecordUploader.prepare`, or around protos the client
    built itself (``record`` None). Opaque to the engine."""

    record: Record | None
    input: Any
    annotations: list = field(default_factory=list)
    source: str = ""
    fingerprint: str = ""

    @property
    def id(self) -> str:
        """The input id."""
        return self.input.id


def _reason(status: Any) -> str:
    text = status.description or f"status {status.code}"
    return f"{text}: {status.details}" if status.details else text


class RecordUploader(BaseClient):
    """Sends prepared records to one app, each RPC within the shared ``budget``."""

    def __init__(self, auth: ClientAuth, budget: Any = None,
                 settle_timeout: float = 600.0) -> None:
        self._init_client(auth)
        self.budget = budget if budget is not None else contextlib.nullcontext()
        self.settle_timeout = settle_timeout
        self._datasets: set[str] = set()
        self._datasets_lock = threading.Lock()

    def call(self, method: str, request: Any, ok: Iterable[int] = (codes.SUCCESS,)) -> Any:
        """``_call`` within the concurrency budget."""
        with self.budget:
            return self._call(method, request, ok)

    # -- target --------------------------------------------------------------------------

    def ensure_app(self, create: bool = True) -> bool:
        """Make sure the app exists (created when missing and ``create``); True if created."""
        try:
            self.call("GetApp", service_pb2.GetAppRequest(user_app_id=self.user_app_id))
            return False
        except ApiError as err:
            if err.code != codes.CONN_DOES_NOT_EXIST or not create:
                raise
        self.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id=self.user_id),
            apps=[resources_pb2.App(id=self.app_id, default_workflow=resources_pb2.Workflow(
                id="Universal", app_id="main", user_id="clarifai"))]))
        return True

    def ensure_datasets(self, dataset_ids: Iterable[str]) -> list[str]:
        """Make sure the datasets exist (created when missing); returns the ones created."""
        with self._datasets_lock:
            wanted = [d for d in dict.fromkeys(dataset_ids) if d and d not in self._datasets]
            created = []
            for dataset_id in wanted:
                try:
                    self.call("GetDataset", service_pb2.GetDatasetRequest(
                        user_app_id=self.user_app_id, dataset_id=dataset_id))
                except ApiError as err:
                    if err.code != codes.CONN_DOES_NOT_EXIST:
                        raise
                    self.call("PostDatasets", service_pb2.PostDatasetsRequest(
                        user_app_id=self.user_app_id,
                        datasets=[resources_pb2.Dataset(id=dataset_id)]))
                    created.append(dataset_id)
                self._datasets.add(dataset_id)
            return created

    # -- inputs --------------------------------------------------------------------------

    @staticmethod
    def prepare(record: Record | Prepared, dataset_ids: Iterable[str] = ()) -> Prepared:
        """Build the protos of ``record``, reading its media (OSError/ValueError propagate);
        an item already Prepared is returned as it is."""
        if isinstance(record, Prepared):
            return record
        return Prepared(record, record_input(record, dataset_ids), record_annotations(record),
                        source=record.source, fingerprint=record.fingerprint)

    def post_inputs(self, items: list[Prepared]) -> dict[str, tuple[str, str]]:
        """Post the inputs of ``items`` (≤128) with their ids; {id: (outcome, reason)}.

        ``LANDED``: stored and its media settled; ``EXISTS``: the id was already in the app;
        ``FAILED`` with the reason (an input whose media failed to download is deleted again).
        """
        self.ensure_datasets(d for item in items for d in item.input.dataset_ids)
        request = service_pb2.PostInputsRequest(
            user_app_id=self.user_app_id, inputs=[item.input for item in items],
            input_id_conflict_resolution=resources_pb2.SKIP)
        try:
            response = self.call("PostInputs", request, ok=(codes.SUCCESS, codes.MIXED_STATUS))
        except ApiError as err:
            response = err.response
            if response is None or not response.inputs:
                return {item.id: (FAILED, str(err)) for item in items}
        except ApiClientError as err:
            return {item.id: (FAILED, str(err)) for item in items}
        answered = {got.id: got.status for got in response.inputs}
        out: dict[str, tuple[str, str]] = {}
        pending = []
        for item in items:
            status = answered.get(item.id)
            if status is None:
                out[item.id] = (FAILED, "the API did not answer for this input")
            elif status.code in _STORED:
                out[item.id] = (LANDED, "")
            elif status.code in _PENDING:
                pending.append(item.id)
            elif status.code == codes.INPUT_DUPLICATE:
                out[item.id] = (EXISTS, "")
            else:
                out[item.id] = (FAILED, _reason(status))
        if pending:
            out.update(self._settle(pending))
        return out

    def _settle(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        """Wait for inputs whose media the API downloads; failed ones are deleted again."""
        deadline = time.monotonic() + self.settle_timeout
        delay = 0.05
        while True:
            response = self.call("ListInputs", service_pb2.ListInputsRequest(
                user_app_id=self.user_app_id, ids=ids, per_page=len(ids)))
            statuses = {inp.id: inp.status for inp in response.inputs}
            busy = [i for i in ids if i in statuses and statuses[i].code in _PENDING]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        out, broken = {}, []
        for input_id in ids:
            status = statuses.get(input_id)
            if status is None:
                out[input_id] = (FAILED, "the API did not keep the input")
            elif status.code in _STORED:
                out[input_id] = (LANDED, "")
            else:
                reason = (f"media still downloading after {self.settle_timeout:.0f}s"
                          if status.code in _PENDING else _reason(status))
                out[input_id] = (FAILED, reason)
                broken.append(input_id)
        if broken:
            self.delete_inputs(broken)
        return out

    def delete_inputs(self, ids: list[str]) -> None:
        """Delete inputs (with their annotations); ids that do not exist are ignored."""
        for chunk in batched(ids, MAX_BATCH):
            self.call("DeleteInputs", service_pb2.DeleteInputsRequest(
                user_app_id=self.user_app_id, ids=chunk))

    # -- annotations ---------------------------------------------------------------------

    def _existing_annotations(self, annotations: list) -> set[tuple[str, str]]:
        """(annotation id, input id) of those among ``annotations`` already in the app:
        an id taken on another input does not count."""
        found: set[tuple[str, str]] = set()
        for chunk in batched([a.id for a in annotations], MAX_BATCH):
            response = self.call("ListAnnotations", service_pb2.ListAnnotationsRequest(
                user_app_id=self.user_app_id, ids=chunk, per_page=len(chunk)))
            found.update((a.id, a.input_id) for a in response.annotations)
        return found

    def post_annotations(self, items: list[Prepared], check: Iterable[str] = ()
                         ) -> dict[str, str]:
        """Post the region annotations of ``items``; returns {input id: reason} of failures.

        For inputs in ``check`` (which may already hold some, from an interrupted run) the
        annotations already there are not sent again. A failed post is looked up once more:
        an annotation that is there after all (a lost response) counts as landed.
        """
        check = set(check)
        known = [a for item in items if item.id in check for a in item.annotations]
        existing = self._existing_annotations(known) if known else set()
        todo = [a for item in items for a in item.annotations
                if (a.id, a.input_id) not in existing]
        failed: dict[str, str] = {}
        for chunk in batched(todo, MAX_BATCH):
            for ann, reason in self._post_annotation_chunk(chunk):
                failed.setdefault(ann.input_id, reason)
        return failed

    def _post_annotation_chunk(self, chunk: list) -> list[tuple[Any, str]]:
        request = service_pb2.PostAnnotationsRequest(user_app_id=self.user_app_id,
                                                     annotations=chunk)
        try:
            self.call("PostAnnotations", request)
            return []
        except ApiError as err:
            got = list(err.response.annotations) if err.response is not None else []
            if len(got) == len(chunk):
                failures = [(sent, _reason(back.status)) for sent, back in zip(chunk, got, strict=True)
                            if back.status.code not in _ANNOTATION_OK]
            else:
                failures = [(sent, str(err)) for sent in chunk]
        except ApiClientError as err:
            failures = [(sent, str(err)) for sent in chunk]
        there = self._existing_annotations([a for a, _ in failures])
        return [(a, reason) for a, reason in failures if (a.id, a.input_id) not in there]


def upload_items(client: BaseClient, items: Iterable[Any], batch_size: int = MAX_BATCH,
                 num_workers: int = 4) -> Any:
    """Upload the client's own ``UploadItem`` protos (and ``BadItem`` rows) through the
    engine, without a state file; returns the :class:`~.upload.UploadSummary` the client's
    bulk uploads promise (every failure in it, with its source)."""
    from ..engine.pipeline import ANNOTATIONS_FAILED, SyncOptions, UploadEngine
    from ..engine.report import RunReport
    from ..engine.state import SyncState
    from ..records import Problem
    from .upload import BadItem, FailedItem, UploadSummary

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

    def stream() -> Any:
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
    return summary
