"""Spark: a PySpark 4 Python data source named ``clarifai``, to sync a DataFrame into an app
and to read an app (or a dataset, or a search) back as a DataFrame.

Install with ``pip install 'clarifai-connect[spark]'`` (Spark needs a JDK 17), then::

    from clarifai_connect.integrations.spark import ClarifaiDataSource
    spark.dataSource.register(ClarifaiDataSource)
    (df.write.format("clarifai").option("app", "me/pets").option("dataset", "train")
       .option("media_column", "image_url").mode("append").save())
    pets = spark.read.format("clarifai").option("app", "me/pets").load()

Writing goes through the Arrow writer: each partition syncs its record batches with
today's engine, streaming (no collect to the driver), its state rebuilt from the API (an
input already there counts as skipped, see :mod:`clarifai_connect.engine.shards`) — so a
task Spark retries, or runs twice speculatively, changes nothing and counts nothing twice.
The driver merges the partitions' reports on commit (and on abort: what landed stays, a
rerun finishes the job) and writes it, as JSON, to ``option("report", PATH)`` if given.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

try:
    from pyspark.sql.datasource import (
        DataSource,
        DataSourceArrowWriter,
        DataSourceReader,
        InputPartition,
        WriterCommitMessage,
    )
except ImportError as exc:  # pragma: no cover - the message is the point
    raise ImportError("clarifai_connect.integrations.spark needs PySpark 4: "
                      "pip install 'clarifai-connect[spark]'") from exc

from ..engine.report import RunReport
from ..engine.shards import merge_reports, prepare_target, report_summary
from ..errors import ConfigError
from .parts import check_app, part_count, read_part

__all__ = ["READ_SCHEMA", "ClarifaiDataSource", "column_options", "merged_report"]

READ_SCHEMA = ("inputid string, input string, kind string, concepts array<string>, "
               "metadata string, geopoints array<double>, dataset_ids array<string>, "
               "regions string, labels string")
"""What a read gives: :func:`~clarifai_connect.reading.records_schema` (``input``: the media
URL, or the raw text; ``metadata``, ``regions`` and ``labels`` as JSON)."""

# option name → field of the parquet connector's column mapping
_COLUMNS = {"id_column": "inputid", "media_column": "input", "concepts_column": "concepts",
            "metadata_column": "metadata", "geopoints_column": "geopoints",
            "dataset_column": "dataset"}
_PASSED = ("input_type", "value_type", "label_separator", "media_suffix", "media_root")
_TARGET = ("app", "dataset", "base_url", "pat", "workers", "batch_size", "report",
           "partitions")


def column_options(options: Mapping[str, str]) -> dict[str, Any]:
    """The parquet connector's options from a Spark source's string options
    (``media_column`` → ``columns.input`` …, ``metadata_columns`` a comma list,
    ``labels`` and ``check_files`` booleans); an unknown option is a ConfigError."""
    known = set(_COLUMNS) | set(_PASSED) | set(_TARGET) | {"metadata_columns", "labels",
                                                            "check_files", "path"}
    unknown = sorted(k for k in options if k.lower() not in known)
    if unknown:
        raise ConfigError(f"unknown option(s) of the clarifai data source: {', '.join(unknown)}"
                          f" (known: {', '.join(sorted(known))})")
    lowered = {k.lower(): v for k, v in options.items()}
    result: dict[str, Any] = {}
    columns = {_COLUMNS[k]: v for k, v in lowered.items() if k in _COLUMNS}
    if columns:
        result["columns"] = columns
    result.update({k: v for k, v in lowered.items() if k in _PASSED})
    if lowered.get("metadata_columns"):
        result["metadata_columns"] = tuple(c.strip() for c in
                                           lowered["metadata_columns"].split(",") if c.strip())
    for flag in ("labels", "check_files"):
        if flag in lowered:
            result[flag] = str(lowered[flag]).strip().lower() in ("1", "true", "yes")
    return result


@dataclass
class ShardMessage(WriterCommitMessage):
    """What a partition's write sends back: its report summary (plain data)."""

    summary: dict[str, Any] = field(default_factory=dict)


def merged_report(messages: list[Any], app: str = "") -> RunReport:
    """The partitions' reports added up (messages of failed tasks are None: left out)."""
    return merge_reports([m.summary for m in messages if isinstance(m, ShardMessage)],
                         source="spark", target=app)


class _Writer(DataSourceArrowWriter):
    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)
        self.app = self.options.get("app", "")
        if not self.app:
            raise ConfigError('the clarifai data source needs option("app", "USER/APP")')
        self.mapping = column_options(self.options)
        self.dataset = self.options.get("dataset") or None
        # On the driver, once: the partitions must not race to create the app and dataset.
        prepare_target(self.app, self.dataset, base_url=self.options.get("base_url"),
                       pat=self.options.get("pat"))

    def write(self, iterator: Iterator[Any]) -> ShardMessage:
        """Sync this partition's record batches (streamed, never collected)."""
        import pyarrow as pa
        from pyspark import TaskContext

        from ..engine.run import sync

        task = TaskContext.get()
        part = task.partitionId() if task else 0
        batches = iter(iterator)
        first = next(batches, None)
        if first is None:
            return ShardMessage(report_summary(RunReport(source="spark", target=self.app)))

        def rest() -> Iterator[Any]:
            yield first
            yield from batches

        table = pa.RecordBatchReader.from_batches(first.schema, rest())
        report = sync(table, self.app, dataset=self.dataset, source_id=f"spark partition {part}",
                      base_url=self.options.get("base_url"), pat=self.options.get("pat"),
                      workers=int(self.options.get("workers", 4)),
                      batch_size=int(self.options.get("batch_size", 128)), state=":memory:",
                      options=self.mapping, create=False)
        return ShardMessage(report_summary(report))

    def commit(self, messages: list[Any]) -> None:
        """Merge the partitions' reports; write them to ``option("report")``."""
        self._file(merged_report(messages, self.app))

    def abort(self, messages: list[Any]) -> None:
        """A task failed for good: what landed stays (a rerun skips it and sends the rest);
        the report of the partitions that finished says so."""
        report = merged_report(messages, self.app)
        report.error("the Spark job failed: run the same write again to finish it")
        self._file(report)

    def _file(self, report: RunReport) -> None:
        path = self.options.get("report")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(report.as_dict(), handle)


@dataclass
class _Part(InputPartition):
    """Part ``index`` of ``count`` of the listing (one Spark partition)."""

    index: int = 0
    count: int = 1


class _Reader(DataSourceReader):
    def __init__(self, options: Mapping[str, str]) -> None:
        self.options = dict(options)
        self.where = {"dataset": self.options.get("dataset") or None,
                      "base_url": self.options.get("base_url"), "pat": self.options.get("pat")}
        check_app(self.options["app"], **self.where)  # on the driver, once
        self.count = part_count(self.options.get("partitions"))

    def partitions(self) -> list[_Part]:
        """``option("partitions")`` parts of the listing (default
        :data:`~clarifai_connect.integrations.parts.DEFAULT_PARTS`), each reading every
        n-th page."""
        return [_Part(index, self.count) for index in range(self.count)]

    def read(self, partition: Any) -> Iterator[Any]:
        """This partition's part of the listing, as Arrow record batches."""
        part = (partition.index, partition.count) if isinstance(partition, _Part) else (0, 1)
        records = read_part(self.options["app"], part, **self.where)
        yield from records.to_batches(int(self.options.get("batch_size", 1024)))


class ClarifaiDataSource(DataSource):
    """The ``clarifai`` format: ``df.write.format("clarifai")`` syncs into ``option("app")``
    (and ``option("dataset")``), ``spark.read.format("clarifai")`` reads it back
    (:data:`READ_SCHEMA`). Options: ``app``, ``dataset``, ``base_url``, ``pat``,
    ``workers`` (API calls per task), ``batch_size``, ``report`` (a JSON file the merged
    report is written to), ``partitions`` (how many parts a read lists the app in); column mapping as the parquet connector's: ``id_column``,
    ``media_column``, ``concepts_column``, ``metadata_column``, ``geopoints_column``,
    ``dataset_column``, ``metadata_columns``, ``input_type``, ``value_type``, ``labels``,
    ``label_separator``."""

    @classmethod
    def name(cls) -> str:
        """The format name."""
        return "clarifai"

    def schema(self) -> str:
        """What a read gives."""
        return READ_SCHEMA

    def reader(self, schema: Any) -> DataSourceReader:
        """Reads ``option("app")`` in ``option("partitions")`` parts of its listing."""
        if not self.options.get("app"):
            raise ConfigError('the clarifai data source needs option("app", "USER/APP")')
        return _Reader(self.options)

    def writer(self, schema: Any, overwrite: bool) -> DataSourceArrowWriter:
        """Syncs each partition; ``overwrite`` is refused (a sync never deletes)."""
        if overwrite:
            raise ConfigError('the clarifai data source appends: use mode("append") (a sync '
                              "never deletes what the app holds)")
        return _Writer(self.options)
