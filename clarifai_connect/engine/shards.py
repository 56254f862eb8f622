"""Plans and shards: one source split into parts that sync independently, on any worker.

:func:`plan` opens a source and asks its reader for ``shards(hint)``: a list of readers,
each reading one part (Parquet row groups, CSV byte ranges on line boundaries, a range of
the items of a COCO / YOLO / VOC / folder source). A reader without ``shards`` — any
third-party connector that does not opt in — is one shard. :func:`run_shard` syncs one
shard with today's engine; :func:`merge_reports` adds the shards' reports up.

Exactly once under task retries and speculative execution: ids are deterministic (the
same item gives the same id on every machine), and a shard keeps **no state file**: its
state is rebuilt from the API. Every input the API already holds answers "exists" to
PostInputs and counts as ``skipped`` ("already in the app"), and its missing annotations
are sent (annotation ids are derived). So a shard run twice changes nothing, and the
merged report of the attempts that succeeded counts each item once: created + skipped +
failed (+ not_attempted) == read. The cost of keeping no state: a distributed run cannot
tell a changed item from an unchanged one (no ``update``) nor list what is gone from the
source (no ``delete``); run a local sync for those.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..connector import Reader, ReadItem
from ..errors import ConfigError
from ..records import Notice
from ..reports import JsonLinesReport
from .report import RunReport

__all__ = ["ItemRange", "Shard", "ShardsByPosition", "check_shared_server",
           "distributed_settings", "item_ranges", "merge_reports", "plan", "prepare_target",
           "report_summary", "run_shard", "split_evenly"]

_KEEP_FAILURES = 20


@dataclass(frozen=True)
class Shard:
    """One independent part of a source: ``reader`` reads it (and pickles, to be shipped to
    a worker); ``index`` of ``count`` shards of ``source`` (its display name)."""

    index: int
    count: int
    reader: Reader
    source: str
    format: str

    @property
    def key(self) -> str:
        """A stable name of this part (it labels the shard's report)."""
        return f"{self.source} shard {self.index + 1}/{self.count}"


def split_evenly(sizes: list[int], parts: int) -> list[list[int]]:
    """Consecutive groups of the indexes of ``sizes`` (at most ``parts``), each of about the
    same total size; no group is empty."""
    if not sizes:
        return []
    parts = max(1, min(parts, len(sizes)))
    total = sum(sizes)
    groups: list[list[int]] = [[]]
    done = 0
    for index, size in enumerate(sizes):
        # Start a new group once this one holds its share, while groups remain to fill.
        if groups[-1] and len(groups) < parts and done >= total * len(groups) / parts:
            groups.append([])
        groups[-1].append(index)
        done += size
    return groups


class ItemRange(Reader):
    """The items ``start`` ≤ position < ``stop`` of ``reader`` (positions count records and
    problems; notices go with the first range only, so that none is counted twice).

    The shard of a source that can only be split by position (a COCO file, a YOLO or VOC
    layout, a folder): each shard lists the source again, but reads and sends the media of
    its own items only — the expensive part.
    """

    def __init__(self, reader: Reader, start: int, stop: int) -> None:
        super().__init__(reader.uri, storage_options=reader.storage_options)
        self.name = reader.name
        self.allowed_paths = reader.allowed_paths
        self.reader, self.start, self.stop = reader, start, stop

    def __iter__(self) -> Iterator[ReadItem]:
        position = 0
        for item in self.reader:
            if isinstance(item, Notice):
                if self.start == 0:
                    yield item
                continue
            if position >= self.stop:
                return
            if position >= self.start:
                yield item
            position += 1

    def count(self) -> int | None:
        """The size of the range."""
        return self.stop - self.start


def item_ranges(reader: Reader, hint: int) -> list[Reader] | None:
    """``reader`` split into ``hint`` ranges of items by position (see :class:`ItemRange`),
    or None (one shard) for a hint below 2. A reader without a ``count()`` is listed once
    here to count its items (records and problems; no media is read)."""
    if hint < 2:
        return None
    try:
        total = reader.count()
    except Exception:  # a count is a nicety of readers: count them below
        total = None
    if total is None:
        total = sum(1 for item in reader if not isinstance(item, Notice))
    if total < 2:
        return None
    groups = split_evenly([1] * total, hint)
    return [ItemRange(reader, group[0], group[-1] + 1) for group in groups]


class ShardsByPosition:
    """A mixin for readers that split by position: ``shards(hint)`` is
    :func:`item_ranges` (COCO images, YOLO / VOC files, the files of a folder)."""

    def shards(self, hint: int = 0) -> list[Reader] | None:
        """About ``hint`` ranges of this source's items, for distributed runs."""
        return item_ranges(self, hint)


def plan(source: Any, *, shards: int = 0, format: str = "auto", source_id: str | None = None,
         storage_options: Mapping[str, Any] | None = None,
         options: Mapping[str, Any] | None = None, registry: Any = None,
         allow_paths: Iterable[str] = ()) -> list[Shard]:
    """Split ``source`` (what :func:`~clarifai_connect.sync` takes) into independent shards.

    ``shards`` is how many parts are wanted (0: the source's natural parts, e.g. one per
    Parquet row group); a reader may return fewer (never an empty one). A reader opts in
    by a method ``shards(hint) -> list[Reader] | None``; without it (or when it returns
    None) the whole source is one shard.
    """
    from ..memory import open_source

    if shards < 0:
        raise ConfigError(f"shards must be 0 or more, got {shards}")
    opened = open_source(source, source_id=source_id, format=format,
                         storage_options=storage_options, options=options, registry=registry,
                         allowed_paths=allow_paths)
    reader = opened.reader
    split = getattr(reader, "shards", None)
    parts = list(split(shards) or []) if callable(split) else []
    parts = parts or [reader]
    return [Shard(i, len(parts), part, opened.label, opened.format)
            for i, part in enumerate(parts)]


def prepare_target(app: str, dataset: str | None = None, *, base_url: str | None = None,
                   pat: str | None = None, create: bool = True) -> None:
    """Make sure the app (and the dataset) exist, once, before shards run at the same time
    (which would otherwise race to create them)."""
    from ..client.auth import ClientAuth
    from ..client.record_upload import RecordUploader
    from .run import parse_target

    where = parse_target(app)
    auth = ClientAuth.resolve(user_id=where.user_id, app_id=where.app_id, base_url=base_url,
                              pat=pat)
    uploader = RecordUploader(auth)
    uploader.ensure_app(create=create)
    dataset = where.dataset(dataset)
    if dataset:
        uploader.ensure_datasets([dataset])


_LOCAL_ONLY = {"update": "--update", "delete": "--delete", "dry_run": "--dry-run",
               "state": "--state", "transform": "--transform"}


def check_shared_server(base_url: str | None, engine: str) -> None:
    """One sentence when the API is the embedded server (each worker would start its own)."""
    from ..client.auth import DEFAULT_BASE, ENV_BASE, env, parse_base_url

    if parse_base_url(base_url or env(ENV_BASE) or DEFAULT_BASE).is_local:
        raise ConfigError(f"{engine} needs a server every worker can reach: start "
                          "`clarifai-connect serve` and pass --base-url http://HOST:PORT")


def distributed_settings(args: Mapping[str, Any], engine: str) -> dict[str, Any]:
    """The settings of a local ``sync()`` (as the CLI builds them) checked and narrowed to a
    distributed run's: one sentence for a setting it cannot honour (a shard keeps no state,
    see the module doc) or for the embedded server (each worker would start its own)."""
    for key, flag in _LOCAL_ONLY.items():
        if args.get(key):
            raise ConfigError(f"{flag} needs the state of a local run: it cannot be used with "
                              f"{engine} (a distributed run rebuilds its state from the API)")
    check_shared_server(args.get("base_url"), engine)
    keep = ("source", "app", "dataset", "format", "base_url", "pat", "workers", "batch_size",
            "storage_options", "options", "allow_paths", "progress")
    out = {key: args[key] for key in keep if key in args}
    if out.get("workers") in (None, "auto"):  # shards at once: a number (4, as before)
        out["workers"] = 4
    return out


def run_shard(shard: Shard, app: str, *, dataset: str | None = None,
              base_url: str | None = None, pat: str | None = None, workers: int = 4,
              batch_size: int = 128, create: bool = True,
              give_up_after: float = 60.0,
              on_progress: Callable[[int], None] | None = None) -> RunReport:
    """Sync one shard into ``app`` with today's engine, its state rebuilt from the API (see
    the module doc); safe to run again, anywhere, at the same time as the other shards.
    ``on_progress`` is called with each count of items done."""
    from .run import sync

    return sync(shard.reader, app, dataset=dataset, source_id=shard.key, base_url=base_url,
                pat=pat, workers=workers, batch_size=batch_size, state=":memory:",
                create=create, give_up_after=give_up_after, on_progress=on_progress)


def _counts(report_type: type) -> tuple[str, ...]:
    """The counts of a report type that add up across shards (its int fields)."""
    return tuple(f.name for f in fields(report_type)
                 if f.type in ("int", int) and f.name != "total")


def report_summary(report: JsonLinesReport) -> dict[str, Any]:
    """What a worker sends back of its report (a sync's or an export's): plain data (a
    report holds a lock and a file, which do not travel), that :func:`merge_reports` adds up."""
    summary: dict[str, Any] = {name: getattr(report, name) for name in _counts(type(report))}
    summary.update(errors=list(report.errors), failures=list(report.failures),
                   started_at=report.started_at, finished_at=report.finished_at,
                   total=report.total, unreachable=report.unreachable)
    if hasattr(report, "warnings"):
        summary["warnings"] = dict(report.warnings)
    return summary


def merge_reports(reports: Iterable[JsonLinesReport | Mapping[str, Any]], source: str = "",
                  target: str = "", *, into: JsonLinesReport | None = None) -> Any:
    """One report of many shards' (reports or :func:`report_summary` dicts): every count
    added up, errors and the first failures kept, from the first start to the last end.
    The result is ``into`` (default a fresh sync report of ``source`` → ``target``)."""
    merged = into if into is not None else RunReport(source=source, target=target)
    names = _counts(type(merged))
    summaries = [r if isinstance(r, Mapping) else report_summary(r) for r in reports]
    for summary in summaries:
        for name in names:
            setattr(merged, name, getattr(merged, name) + int(summary.get(name, 0)))
        merged.errors.extend(summary.get("errors", ()))
        room = _KEEP_FAILURES - len(merged.failures)
        merged.failures.extend(itertools.islice(summary.get("failures", ()), max(room, 0)))
        merged.unreachable = merged.unreachable or summary.get("unreachable", "")
        if hasattr(merged, "warnings"):
            merged.warnings.update(summary.get("warnings") or {})
    if summaries:
        merged.started_at = min(s.get("started_at", merged.started_at) for s in summaries)
        ends = [s["finished_at"] for s in summaries if s.get("finished_at")]
        merged.finished_at = max(ends) if ends else None
        totals = [s.get("total") for s in summaries]
        merged.total = sum(totals) if all(t is not None for t in totals) else None
    return merged
