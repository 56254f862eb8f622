"""``export()``: an app, dataset, dataset version or search → a writer's format at any URL.

The :class:`ExportRunner` pulls records lazily from a source and downloads their media (and
mask images) with a bounded pool of threads, a sliding window of ``2 × workers`` records
ahead of the writer, keeping the source's order; a local server's hosted media are fetched
:data:`BATCH` per request (:mod:`~clarifai_connect.client.media_batch`). The writer gets records whose media are
bytes; the built-in writers write their files through a second bounded pool. Memory is
bounded by those windows, never by the dataset. Every input ends in one bucket of the
:class:`~clarifai_connect.exports.report.ExportReport`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from ..client.auth import ClientAuth
from ..client.http import fetch
from ..client.media_batch import batch_key, fetch_many
from ..connector import Writer, display_uri
from ..errors import ApiUnreachableError, ConfigError, redact
from ..plugins import PluginRegistry, get_registry
from ..queries import SearchQuery, load_query
from ..records import Media, Problem, Record, id_problem
from .files import FileWriter
from .report import ExportReport
from .sources import ListingSource, open_source

__all__ = ["ExportInterrupted", "ExportRunner", "export", "resolve_batch", "resolve_media"]

BATCH = 32  # records whose local-server media one request fetches
BATCH_SMALL = 128  # ... once their media are small on average (a request costs both sides)
_COLLECT = 32  # writes between two collections of a file writer's settled records
_BATCH_MEAN_BYTES = 256 * 1024  # media larger on average are fetched one per request
_SMALL_MEAN_BYTES = 16 * 1024  # media smaller on average are fetched BATCH_SMALL a request


def _headers(media: Media) -> dict[str, str]:
    return dict((media.storage_options or {}).get("headers") or {})


def _fetch_media(media: Media, fetched: Mapping[str, bytes] | None = None) -> Media:
    if media.uri is None:
        return media
    data = fetched.get(media.uri) if fetched else None
    if data is not None:
        return Media(kind=media.kind, data=data)
    if media.is_http:
        # Headers (the key) ride only on hosted media: the sources put them there.
        data, _ = fetch(media.uri, _headers(media))
    else:
        data = media.read_bytes()
    return Media(kind=media.kind, data=data)


def resolve_media(record: Record, fetched: Mapping[str, bytes] | None = None) -> Record:
    """``record`` with its media and mask images read into memory (bytes); ``fetched``:
    bytes already downloaded, by URL."""
    media = _fetch_media(record.media, fetched)
    regions = record.regions
    if regions and any(r.mask is not None and r.mask.uri is not None for r in regions):
        regions = tuple(replace(r, mask=_fetch_media(r.mask, fetched)) if r.mask is not None
                        else r for r in regions)
    if media is record.media and regions is record.regions:
        return record
    return record.with_media(media, regions)


def _batchable(record: Record) -> bool:
    return batch_key(record.media.uri) is not None


def resolve_batch(records: list[Record]) -> list[Record | Exception]:
    """Each record resolved as :func:`resolve_media` does (or the error that stopped it),
    the local server's hosted media (and masks) fetched a batch per request first."""
    wanted: dict[tuple, list[str]] = {}  # the same headers (key) → URLs
    last: tuple[dict[str, str], tuple] = ({}, ())  # the headers of the media before
    for record in records:
        masks = [r.mask for r in record.regions if r.mask is not None] if record.regions \
            else ()
        for media in (record.media, *masks):
            if batch_key(media.uri) is not None:
                headers = _headers(media)
                if headers != last[0]:  # (the records of a source share theirs)
                    last = (headers, tuple(sorted(headers.items())))
                wanted.setdefault(last[1], []).append(media.uri)
    fetched: dict[str, bytes] = {}
    for headers, urls in wanted.items():
        for url, data in zip(urls, fetch_many(urls, dict(headers)), strict=True):
            if data is not None:
                fetched[url] = data
    out: list[Record | Exception] = []
    for record in records:
        try:
            out.append(resolve_media(record, fetched))
        except Exception as exc:
            out.append(exc)
    return out


class ExportInterrupted(KeyboardInterrupt):
    """Ctrl-C during an export: ``report`` holds what was written (and says why it
    stopped)."""

    def __init__(self, report: ExportReport) -> None:
        super().__init__("interrupted")
        self.report = report


class _Task:
    """Records whose media one pool task reads; ``future`` is None until it is sent."""

    __slots__ = ("records", "future")

    def __init__(self, record: Record | None = None) -> None:
        self.records: list[Record] = [] if record is None else [record]
        self.future: Future | None = None


class ExportRunner:
    """Feeds a writer from a source, downloading media ahead with ``workers`` threads."""

    def __init__(self, writer: Writer, report: ExportReport, workers: int = 8,
                 on_progress: Callable[[int], None] | None = None,
                 notes: Callable[[str], list[str]] | None = None) -> None:
        if int(workers) < 1:
            raise ConfigError(f"workers must be 1 or more, got {workers}")
        self.writer = writer
        self.report = report
        self.workers = int(workers)
        self.on_progress = on_progress
        self.notes = notes
        self._sources: dict[str, str] = {}
        self._notes: dict[str, list[str]] = {}
        self._files = isinstance(writer, FileWriter)
        self._uncollected = 0  # writes since the settled records were last collected
        self._media_count = self._media_bytes = 0

    def run(self, items: Iterable[Record | Problem]) -> ExportReport:
        """Export every item; returns the report (also when the writer could not finish).

        Records whose media a local server batches are read :data:`BATCH` per pool task
        (a window of ``3 × BATCH`` records, while their media stay below 256 KiB on
        average; :data:`BATCH_SMALL` while they stay below 16 KiB); any other is read by a
        task of its own (a window of ``2 × workers``)."""
        window: deque[tuple[Record, _Task, int]] = deque()
        self._open: _Task | None = None
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="export-get") as pool:
                self._pool = pool
                for item in self._until_broken(items):
                    if isinstance(item, Problem):
                        self._done("failed", item.id, item.source, item.reason)
                        continue
                    if self._batching and _batchable(item):
                        task = self._open = self._open or _Task()
                        task.records.append(item)
                        window.append((item, task, len(task.records) - 1))
                        batch = self._batch_size()
                        if len(task.records) >= batch:
                            self._send(task)
                        limit = max(2 * self.workers, 3 * batch)
                    else:
                        task = _Task(item)
                        self._send(task)
                        window.append((item, task, 0))
                        limit = 2 * self.workers
                    while len(window) > limit:
                        self._write(*window.popleft())
                while window:
                    self._write(*window.popleft())
        except BaseException:
            for record, task, _ in window:  # read, not written: still accounted for
                if task.future is not None:
                    task.future.cancel()
                self._done("failed", record.id, record.source,
                           "the export stopped before this input was written")
            self._close(aborted=True)
            raise
        self._close(aborted=False)
        if self._broken is not None:
            raise self._broken
        return self.report

    def _until_broken(self, items: Iterable[Record | Problem]) -> Iterator[Record | Problem]:
        """``items`` until the source breaks off: the error is raised again once what it
        gave before is written (``_broken``)."""
        self._broken: Exception | None = None
        try:
            yield from items
        except Exception as exc:
            self._broken = exc

    @property
    def _batching(self) -> bool:
        """Whether media are still batched: while they are small on average."""
        return self._media_count == 0 or \
            self._media_bytes / self._media_count <= _BATCH_MEAN_BYTES

    def _batch_size(self) -> int:
        """Records per batch: :data:`BATCH` until the first media tell their size."""
        count = self._media_count
        return BATCH_SMALL if count and self._media_bytes <= _SMALL_MEAN_BYTES * count \
            else BATCH

    def _send(self, task: _Task) -> None:
        if task is self._open:
            self._open = None
        if len(task.records) == 1 and not _batchable(task.records[0]):
            task.future = self._pool.submit(resolve_media, task.records[0])
        else:
            task.future = self._pool.submit(resolve_batch, task.records)

    def _write(self, record: Record, task: _Task, index: int) -> None:
        if task.future is None:
            self._send(task)
        try:
            result = task.future.result()
            resolved = result[index] if isinstance(result, list) else result
            if isinstance(resolved, Exception):
                raise resolved
        except Exception as exc:
            self._done("failed", record.id, record.source,
                       f"media not downloaded: {type(exc).__name__}: {exc}")
            return
        if resolved.media.data is not None:
            self._media_count += 1
            self._media_bytes += len(resolved.media.data)
        notes = self.notes(record.id) if self.notes is not None else []
        try:
            self.writer.write(resolved)
        except Exception as exc:
            self._done("failed", record.id, record.source, f"{type(exc).__name__}: {exc}")
            return
        if self._files:
            self._sources[record.id] = record.source
            if notes:
                self._notes[record.id] = notes
            self._uncollected += 1
            if self._uncollected >= _COLLECT:  # (a collection per write cost more than it)
                self._collect()
        else:
            self._done("exported", record.id, record.source, warnings=notes)

    def _collect(self) -> None:
        self._uncollected = 0
        outcomes = self.writer.outcomes()
        add = self.report.add
        for outcome in outcomes:
            source = self._sources.pop(outcome.id, "")
            warnings = self._notes.pop(outcome.id, []) + outcome.warnings
            if outcome.error:
                add("failed", outcome.id, source, outcome.error, warnings)
            elif outcome.skipped:
                add("skipped", outcome.id, source, outcome.skipped, warnings)
            else:
                add("exported", outcome.id, source, "", warnings)
        if outcomes and self.on_progress is not None:  # one advance per collection
            self.on_progress(len(outcomes))

    def _done(self, bucket: str, input_id: str, source: str, reason: str = "",
              warnings: list[str] | None = None) -> None:
        self.report.add(bucket, input_id, source, reason, warnings)
        if self.on_progress is not None:
            self.on_progress(1)

    def _close(self, aborted: bool) -> None:
        try:
            self.writer.close()
        except Exception as exc:
            self.report.error(f"the {self.writer.name or 'export'} output could not be "
                              f"finished: {type(exc).__name__}: {exc}")
        if self._files:
            self._collect()
            for input_id, source in list(self._sources.items()):  # never settled
                self._done("failed", input_id, source, "the export stopped before its "
                           "files were written" if aborted else "its files were not written")
            self._sources.clear()


def export(app: str, to: str, format: str, *, dataset: str | None = None,
           version: str | None = None, base_url: str | None = None, pat: str | None = None,
           storage_options: Mapping[str, Any] | None = None,
           options: Mapping[str, Any] | None = None, workers: int = 8,
           report: str | os.PathLike | None = None, progress: bool | None = False,
           registry: PluginRegistry | None = None,
           on_progress: Callable[[int], None] | None = None,
           query: SearchQuery | Mapping[str, Any] | str | os.PathLike | None = None,
           part: tuple[int, int] = (0, 1), give_up_after: float = 60.0) -> ExportReport:
    """Export an app's inputs (or a dataset's, or a dataset version's) to ``to`` in
    ``format`` and return the :class:`ExportReport`.

    Args:
        app: ``USER/APP`` or an app URL.
        to: The destination: a folder (or a file, for csv/parquet), any fsspec URL.
        format: The exporter (``clarifai-connect plugins``): coco, voc, csv, parquet, folder…
        dataset: Export only this dataset (a paged listing of its current inputs).
        version: Export this version of ``dataset`` (through its export archive).
        base_url: The API (``https://…``, ``http://host:port``, ``local[:PATH]``).
        pat: A personal access token (default env ``CLARIFAI_PAT``).
        storage_options: fsspec options for the destination (credentials stay out of
            reports and logs).
        options: Options of the exporter (``default_split``, ``multi_label`` …).
        workers: Concurrent media downloads, and concurrent file writes.
        report: A file for the JSON-lines report (None: none; ``"auto"``: a fresh file in
            the state folder, as the command line does).
        progress: Show a progress bar on stderr (None: when stderr is a terminal).
        registry: The plugin registry (default: the process-wide one).
        on_progress: Called with a count of inputs done.
        query: Export only the hits of this search, best first, each with its ``search``
            score and rank in its metadata: a mapping of the readable keys
            (:mod:`clarifai_connect.queries`: ``{"concept": "dog", "top_k": 50}``), a
            ``query.yaml`` path, or a :class:`~clarifai_connect.queries.SearchQuery`.
        part: ``(index, count)``: export only that part of what is read (every
            ``count``-th listing page or archive entry; a search is one part), as a shard
            of a distributed export does (:mod:`clarifai_connect.exports.parts`).
        give_up_after: Seconds during which every call to the API failed after which the
            export stops (what was read is written; the report says what was not read).

    A bad input is reported with the reason and the export goes on; a bad configuration
    raises :class:`~clarifai_connect.errors.UserError` before anything is written.
    """
    from ..engine.run import parse_target  # one rule for --app in sync and export

    where = parse_target(app)
    user_id, app_id = where.user_id, where.app_id
    dataset = where.dataset(dataset) or None
    if where.version_id and version and version != where.version_id:
        raise ConfigError(f"--app names version '{where.version_id}' but --version says "
                          f"'{version}': give one of them")
    version = version or where.version_id or None
    for value, what in ((dataset, "--dataset"), (version, "--version")):
        if value and id_problem(value):
            raise ConfigError(f"{what}: {id_problem(value)}")
    if int(workers) < 1:
        raise ConfigError(f"workers must be 1 or more, got {workers}")
    registry = registry or get_registry()
    registration = registry.exporter(format)
    writer_options = dict(options or {})
    if "workers" in registration.options:
        writer_options.setdefault("workers", workers)
    auth = ClientAuth.resolve(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat)
    source = open_source(auth, dataset or "", version or "",
                         query=load_query(query) if query is not None else None)
    if part != (0, 1):
        sources = source.parts(part[1])
        if part[0] >= len(sources):
            raise ConfigError(f"{source.name} has {len(sources)} part(s): no part {part[0]}")
        source = sources[part[0]]
    source.give_up_after(give_up_after)
    writer = registry.open_writer(to, format, storage_options, **writer_options)
    run_report = ExportReport(source=source.name, destination=display_uri(to), format=format)
    if report == "auto":
        from ..engine.run import default_report_path

        report = default_report_path(None, "export")
    run_report.open(report)
    from ..engine.progress import RunProgress

    try:
        with RunProgress(f"export {format}", run_report.progress_counts,
                         enabled=progress) as bar:
            if isinstance(source, ListingSource) and source.part[1] == 1:
                # a second, light listing counts it
                bar.count_in_background(source.inputs.list_inputs(
                    dataset_id=source.dataset_id or None), lambda _: True)

            def advance(count: int) -> None:
                if bar.total is None and source.count() is not None:  # an archive, once open
                    bar.set_total(source.count())
                bar.advance(count)
                if on_progress is not None:
                    on_progress(count)

            runner = ExportRunner(writer, run_report, workers, advance, source.pop_notes)
            try:
                runner.run(source)
            except KeyboardInterrupt:
                run_report.stop("interrupted")
                raise ExportInterrupted(run_report) from None
            except ApiUnreachableError as exc:  # what was read is written; one line ends it
                run_report.unreachable = redact(str(exc))
                run_report.stop(f"reading {source.name} stopped, {run_report.unreachable}")
            except Exception as exc:  # the source broke off: say so, keep what was written
                run_report.error(f"reading {source.name} stopped: {type(exc).__name__}: {exc}")
            finally:  # a listing's total is the background count's (when it finished)
                count = source.count()
                run_report.total = count if count is not None or not run_report.stopped \
                    else bar.total
    finally:
        run_report.close()
    return run_report
