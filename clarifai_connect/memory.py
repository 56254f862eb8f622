"""In-memory sources: records, Arrow tables and pandas DataFrames read like a connector.

ETL code that already holds its data hands it to :func:`clarifai_connect.sync` or
:func:`clarifai_connect.read` as it is: :func:`open_source` wraps an iterable of records
in a :class:`RecordsSource` and a ``pyarrow.Table`` / ``RecordBatch`` /
``RecordBatchReader`` or a pandas DataFrame in a :class:`TableSource`, whose rows map to
records with the csv and parquet connectors' column layout (``inputid``, ``input``,
``concepts``, ``metadata``, ``geopoints``; other names through ``columns={...}``).
Such a source has no URI, so a ``source_id`` names it: in the state file (which keys
reruns, ``update`` and ``delete``), the report, and each problem's location.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any

from .connector import Reader, ReadItem, allowed_folders, display_uri
from .errors import ConfigError
from .records import Notice, Problem, Record

if TYPE_CHECKING:
    from .plugins import PluginRegistry

__all__ = ["OpenedSource", "RecordsSource", "TableSource", "is_table", "open_source"]


def is_table(data: Any) -> bool:
    """Whether ``data`` is a pyarrow Table / RecordBatch / RecordBatchReader or a pandas
    DataFrame (recognized without importing pandas)."""
    module = type(data).__module__ or ""
    if module.startswith("pandas") and hasattr(data, "iloc") and hasattr(data, "columns"):
        return True
    if module.startswith("pyarrow"):
        import pyarrow as pa

        return isinstance(data, (pa.Table, pa.RecordBatch, pa.RecordBatchReader))
    return False


class RecordsSource(Reader):
    """An iterable of :class:`Record` (and :class:`Problem`, :class:`Notice`) as a source,
    read once, lazily.

    Anything else the iterable yields becomes a Problem at ``<source_id> item <n>``.
    """

    name = "records"
    description = "An iterable of Record objects held by the caller"

    def __init__(self, items: Iterable[Any], source_id: str) -> None:
        super().__init__(source_id)
        self.items = items

    def __iter__(self) -> Iterator[ReadItem]:
        for index, item in enumerate(self.items):
            if isinstance(item, (Record, Problem, Notice)):
                yield item
            else:
                yield Problem(f"{self.uri} item {index}",
                              f"is a {type(item).__name__}, not a Record")

    def count(self) -> int | None:
        """The length of a list or other sized collection; None for a generator."""
        return len(self.items) if isinstance(self.items, Sized) else None


class TableSource(Reader):
    """A pyarrow Table / RecordBatch / RecordBatchReader or a pandas DataFrame as a source.

    Rows map to records as the parquet connector maps them (same options: ``columns``,
    ``metadata_columns``, ``input_type``, ``value_type``, ``labels`` …). Relative file paths
    in the input column resolve against ``media_root`` (default: the current directory) and
    must stay inside it, or inside an allowed folder (``allowed_paths``).
    Rows are converted ``batch_size`` at a time, so a DataFrame is never copied whole.
    """

    name = "table"
    description = "A pyarrow Table / RecordBatchReader or a pandas DataFrame held by the caller"

    def __init__(self, data: Any, source_id: str, *,
                 storage_options: Mapping[str, Any] | None = None,
                 columns: Mapping[str, str] | None = None,
                 metadata_columns: tuple[str, ...] = (), input_type: str = "auto",
                 value_type: str = "auto", labels: bool = True, label_separator: str = ",",
                 media_root: str | None = None, media_suffix: str = "",
                 check_files: bool = True, batch_size: int = 256) -> None:
        from connectors.tabular import RowMapper  # the csv/parquet layout, one definition

        super().__init__(source_id, storage_options=storage_options)
        if not is_table(data):
            raise ConfigError(f"{type(data).__name__} is not a pyarrow Table, RecordBatch, "
                              "RecordBatchReader or pandas DataFrame")
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if isinstance(metadata_columns, str):
            metadata_columns = tuple(c.strip() for c in metadata_columns.split(",") if c.strip())
        self.data = data
        self.batch_size = int(batch_size)
        root = media_root or os.getcwd()
        # RowMapper resolves against the parent of its base: point it inside the root.
        self.mapper = RowMapper(root.rstrip("/") + "/_", columns=columns, input_type=input_type,
                                csv_type=value_type, labels=labels,
                                label_separator=label_separator, media_suffix=media_suffix,
                                check_files=check_files, metadata_columns=tuple(metadata_columns),
                                storage_options=self.storage_options,
                                media_uri=self.media_uri)
        self.mapper.check_header(self._column_names(), source_id)

    def _column_names(self) -> list[str]:
        if hasattr(self.data, "iloc"):  # pandas
            return [str(c) for c in self.data.columns]
        return list(self.data.schema.names)

    def _batches(self) -> Iterator[Any]:
        import pyarrow as pa

        data = self.data
        if hasattr(data, "iloc"):
            for start in range(0, len(data), self.batch_size):
                yield pa.RecordBatch.from_pandas(data.iloc[start:start + self.batch_size],
                                                 preserve_index=False)
        elif isinstance(data, pa.Table):
            yield from data.to_batches(max_chunksize=self.batch_size)
        elif isinstance(data, pa.RecordBatch):
            yield data
        else:  # a RecordBatchReader: one pass, batch by batch
            yield from data

    def __iter__(self) -> Iterator[ReadItem]:
        index = 0
        for batch in self._batches():
            for offset in range(0, batch.num_rows, self.batch_size):
                for row in batch.slice(offset, self.batch_size).to_pylist():
                    yield self.mapper.record(row, f"{self.uri} row {index}")
                    index += 1

    def count(self) -> int | None:
        """The rows of a Table, RecordBatch or DataFrame; None for a RecordBatchReader."""
        if hasattr(self.data, "iloc"):
            return len(self.data)
        return getattr(self.data, "num_rows", None)


class OpenedSource:
    """What :func:`open_source` found: the ``reader``, the ``key`` naming the source in its
    state file, and ``label``, the name shown in reports (no credentials)."""

    def __init__(self, reader: Reader, key: str, label: str, format: str) -> None:
        self.reader, self.key, self.label, self.format = reader, key, label, format

    def __repr__(self) -> str:
        return f"OpenedSource({self.label!r}, format={self.format!r})"


def _source_id(source_id: str | None, what: str) -> str:
    if source_id is None:
        raise ConfigError(f"{what} has no URI: pass source_id='…', a stable name for this "
                          "source (it keys the sync state, so that reruns skip what landed "
                          "and update/delete work)")
    if not isinstance(source_id, str) or not source_id.strip():
        raise ConfigError(f"source_id {source_id!r} is not a non-empty string")
    return source_id.strip()


def open_source(data: Any, *, source_id: str | None = None, format: str = "auto",
                storage_options: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None,
                registry: PluginRegistry | None = None,
                allowed_paths: Iterable[str] = ()) -> OpenedSource:
    """A reader for ``data``: a URI (through its connector), a :class:`Reader`, a table or
    DataFrame, or an iterable of records. ``source_id`` names the source for its state
    (required for in-memory data; a URI is named by itself unless given). Media paths of
    a URI or a table may leave it only into ``allowed_paths`` (``--allow-path``)."""
    from .engine.run import source_key
    from .plugins import get_registry

    options = dict(options or {})
    if isinstance(data, (str, os.PathLike)):
        uri = os.fspath(data)
        registry = registry or get_registry()
        format = (format or "auto").strip().lower()  # --format COCO is --format coco
        if format == "auto":
            format = registry.detect_format(uri, storage_options)
        reader = registry.open_reader(uri, format, storage_options,
                                      allowed_paths=allowed_paths, **options)
        key = source_key(uri) if source_id is None else _source_id(source_id, uri)
        return OpenedSource(reader, key, display_uri(uri), format)
    if isinstance(data, Reader):
        if options:
            raise ConfigError("options cannot be given with a Reader: build it with them")
        if allowed_paths:
            data.allowed_paths = allowed_folders(allowed_paths)
        key = source_key(data.uri) if source_id is None else _source_id(source_id, data.uri)
        return OpenedSource(data, key, display_uri(data.uri), data.name or type(data).__name__)
    if format not in ("auto", "", None):
        raise ConfigError(f"format '{format}' applies to a URI, not to {type(data).__name__}")
    if is_table(data):
        name = _source_id(source_id, f"a {type(data).__name__}")
        table = TableSource(data, name, storage_options=storage_options, **options)
        table.allowed_paths = allowed_folders(allowed_paths)
        return OpenedSource(table, name, name, TableSource.name)
    if isinstance(data, Iterable) and not isinstance(data, (bytes, bytearray, Mapping)):
        name = _source_id(source_id, "an iterable of records")
        if options:
            raise ConfigError(f"records need no options (got {', '.join(sorted(options))})")
        return OpenedSource(RecordsSource(data, name), name, name, RecordsSource.name)
    raise ConfigError(f"cannot read a {type(data).__name__}: give a path or URL, a Reader, "
                      "records, a pyarrow Table or a pandas DataFrame")
