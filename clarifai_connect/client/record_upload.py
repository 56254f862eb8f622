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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..errors import ApiClientError, ApiError, ApiUnreachableError
from ..records import Record
from .auth import ClientAuth
from .base import BaseClient
from .records import record_annotations, record_input
from .utils import batched

__all__ = ["EXISTS", "FAILED", "LANDED", "MAX_BATCH", "Outcome", "Prepared", "RecordUploader",
           "post_annotation_chunk"]

Outcome = Literal["landed", "exists", "failed"]
"""What became of one posted input: stored, already in the app, or failed (with a reason)."""
LANDED: Outcome = "landed"
EXISTS: Outcome = "exists"
FAILED: Outcome = "failed"
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
    def prepare(record: Record | Prepared, dataset_ids: Iterable[str] = (),
                check_media: bool = False) -> Prepared:
        """Build the protos of ``record``, reading its media and checking it is what it
        claims (OSError/ValueError propagate; ``check_media`` also decodes images); an item
        already Prepared is returned as it is."""
        if isinstance(record, Prepared):
            return record
        return Prepared(record, record_input(record, dataset_ids, check_media),
                        record_annotations(record),
                        source=record.source, fingerprint=record.fingerprint)

    def post_inputs(self, items: list[Prepared]) -> dict[str, tuple[Outcome, str]]:
        """Post the inputs of ``items`` (≤128) with their ids; {id: (outcome, reason)}.

        ``LANDED``: stored and its media settled; ``EXISTS``: the id was already in the app;
        ``FAILED`` with the reason. An input whose media failed to download is deleted and
        posted once more (the failure may be transient); failing again, it is deleted again.
        """
        out, again = self._post_inputs(items)
        if again:
            out.update(self._post_inputs([item for item in items if item.id in again])[0])
        return out

    def _post_inputs(self, items: list[Prepared]
                     ) -> tuple[dict[str, tuple[Outcome, str]], set[str]]:
        """Post once: ({id: (outcome, reason)}, ids worth another try)."""
        self.ensure_datasets(d for item in items for d in item.input.dataset_ids)
        request = service_pb2.PostInputsRequest(
            user_app_id=self.user_app_id, inputs=[item.input for item in items],
            input_id_conflict_resolution=resources_pb2.SKIP)
        try:
            response = self.call("PostInputs", request, ok=(codes.SUCCESS, codes.MIXED_STATUS))
        except ApiError as err:
            response = err.response
            if response is None or not response.inputs:
                return {item.id: (FAILED, str(err)) for item in items}, set()
        except ApiUnreachableError:
            raise  # the caller stops sending: these items are not attempted, not failed
        except ApiClientError as err:
            return {item.id: (FAILED, str(err)) for item in items}, set()
        answered = {got.id: got.status for got in response.inputs}
        out: dict[str, tuple[Outcome, str]] = {}
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
        again: set[str] = set()
        if pending:
            settled, again = self._settle(pending)
            out.update(settled)
        return out, again

    def _settle(self, ids: list[str]) -> tuple[dict[str, tuple[Outcome, str]], set[str]]:
        """Wait for inputs whose media the API downloads; failed ones are deleted again.
        Returns their outcomes and the ids gone from the app (worth another try)."""
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
        out, broken, gone = {}, [], set()
        for input_id in ids:
            status = statuses.get(input_id)
            if status is None:
                out[input_id] = (FAILED, "the API did not keep the input")
                gone.add(input_id)
            elif status.code in _STORED:
                out[input_id] = (LANDED, "")
            elif status.code in _PENDING:  # a timeout: not worth waiting for again
                out[input_id] = (FAILED, f"media still downloading after "
                                         f"{self.settle_timeout:.0f}s")
                broken.append(input_id)
            else:
                out[input_id] = (FAILED, _reason(status))
                broken.append(input_id)
                gone.add(input_id)
        if broken:
            self.delete_inputs(broken)
        return out, gone

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
        try:
            failures = post_annotation_chunk(self.call, self.user_app_id, chunk)
        except ApiUnreachableError:
            raise
        except ApiClientError as err:
            failures = [(sent, str(err)) for sent in chunk]
        there = self._existing_annotations([a for a, _ in failures])
        return [(a, reason) for a, reason in failures if (a.id, a.input_id) not in there]


def post_annotation_chunk(call: Callable[..., Any], user_app_id: Any, chunk: list,
                          ) -> list[tuple[Any, str]]:
    """PostAnnotations of ``chunk`` (≤128) through ``call`` (a client's ``_call``); returns
    the annotations that failed, each with its reason. ApiClientError propagates."""
    request = service_pb2.PostAnnotationsRequest(user_app_id=user_app_id, annotations=chunk)
    try:
        call("PostAnnotations", request)
        return []
    except ApiError as err:
        got = list(err.response.annotations) if err.response is not None else []
        if len(got) != len(chunk):
            return [(sent, str(err)) for sent in chunk]
        return [(sent, _reason(back.status)) for sent, back in zip(chunk, got, strict=True)
                if back.status.code not in _ANNOTATION_OK]

