"""``sync()``: the library entry point (and what ``clarifai-connect sync`` runs).

It resolves the target (``USER/APP`` or an app URL, the API and the credentials), opens the
source through its connector, the state file of this (source, target) and the report, makes
sure the app and dataset exist, and runs the :class:`UploadEngine`.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client.auth import DEFAULT_BASE, ENV_BASE, ClientAuth, env, parse_base_url
from ..client.record_upload import RecordUploader
from ..client.utils import parse_clarifai_url
from ..connector import display_uri
from ..errors import ConfigError, SourceError, UserError
from ..memory import open_source
from ..plugins import PluginRegistry, get_registry
from ..records import Notice, id_problem
from ..transform import BatchTransform, TransformedSource, load_transform
from ..unread import nothing_read
from .concurrency import AUTO_MAXIMUM, AUTO_START, ConcurrencyLimit
from .pipeline import MAX_BATCH, SyncOptions, UploadEngine
from .progress import RunProgress
from .report import RunReport
from .state import SyncState, default_state_path, state_dir

__all__ = ["AppTarget", "parse_app", "parse_target", "source_key", "sync"]


@dataclass(frozen=True)
class AppTarget:
    """What ``--app`` names: an app, and perhaps a dataset (and a version) inside it."""

    user_id: str
    app_id: str
    dataset_id: str = ""
    version_id: str = ""

    def dataset(self, given: str | None, flag: str = "--dataset") -> str:
        """The dataset to use: ``given`` or the one the URL names; they must agree."""
        given = (given or "").strip()
        if given and self.dataset_id and given != self.dataset_id:
            raise ConfigError(f"--app names dataset '{self.dataset_id}' but {flag} says "
                              f"'{given}': give one of them")
        return given or self.dataset_id


_APP_SHAPE = "USER/APP or an app URL (https://clarifai.com/USER/APP[/datasets/ID])"


def parse_target(app: str) -> AppTarget:
    """``USER/APP``, or a Clarifai app URL, or the URL of a dataset (or dataset version) in
    it → :class:`AppTarget`. Anything else is refused: data never lands in a wrong place."""
    text = (app or "").strip()
    if not text:
        raise ConfigError("no target app: give --app USER/APP")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"--app {text}: expected {_APP_SHAPE}")
        parsed = parse_clarifai_url(text)
        if parsed.resource_type not in ("", "datasets"):
            raise ConfigError(f"--app {text} names {parsed.resource_type[:-1]} "
                              f"'{parsed.resource_id}', not an app or a dataset: expected "
                              f"{_APP_SHAPE}")
        target = AppTarget(parsed.user_id, parsed.app_id, parsed.resource_id,
                           parsed.version_id)
    else:
        parts = text.split("/")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"--app {text} is not USER/APP: expected {_APP_SHAPE}")
        target = AppTarget(parts[0], parts[1])
    for value, what in ((target.user_id, "user id"), (target.app_id, "app id"),
                        (target.dataset_id, "dataset id"), (target.version_id, "version id")):
        problem = value and id_problem(value, what)
        if problem:
            raise ConfigError(f"--app {text}: {problem}")
    return target


def parse_app(app: str) -> tuple[str, str]:
    """``USER/APP`` or an app URL → (user id, app id); see :func:`parse_target`."""
    target = parse_target(app)
    return target.user_id, target.app_id


def source_key(source: str) -> str:
    """How a source is named in its state file: an absolute path, or the URL without any
    credentials."""
    if "://" in source:
        return display_uri(source)
    return os.path.abspath(os.path.expanduser(source))


def _target_key(base_url: str | None, user_id: str, app_id: str, dataset_id: str) -> str:
    """Where inputs go, as the state file records it: the API, the app, the dataset."""
    base = (base_url or env(ENV_BASE) or DEFAULT_BASE).strip()
    endpoint = parse_base_url(base)
    where = f"local:{endpoint.local_dir}" if endpoint.is_local else base.rstrip("/")
    return f"{where}/{user_id}/{app_id}" + (f"/{dataset_id}" if dataset_id else "")


def sync(source: Any, app: str, *, dataset: str | None = None, format: str = "auto",
         source_id: str | None = None, transform: str | BatchTransform | None = None,
         base_url: str | None = None, pat: str | None = None, workers: int | str | None = None,
         batch_size: int = MAX_BATCH, state: str | os.PathLike | None = None,
         update: bool = False, delete: bool = False, max_delete: int | None = 1000,
         dry_run: bool = False, report: str | os.PathLike | None = None,
         storage_options: Mapping[str, Any] | None = None,
         options: Mapping[str, Any] | None = None, progress: bool | None = False,
         create: bool = True, registry: PluginRegistry | None = None,
         on_progress: Callable[[int], None] | None = None,
         allow_paths: Iterable[str] = (),
         give_up_after: float = 60.0, check_media: bool = False) -> RunReport:
    """Sync ``source`` into the Clarifai app ``app`` and return the :class:`RunReport`.

    Args:
        source: Where the data is: a path or any fsspec URL (``s3://…``); or data the
            caller holds: an iterable of :class:`~clarifai_connect.records.Record`, a
            ``pyarrow.Table`` / ``RecordBatchReader`` or a pandas DataFrame (columns
            mapped as the csv/parquet connectors map them, see ``options``), or a
            :class:`~clarifai_connect.connector.Reader`.
        app: The target, ``USER/APP`` or an app URL; created when it does not exist.
        dataset: A dataset every input joins; created when it does not exist.
        format: The connector (``clarifai-connect plugins``), or ``auto`` to detect it.
        source_id: A stable name of the source, keying its state file (so that reruns
            skip, ``update`` and ``delete`` work). Required for in-memory data; a URI
            is named by itself unless given.
        transform: A function from a list of records to the list of records to sync
            (or ``"module:function"``), applied to each batch before upload.
        base_url: The API (``https://…``, ``http://host:port``, ``local[:PATH]``);
            default env ``CLARIFAI_API_BASE``, else the Clarifai cloud.
        pat: A personal access token (default env ``CLARIFAI_PAT``).
        workers: Concurrent API calls (one budget for inputs and annotations): a number
            (fixed), or None / ``"auto"``: 4 at first, growing (up to 16) while the
            throughput grows with it — against a distant API, latency, not the server,
            bounds a fixed few.
        batch_size: Inputs per request, at most 128.
        state: The state file (default: one per source and target in the user's state
            folder, see :func:`~clarifai_connect.engine.state.state_dir`).
        update: Re-send items whose content changed since they were synced.
        delete: Delete app inputs synced from this source that are gone from it; refused
            when anything failed and when more than ``max_delete`` (None: no cap).
        dry_run: Read the source and the state, send nothing, report the plan.
        report: A file to write the JSON-lines report to (None: none; ``"auto"``: a
            fresh file beside the state file, none for a dry run).
        storage_options: fsspec options for the source (credentials stay out of reports).
        options: Options of the connector (``columns``, ``labels`` …).
        progress: Show a live progress bar on stderr (None: when stderr is a terminal).
        create: Create the app when it is missing (else fail).
        registry: The plugin registry (default: the process-wide one).
        on_progress: Called with a count of items done, from worker threads.
        allow_paths: Folders outside the source that its media references may point into
            (absolute paths, ``file://``, ``../``); by default a reference that leaves the
            source fails its item.
        check_media: Also decode every image before sending it (its first bytes are always
            checked: media that is not the kind it claims fails its item).
        give_up_after: Seconds during which every call to the API failed after which the
            sync stops sending (what is left is ``not_attempted``; a rerun resumes).

    Bad items are reported (with their source location) and the rest goes on; a bad
    configuration raises :class:`~clarifai_connect.errors.UserError` before anything is sent.
    """
    where = parse_target(app)
    if where.version_id:
        raise ConfigError(f"--app {app} names a dataset version: a sync goes into a dataset, "
                          "not into a frozen version")
    user_id, app_id, dataset = where.user_id, where.app_id, where.dataset(dataset)
    if dataset and id_problem(dataset, "dataset id"):
        raise ConfigError(f"--dataset: {id_problem(dataset, 'dataset id')}")
    concurrency = concurrency_limit(workers)
    opts = SyncOptions(workers=concurrency.start, batch_size=batch_size, update=update,
                       delete=delete,
                       max_delete=max_delete, dry_run=dry_run, dataset_id=dataset,
                       check_media=check_media)
    opened = open_source(source, source_id=source_id, format=format,
                         storage_options=storage_options, options=options, registry=registry,
                         allowed_paths=allow_paths)
    reader, format, source_name = opened.reader, opened.format, opened.key
    if transform is not None:
        fn = load_transform(transform)
        reader = TransformedSource(reader, fn, batch_size,
                                   transform if isinstance(transform, str) else "")
    # Open the source and read its first item before anything exists in the API: a
    # missing file or a wrong --format must not leave an empty app behind.
    items, empty = _opened(reader)
    target = _target_key(base_url, user_id, app_id, dataset)
    state_path = Path(state) if state else default_state_path(source_name, target, app_id)
    if dry_run and not state_path.exists():
        state_path = Path(":memory:")  # a plan leaves nothing behind
    run_report = RunReport(source=opened.label, target=f"{user_id}/{app_id}"
                           + (f" (dataset {dataset})" if dataset else ""), dry_run=dry_run)
    run_report.state_path = None if str(state_path) == ":memory:" else state_path
    uploader = None
    if not dry_run:  # a plan needs neither the API nor credentials
        auth = ClientAuth.resolve(user_id=user_id, app_id=app_id, base_url=base_url, pat=pat)
        uploader = RecordUploader(auth, budget=concurrency)
        uploader.retry_policy = uploader.retry_policy.giving_up_after(give_up_after)
        if not empty or delete:  # an empty source creates nothing
            uploader.ensure_app(create=create)
    if report == "auto":  # a plan is printed, not filed
        report = None if dry_run else default_report_path(run_report.state_path)
    with SyncState(state_path, source_name, target) as sync_state:
        run_report.open(report)
        engine = UploadEngine(uploader, sync_state, run_report, opts, None, concurrency)
        try:
            with RunProgress(f"sync {format}", run_report.progress_counts,
                             enabled=progress) as bar:
                try:
                    total = reader.count()
                except Exception:  # a count is a nicety: never fail a run for it
                    total = None
                run_report.total = total
                bar.set_total(total)
                if total is None and bar.enabled and transform is None and \
                        isinstance(source, (str, os.PathLike)):  # a second pass counts it
                    again = open_source(source, source_id=source_id, format=format,
                                        storage_options=storage_options, options=options,
                                        registry=registry, allowed_paths=allow_paths)
                    bar.count_in_background(again.reader,
                                            lambda item: not isinstance(item, Notice))

                def advance(count: int) -> None:
                    bar.advance(count)
                    if on_progress is not None:
                        on_progress(count)

                engine.on_progress = advance
                try:
                    engine.run(items)
                finally:
                    run_report.workers = None if dry_run else concurrency.highest
                run_report.total = run_report.total if bar.total is None else bar.total
                if not run_report.read and isinstance(source, (str, os.PathLike)):
                    # No silent zero: a folder with files that gave nothing is an error.
                    message = nothing_read(os.fspath(source), format, storage_options,
                                           registry or get_registry())
                    if message:  # a wrong --format or layout: usage, nothing was sent
                        run_report.error(message)
                        raise SourceError(message)
                if isinstance(reader, TransformedSource):
                    run_report.filtered = reader.dropped
        except KeyboardInterrupt:
            run_report.stop("interrupted")
            run_report.close()
            raise SyncInterrupted(run_report, engine.abandoned) from None
        finally:
            run_report.close()
    return run_report


def concurrency_limit(workers: int | str | None) -> ConcurrencyLimit:
    """The budget ``workers`` asks for: a fixed number, or adaptive (None or ``"auto"``)."""
    if workers is None or (isinstance(workers, str) and workers.strip().lower() == "auto"):
        return ConcurrencyLimit(AUTO_START, AUTO_MAXIMUM)
    try:
        count = int(workers)
    except (TypeError, ValueError):
        raise ConfigError(f"workers must be a number or 'auto', got {workers!r}") from None
    if isinstance(workers, bool) or count < 1 or count != float(workers):
        raise ConfigError(f"workers must be 1 or more (or 'auto'), got {workers!r}")
    return ConcurrencyLimit(count)


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sync, after the batches in flight finished (or, ``abandoned``, after
    a second Ctrl-C gave them up: their threads may still be waiting for the API, and
    write nothing more): ``report`` holds what was done (acknowledged items are counted
    and checkpointed)."""

    def __init__(self, report: RunReport, abandoned: bool = False) -> None:
        super().__init__("interrupted")
        self.report = report
        self.abandoned = abandoned


def _raising(exc: Exception) -> Iterator[Any]:
    raise exc
    yield  # a generator: it raises when first read


def _opened(reader: Any) -> tuple[Iterator[Any], bool]:
    """The reader's items, its first one already read (so that a source that cannot be
    opened fails here, with a UserError), and whether it holds none."""
    stream = iter(reader)
    try:
        first = next(stream)
    except StopIteration:
        return iter(()), True
    except UserError:
        raise
    except Exception as exc:  # a connector bug: the engine reports it as it always does
        return _raising(exc), False
    return itertools.chain([first], stream), False


def default_report_path(state_path: Path | None, kind: str = "sync") -> Path:
    """A fresh report file beside the state file (``<state>.<UTC time>.report.jsonl``), or
    in the state folder (``<kind>.<UTC time>.report.jsonl``) when there is none."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    if state_path is None or str(state_path) == ":memory:":
        return state_dir() / f"{kind}.{stamp}.report.jsonl"
    return state_path.with_name(f"{state_path.stem}.{stamp}.report.jsonl")
