"""The csv connector: CSV / TSV tables of inputs with their labels.

The default layout is the official SDK's (``upload_from_csv``): columns ``inputid``,
``input``, ``concepts``, ``metadata``, ``geopoints``, where ``input`` holds raw text, a URL
or a file path (relative paths resolve against the CSV's folder, or ``media_root``) and
``concepts`` is a comma-separated list. Other layouts map their columns with
``columns={"input": "image_name", "concepts": "label_name"}``. The file is streamed; a
broken row becomes a Problem naming its line, and reading goes on.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from typing import Any

import fsspec

from clarifai_connect.connector import Reader, ReadItem, display_uri
from clarifai_connect.errors import ConfigError, SourceError
from clarifai_connect.hookspecs import hookimpl
from clarifai_connect.records import Problem

from .tabular import RowMapper

_SUFFIXES = (".csv", ".tsv", ".tab")
_COMPRESSIONS = ("", ".gz", ".bz2", ".xz", ".zst")
EXTRA_COLUMNS = ("error", "metadata", "ignore")

# Text inputs can be long; the csv module's default cap (128 KiB per field) is too small.
csv.field_size_limit(64 * 1024 * 1024)


class CsvReader(Reader):
    """Reads CSV / TSV files: the reference layout or a column mapping.

    Parameters:
        columns: ``{field: column}`` for a layout of its own, e.g. ``{"input": "image_name",
            "concepts": "label"}`` (fields: inputid, input, concepts, metadata, geopoints, dataset).
        input_type: ``auto`` (from each value) or the media kind of every input: image, video,
            audio, text.
        csv_type: what the input column holds: ``auto``, ``raw`` (text), ``url`` or ``file_path``.
        labels: read the concepts column (default True).
        label_separator: between the concepts of one cell (default ``,``).
        delimiter: the field separator (default: a tab for ``.tsv``/``.tab``, else ``,``).
        encoding: of the file (default utf-8; a byte-order mark is skipped).
        media_root: where relative file paths resolve (default: the CSV's folder); they must stay
            inside it.
        media_suffix: appended to file paths that lack it, e.g. ``.jpg`` for a column of bare names.
        check_files: stat each referenced file while reading: a missing one is a problem of its row,
            and its size and time join the fingerprint (default True).
        extra_columns: columns outside the layout: ``error`` (default), ``metadata`` (kept as
            metadata) or ``ignore``.
    """

    name = "csv"
    description = ("CSV/TSV: inputid, input (text, URL or path), concepts, metadata, geopoints; "
                   "or a column mapping")

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 columns: Mapping[str, str] | None = None, input_type: str = "auto",
                 csv_type: str = "auto", labels: bool = True, label_separator: str = ",",
                 delimiter: str | None = None, encoding: str = "utf-8",
                 media_root: str | None = None, media_suffix: str = "",
                 check_files: bool = True, extra_columns: str = "error") -> None:
        super().__init__(uri, storage_options=storage_options)
        if extra_columns not in EXTRA_COLUMNS:
            raise ConfigError(f"extra_columns '{extra_columns}' is not one of "
                              f"{', '.join(EXTRA_COLUMNS)}")
        self.mapper = RowMapper(uri, columns=columns, input_type=input_type, csv_type=csv_type,
                                labels=labels, label_separator=label_separator,
                                media_root=media_root, media_suffix=media_suffix,
                                check_files=check_files, storage_options=self.storage_options,
                                media_uri=self.media_uri)
        self.delimiter = delimiter or ("\t" if _base_suffix(uri) in (".tsv", ".tab") else ",")
        self.encoding = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding
        self.extra_columns = extra_columns
        # A shard's part (see shards()): (first byte, end byte, its first line); None: all.
        self.part: tuple[int, int, int] | None = None

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """A file named ``*.csv`` / ``*.tsv`` (optionally compressed)."""
        return _base_suffix(uri) in _SUFFIXES

    def __iter__(self) -> Iterator[ReadItem]:
        where = display_uri(self.uri)
        try:
            opened = fsspec.open(self.uri, "rt", encoding=self.encoding, newline="",
                                 errors="surrogateescape", compression="infer",
                                 **self.storage_options)
            handle = opened.open()
        except FileNotFoundError:
            raise SourceError(f"{where} does not exist") from None
        except (OSError, ValueError, ImportError) as exc:
            raise SourceError(f"cannot open {where}: {exc}") from None
        with handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            header = self._header(reader, where)
            if self.part is None:
                yield from self._rows(reader, where, header)
                return
        yield from self._part_rows(where, header)

    def _header(self, reader: Any, where: str) -> list[str]:
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise SourceError(f"{where} is empty: it needs a header row") from None
        except (csv.Error, OSError) as exc:
            raise SourceError(f"{where}:1: cannot read the header: {exc}") from None
        self._check_header(header, where)
        return header

    def _part_rows(self, where: str, header: list[str]) -> Iterator[ReadItem]:
        """The rows of this shard's byte range (it starts and ends on a line boundary)."""
        start, stop, line = self.part
        with fsspec.open(self.uri, "rb", **self.storage_options) as raw:
            raw.seek(start)
            encoding = self.encoding.replace("utf-8-sig", "utf-8")  # the BOM opens the file
            text = io.TextIOWrapper(io.BufferedReader(_Bounded(raw, stop - start)),
                                    encoding=encoding, newline="", errors="surrogateescape")
            yield from self._rows(csv.reader(text, delimiter=self.delimiter), where, header,
                                  first_line=line)

    def shards(self, hint: int = 0) -> list[CsvReader] | None:
        """Readers of about ``hint`` byte ranges of the file, each starting on a line
        outside any quoted field (an even count of quotes before it), for distributed runs;
        None (one shard) for a compressed file or a hint below 2."""
        import copy

        name = self.uri.lower().rstrip("/")
        if hint < 2 or name.endswith(_COMPRESSIONS[1:]):
            return None
        with fsspec.open(self.uri, "rb", **self.storage_options) as raw:
            size = raw.seek(0, 2)
            raw.seek(0)
            raw.readline()  # the header (one line)
            cuts, offset, line, quotes = [], raw.tell(), 2, 0
            body = offset
            target = size / hint
            for row in raw:
                if offset >= target * (len(cuts) + 1) and quotes % 2 == 0:
                    cuts.append((offset, line))
                    if len(cuts) == hint - 1:
                        break
                offset += len(row)
                line += 1
                quotes += row.count(b'"')
        bounds = [(body, 2), *cuts, (size, 0)]
        shards = []
        for (start, first), (stop, _) in zip(bounds, bounds[1:], strict=False):
            shard = copy.copy(self)
            shard.part = (start, stop, first)
            shards.append(shard)
        return shards if len(shards) > 1 else None

    def _rows(self, reader: Any, where: str, header: list[str],
              first_line: int = 1) -> Iterator[ReadItem]:
        while True:
            start = reader.line_num + first_line
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, OSError) as exc:
                yield Problem(f"{where}:{start}", f"malformed CSV: {exc}")
                if reader.line_num + first_line <= start:  # no progress: cannot resume
                    return
                continue
            if not cells or not any(c.strip() for c in cells):
                continue  # a blank line is not an item
            source = f"{where}:{start}"
            if len(cells) != len(header):
                yield Problem(source, f"has {len(cells)} fields where the header has "
                                      f"{len(header)} (check quoting)")
                continue
            if _undecodable(cells):
                yield Problem(source, f"is not valid {self.encoding.replace('-sig', '')} text")
                continue
            yield self.mapper.record(dict(zip(header, cells, strict=True)), source)

    def _check_header(self, header: list[str], where: str) -> None:
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise ConfigError(f"{where} has duplicate columns: {', '.join(duplicates)}")
        self.mapper.check_header(header, where)
        known = {c for c in self.mapper.columns.values()}
        extra = [h for h in header if h not in known]
        if not extra or self.extra_columns == "ignore":
            return
        if self.extra_columns == "error":
            raise ConfigError(f"{where} has column(s) {', '.join(extra)} outside the layout "
                              f"(inputid, input, concepts, metadata, geopoints): map them with "
                              f"columns=…, or set extra_columns to 'metadata' or 'ignore'")
        self.mapper.metadata_columns = tuple(extra)


class _Bounded(io.RawIOBase):
    """At most ``size`` bytes of ``raw`` from where it stands: one shard's byte range."""

    def __init__(self, raw: Any, size: int) -> None:
        self.raw, self.left = raw, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(min(len(buffer), self.left))
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)


def _base_suffix(uri: str) -> str:
    name = uri.lower().rstrip("/").rsplit("/", 1)[-1]
    for compression in _COMPRESSIONS[1:]:
        if name.endswith(compression):
            name = name[: -len(compression)]
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def _undecodable(cells: list[str]) -> bool:
    # Undecodable bytes arrive as lone surrogates (errors="surrogateescape").
    try:
        "".join(cells).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@hookimpl
def register_connectors(register: Any) -> None:
    """Register the csv connector."""
    register(CsvReader)


@hookimpl
def detect_format(uri: str, storage_options: Mapping[str, Any]) -> str | None:
    """Claim ``*.csv`` / ``*.tsv`` files."""
    return CsvReader.name if CsvReader.detect(uri, storage_options) else None
