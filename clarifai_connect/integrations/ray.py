"""Ray: sync a Ray Dataset into an app (:class:`ClarifaiDatasink`), read an app back as a Ray
Dataset (:class:`ClarifaiDatasource`), and run a sync of any source as Ray tasks
(:func:`sync_on_ray`, what ``clarifai-connect sync --engine ray`` runs).

Install with ``pip install 'clarifai-connect[ray]'``. Every write task syncs its blocks with
today's engine and keeps no state file: the state is rebuilt from the API (an input already
there counts as skipped, see :mod:`clarifai_connect.engine.shards`), so a task Ray runs
again — after a worker died, or speculatively — changes nothing and counts nothing twice.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

try:
    import ray
    from ray.data import Datasink, Datasource, ReadTask
    from ray.data.block import BlockAccessor, BlockMetadata
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("clarifai_connect.integrations.ray needs Ray Data: "
                      "pip install 'clarifai-connect[ray]'") from exc

from ..engine.report import RunReport
from ..engine.shards import merge_reports, plan, prepare_target, report_summary, run_shard
from .parts import DEFAULT_PARTS, check_app, part_count, read_part

__all__ = ["ClarifaiDatasink", "ClarifaiDatasource", "export_on_ray", "sync_on_ray"]


class ClarifaiDatasink(Datasink):
    """A Ray Data sink into a Clarifai app:
    ``ds.write_datasink(ClarifaiDatasink(app="me/pets", dataset="train"))``.

    Rows map to records as the parquet connector maps them (``inputid``, ``input``,
    ``concepts``, ``metadata``, ``geopoints``; other names through
    ``options={"columns": {"input": "text"}}``). After the write, :attr:`report` holds the
    merged report of every task (created + skipped + failed == rows written).
    ``workers`` is the concurrent API calls of each write task.
    """

    def __init__(self, app: str, dataset: str | None = None, *, base_url: str | None = None,
                 pat: str | None = None, workers: int = 4, batch_size: int = 128,
                 source_id: str = "ray", options: Mapping[str, Any] | None = None,
                 create: bool = True) -> None:
        self.app, self.dataset, self.base_url, self.pat = app, dataset, base_url, pat
        self.workers, self.batch_size, self.create = workers, batch_size, create
        self.source_id = source_id
        self.options = dict(options or {})
        self.report: RunReport | None = None

    def __repr__(self) -> str:  # no credentials
        return f"ClarifaiDatasink(app={self.app!r}, dataset={self.dataset!r})"

    def on_write_start(self, *args: Any, **kwargs: Any) -> None:
        """Create the app and dataset once, on the driver, before any task writes."""
        prepare_target(self.app, self.dataset, base_url=self.base_url, pat=self.pat,
                       create=self.create)

    def write(self, blocks: Iterable[Any], ctx: Any) -> dict[str, Any]:
        """Sync this task's blocks; returns the task's report summary (plain data)."""
        from ..engine.run import sync

        summaries = []
        for number, block in enumerate(blocks):
            table = BlockAccessor.for_block(block).to_arrow()
            report = sync(table, self.app, dataset=self.dataset, base_url=self.base_url,
                          pat=self.pat, workers=self.workers, batch_size=self.batch_size,
                          source_id=f"{self.source_id} task {ctx.task_idx} block {number}",
                          state=":memory:", options=self.options, create=False)
            summaries.append(report_summary(report))
        return report_summary(merge_reports(summaries))

    def on_write_complete(self, write_result: Any) -> None:
        """Merge the reports of the tasks that succeeded into :attr:`report`."""
        returns = getattr(write_result, "write_returns", write_result)
        self.report = merge_reports([r for r in returns if r], source=self.source_id,
                                    target=self.app + (f" (dataset {self.dataset})"
                                                       if self.dataset else ""))


class ClarifaiDatasource(Datasource):
    """An app, one of its datasets or a search, read back as a Ray Dataset:
    ``ray.data.read_datasource(ClarifaiDatasource("me/pets", dataset="train"))``.

    Rows are :func:`~clarifai_connect.reading.records_schema` rows (``inputid``, ``input`` —
    the media URI or raw text, or the bytes with ``media=True`` — ``kind``, ``concepts``,
    ``metadata``, ``regions`` …). A listing is read by ``parts`` read tasks (default: Ray's
    parallelism, at most :data:`~clarifai_connect.integrations.parts.DEFAULT_PARTS`), each
    reading every ``parts``-th page (see :mod:`clarifai_connect.integrations.parts`); a
    search is one task. Each task yields a block per ``batch_size`` inputs.
    """

    def __init__(self, app: str, dataset: str | None = None, *, query: Any = None,
                 base_url: str | None = None, pat: str | None = None, media: bool = False,
                 batch_size: int = 1024, parts: int = 0) -> None:
        super().__init__()
        self.app, self.dataset, self.query = app, dataset, query
        self.base_url, self.pat, self.media, self.batch_size = base_url, pat, media, batch_size
        self.parts = parts

    def __repr__(self) -> str:  # no credentials
        return f"ClarifaiDatasource(app={self.app!r}, dataset={self.dataset!r})"

    def estimate_inmemory_data_size(self) -> int | None:
        """Unknown before listing."""
        return None

    def get_read_tasks(self, parallelism: int, *args: Any, **kwargs: Any) -> list[ReadTask]:
        """One task per part of the listing, a block per ``batch_size`` inputs."""
        where = {"dataset": self.dataset, "query": self.query, "base_url": self.base_url,
                 "pat": self.pat}
        check_app(self.app, **where)
        wanted = self.parts or min(max(int(parallelism), 1), DEFAULT_PARTS)
        count = part_count(wanted, self.query)
        app, media, batch_size = self.app, self.media, self.batch_size

        def reader(index: int) -> Any:
            def read() -> Iterator[Any]:
                import pyarrow as pa

                records = read_part(app, (index, count), **where)
                for batch in records.to_batches(batch_size, media=media):
                    yield pa.Table.from_batches([batch])

            return read

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None,
                                 exec_stats=None)
        return [ReadTask(reader(index), metadata) for index in range(count)]


class _Tally:
    """Items done per shard, as the tasks' engines report them (a Ray actor): a shard run
    again starts from zero, so the sum never counts an item twice."""

    def __init__(self) -> None:
        self.done: dict[str, int] = {}

    def start(self, key: str) -> None:
        self.done[key] = 0

    def add(self, key: str, count: int) -> None:
        self.done[key] = self.done.get(key, 0) + count

    def total(self) -> int:
        return sum(self.done.values())


def _with_tally(key: str, tally: Any) -> Any:
    """An ``on_progress`` callback adding to ``key``'s count in the tally (None: none)."""
    if tally is None:
        return None
    ray.get(tally.start.remote(key))

    def advance(count: int) -> None:
        tally.add.remote(key, count)

    return advance


def _flush(tally: Any) -> None:
    """Wait until the tally took this task's counts (an actor runs one caller's calls in
    order): the driver, seeing the task done, then sees all of them."""
    if tally is not None:
        ray.get(tally.total.remote())


def _run_shard(shard: Any, app: str, settings: dict[str, Any], tally: Any = None
               ) -> dict[str, Any]:
    advance = _with_tally(shard.key, tally)
    summary = report_summary(run_shard(shard, app, **settings, on_progress=advance))
    _flush(tally)
    return summary


def _export_part(part: Any, app: str, format: str, settings: dict[str, Any],
                 tally: Any = None) -> dict[str, Any]:
    from ..exports.parts import run_export_part

    advance = _with_tally(part.uri, tally)
    summary = run_export_part(app, part, format, **settings, on_progress=advance)
    _flush(tally)
    return summary


def _shard_total(parts: list[Any]) -> int | None:
    """The items of every shard, when each reader counts cheaply."""
    try:
        counts = [shard.reader.count() for shard in parts]
    except Exception:  # a count is a nicety of readers
        return None
    return None if any(c is None for c in counts) else sum(counts)


def _start_ray(ray_address: str | None, workers: int) -> None:
    if not ray.is_initialized():
        ray.init(address=ray_address, ignore_reinit_error=True,
                 **({} if ray_address else {"num_cpus": workers}))


def _run_all(task: Any, items: list[Any], args: Any, workers: int, bar: Any,
             failed: Any, on_progress: Callable[[int], None] | None = None
             ) -> list[dict[str, Any]]:
    """Run ``task.remote(*args(item), tally)`` for every item, at most ``workers`` at once,
    advancing ``bar`` (of :func:`_progress`) and calling ``on_progress`` with each count of
    items done, from a tally actor; returns the summaries, in
    the order the items finished (for an item whose retries ran out: an error saying
    ``failed(item, why)``, and ``"missing": True``)."""
    tally = ray.remote(num_cpus=0)(_Tally).remote() if bar.enabled or on_progress else None
    seen = 0

    def poll() -> None:
        nonlocal seen
        done = ray.get(tally.total.remote())
        if done > seen:  # a shard run again counts from zero: never below what was shown
            bar.advance(done - seen)
            if on_progress is not None:
                on_progress(done - seen)
            seen = done
    queue = iter(items)
    pending = {task.remote(*args(item), tally): item
               for item in itertools.islice(queue, workers)}
    summaries: list[dict[str, Any]] = bar.summaries
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        if tally is not None:
            poll()
        if not ready:
            continue
        item = pending.pop(ready[0])
        try:
            summaries.append(ray.get(ready[0]))
        except ray.exceptions.RayError as exc:  # retries exhausted: say what is missing
            first = str(exc).splitlines()[0] if str(exc) else ""
            summaries.append({"errors": [failed(item, f"{type(exc).__name__}: {first}")],
                              "missing": True})
        pending.update({task.remote(*args(next_item), tally): next_item
                        for next_item in itertools.islice(queue, 1)})
    if tally is not None:
        poll()
    return summaries


def _progress(description: str, names: tuple[str, ...], enabled: bool | None) -> Any:
    """A RunProgress whose counts are the buckets of the tasks finished so far."""
    from ..engine.progress import RunProgress

    summaries: list[dict[str, Any]] = []
    bar = RunProgress(description, lambda: [(n, sum(int(s.get(n, 0)) for s in summaries))
                                            for n in names], enabled=enabled)
    bar.summaries = summaries  # what _run_all appends to
    return bar


def sync_on_ray(source: Any, app: str, *, dataset: str | None = None, workers: int = 2,
                shards: int = 0, ray_address: str | None = None, format: str = "auto",
                base_url: str | None = None, pat: str | None = None,
                storage_options: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None, rpc_workers: int = 4,
                batch_size: int = 128, max_retries: int = 3, create: bool = True,
                allow_paths: Iterable[str] = (), progress: bool | None = False,
                on_progress: Callable[[int], None] | None = None) -> RunReport:
    """Sync ``source`` into ``app`` as Ray tasks: :func:`plan` splits it (``shards`` parts,
    default ``2 × workers``), at most ``workers`` shards run at once (each with
    ``rpc_workers`` concurrent API calls), a task that dies is run again (``max_retries``),
    and the merged report is returned. Connects to ``ray_address`` (default: the running
    cluster, else a local one). ``progress`` shows the items the tasks acknowledged so
    far, as a local sync's bar does (None: when stderr is a terminal); ``on_progress`` is
    called with each count of them."""
    parts = plan(source, shards=shards or 2 * workers, format=format,
                 storage_options=storage_options, options=options, allow_paths=allow_paths)
    prepare_target(app, dataset, base_url=base_url, pat=pat, create=create)
    _start_ray(ray_address, workers)
    task = ray.remote(max_retries=max_retries)(_run_shard).options(num_cpus=1)
    settings = {"dataset": dataset, "base_url": base_url, "pat": pat,
                "workers": rpc_workers, "batch_size": batch_size, "create": False}
    with _progress("sync on ray", ("created", "skipped", "failed"), progress) as bar:
        bar.set_total(_shard_total(parts))
        summaries = _run_all(task, parts, lambda shard: (shard, app, settings), workers, bar,
                             lambda shard, why: f"{shard.key} was not synced: {why}; run "
                                                "the same command again", on_progress)
    label = parts[0].source if parts else str(source)
    return merge_reports(summaries, source=label,
                         target=app + (f" (dataset {dataset})" if dataset else ""))


def export_on_ray(app: str, to: str, format: str, *, dataset: str | None = None,
                  version: str | None = None, query: Any = None, workers: int = 2,
                  parts: int = 0, ray_address: str | None = None,
                  base_url: str | None = None, pat: str | None = None,
                  storage_options: Mapping[str, Any] | None = None,
                  options: Mapping[str, Any] | None = None, media_workers: int = 8,
                  max_retries: int = 3, progress: bool | None = False,
                  on_progress: Callable[[int], None] | None = None) -> Any:
    """Export ``app`` (or a dataset, a version, a search) to ``to`` as Ray tasks:
    :func:`~clarifai_connect.exports.parts.plan_export` splits it (``parts``, default
    ``2 × workers``; a search is one part), at most ``workers`` parts run at once (each
    downloading ``media_workers`` media at a time) into their own folders, a task that
    dies is run again, and the writer merges the parts into ``to`` at the end. Returns
    the merged :class:`~clarifai_connect.exports.report.ExportReport`. ``to`` must be
    where every worker can write (a shared disk, an object store). ``progress`` and
    ``on_progress`` as :func:`sync_on_ray`'s."""
    from ..client.auth import ClientAuth
    from ..engine.run import parse_target
    from ..exports.parts import merge_export_parts, plan_export
    from ..exports.sources import ListingSource, open_source
    from ..queries import load_query

    if "://" not in to:  # a local path means the same folder to every worker process
        to = os.path.abspath(to)
    where = parse_target(app)
    dataset = where.dataset(dataset) or None
    version = version or where.version_id or None
    query = load_query(query) if query is not None else None  # read once, here
    auth = ClientAuth.resolve(user_id=where.user_id, app_id=where.app_id, base_url=base_url,
                              pat=pat)
    source = open_source(auth, dataset or "", version or "", query=query)  # fails fast
    planned = plan_export(app, to, format, parts=parts or 2 * workers, dataset=dataset,
                          version=version, query=query)
    _start_ray(ray_address, workers)
    task = ray.remote(max_retries=max_retries)(_export_part).options(num_cpus=1)
    settings = {"dataset": dataset, "version": version, "query": query,
                "base_url": base_url, "pat": pat, "storage_options": storage_options,
                "options": options, "workers": media_workers, "progress": False}
    with _progress(f"export {format} on ray", ("exported", "skipped", "failed"),
                   progress) as bar:
        if type(source) is ListingSource:  # a second, light listing counts it
            bar.count_in_background(source.inputs.list_inputs(
                dataset_id=source.dataset_id or None), lambda _: True)
        summaries = _run_all(task, planned, lambda part: (part, app, format, settings),
                             workers, bar, lambda part, why: f"part {part.index + 1}/"
                             f"{part.count} was not exported: {why}", on_progress)
    return merge_export_parts(planned, to, format, summaries, source=source.name,
                              storage_options=storage_options)
