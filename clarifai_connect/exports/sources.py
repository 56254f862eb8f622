"""What an export reads: an app's inputs, a dataset's, or a dataset version's archive.

Each source is a lazy iterable of :class:`~clarifai_connect.records.Record` (and
:class:`~clarifai_connect.records.Problem` for inputs that cannot become one):

- :class:`ListingSource` pages through ``ListDatasetInputs`` (or ``ListInputs`` for the
  whole app) and fetches each page's annotations with ``ListAnnotations``: the live state,
  one page (≤128 inputs) in memory at a time.
- :class:`VersionArchiveSource` asks for the version's CLARIFAI_DATA_PROTOBUF export,
  downloads the archive to a temporary file and reads it one ``InputBatch`` entry at a
  time: the frozen state of the version, every label already merged into each input.

- :class:`SearchSource` pages through the hits of a search (``PostInputsSearches``: the
  reference's rank and filter dicts), best first, with each page's annotations as a
  listing has them; in an export each record's metadata gains its ``search`` score and
  rank.

:func:`open_source` picks: a query given → its hits; a version → its archive; else a
listing.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from clarifai_grpc.grpc.api import service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..client.auth import ClientAuth
from ..client.base import BaseClient
from ..client.dataset import Dataset
from ..client.export_archive import ExportArchiveReader
from ..client.http import HttpError, download_to
from ..client.input import Inputs
from ..client.records import record_from_input
from ..client.search import Search
from ..client.utils import batched, read_ahead
from ..errors import ApiError, AuthError, ConfigError
from ..queries import SearchQuery
from ..records import Problem, Record, RecordError

__all__ = ["ListingSource", "SearchSource", "VersionArchiveSource", "check_target",
           "open_source"]

PAGE = 128  # inputs per listing page, and per ListAnnotations request
_NOT_STORED = {codes.INPUT_DOWNLOAD_FAILED: "the API could not download its media",
               codes.INPUT_DOWNLOAD_PENDING: "its media is still being downloaded by the API",
               codes.INPUT_DOWNLOAD_IN_PROGRESS: "its media is still being downloaded by "
                                                 "the API"}


class _Source:
    """Conversion shared by the sources, and the notes it leaves for the report."""

    def __init__(self) -> None:
        self._notes: dict[str, list[str]] = {}

    def give_up_after(self, seconds: float) -> None:
        """Its API calls stop retrying once every call to the API has failed for
        ``seconds`` (:class:`~clarifai_connect.errors.ApiUnreachableError`)."""
        for client in vars(self).values():
            if isinstance(client, BaseClient):
                client.retry_policy = client.retry_policy.giving_up_after(seconds)

    def pop_notes(self, input_id: str) -> list[str]:
        """What the conversion of ``input_id`` could not read (text spans, video frames)."""
        return self._notes.pop(input_id, [])

    def _convert(self, item: Any, annotations: list, headers: dict[str, str]
                 ) -> Record | Problem:
        notes: list[str] = []
        try:
            record = record_from_input(item, annotations, headers=headers, notes=notes)
        except RecordError as exc:
            return Problem(f"input '{item.id}'",
                           str(exc).removeprefix(f"input '{item.id}': "), id=item.id)
        if notes:
            self._notes[record.id] = notes
        return record


class ListingSource(_Source):
    """The inputs of an app (or of one dataset) with their annotations, page by page.

    ``part=(index, count)`` reads only the listing pages ``index + 1``, ``index + 1 +
    count``, … (of :data:`PAGE` inputs): the ``count`` parts of :meth:`parts` read the
    listing between them, each input once, with no count needed up front.
    """

    def __init__(self, auth: ClientAuth, dataset_id: str = "",
                 part: tuple[int, int] = (0, 1)) -> None:
        super().__init__()
        index, count = part
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"part {index} of {count} does not exist")
        self.auth = auth
        self.dataset_id = dataset_id
        self.part = (index, count)
        self.inputs = Inputs(auth=auth)

    def parts(self, count: int) -> list[ListingSource]:
        """This listing as ``count`` sources of interleaved pages (see the class doc)."""
        count = max(1, count)
        return [ListingSource(self.auth, self.dataset_id, (i, count)) for i in range(count)]

    @property
    def name(self) -> str:
        """What is exported, for reports."""
        where = f"{self.auth.user_id}/{self.auth.app_id}"
        return f"{where} dataset {self.dataset_id}" if self.dataset_id else where

    def count(self) -> int | None:
        """Unknown before listing (the API has no cheap count of a listing)."""
        return None

    def _inputs(self) -> Iterator[Any]:
        """The input protos to read, lazily (this part's pages only)."""
        index, count = self.part
        if count == 1:
            return self.inputs.list_inputs(dataset_id=self.dataset_id or None)
        return self._strided(index, count)

    def _strided(self, index: int, count: int) -> Iterator[Any]:
        page = index + 1
        while True:
            items = list(self.inputs.list_inputs(dataset_id=self.dataset_id or None,
                                                 page_no=page, per_page=PAGE))
            yield from items
            if len(items) < PAGE:  # the last page: the later ones are empty
                return
            page += count

    def _pages(self) -> Iterator[tuple[list, dict[str, list]]]:
        """Each page of inputs with its annotations by input id."""
        for page in batched(self._inputs(), PAGE):
            by_input: dict[str, list] = {item.id: [] for item in page}
            stored = [item for item in page if item.status.code not in _NOT_STORED]
            if stored:
                for annotation in self.inputs.list_annotations(batch_input=stored):
                    by_input.setdefault(annotation.input_id, []).append(annotation)
            yield page, by_input

    def __iter__(self) -> Iterator[Record | Problem]:
        headers = self.auth.http_headers
        # The next page is listed while this one is converted and written.
        for page, by_input in read_ahead(self._pages()):
            for item in page:
                reason = _NOT_STORED.get(item.status.code)
                if reason:
                    yield Problem(f"input '{item.id}'", reason, id=item.id)
                else:
                    yield self._convert(item, by_input.get(item.id, []), headers)


class SearchSource(ListingSource):
    """The inputs a search finds (with their annotations), best first, page by page.

    ``ranks`` and ``filters`` are the reference's dicts (``Search.query``); ``dataset_id``
    adds a filter on that dataset; ``top_k`` caps the hits (None: every hit); ``metric``
    is the search's. With ``scored`` (as exports have it) each record's metadata gains
    ``"search": {"score": …, "rank": …}`` (rank 1: the best hit).
    """

    def __init__(self, auth: ClientAuth, ranks: Sequence[Mapping[str, Any]] = (),
                 filters: Sequence[Mapping[str, Any]] = (), dataset_id: str = "",
                 top_k: int | None = None, metric: str = "cosine", scored: bool = False
                 ) -> None:
        super().__init__(auth, dataset_id)
        self.ranks = list(ranks) or None
        self.filters = list(filters) + ([{"input_dataset_ids": [dataset_id]}]
                                        if dataset_id else [])
        self.search = Search(auth=auth, top_k=top_k, pagination=top_k is None, metric=metric)
        self.search.request(self.ranks, self.filters or None)  # the dicts, checked now
        self.scored = scored
        self._scores: dict[str, float] = {}  # of the page being read

    @property
    def name(self) -> str:
        """What is exported, for reports."""
        return f"{super().name} search"

    def parts(self, count: int) -> list[SearchSource]:
        """One part: the hits are ranked as one stream."""
        return [self]

    def _inputs(self) -> Iterator[Any]:
        for hit in self.search.hits(self.ranks, self.filters or None):
            self._scores[hit.input.id] = hit.score
            yield hit.input

    def __iter__(self) -> Iterator[Record | Problem]:
        for rank, item in enumerate(super().__iter__(), start=1):
            score = self._scores.pop(item.id, 0.0)
            if self.scored and isinstance(item, Record):
                found = {"score": round(float(score), 6), "rank": rank}
                item = replace(item, metadata={**(item.metadata or {}), "search": found})
            yield item


class VersionArchiveSource(_Source):
    """The inputs of a dataset version, from its export archive, one entry at a time."""

    def __init__(self, auth: ClientAuth, dataset_id: str, version_id: str,
                 spill_dir: str | None = None, part: tuple[int, int] = (0, 1)) -> None:
        super().__init__()
        if not dataset_id or not version_id:
            raise ConfigError("a dataset version export needs both a dataset and a version id")
        index, count = part
        if count < 1 or not 0 <= index < count:
            raise ConfigError(f"part {index} of {count} does not exist")
        self.auth = auth
        self.dataset = Dataset(dataset_id=dataset_id, dataset_version_id=version_id, auth=auth)
        self.spill_dir = spill_dir
        self.part = (index, count)
        self._count: int | None = None

    def parts(self, count: int) -> list[VersionArchiveSource]:
        """This version as ``count`` sources, each reading every ``count``-th entry (an
        ``InputBatch``) of the archive (each part downloads the archive)."""
        return [VersionArchiveSource(self.auth, self.dataset.id, self.dataset.version.id,
                                     self.spill_dir, (i, count)) for i in range(max(1, count))]

    @property
    def name(self) -> str:
        """What is exported, for reports."""
        return (f"{self.auth.user_id}/{self.auth.app_id} dataset {self.dataset.id} "
                f"version {self.dataset.version.id}")

    def count(self) -> int | None:
        """The number of inputs, known once the archive is open."""
        return self._count

    def __iter__(self) -> Iterator[Record | Problem]:
        url = self.dataset.archive_zip()
        headers = self.auth.http_headers
        with tempfile.TemporaryFile(suffix=".zip", dir=self.spill_dir) as spool:
            try:
                download_to(url, spool)  # pre-signed: the key goes only where it is asked for
            except HttpError as err:
                if err.status not in (401, 403):
                    raise
                spool.seek(0)
                spool.truncate()
                download_to(url, spool, headers=headers)
            spool.seek(0)
            with ExportArchiveReader(spool, source=url.split("?")[0]) as reader:
                index, count = self.part
                reader.entries = reader.entries[index::count]
                self._count = len(reader)
                for item in reader:
                    yield self._convert(item, [], headers)


def check_target(auth: ClientAuth, dataset_id: str = "", version_id: str = "") -> None:
    """Fail fast, in one sentence, when the app, dataset or version does not exist."""
    client = Inputs(auth=auth)
    app = f"{auth.user_id}/{auth.app_id}"
    calls = [("GetApp", service_pb2.GetAppRequest(user_app_id=client.user_app_id),
              f"app {app}")]
    if dataset_id:
        calls.append(("GetDataset", service_pb2.GetDatasetRequest(
            user_app_id=client.user_app_id, dataset_id=dataset_id),
            f"dataset '{dataset_id}' of app {app}"))
    if version_id:
        calls.append(("GetDatasetVersion", service_pb2.GetDatasetVersionRequest(
            user_app_id=client.user_app_id, dataset_id=dataset_id,
            dataset_version_id=version_id),
            f"version '{version_id}' of dataset '{dataset_id}'"))
    for method, request, what in calls:
        try:
            client._call(method, request)
        except AuthError:
            raise  # a refused key is not a missing dataset (its own message and exit code)
        except ApiError as exc:
            raise ConfigError(f"cannot export {what}: {exc.description or exc}"
                              + (f" ({exc.details})" if exc.details else "")) from None


def open_source(auth: ClientAuth, dataset_id: str = "", version_id: str = "",
                spill_dir: str | None = None, check: bool = True,
                query: SearchQuery | None = None,
                ) -> ListingSource | VersionArchiveSource:
    """The right source: the hits of ``query`` when given (a dataset becomes one more
    filter of it); a version's archive when ``version_id`` is given (it holds the frozen
    labels in one download); else a paged listing of the dataset or the app. ``check``
    first makes sure they exist (ConfigError naming the missing one)."""
    if version_id and not dataset_id:
        raise ConfigError("--version needs --dataset (a version belongs to a dataset)")
    if query is not None and version_id:
        raise ConfigError("a search exports live inputs: give a query or --version, not both")
    if check:
        check_target(auth, dataset_id, version_id)
    if query is not None:
        return SearchSource(auth, query.ranks, query.filters, dataset_id, query.top_k,
                            query.metric, scored=True)
    if version_id:
        return VersionArchiveSource(auth, dataset_id, version_id, spill_dir)
    return ListingSource(auth, dataset_id)
