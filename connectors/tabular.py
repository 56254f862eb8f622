"""Rows to records: the column layout shared by the csv and parquet connectors.

The reference layout (the official SDK's ``upload_from_csv``) has the columns ``inputid``,
``input``, ``concepts``, ``metadata`` and ``geopoints``; other layouts map their own column
names onto these fields with ``columns={"input": "image_name", "concepts": "label"}``.
The extra field ``dataset`` (a dataset id per row) exists only through a mapping.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os.path
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from clarifai_connect.connector import display_uri, filesystem, media_uri, resolve_uri
from clarifai_connect.errors import ConfigError
from clarifai_connect.mediatypes import SNIFF_BYTES, kind_from_extension, sniff_kind
from clarifai_connect.records import (
    MEDIA_KINDS,
    Concept,
    GeoPoint,
    Media,
    Problem,
    Record,
    RecordError,
    fingerprint_of,
    stable_id,
)

FIELDS = ("inputid", "input", "concepts", "metadata", "geopoints", "dataset")
REFERENCE_FIELDS = FIELDS[:5]
INPUT_TYPES = ("auto", *MEDIA_KINDS)
CSV_TYPES = ("auto", "raw", "url", "file_path")


def column_map(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a user's ``{field: column}`` mapping and complete it with the reference names."""
    mapping = dict(columns or {})
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(unknown)} in the column mapping "
                          f"(fields: {', '.join(FIELDS)})")
    for name in REFERENCE_FIELDS:
        mapping.setdefault(name, name)
    return mapping


class RowMapper:
    """Turns one row (a mapping of column to value) into a Record or a Problem.

    ``base_uri`` is the table's own URI: relative file paths resolve against ``media_root``
    when given, else against the table's directory, and must stay inside it (see
    :func:`~clarifai_connect.connector.media_uri`). ``check_files`` stats each referenced
    file once, so a missing file is a Problem here (not a failure later) and its size and
    modification time join the fingerprint.
    """

    def __init__(self, base_uri: str, *, columns: Mapping[str, str] | None = None,
                 input_type: str = "auto", csv_type: str = "auto", labels: bool = True,
                 label_separator: str = ",", media_root: str | None = None,
                 media_suffix: str = "", check_files: bool = True,
                 metadata_columns: tuple[str, ...] = (),
                 storage_options: Mapping[str, Any] | None = None,
                 media_uri: Callable[[str, str], str] = media_uri) -> None:
        if input_type not in INPUT_TYPES:
            raise ConfigError(f"input_type '{input_type}' is not one of {', '.join(INPUT_TYPES)}")
        if csv_type not in CSV_TYPES:
            raise ConfigError(f"csv_type '{csv_type}' is not one of {', '.join(CSV_TYPES)}")
        self.columns = column_map(columns)
        self.input_type = input_type
        self.csv_type = csv_type
        self.labels = labels
        self.label_separator = label_separator
        self.base_uri = base_uri
        self.media_root = media_root
        self.media_suffix = media_suffix
        self.check_files = check_files
        self.metadata_columns = tuple(metadata_columns)
        self.storage_options = dict(storage_options or {})
        self._fs: Any = None
        self._media_folder: str | None = None
        # The reader's Reader.media_uri (it knows the run's --allow-path folders).
        self.media_uri = media_uri

    def check_header(self, header: list[str], where: str) -> None:
        """Fail fast (ConfigError) when mapped columns are missing from ``header``."""
        present = set(header)
        if self.columns["input"] not in present:
            raise ConfigError(f"{where} has no '{self.columns['input']}' column for the input "
                              f"(columns: {', '.join(header)}); map one with the option "
                              "columns.input=NAME")
        for name in ("dataset", *self.metadata_columns):
            column = self.columns.get(name, name if name in self.metadata_columns else None)
            if column and column not in present:
                raise ConfigError(f"{where} has no column '{column}' (columns: {', '.join(header)})")

    def record(self, row: Mapping[str, Any], source: str) -> Record | Problem:
        """The record for ``row`` (found at ``source``), or a Problem saying what is wrong."""
        try:
            result = self._record(row, source)
        except RecordError as exc:
            message = str(exc)
            prefix = f"{source}: "
            result = Problem(source, message[len(prefix):] if message.startswith(prefix)
                             else message)
        except (OSError, ValueError, TypeError) as exc:
            result = Problem(source, f"{type(exc).__name__}: {exc}")
        if isinstance(result, Problem) and not result.id:  # the id it would have had
            result = replace(result, id=self._id_of(row))
        return result

    def _id_of(self, row: Mapping[str, Any]) -> str:
        """The id ``row`` gives its record (its inputid, else derived from its input), or ''."""
        given = _text(row.get(self.columns["inputid"]))
        value = row.get(self.columns["input"])
        if given or value is None or (isinstance(value, str) and not value.strip()):
            return given
        try:
            return stable_id(self._identity(value)[0])
        except Exception:  # an id is a courtesy to the report: never fail for it
            return ""

    def _record(self, row: Mapping[str, Any], source: str) -> Record | Problem:
        cols = self.columns
        value = row.get(cols["input"])
        if value is None or (isinstance(value, str) and not value.strip()):
            return Problem(source, f"empty '{cols['input']}' column")
        media, identity, extra_fp = self._media(value, source)
        if isinstance(media, Problem):
            return media

        given_id = _text(row.get(cols["inputid"]))
        record_id = given_id or stable_id(identity)
        concepts = self._concepts(row.get(cols["concepts"])) if self.labels else ()
        metadata = _metadata(row.get(cols["metadata"]))
        for column in self.metadata_columns:
            if row.get(column) is not None:
                metadata[column] = _jsonable(row[column])
        dataset = _text(row.get(cols["dataset"])) if "dataset" in cols else ""
        geo = _geo(row.get(cols["geopoints"]))
        record = Record(id=record_id, media=media, concepts=concepts, metadata=metadata,
                        dataset_ids=(dataset,) if dataset else (), geo=geo, source=source)
        if extra_fp:
            record = replace(record, fingerprint=fingerprint_of(record.fingerprint, extra_fp))
        return record

    # -- media ---------------------------------------------------------------------------

    def _media(self, value: Any, source: str) -> tuple[Media | Problem, str, Any]:
        """The media for an input cell, the identity its derived id comes from, and file facts."""
        identity, how = self._identity(value)
        if how == "bytes":
            data = bytes(value)
            kind = self.input_type if self.input_type != "auto" else sniff_kind(data[:SNIFF_BYTES])
            if kind is None:
                return Problem(source, "cannot tell the media kind of the bytes; set input_type"), "", None
            return Media(kind=kind, data=data), identity, None
        text = str(value)
        if how == "raw":
            if self.input_type not in ("auto", "text"):
                return Problem(source, f"raw text given where input_type is {self.input_type}; "
                                       "set csv_type to url or file_path"), "", None
            return Media(kind="text", text=text), identity, None
        ref = identity
        kind = self.input_type if self.input_type != "auto" else kind_from_extension(ref)
        if kind is None:
            return Problem(source, f"cannot tell the media kind of '{display_uri(ref)}' from its "
                                   "extension; set input_type"), "", None
        folder = self._folder()
        if how == "url":
            uri = self.media_uri(ref, folder)
            if "://" in uri:
                return Media(kind=kind, uri=uri, storage_options=self._remote_options(uri)), \
                    ref, None
        else:
            uri = self.media_uri(ref, folder)
        facts = None
        if self.check_files:
            facts = self._stat(uri)
            if isinstance(facts, str):
                return Problem(source, facts), "", None
        return Media(kind=kind, uri=uri, storage_options=self.storage_options or None), ref, facts

    def _identity(self, value: Any) -> tuple[str, str]:
        """What a cell's derived id comes from, and how the cell is read (bytes, raw, url,
        file_path): the same for a record and for the problem in its place."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "bytes-" + hashlib.sha256(bytes(value)).hexdigest()[:32], "bytes"
        text = str(value)
        how = self.csv_type if self.csv_type != "auto" else self._guess_type(text)
        if how == "raw":
            return "text-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32], how
        ref = text.strip()
        if how == "file_path" and self.media_suffix and not ref.endswith(self.media_suffix):
            ref += self.media_suffix
        return ref, how

    def _guess_type(self, text: str) -> str:
        stripped = text.strip()
        if "://" in stripped and not any(c.isspace() for c in stripped):
            return "url"
        if self.input_type == "text":
            return "raw"
        if self.input_type != "auto" or (
                not any(c in stripped for c in "\n\t") and (
                    kind_from_extension(stripped + self.media_suffix) not in (None, "text"))):
            return "file_path"
        return "raw"

    def _folder(self) -> str:
        """Where relative paths start, and what they must stay inside: ``media_root``
        (relative to the table) when given, else the table's folder."""
        if self._media_folder is None:
            # resolve_uri joins against the parent of its base: point it inside media_root.
            base = self.base_uri if self.media_root is None else resolve_uri(
                self.base_uri, self.media_root.rstrip("/") + "/_")
            self._media_folder = posixpath.dirname(base) if "://" in base else \
                os.path.dirname(base) or "."
        return self._media_folder

    def _remote_options(self, uri: str) -> dict | None:
        # The table's storage options apply to media on the same protocol (s3 next to s3).
        same = uri.split("://", 1)[0] == self.base_uri.split("://", 1)[0]
        return (self.storage_options or None) if same and "://" in self.base_uri else None

    def _stat(self, uri: str) -> Any:
        if self._fs is None:
            self._fs, _ = filesystem(uri, self.storage_options)
        try:
            info = self._fs.info(uri)
        except FileNotFoundError:
            return f"file not found: {display_uri(uri)}"
        except OSError as exc:
            return f"cannot read {display_uri(uri)}: {exc}"
        if info.get("type") == "directory":
            return f"{display_uri(uri)} is a directory, not a file"
        return file_facts(info)

    def _concepts(self, value: Any) -> tuple[Concept, ...]:
        if value is None:
            return ()
        if isinstance(value, (list, tuple)):
            names = [str(v) for v in value if v is not None]
        else:
            names = str(value).split(self.label_separator) if self.label_separator else [str(value)]
        seen: dict[str, Concept] = {}
        for name in names:
            if name.strip():
                concept = Concept.named(name)
                seen.setdefault(concept.id, concept)
        return tuple(seen.values())


def file_facts(info: Mapping[str, Any]) -> list:
    """What identifies a file's version in an fsspec ``info`` dict: size and mtime / ETag."""
    for key in _VERSION_KEYS:
        stamp = info.get(key)
        if stamp is not None:
            return [info.get("size"), str(stamp)]
    return [info.get("size"), ""]


# The first of these an ``info`` dict holds tells the file's version (in this order).
_VERSION_KEYS = ("ETag", "etag", "md5", "mtime", "LastModified", "last_modified", "created")


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _metadata(value: Any) -> dict:
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(i, tuple) and len(i) == 2 for i in value):
        return {str(k): _jsonable(v) for k, v in value}  # an Arrow map column
    text = str(value)
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            # The reference also accepts Python-style dicts written with single quotes.
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise RecordError(f"metadata {text[:60]!r} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise RecordError(f"metadata {text[:60]!r} is not a JSON object")
    return parsed


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise RecordError("a bytes value cannot go into metadata")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _geo(value: Any) -> GeoPoint | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        text = str(value).strip().strip("()[]")
        if not text:
            return None
        parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 2:
        raise RecordError(f"geopoints {value!r} should be 'longitude,latitude'")
    return GeoPoint(parts[0], parts[1])
