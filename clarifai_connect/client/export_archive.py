"""Dataset-version export archives: read the CLARIFAI_DATA_PROTOBUF zip, write inputs and
annotations out as files.

The archive holds an entry ``mimetype`` (``application/x.clarifai-data+protobuf``) and
entries that are serialized ``InputBatch`` messages, their names ending in ``_n<count>``.
:class:`ExportArchiveReader` yields the inputs one batch entry at a time;
:func:`write_export` downloads each input's media with ``num_workers`` threads into
``{split}/inputs/{id}{ext}`` and writes ``{split}/annotations/{id}.json`` (the official
SDK's layout), into a zip file or a folder.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf.json_format import MessageToDict

from ..errors import ApiClientError, UserError
from .http import fetch
from .upload import FailedItem

log = logging.getLogger("clarifai_connect.client")
ARCHIVE_MIMETYPE = b"application/x.clarifai-data+protobuf"
MEDIA_KINDS = ("image", "video", "audio", "text")
DEFAULT_EXT = {"image": ".png", "text": ".txt", "audio": ".mp3", "video": ".mp4"}
EXT_BY_MIME = {
    "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
    "image/bmp": ".bmp", "image/tiff": ".tiff", "audio/mpeg": ".mp3", "audio/flac": ".flac",
    "audio/ogg": ".ogg", "audio/wav": ".wav", "video/mp4": ".mp4", "video/webm": ".webm",
    "text/plain": ".txt",
}


class ExportArchiveReader:
    """Iterates the inputs of an export archive (a path or an open binary file)."""

    def __init__(self, archive: str | Path | IO[bytes], source: str = "") -> None:
        self.source = source or str(archive if isinstance(archive, (str, Path)) else "archive")
        try:
            self.zip = zipfile.ZipFile(archive)
        except (zipfile.BadZipFile, OSError) as err:
            raise UserError(f"{self.source}: not a dataset export archive ({err}).") from None
        names = self.zip.namelist()
        if "mimetype" not in names or self.zip.read("mimetype").strip() != ARCHIVE_MIMETYPE:
            self.zip.close()
            raise UserError(f"{self.source}: not a CLARIFAI_DATA_PROTOBUF export archive "
                            "(no 'mimetype' entry of application/x.clarifai-data+protobuf).")
        self.entries = [n for n in names if n != "mimetype" and not n.endswith("/")]

    def __len__(self) -> int:
        """The number of inputs, from the ``_n<count>`` suffix of the entry names."""
        total = 0
        for name in self.entries:
            count = name.rsplit("_n", 1)[-1]
            total += int(count) if count.isdigit() else 0
        return total

    def __iter__(self) -> Iterator[resources_pb2.Input]:
        for name in self.entries:
            try:
                batch = resources_pb2.InputBatch.FromString(self.zip.read(name))
            except Exception as err:  # noqa: BLE001 (protobuf raises DecodeError and others)
                raise UserError(f"{self.source}: entry '{name}' is not an InputBatch "
                                f"({err}).") from None
            yield from batch.inputs

    def close(self) -> None:
        """Close the archive."""
        self.zip.close()

    def __enter__(self) -> ExportArchiveReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class ExportSummary:
    """What an export wrote: media files, annotation files, and the inputs it could not."""

    save_path: str
    inputs: int = 0
    annotation_files: int = 0
    failed: list[FailedItem] = field(default_factory=list)
    skipped: list[FailedItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every input was written."""
        return not self.failed and not self.skipped

    def __str__(self) -> str:
        return (f"{self.inputs} inputs and {self.annotation_files} annotation files written to "
                f"{self.save_path}; {len(self.failed)} failed, {len(self.skipped)} skipped")


class _Target:
    """Where files go: a zip (one writer at a time) or a folder."""

    def __init__(self, save_path: str) -> None:
        self.path = Path(save_path)
        self.lock = threading.Lock()
        self.zip = None
        if self.path.suffix.lower() == ".zip":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED)
        else:
            self.path.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes) -> None:
        if self.zip is not None:
            with self.lock:
                self.zip.writestr(name, data)
            return
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def annotation_records(data: resources_pb2.Data) -> list[dict[str, Any]]:
    """The annotation file of an input, as the official SDK writes it: its metadata (when
    any), then its regions, then its concepts, as JSON dicts."""
    records: list[dict[str, Any]] = []
    if data.HasField("metadata") and data.metadata.fields:
        records.append({"metadata": MessageToDict(data.metadata)})
    for region in data.regions:
        record = MessageToDict(region)
        box = record.get("regionInfo", {}).get("boundingBox")
        if box is not None:
            for key in ("topRow", "leftCol", "bottomRow", "rightCol"):
                box.setdefault(key, 0)
        records.append(record)
    records.extend(MessageToDict(concept) for concept in data.concepts)
    return records


def _media(item: resources_pb2.Input) -> tuple[str, Any] | None:
    for kind in MEDIA_KINDS:
        if item.data.HasField(kind):
            return kind, getattr(item.data, kind)
    return None


def _write_input(item: resources_pb2.Input, target: _Target, split: str,
                 headers: dict[str, str]) -> tuple[str, bool]:
    """Write one input's media and annotations; returns ("ok"|"skipped: why", has_annotations)."""
    if not item.id or "/" in item.id or "\\" in item.id or item.id.startswith("."):
        raise UserError(f"input id '{item.id}' cannot be a file name")
    found = _media(item)
    if found is None:
        return "skipped: the input has no media", False
    kind, part = found
    if part.hosted.prefix and part.hosted.suffix:
        url = f"{part.hosted.prefix}/orig/{part.hosted.suffix}"
        body, content_type = fetch(url, headers)
    elif kind == "text" and part.raw:
        body, content_type = part.raw.encode("utf-8"), "text/plain"
    elif part.url:  # not hosted: the original URL, which must not see the key
        body, content_type = fetch(part.url)
    else:
        return "skipped: the input has neither a hosted URL nor a URL", False
    ext = EXT_BY_MIME.get(content_type.split(";")[0].strip().lower(), DEFAULT_EXT[kind])
    prefix = f"{split}/" if split else ""
    target.write(f"{prefix}inputs/{item.id}{ext}", body)
    records = annotation_records(item.data)
    if records:
        target.write(f"{prefix}annotations/{item.id}.json", json.dumps(records).encode())
    return "ok", bool(records)


def write_export(inputs: ExportArchiveReader | Any, save_path: str, split: str = "all",
                 num_workers: int = 4, headers: dict[str, str] | None = None) -> ExportSummary:
    """Write every input of ``inputs`` under ``save_path`` (a ``.zip`` file, else a folder).

    Media are downloaded by ``num_workers`` threads with ``headers`` (the key); at most
    ``2 × num_workers`` inputs are in flight. An input that fails is recorded in the
    summary with its reason and the export goes on.
    """
    if num_workers < 1:
        raise UserError(f"num_workers must be 1 or more, got {num_workers}.")
    summary = ExportSummary(save_path=str(save_path))
    target = _Target(save_path)
    in_flight: dict[Future, str] = {}

    def collect(done: set[Future]) -> None:
        for future in done:
            input_id = in_flight.pop(future)
            try:
                outcome, annotated = future.result()
            except (ApiClientError, UserError, OSError) as err:
                summary.failed.append(FailedItem(f"input '{input_id}'", str(err)))
                continue
            if outcome != "ok":
                summary.skipped.append(FailedItem(f"input '{input_id}'",
                                                  outcome.removeprefix("skipped: ")))
                continue
            summary.inputs += 1
            summary.annotation_files += int(annotated)

    try:
        with ThreadPoolExecutor(num_workers, thread_name_prefix="export") as pool:
            for item in inputs:
                in_flight[pool.submit(_write_input, item, target, split, headers or {})] = item.id
                if len(in_flight) >= 2 * num_workers:
                    done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                    collect(done)
            collect(set(in_flight))
    finally:
        target.close()
    log.log(logging.INFO if summary.ok else logging.WARNING, "export: %s", summary)
    for problem in (summary.failed + summary.skipped)[:10]:
        log.warning("export: %s", problem)
    return summary
