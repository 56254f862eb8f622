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
from collections.abc import Iterable, Iterator, Mapping
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

__all__ = ["ClarifaiDatasink", "ClarifaiDatasource", "sync_on_ray"]


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
    ``metadata``, ``regions`` …). The listing is one stream of pages, so it is one read task;
    the blocks it yields (``batch_size`` inputs each) are processed in parallel downstream.
    """

    def __init__(self, app: str, dataset: str | None = None, *, query: Any = None,
                 base_url: str | None = None, pat: str | None = None, media: bool = False,
                 batch_size: int = 1024) -> None:
        super().__init__()
        self.app, self.dataset, self.query = app, dataset, query
        self.base_url, self.pat, self.media, self.batch_size = base_url, pat, media, batch_size

    def __repr__(self) -> str:  # no credentials
        return f"ClarifaiDatasource(app={self.app!r}, dataset={self.dataset!r})"

    def estimate_inmemory_data_size(self) -> int | None:
        """Unknown before listing."""
        return None

    def get_read_tasks(self, parallelism: int, *args: Any, **kwargs: Any) -> list[ReadTask]:
        """One task streaming the listing, a block per ``batch_size`` inputs."""
        from ..reading import read_app

        def read() -> Iterator[Any]:
            import pyarrow as pa

            records = read_app(self.app, dataset=self.dataset, query=self.query,
                               base_url=self.base_url, pat=self.pat)
            for batch in records.to_batches(self.batch_size, media=self.media):
                yield pa.Table.from_batches([batch])

        metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None,
                                 exec_stats=None)
        return [ReadTask(read, metadata)]


def _run_shard(shard: Any, app: str, settings: dict[str, Any]) -> dict[str, Any]:
    return report_summary(run_shard(shard, app, **settings))


def sync_on_ray(source: Any, app: str, *, dataset: str | None = None, workers: int = 2,
                shards: int = 0, ray_address: str | None = None, format: str = "auto",
                base_url: str | None = None, pat: str | None = None,
                storage_options: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None, rpc_workers: int = 4,
                batch_size: int = 128, max_retries: int = 3, create: bool = True,
                allow_paths: Iterable[str] = ()) -> RunReport:
    """Sync ``source`` into ``app`` as Ray tasks: :func:`plan` splits it (``shards`` parts,
    default ``2 × workers``), at most ``workers`` shards run at once (each with
    ``rpc_workers`` concurrent API calls), a task that dies is run again (``max_retries``),
    and the merged report is returned. Connects to ``ray_address`` (default: the running
    cluster, else a local one)."""
    parts = plan(source, shards=shards or 2 * workers, format=format,
                 storage_options=storage_options, options=options, allow_paths=allow_paths)
    prepare_target(app, dataset, base_url=base_url, pat=pat, create=create)
    if not ray.is_initialized():
        ray.init(address=ray_address, ignore_reinit_error=True,
                 **({} if ray_address else {"num_cpus": workers}))
    task = ray.remote(max_retries=max_retries)(_run_shard).options(num_cpus=1)
    settings = {"dataset": dataset, "base_url": base_url, "pat": pat,
                "workers": rpc_workers, "batch_size": batch_size, "create": False}
    queue = iter(parts)
    pending = {task.remote(shard, app, settings): shard
               for shard in itertools.islice(queue, workers)}
    summaries = []
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        shard = pending.pop(ref)
        try:
            summaries.append(ray.get(ref))
        except ray.exceptions.RayError as exc:  # retries exhausted: say which part is missing
            summaries.append({"errors": [f"{shard.key} was not synced: {type(exc).__name__}: "
                                         f"{str(exc).splitlines()[0] if str(exc) else ''}; "
                                         "run the same command again"]})
        pending.update({task.remote(s, app, settings): s for s in itertools.islice(queue, 1)})
    label = parts[0].source if parts else str(source)
    return merge_reports(summaries, source=label,
                         target=app + (f" (dataset {dataset})" if dataset else ""))
