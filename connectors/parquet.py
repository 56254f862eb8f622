"""The parquet connector: Parquet files or hive-partitioned folders of them, streamed.

Rows map to records with the same column layout as the csv connector (``inputid``,
``input``, ``concepts``, ``metadata``, ``geopoints``, plus ``dataset``; other names through
``columns={...}``). The input column holds bytes (media inline) or strings (URIs, file
paths relative to the dataset, or raw text). Reading goes through ``pyarrow.dataset``: only
the needed columns are read, a ``filter`` is pushed down (partitions are pruned), and rows
come in record batches of ``batch_size``, so memory is bounded by the batch, not the file.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from typing import Any

from clarifai_connect.connector import Reader, ReadItem, display_uri, filesystem
from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Problem

from .tabular import FIELDS, RowMapper

_CLAUSE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(==|!=|<=|>=|=|<|>|not in|in)\s*(.+?)\s*$",
                     re.IGNORECASE)
_SUFFIXES = (".parquet", ".parq", ".pq")


def parse_filter(value: Any) -> Any:
    """A pyarrow filter expression from an Expression, a DNF list of ``(column, op, value)``
    tuples, or a string like ``split == 'train' and score >= 0.5``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if value is None or isinstance(value, pc.Expression):
        return value
    if isinstance(value, str):
        clauses = []
        for part in re.split(r"\s+and\s+", value.strip(), flags=re.IGNORECASE):
            match = _CLAUSE.match(part)
            if not match:
                raise ConfigError(f"cannot read the filter clause '{part}': write "
                                  "column OP value, joined with 'and' (OP: == != < <= > >= in)")
            column, op, literal = match.groups()
            clauses.append((column, "==" if op == "=" else op.lower(), _literal(literal)))
        value = clauses
    try:
        return pq.filters_to_expression(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid filter {value!r}: {exc}") from None


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: a string


class ParquetReader(Reader):
    """Reads Parquet files and hive-partitioned Parquet folders in record batches.

    Parameters:
        columns: ``{field: column}`` for a layout of its own (fields as the csv connector's, plus
            ``dataset``).
        metadata_columns: columns copied into each record's metadata (a list, or names separated by
            commas).
        filter: a row filter pushed down to the files, e.g. ``split == 'val'`` (partitions are
            pruned).
        input_type: ``auto`` (from each value) or the media kind of every input: image, video,
            audio, text.
        value_type: what a string input column holds: ``auto``, ``raw`` (text), ``url`` or
            ``file_path``.
        labels: read the concepts column (default True).
        label_separator: between the concepts of one cell (default ``,``).
        media_root: where relative file paths resolve (default: the dataset's folder); they must
            stay inside it.
        media_suffix: appended to file paths that lack it, e.g. ``.jpg``.
        check_files: stat each referenced file while reading (default True).
        partitioning: how folder names partition the rows: ``hive`` (default, ``key=value``) or
            None.
        batch_size: rows per record batch read (memory is bounded by it; default 256).
    """

    name = "parquet"
    description = ("Parquet files / hive-partitioned folders: media as bytes or URI columns, "
                   "column mapping, filter")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 columns: Mapping[str, str] | None = None,
                 metadata_columns: tuple[str, ...] = (), filter: Any = None,
                 input_type: str = "auto", value_type: str = "auto", labels: bool = True,
                 label_separator: str = ",", media_root: str | None = None,
                 media_suffix: str = "", check_files: bool = True,
                 partitioning: str | None = "hive", batch_size: int = 256) -> None:
        super().__init__(uri, storage_options=storage_options)
        if isinstance(metadata_columns, str):
            metadata_columns = tuple(c.strip() for c in metadata_columns.split(",") if c.strip())
        self.filter = parse_filter(filter)
        self.partitioning = partitioning
        # A shard's part (see shards()): {file path: (row group ids, first row)}; None: all.
        self.part: dict[str, tuple[list[int], int]] | None = None
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        # Relative paths resolve against the dataset folder (a file: its own folder).
        base = uri if _is_file_name(uri) else uri.rstrip("/") + "/_"
        self.mapper = RowMapper(base, columns=columns, input_type=input_type,
                                csv_type=value_type, labels=labels,
                                label_separator=label_separator, media_root=media_root,
                                media_suffix=media_suffix, check_files=check_files,
                                metadata_columns=tuple(metadata_columns),
                                storage_options=self.storage_options,
                                media_uri=self.media_uri)

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """A ``*.parquet`` file, or a folder whose first file found is one."""
        if _is_file_name(uri):
            return True
        try:
            fs, path = filesystem(uri, storage_options)
            if not fs.isdir(path):
                return False
            for _, _, files in fs.walk(path, maxdepth=4):
                names = [f for f in files if not f.startswith((".", "_"))]
                if names:
                    return any(f.lower().endswith(_SUFFIXES) for f in names)
        except (OSError, SourceError):
            return False
        return False

    def _open(self) -> tuple[Any, Any, str]:
        import pyarrow as pa
        import pyarrow.dataset as ds

        fs, path = filesystem(self.uri, self.storage_options)
        local = "://" not in self.uri or self.uri.startswith("file://")
        try:
            if not fs.exists(path):
                raise SourceError(f"{display_uri(self.uri)} does not exist")
            dataset = ds.dataset(path, filesystem=None if local else fs, format="parquet",
                                 partitioning=self.partitioning, exclude_invalid_files=True)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"cannot open {display_uri(self.uri)} as Parquet: {exc}") from None
        return fs, dataset, path

    def __iter__(self) -> Iterator[ReadItem]:
        import pyarrow as pa
        import pyarrow.dataset as ds

        fs, dataset, root = self._open()
        if self.part is None or self.part.get("", ([], 0))[1] == 0:
            yield from self._invalid_files(fs, dataset, root)  # once: with the first shard
        names = set(dataset.schema.names)
        columns = self._columns(names)
        fragments = self._fragments(dataset)
        for fragment in fragments:
            where = self._display(fs, fragment.path)
            label = "filtered row" if self.filter is not None else "row"
            index = 0
            if self.part is not None:
                if fragment.path not in self.part:
                    continue
                groups, index = self.part[fragment.path]
                fragment = fragment.subset(row_group_ids=groups)
            try:
                # One row group at a time: a scanner over the whole file reads ahead of a
                # slower consumer, and its buffers then grow with the file (measured: ~5 MB
                # more at 100k rows than at 10k); a row group's scanner is bounded by it.
                for group in fragment.split_by_row_group(filter=self.filter,
                                                         schema=dataset.schema):
                    scanner = ds.Scanner.from_fragment(group, schema=dataset.schema,
                                                       columns=columns, filter=self.filter,
                                                       batch_size=self.batch_size)
                    for batch in scanner.to_batches():
                        for row in batch.to_pylist():
                            yield self.mapper.record(row, f"{where} {label} {index}")
                            index += 1
            except (pa.ArrowException, OSError) as exc:
                yield Problem(f"{where} {label} {index}",
                              f"cannot read the rest of the file: {exc}")

    def _fragments(self, dataset: Any) -> list[Any]:
        import pyarrow as pa

        try:
            return list(dataset.get_fragments(filter=self.filter))
        except (pa.ArrowException, TypeError) as exc:
            raise ConfigError(f"the filter does not apply to {display_uri(self.uri)}: {exc}") \
                from None

    def count(self) -> int | None:
        """Rows in the dataset (from Parquet footers) when no filter is set."""
        if self.filter is not None:
            return None
        try:
            if self.part is not None:
                return sum(self._sizes[path] for path in self.part if path)
            return self._open()[1].count_rows()
        except Exception:  # a progress total is a nicety: never fail the run over it
            return None

    def shards(self, hint: int = 0) -> list[ParquetReader] | None:
        """Readers of about ``hint`` parts of consecutive row groups (0: one per row
        group), for distributed runs (see :mod:`clarifai_connect.engine.shards`); with a
        filter, row groups its statistics rule out are dropped."""
        import copy

        from clarifai_connect.engine.shards import split_evenly

        _, dataset, _ = self._open()
        units = []  # (file path, row group id, rows, first row of the group in its file)
        for fragment in self._fragments(dataset):
            fragment.ensure_complete_metadata()
            kept = None if self.filter is None else {
                g.row_groups[0].id for g in fragment.split_by_row_group(filter=self.filter)}
            first = 0
            for info in fragment.row_groups:
                if kept is None or info.id in kept:
                    units.append((fragment.path, info.id, info.num_rows, first))
                first += info.num_rows
        if len(units) < 2:
            return None
        shards = []
        for number, indexes in enumerate(split_evenly([u[2] for u in units],
                                                      hint or len(units))):
            part: dict[str, tuple[list[int], int]] = {"": ([], number)}  # "": shard number
            sizes: dict[str, int] = {}
            for index in indexes:
                path, group, rows, first = units[index]
                part.setdefault(path, ([], first))[0].append(group)
                sizes[path] = sizes.get(path, 0) + rows
            shard = copy.copy(self)
            shard.part, shard._sizes = part, sizes
            shards.append(shard)
        return shards

    def _columns(self, names: set[str]) -> list[str]:
        mapping = self.mapper.columns
        if mapping["input"] not in names:
            raise ConfigError(f"{display_uri(self.uri)} has no '{mapping['input']}' column for "
                              f"the input (columns: {', '.join(sorted(names))}); map one with "
                              "the option columns.input=NAME")
        wanted = [mapping[f] for f in FIELDS if f in mapping]
        missing = [c for c in self.mapper.metadata_columns if c not in names]
        if "dataset" in mapping and mapping["dataset"] not in names:
            missing.append(mapping["dataset"])
        if missing:
            raise ConfigError(f"{display_uri(self.uri)} has no column(s) {', '.join(missing)} "
                              f"(columns: {', '.join(sorted(names))})")
        wanted += list(self.mapper.metadata_columns)
        return list(dict.fromkeys(c for c in wanted if c in names))

    def _invalid_files(self, fs: Any, dataset: Any, root: str) -> Iterator[Problem]:
        # exclude_invalid_files drops unreadable files from the dataset: report each one.
        if not fs.isdir(root):
            return
        valid = set(dataset.files)
        for directory, _dirs, files in fs.walk(root):
            for name in sorted(files):
                if name.startswith((".", "_")):
                    continue  # pyarrow's convention: _SUCCESS, _metadata, hidden files
                path = f"{directory.rstrip('/')}/{name}"
                if path not in valid and fs._strip_protocol(path) not in valid:
                    yield Problem(self._display(fs, path), "not a readable Parquet file")

    def _display(self, fs: Any, path: str) -> str:
        return display_uri(fs.unstrip_protocol(path) if "://" in self.uri else path)


def _is_file_name(uri: str) -> bool:
    return uri.lower().rstrip("/").endswith(_SUFFIXES)


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the parquet connector."""
    register(ParquetReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim ``*.parquet`` files and folders of them."""
    return ParquetReader.name if ParquetReader.detect(uri, storage_options) else None
