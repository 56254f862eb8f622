"""The csv exporter: the reference CSV layout, media files beside it.

Writes ``inputs.csv`` (or the ``*.csv`` file the URI names) with the columns ``inputid``,
``input``, ``concepts``, ``metadata``, ``geopoints`` — the layout the csv connector and the
official SDK's ``upload_from_csv`` read — and each input's media as ``media/<id><ext>``,
referenced by a path relative to the CSV. Text inputs go inline as raw text (the csv
connector reads ``*.txt`` paths as text too, so a file would not come back as one); text
that reads like a path or URL is named in a warning. The table is streamed row by row.

The layout holds input-level positive labels only: regions and concepts with value 0 are
named in warnings. Dataset membership is the scope of the export, not a column (the csv
connector reads one only through a column mapping).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

from clarifai_connect.exports.files import FileWriter
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.mediatypes import kind_from_extension
from clarifai_connect.records import Record

__all__ = ["CsvWriter", "split_file_uri"]

COLUMNS = ("inputid", "input", "concepts", "metadata", "geopoints")
_TABLE_SUFFIXES = (".csv", ".tsv")


def split_file_uri(uri: str, suffixes: tuple[str, ...], default_name: str) -> tuple[str, str]:
    """``(folder URI, file name)``: a URI ending in one of ``suffixes`` names the file,
    anything else is the folder that gets ``default_name``."""
    stripped = uri.rstrip("/")
    if stripped.lower().endswith(suffixes):
        folder, _, name = stripped.rpartition("/")
        if "://" in uri and folder.endswith(":/"):
            folder += "/"
        return folder or ".", name
    return uri, default_name


def _reads_as_text(text: str) -> bool:
    """Whether the csv connector would take ``text`` as raw text (not a path or URL)."""
    stripped = text.strip()
    if not stripped:
        return False  # an empty cell is a broken row to the reader
    if "://" in stripped and not any(c.isspace() for c in stripped):
        return False
    if not any(c in stripped for c in "\n\t") and kind_from_extension(stripped) not in (None, "text"):
        return False
    return True


class CsvWriter(FileWriter):
    """Writes the reference CSV layout with media files beside it.

    Its options besides :class:`~clarifai_connect.exports.files.FileWriter`'s (``workers``,
    ``spill_dir``):

    Parameters:
        media_folder: the folder beside the CSV that gets the media files (default ``media``).
        inline_text: write text inputs inline as raw text rather than as files (default True).
    """

    name = "csv"
    description = ("CSV in the reference layout (inputid, input, concepts, metadata, "
                   "geopoints) with media files beside it")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, media_folder: str = "media", inline_text: bool = True,
                 spill_dir: str = "") -> None:
        root, self.file_name = split_file_uri(uri, _TABLE_SUFFIXES, "inputs.csv")
        super().__init__(uri, storage_options=storage_options, workers=workers,
                         spill_dir=spill_dir, root=root)
        self.media_folder = media_folder.strip("/") or "media"
        self.inline_text = bool(inline_text)
        self.delimiter = "\t" if self.file_name.lower().endswith(".tsv") else ","
        self._handle: Any = None
        self._text: Any = None
        self._csv: Any = None

    def _table(self) -> Any:
        if self._csv is None:
            self._handle = self.dest.open(self.file_name, "wb")
            self._text = io.TextIOWrapper(self._handle, encoding="utf-8", newline="")
            self._csv = csv.writer(self._text, delimiter=self.delimiter)
            self._csv.writerow(COLUMNS)
        return self._csv

    def write_record(self, record: Record) -> None:
        """Write the record's media file and its row."""
        table = self._table()
        media = record.media
        text = media.text if media.text is not None else None
        if text is None and media.kind == "text" and media.data is not None:
            try:
                text = media.data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if self.inline_text and text is not None:
            value = text
            if not _reads_as_text(text):
                self.warn(record, "text that reads as a file path or URL written inline "
                                  "(read it back with csv_type=raw)")
        else:
            value = self.write_media(record, self.media_folder, record.id)
        names = []
        for concept in record.concepts:
            if concept.value <= 0:
                continue
            # A name holding the separator would split in two on the way back: use the id.
            names.append(concept.id if "," in concept.name else concept.name)
        negatives = sum(1 for c in record.concepts if c.value <= 0)
        if negatives:
            self.warn(record, "concepts with value 0 not written (the csv layout holds "
                              "positive labels only)")
        kinds = sorted({r.kind for r in record.regions})
        if kinds:
            self.warn(record, f"{'/'.join(kinds)} regions not written (the csv layout holds "
                              "input-level labels only)")
        metadata = json.dumps(record.metadata, sort_keys=True, ensure_ascii=False) \
            if record.metadata else ""
        geo = f"{record.geo.longitude},{record.geo.latitude}" if record.geo else ""
        table.writerow((record.id, value, ",".join(names), metadata, geo))

    def finish(self) -> None:
        """Close the table (an empty export still gets its header row)."""
        self._table()
        self._text.close()
        self._handle.close()

    @classmethod
    def merge_parts(cls, uris: list[str], to: str,
                    storage_options: Mapping[str, Any] | None = None) -> list[str]:
        """Merge the parts of a distributed export (each written to ``uris[i]``, shaped
        like ``to``) into ``to``: media moved, the tables' rows one after the other under
        one header. Returns what could not be merged."""
        import shutil

        from clarifai_connect.exports.parts import PartFiles

        name = split_file_uri(to, _TABLE_SUFFIXES, "inputs.csv")[1]
        files = PartFiles(uris, to, storage_options,
                          root_of=lambda uri: split_file_uri(uri, _TABLE_SUFFIXES, "")[0])
        with files.open(name) as out:
            for index in range(len(uris)):
                path = files.path(index, name)
                if not files.fs.exists(path):
                    continue
                with files.fs.open(path, "rb") as part:
                    header = part.readline()  # the header has no quoted field: one line
                    if index == 0:
                        out.write(header)
                    shutil.copyfileobj(part, out)
        return files.move_all(keep=lambda rel: rel == name)


@hookimpl
def register_exporters(register: Any) -> None:
    """Register the csv exporter."""
    register(CsvWriter)
