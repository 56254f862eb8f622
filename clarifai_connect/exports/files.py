"""The destination of an export, and the base class of the built-in file writers.

:class:`Destination` is a folder on any fsspec filesystem (local, ``s3://``…). Small files
(media, masks, per-image XML) are written by a bounded pool of threads, so an export to
S3 is not one round trip per file in a row; on a local disk a task writes a chunk of
files, as a task per small file costs more than its write. At most ``2 × workers`` files
(local: chunks of a bounded size) wait in memory.
Each file belongs to an *owner* (an input id): once an owner's files are all written, its
outcome (the errors, if any) can be collected, so a record is reported exported only
after its files exist.

:class:`FileWriter` puts a Destination, name claims, warnings and those outcomes behind
the plain :class:`~clarifai_connect.connector.Writer` interface.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import threading
import zlib
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..connector import Writer, display_uri, filesystem
from ..errors import ClarifaiConnectError, ConfigError
from ..mediatypes import kind_from_extension
from ..records import Record
from .names import NameClaims, file_name_of, safe_relpath

__all__ = ["CHUNK_BYTES", "CHUNK_FILES", "Destination", "ExportError", "FileWriter", "Outcome", "image_size", "media_ext"]

log = logging.getLogger("clarifai_connect.exports")

_EXT_BY_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG\r\n\x1a\n", ".png"), (b"GIF8", ".gif"),
                 (b"BM", ".bmp"), (b"II*\x00", ".tiff"), (b"MM\x00*", ".tiff"),
                 (b"ID3", ".mp3"), (b"fLaC", ".flac"), (b"OggS", ".ogg"),
                 (b"\x1aE\xdf\xa3", ".webm"))
CHUNK_FILES = 32  # files one pool task writes into a local folder
CHUNK_BYTES = 1 << 20  # ... or fewer, once they hold this many bytes
_DEFAULT_EXT = {"image": ".jpg", "video": ".mp4", "audio": ".mp3", "text": ".txt"}


class ExportError(ClarifaiConnectError):
    """An export could not write its output (as a whole, not one record)."""


def media_ext(kind: str, data: bytes, name: str = "") -> str:
    """The file extension for media ``data`` of ``kind``: from its first bytes, else from
    ``name``, else the kind's usual one."""
    for magic, ext in _EXT_BY_MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and len(data) >= 12:
        return {b"WEBP": ".webp", b"WAVE": ".wav", b"AVI ": ".avi"}.get(data[8:12], ".bin")
    if data[4:8] == b"ftyp":
        return ".mp4" if kind == "video" else ".m4a" if kind == "audio" else ".heic"
    ext = posixpath.splitext(name)[1].lower()
    if ext and len(ext) <= 6 and ext[1:].isalnum():
        return ext
    return _DEFAULT_EXT.get(kind, ".bin")


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frames, not tables
_JPEG_BARE = frozenset((0x01, *range(0xD0, 0xD8)))  # markers without a length


def _header_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` read straight from a PNG or JPEG header, walking its chunks (or
    markers) up to the image data as PIL's opening does, at a tenth of its cost; None when
    the data is neither or not plainly formed, for PIL to decide."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        size = _png_size(data)
    elif data[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(data)
    else:
        return None
    return size if size and size[0] > 0 and size[1] > 0 else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR" or len(data) < 33 or \
            zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
        return None
    at = 33
    while at + 8 <= len(data):  # the chunks before the image data must be whole
        length = int.from_bytes(data[at:at + 4], "big")
        if data[at + 4:at + 8] == b"IDAT":
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        at += 12 + length
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at, size = 2, None
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _JPEG_BARE:
            at += 2
            continue
        if marker == 0xDA:  # start of scan: the frame header came before it
            return size
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2 or marker == 0xD9:
            return None
        if marker in _JPEG_SOF:
            if length < 8 or at + 9 > len(data):
                return None
            size = (int.from_bytes(data[at + 7:at + 9], "big"),
                    int.from_bytes(data[at + 5:at + 7], "big"))
        at += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of an image from its header; ValueError when it is no image."""
    size = _header_size(data)
    if size is not None:
        return size
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image: {exc}") from exc


@dataclass
class Outcome:
    """What became of one record: ``error`` is None when every file of it was written."""

    id: str
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the format holds nothing of this record


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


def _write_file(path: str, body: bytes) -> None:
    """``body`` into the local file ``path`` (made or emptied), with no file object: half
    the cost of ``open(path, "wb")`` for a small file."""
    fd = os.open(path, _CREATE, 0o666)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


class Destination:
    """A folder on any fsspec filesystem that files are written into, some in parallel."""

    def __init__(self, uri: str, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8) -> None:
        if int(workers) < 1:
            raise ConfigError(f"workers must be 1 or more, got {workers}")
        self.uri = uri
        self.fs, root = filesystem(uri, storage_options)
        self.root = root.rstrip("/") or "/"
        self._prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.local = "file" in ((self.fs.protocol,) if isinstance(self.fs.protocol, str)
                                else tuple(self.fs.protocol))
        self.workers = int(workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="export-put")
        self._slots = threading.BoundedSemaphore(2 * self.workers)
        self._lock = threading.Lock()
        self._pending: Counter[str] = Counter()
        self._errors: dict[str, list[str]] = {}
        self._open_owners: set[str] = set()
        self._discarded: set[str] = set()
        self._settled: list[tuple[str, list[str]]] = []
        self._dirs: set[str] = set()
        self._chunk: list[tuple[str, bytes | Callable[[], bytes], str]] = []
        self._chunk_bytes = 0
        self._chunk_files = CHUNK_FILES if self.local else 1
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    def path(self, relpath: str) -> str:
        """The filesystem path of ``relpath`` (already made safe by the caller)."""
        return self._prefix + relpath

    def show(self, relpath: str = "") -> str:
        """``relpath`` as a URI safe to show in messages."""
        full = self.path(relpath) if relpath else self.root
        return display_uri(self.fs.unstrip_protocol(full) if "://" in self.uri else full)

    def _parent(self, path: str) -> None:
        if not self.local:
            return  # object stores have no folders to create
        parent = posixpath.dirname(path)
        if parent not in self._dirs:
            self.fs.makedirs(parent, exist_ok=True)
            with self._lock:
                self._dirs.add(parent)

    # -- owners ----------------------------------------------------------------------------

    def begin(self, owner: str) -> None:
        """Start collecting the files of ``owner``."""
        with self._lock:
            self._open_owners.add(owner)
            self._errors.pop(owner, None)
            self._discarded.discard(owner)

    def end(self, owner: str, discard: bool = False) -> None:
        """No more files for ``owner``: its outcome settles once its files are written.
        ``discard`` forgets the outcome (the caller already reported the owner as failed)."""
        with self._lock:
            self._open_owners.discard(owner)
            if discard:
                self._discarded.add(owner)
            self._maybe_settle(owner)

    def _maybe_settle(self, owner: str) -> None:
        if owner in self._open_owners or self._pending[owner]:
            return
        self._pending.pop(owner, None)
        errors = self._errors.pop(owner, [])
        if owner in self._discarded:
            self._discarded.discard(owner)
            return
        self._settled.append((owner, errors))

    def settled(self) -> list[tuple[str, list[str]]]:
        """The owners whose files are all written since the last call, with their errors."""
        with self._lock:
            out, self._settled = self._settled, []
        return out

    # -- writing ---------------------------------------------------------------------------

    def put(self, relpath: str, data: bytes | Callable[[], bytes], owner: str = "") -> None:
        """Write ``data`` (bytes, or a callable returning them, run in the pool) to
        ``relpath`` in the background; a failure is recorded against ``owner``.

        Files of a local folder go to the pool in chunks (up to :data:`CHUNK_FILES` files
        or :data:`CHUNK_BYTES`, one task writing each chunk): a task per file costs more
        than writing a small file does. Any other filesystem gets a task per file (each
        file is a round trip there)."""
        with self._lock:
            self._pending[owner] += 1
            self._chunk.append((relpath, data, owner))
            if not callable(data):
                self._chunk_bytes += len(data)
            chunk = self._take_chunk() if len(self._chunk) >= self._chunk_files or \
                self._chunk_bytes >= CHUNK_BYTES else None
        if chunk:
            self._send(chunk)

    def _take_chunk(self) -> list[tuple[str, bytes | Callable[[], bytes], str]]:
        chunk, self._chunk, self._chunk_bytes = self._chunk, [], 0
        return chunk

    def _send(self, chunk: list[tuple[str, bytes | Callable[[], bytes], str]]) -> None:
        self._slots.acquire()  # at most 2 × workers chunks wait in memory
        try:
            self._pool.submit(self._put_chunk, chunk)
        except BaseException:
            self._slots.release()
            raise

    def flush(self) -> None:
        """Hand the files :meth:`put` holds back for a chunk to the pool now."""
        with self._lock:
            chunk = self._take_chunk()
        if chunk:
            self._send(chunk)

    def _put_chunk(self, chunk: list[tuple[str, bytes | Callable[[], bytes], str]]) -> None:
        written: list[tuple[str, str | None]] = []
        try:
            for relpath, data, owner in chunk:
                written.append((owner, self._put(relpath, data)))
        finally:
            self._slots.release()
            with self._lock:
                for owner, error in written:
                    if error:
                        self._errors.setdefault(owner, []).append(error)
                    self._pending[owner] -= 1
                    self._maybe_settle(owner)

    def _put(self, relpath: str, data: bytes | Callable[[], bytes]) -> str | None:
        """Write one file; the error message when it fails (one file failing must not
        stop the others)."""
        try:
            body = data() if callable(data) else data
            path = self.path(relpath)
            self._parent(path)
            if self.local:  # a plain write: a fraction of fsspec's cost for a small file
                _write_file(path, body)
            else:
                self.fs.pipe_file(path, body)
        except Exception as exc:
            return f"cannot write {self.show(relpath)}: {type(exc).__name__}: {exc}"
        return None

    def write_now(self, relpath: str, data: bytes) -> None:
        """Write ``data`` to ``relpath`` before returning (OSError on failure)."""
        path = self.path(relpath)
        self._parent(path)
        self.fs.pipe_file(path, data)

    def open(self, relpath: str, mode: str = "wb") -> Any:
        """A file of the destination opened for streaming writes."""
        path = self.path(relpath)
        self._parent(path)
        return self.fs.open(path, mode)

    def wait(self) -> None:
        """Wait until every background write finished."""
        self.flush()
        for _ in range(2 * self.workers):
            self._slots.acquire()
        for _ in range(2 * self.workers):
            self._slots.release()

    def close(self) -> None:
        """Finish the background writes and stop the pool."""
        self.flush()
        self._pool.shutdown(wait=True)


class FileWriter(Writer):
    """Base of the built-in writers: a :class:`Destination` folder, safe unique names,
    warnings for what the format cannot hold, and per-record outcomes.

    Subclasses implement :meth:`write_record` (raise to fail the record; call
    :meth:`warn` for what is left out; :meth:`skip` when nothing of the record fits the
    format) and :meth:`finish` (indexes written at the end). :meth:`outcomes` returns the
    settled records; the export runner turns them into its report.

    Parameters:
        workers: concurrent file writes (default 8).
        spill_dir: the folder of the temporary files that hold what is written at the end
            (default: the system's temporary folder).
    """

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None,
                 workers: int = 8, spill_dir: str = "", root: str | None = None) -> None:
        super().__init__(uri, storage_options=storage_options)
        # ``root``: the folder files go to when ``uri`` names a file in it (``out/x.csv``).
        self.dest = Destination(root or uri, self.storage_options, workers)
        self.spill_dir = spill_dir or None
        self.claims = NameClaims(self.spill_dir)
        self._warnings: dict[str, list[str]] = {}
        self._skipped: dict[str, str] = {}
        self._lock = threading.Lock()
        self.warning_counts: Counter[str] = Counter()
        self._closed = False
        self._undrained_failures = 0

    @abstractmethod
    def write_record(self, record: Record) -> None:
        """Write one record (its files through ``self.dest``, its index entries)."""

    def finish(self) -> None:
        """Write what is written at the end (index files); called once by :meth:`close`."""
        return None

    def write(self, record: Record) -> None:
        """Write one record; raises (and the record is failed) when it cannot be written."""
        self.dest.begin(record.id)
        ok = False
        try:
            self.write_record(record)
            ok = True
        finally:
            if not ok:
                with self._lock:
                    self._warnings.pop(record.id, None)
                    self._skipped.pop(record.id, None)
            self.dest.end(record.id, discard=not ok)

    def warn(self, record: Record, message: str) -> None:
        """Note that part of ``record`` is not in the output, and why."""
        with self._lock:
            self._warnings.setdefault(record.id, []).append(message)
            self.warning_counts[message] += 1
            first = self.warning_counts[message] == 1
        if first:  # the summary shows each kind of loss once, with its count: log it quietly
            log.info("%s export: %s (first: input '%s')", self.name, message, record.id)

    def skip(self, record: Record, reason: str) -> None:
        """Note that the format holds nothing of ``record``."""
        with self._lock:
            self._skipped[record.id] = reason

    def outcomes(self) -> list[Outcome]:
        """The records settled since the last call (their files written, or failed)."""
        out = []
        for owner, errors in self.dest.settled():
            with self._lock:
                warnings = self._warnings.pop(owner, [])
                skipped = self._skipped.pop(owner, None)
            out.append(Outcome(owner, "; ".join(errors) or None, warnings, skipped))
        return out

    def write_media(self, record: Record, folder: str, name: str) -> str:
        """Write the record's media as ``folder/name<ext>`` (a safe, unique name) in the
        background; returns the relative path used. ``name`` may itself end with the
        extension (a COCO ``file_name``): it is then kept."""
        data, ext = self.media_bytes_ext(record)
        if name == record.id:  # no file name from the source: the one its id came from
            name = file_name_of(name)
        if kind_from_extension(name):  # a file name of the source: keep it as it was
            ext = ""
        rel = safe_relpath(name + ext)
        rel = self.claims.claim(f"{folder.rstrip('/')}/{rel}" if folder else rel, record.id)
        self.dest.put(rel, data if data is not None else record.media.read_bytes,
                      owner=record.id)
        return rel

    @staticmethod
    def media_bytes_ext(record: Record) -> tuple[bytes | None, str]:
        """The record's media bytes when already in memory (else None: read in the pool)
        and the file extension it should get."""
        media = record.media
        if media.data is not None:
            return media.data, media_ext(media.kind, media.data)
        if media.text is not None:
            return media.text.encode("utf-8"), ".txt"
        name = (media.uri or "").split("?", 1)[0]
        ext = posixpath.splitext(posixpath.basename(name))[1]
        if ext and len(ext) <= 6 and ext[1:].isalnum():
            return None, ext.lower()
        data = media.read_bytes()  # no extension to go by: look at the content
        return data, media_ext(media.kind, data)

    def close(self) -> None:
        """Finish the output: wait for the files, write the indexes, clean up."""
        if self._closed:
            return
        self._closed = True
        try:
            self.dest.wait()
            self.finish()
        finally:
            self.dest.close()
            self.claims.close()

    def write_all(self, records: Iterable[Record]) -> int:
        """Write every record and close; returns how many were written. Raises ExportError
        naming the records whose files could not be written."""
        written = 0
        failed: list[str] = []
        with self:
            for record in records:
                self.write(record)
                written += 1
                failed += [f"{o.id}: {o.error}" for o in self.outcomes() if o.error]
        failed += [f"{o.id}: {o.error}" for o in self.outcomes() if o.error]
        if failed:
            raise ExportError(f"{len(failed)} record(s) not written: " + "; ".join(failed[:5]))
        return written - len(failed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"
