"""The parquet exporter: one row per input, media bytes inline, streamed in row groups.

Columns: ``inputid``, ``input`` (the media bytes; text as UTF-8), ``kind``, ``concepts``
(positive label names), ``metadata`` (JSON), ``geopoints`` (``[longitude, latitude]``),
``dataset_ids``, and ``regions`` and ``labels`` (JSON: every region with its shape and
concepts, masks as base64 PNG; every concept with its id, name and value), so nothing is
lost. The first five are the layout the parquet connector reads; it ignores the others.

The URI names a ``*.parquet`` file, or a folder that gets ``part-00000.parquet``. Rows are
buffered up to ``batch_size`` rows or ``max_batch_bytes`` of media, then written as a row
group: memory is bounded by the batch, not the dataset.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from clarifai_connect.errors import ConfigError
from clarifai_connect.exports.files import FileWriter
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Record, Region

from .csv_writer import split_file_uri

__all__ = ["ParquetWriter", "region_json"]

_SUFFIXES = (".parquet", ".parq", ".pq")


def region_json(region: Region) -> dict[str, Any]:
    """A region as JSON: its id, kind, shape (normalized coordinates) and concepts."""
    out: dict[str, Any] = {"id": region.id, "kind": region.kind,
                           "concepts": [{"id": c.id, "name": c.name, "value": c.value}
                                        for c in region.concepts]}
    if region.box is not None:
        b = region.box
        out["box"] = {"top_row": b.top_row, "left_col": b.left_col,
                      "bottom_row": b.bottom_row, "right_col": b.right_col}
    elif region.polygon:
        out["polygon"] = [[p.row, p.col] for p in region.polygon]
    elif region.point is not None:
        out["point"] = [region.point.row, region.point.col]
    else:
        out["mask_png_base64"] = base64.b64encode(region.mask.read_bytes()).decode("ascii")
    return out


class ParquetWriter(FileWriter):
    """Writes a Parquet file with media bytes inline and every label as columns.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        batch_size: rows per row group (default 256).
        max_batch_bytes: media bytes after which a row group is written early (default 64 MiB).
        compression: the Parquet codec (default ``zstd``).
    """

    name = "parquet"
    description = ("Parquet: inputid, input (media bytes), concepts, metadata, geopoints, "
                   "plus regions and labels as JSON")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, batch_size: int = 256, max_batch_bytes: int = 64 << 20,
                 compression: str = "zstd", spill_dir: str = "") -> None:
        if int(batch_size) < 1 or int(max_batch_bytes) < 1:
            raise ConfigError("parquet options batch_size and max_batch_bytes must be ≥ 1")
        root, self.file_name = split_file_uri(uri, _SUFFIXES, "part-00000.parquet")
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir, root=root)
        self.batch_size = int(batch_size)
        self.max_batch_bytes = int(max_batch_bytes)
        self.compression = compression
        self._rows: dict[str, list[Any]] = {name: [] for name in self._schema().names}
        self._bytes = 0
        self._handle: Any = None
        self._writer: Any = None

    @staticmethod
    def _schema() -> Any:
        import pyarrow as pa

        return pa.schema([
            ("inputid", pa.string()), ("input", pa.binary()), ("kind", pa.string()),
            ("concepts", pa.list_(pa.string())), ("metadata", pa.string()),
            ("geopoints", pa.list_(pa.float64())), ("dataset_ids", pa.list_(pa.string())),
            ("regions", pa.string()), ("labels", pa.string()),
        ])

    def write_record(self, record: Record) -> None:
        """Buffer the record's row; a full buffer is written as a row group."""
        media = record.media.read_bytes()
        row = {
            "inputid": record.id, "input": media, "kind": record.media.kind,
            "concepts": [c.name for c in record.concepts if c.value > 0],
            "metadata": json.dumps(record.metadata, sort_keys=True) if record.metadata else None,
            "geopoints": [record.geo.longitude, record.geo.latitude] if record.geo else None,
            "dataset_ids": list(record.dataset_ids),
            "regions": json.dumps([region_json(r) for r in record.regions])
            if record.regions else None,
            "labels": json.dumps([{"id": c.id, "name": c.name, "value": c.value}
                                  for c in record.concepts]) if record.concepts else None,
        }
        for key, value in row.items():
            self._rows[key].append(value)
        self._bytes += len(media)
        if len(self._rows["inputid"]) >= self.batch_size or self._bytes >= self.max_batch_bytes:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._schema()
        if self._writer is None:
            self._handle = self.dest.open(self.file_name, "wb")
            self._writer = pq.ParquetWriter(self._handle, schema, compression=self.compression)
        if self._rows["inputid"]:
            self._writer.write_table(pa.Table.from_pydict(self._rows, schema=schema))
        for values in self._rows.values():
            values.clear()
        self._bytes = 0

    def finish(self) -> None:
        """Write the last row group and the footer (an empty export gets an empty file)."""
        self._flush()
        self._writer.close()
        self._handle.close()

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export into ``to``: to a folder, as a Parquet
        dataset of parts (``part-00000.parquet``, ``part-00001.parquet`` …); to a
        ``.parquet`` file, their row groups one after the other in it."""
        import pyarrow.parquet as pq

        from clarifai_connect.exports.parts import PartFiles

        name = split_file_uri(to, _SUFFIXES, "part-00000.parquet")[1]
        files = PartFiles(uris, to, storage_options,
                          root_of=lambda uri: split_file_uri(uri, _SUFFIXES, "")[0])
        present = [i for i in range(len(uris)) if files.fs.exists(files.path(i, name))]
        if not to.rstrip("/").lower().endswith(_SUFFIXES):
            for number, index in enumerate(present):
                target = f"part-{number:05d}.parquet"
                files.fs.mv(files.path(index, name), files.path(None, target))
                files.claim(target)
            return files.move_all()
        with files.open(name) as handle:
            writer = pq.ParquetWriter(handle, cls._schema(), compression="zstd")
            try:
                for index in present:
                    with files.fs.open(files.path(index, name), "rb") as part:
                        table = pq.ParquetFile(part)
                        for group in range(table.num_row_groups):
                            writer.write_table(table.read_row_group(group))
            finally:
                writer.close()
        return files.move_all(keep=lambda rel: rel == name)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the parquet exporter."""
    register(ParquetWriter)
