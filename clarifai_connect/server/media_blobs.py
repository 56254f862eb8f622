"""Where uploaded media bytes go: small ones into SQLite, large ones into the blob folder.

A file per blob costs ~0.1-0.3 ms (temp file, write, rename); a batch of 128 small images
or texts would spend most of a PostInputs call there. Bytes up to ``SMALL_MEDIA_BYTES`` are
therefore written as rows of ``media_blobs`` inside the request's own write transaction;
larger ones go to :class:`~.blobs.BlobStore` (named by their SHA-256) before it.

Either way a stored part keeps only ``hosted.suffix`` = the media key, 64 hex digits that
:func:`read` resolves. A small row's key starts with the time of writing, then 48 digits of
the SHA-256: keys keyed by a bare hash would land on a random page of the index each, and
a batch of 128 would dirty ~128 pages per commit once the table is large; time-ordered
keys append. Treat keys as opaque.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
import time
import urllib.parse
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from . import wire
from .store import insert_many

SMALL_MEDIA_BYTES = 64 * 1024


def stash(server: Any, data: bytes, small: list[tuple[str, bytes]]) -> str:
    """The media key of ``data``; large bytes are written now, small ones appended to ``small``.

    The caller writes ``small`` with :func:`insert_small` in its transaction.
    """
    if len(data) <= SMALL_MEDIA_BYTES:
        key = f"{time.time_ns():016x}{hashlib.sha256(data).hexdigest()[:48]}"
        small.append((key, data))
        return key
    return server.blobs.put(data)


def insert_small(db: sqlite3.Connection, small: list[tuple[str, bytes]]) -> None:
    """Write small media rows (inside a write transaction); known keys are skipped."""
    if small:
        insert_many(db, "INSERT OR IGNORE INTO media_blobs(digest, data)", small)


def read(server: Any, key: str, db: sqlite3.Connection | None = None) -> bytes:
    """The bytes stored under the media key ``key`` (table or blob folder); KeyError when
    none. ``db``: a read-only connection of the caller's (see :func:`reader`)."""
    try:
        return server.blobs.get(key)
    except KeyError:
        pass
    own = db is None
    db = reader(server) if own else db
    try:
        row = db.execute("SELECT data FROM media_blobs WHERE digest=?", (key,)).fetchone()
    finally:
        if own:
            db.close()
    if row is None:
        raise KeyError(key)
    return bytes(row[0])


def read_many(server: Any, keys: list[str], db: sqlite3.Connection,
              limit: int) -> list[bytes | None]:
    """The bytes of each of ``keys``, in order (one query for the table's rows); None for
    a key with none, and for every key past ``limit`` bytes in all (the first found is
    always given, whatever its size)."""
    rows: dict[str, bytes] = {}
    for start in range(0, len(keys), 500):
        part = keys[start:start + 500]
        rows.update(db.execute("SELECT digest, data FROM media_blobs WHERE digest IN "
                               f"({','.join('?' * len(part))})", part).fetchall())
    out: list[bytes | None] = []
    total = 0
    for key in keys:
        data = rows.get(key)
        if data is None:
            try:
                size = server.blobs.path(key).stat().st_size
            except (KeyError, OSError):
                out.append(None)
                continue
            try:
                data = server.blobs.get(key) if not total or total + size <= limit else None
            except KeyError:
                data = None
        elif total and total + len(data) > limit:
            data = None
        if data is not None:
            total += len(data)
        out.append(None if data is None else bytes(data))
    return out


def reader(server: Any) -> sqlite3.Connection:
    """A read-only connection to the store, for a caller that closes it: HTTP handlers
    run on throwaway threads, and the store's per-thread connections would pile up."""
    uri = f"file:{urllib.parse.quote(str(server.store.path))}?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)


def exists(server: Any, key: str) -> bool:
    """Whether bytes are stored under ``key``."""
    if server.blobs.exists(key):
        return True
    row = server.store.read().execute(
        "SELECT 1 FROM media_blobs WHERE digest=?", (key,)).fetchone()
    return row is not None


def own_digest(server: Any, url: str) -> str | None:
    """The media key when ``url`` is a hosted URL of this server whose bytes are stored."""
    prefix = f"{server.media_url}/media/orig/"
    if url.startswith(prefix):
        digest = url[len(prefix):]
        if exists(server, digest):
            return digest
    return None


MEDIA_KINDS = ("image", "video", "audio", "text")
_WITH_DATA = (resources_pb2.Input, resources_pb2.Annotation)  # messages that hold a Data


def render_hosted(message, media_url: str):
    """Fill the hosted URLs of a stored Input (or Data) in place, for a response.

    Stored media keep only ``hosted.suffix`` (the blob digest); the prefix depends on where
    the media server answers now, so it is added on the way out. A part uploaded as bytes
    gets its ``url`` pointing at the hosted copy too; one uploaded by URL keeps its URL.
    """
    data = message.data if isinstance(message, _WITH_DATA) or hasattr(message, "data") else message
    prefix = f"{media_url}/media"
    for kind in MEDIA_KINDS:  # one HasField per kind: ~4x cheaper than ListFields here
        if not data.HasField(kind):
            continue
        part = getattr(data, kind)
        hosted = part.hosted
        suffix = hosted.suffix
        if suffix:
            hosted.prefix = prefix
            if len(hosted.sizes) != 1 or hosted.sizes[0] != "orig":
                hosted.sizes[:] = ["orig"]
            if not part.url:
                part.url = f"{prefix}/orig/{suffix}"
    return message


_PART_CLASSES = {kind: type(getattr(resources_pb2.Data(), kind)) for kind in MEDIA_KINDS}
_INPUT_DATA = wire.tag(resources_pb2.Input, "data")
_SUFFIX = wire.tag(resources_pb2.HostedURL, "suffix")
_PREFIX = wire.tag(resources_pb2.HostedURL, "prefix")
_SIZES = wire.tag(resources_pb2.HostedURL, "sizes")


class HostedBytes:
    """:func:`render_hosted` and the stored ``hosted.suffix`` as bytes to append to a
    serialized Input (see :mod:`.wire`), for PostInputs, which writes and echoes a
    batch of inputs without touching each message again. Media keys come last in both,
    so the bytes before them are built once per kind and key length."""

    def __init__(self, media_url: str) -> None:
        prefix = f"{media_url}/media"
        self._orig = f"{prefix}/orig/".encode()
        self._hosted = wire.field(_PREFIX, prefix.encode()) + wire.field(_SIZES, b"orig")
        self._paths = {kind: (_INPUT_DATA, wire.tag(resources_pb2.Data, kind),
                              wire.tag(cls, "hosted")) for kind, cls in _PART_CLASSES.items()}
        self._urls = {kind: wire.tag(cls, "url") for kind, cls in _PART_CLASSES.items()}
        self._heads: dict[tuple[str, int, bool | None], bytes] = {}

    def stored(self, kind: str, key: str) -> bytes:
        """Input bytes that set ``data.<kind>.hosted.suffix`` to the media key ``key``."""
        raw = key.encode()
        head = self._heads.get((kind, len(raw), None))
        if head is None:
            full = wire.nested(self._paths[kind], wire.field(_SUFFIX, raw))
            head = self._heads[kind, len(raw), None] = full[:len(full) - len(raw)]
        return head + raw

    def rendered(self, kind: str, key: str, has_url: bool) -> bytes:
        """Input bytes that do what :func:`render_hosted` does to a stored input whose
        ``kind`` part has ``hosted.suffix`` ``key`` (and empty ``hosted.sizes``); ``has_url``:
        whether the part has a URL of its own (then it is kept)."""
        raw = key.encode()
        head = self._heads.get((kind, len(raw), has_url))
        if head is None:
            data, part, hosted = self._paths[kind]
            payload = wire.field(hosted, self._hosted)
            if not has_url:
                payload += wire.field(self._urls[kind], self._orig + raw)
            full = wire.nested((data, part), payload)
            cut = 0 if has_url else len(raw)
            head = self._heads[kind, len(raw), has_url] = full[:len(full) - cut]
        return head if has_url else head + raw


@functools.lru_cache(maxsize=8)
def hosted_bytes(media_url: str) -> HostedBytes:
    """The shared :class:`HostedBytes` of hosted URLs under ``media_url``."""
    return HostedBytes(media_url)
