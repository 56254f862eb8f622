"""Background download of URL inputs, as the API fetches them after PostInputs.

An input posted by URL is stored INPUT_DOWNLOAD_PENDING; a task on the server's background
executor fetches it (bounded by ``server.download_timeout`` and :data:`MAX_DOWNLOAD_BYTES`)
and ends it INPUT_DOWNLOAD_SUCCESS (bytes stored, ``hosted.suffix`` set) or
INPUT_DOWNLOAD_FAILED with the reason. Inputs still pending when a server stopped are
picked up again by :func:`resume_pending`.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from . import media_blobs
from .common import timestamp
from .media_blobs import MEDIA_KINDS
from .rpc import status
from .store import now

log = logging.getLogger("clarifai_connect.server.downloads")
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024  # bounds memory: 8 downloads run at once
PENDING = status_code_pb2.INPUT_DOWNLOAD_PENDING
IN_PROGRESS = status_code_pb2.INPUT_DOWNLOAD_IN_PROGRESS
SUCCESS = status_code_pb2.INPUT_DOWNLOAD_SUCCESS
FAILED = status_code_pb2.INPUT_DOWNLOAD_FAILED


class DownloadError(Exception):
    """A URL could not be fetched; the message is the reason given to the client."""


def url_problem(url: str) -> str | None:
    """Why the server cannot fetch ``url``, or None."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in ("http", "https"):
        # The scheme only: a URL may carry credentials, and messages end up in logs.
        return (f"URL scheme '{scheme[:20] or '(none)'}' is not supported: the server "
                "downloads only http and https URLs")
    return None


def fetch(url: str, timeout: float, max_bytes: int = MAX_DOWNLOAD_BYTES) -> bytes:
    """The body of ``url``, within ``timeout`` seconds overall; DownloadError otherwise."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"User-Agent": "clarifai-connect-server"})
    chunks, total = [], 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            while True:
                if time.monotonic() > deadline:
                    raise DownloadError(f"download timed out after {timeout:g}s")
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise DownloadError(f"download is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"the URL answered HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"download timed out after {timeout:g}s") from exc
        raise DownloadError(f"cannot reach the URL: {reason}") from exc
    except TimeoutError as exc:
        raise DownloadError(f"download timed out after {timeout:g}s") from exc
    except (OSError, ValueError) as exc:
        raise DownloadError(f"download failed: {exc}") from exc
    if not total:
        raise DownloadError("the URL returned no bytes")
    return b"".join(chunks)


def schedule(server: Any, pk: int, input_ids: list[str]) -> None:
    """Download the URL media of ``input_ids`` (stored pending) in the background."""
    for input_id in input_ids:
        try:
            server.background.submit(_download, server, pk, input_id)
        except RuntimeError:  # executor shut down: the server is stopping; resumed on restart
            return


def resume_pending(server: Any) -> None:
    """Reschedule downloads left pending by a previous run (called when the server starts)."""
    rows = server.store.read().execute(
        "SELECT app_pk, id FROM inputs WHERE status IN (?, ?) ORDER BY seq",
        (PENDING, IN_PROGRESS)).fetchall()
    by_app: dict[int, list[str]] = {}
    for pk, input_id in rows:
        by_app.setdefault(pk, []).append(input_id)
    for pk, ids in by_app.items():
        schedule(server, pk, ids)


def _download(server: Any, pk: int, input_id: str) -> None:
    try:
        row = server.store.read().execute(
            "SELECT proto FROM inputs WHERE app_pk=? AND id=? AND status IN (?, ?)",
            (pk, input_id, PENDING, IN_PROGRESS)).fetchone()
        if row is None:  # deleted, cancelled or already done
            return
        stored = resources_pb2.Input.FromString(row[0])
        part = next((getattr(stored.data, k) for k in MEDIA_KINDS
                     if stored.data.HasField(k)), None)
        small: list[tuple[str, bytes]] = []
        digest = ""
        if part is None or not part.url:
            result = status(FAILED, "Download failed", "input has no URL to download")
        else:
            try:
                problem = url_problem(part.url)
                if problem:
                    raise DownloadError(problem)
                digest = media_blobs.stash(server, fetch(part.url, server.download_timeout),
                                           small)
                result = status(SUCCESS, "Download complete")
            except DownloadError as exc:
                result = status(FAILED, "Download failed", str(exc))
        _finish(server, pk, input_id, result, digest, small)
    except Exception:  # a background task has nobody to report to but the log
        log.exception("download of input %s failed unexpectedly", input_id)


def _finish(server: Any, pk: int, input_id: str, result, digest: str,
            small: list[tuple[str, bytes]]) -> None:
    with server.store.write() as db:
        # Re-read inside the write: a patch may have changed the input meanwhile, and a
        # cancel or delete in between wins (only a still-pending input is finished).
        row = db.execute(
            "SELECT proto FROM inputs WHERE app_pk=? AND id=? AND status IN (?, ?)",
            (pk, input_id, PENDING, IN_PROGRESS)).fetchone()
        if row is None:
            return
        stored = resources_pb2.Input.FromString(row[0])
        stored.status.CopyFrom(result)
        stored.modified_at.CopyFrom(timestamp(now()))
        if digest:
            for kind in MEDIA_KINDS:
                if stored.data.HasField(kind):
                    getattr(stored.data, kind).hosted.suffix = digest
                    break
            media_blobs.insert_small(db, small)
        db.execute("UPDATE inputs SET status=?, proto=? WHERE app_pk=? AND id=?",
                   (result.code, stored.SerializeToString(), pk, input_id))
    if result.code == SUCCESS:
        server.embeddings.schedule(pk, [input_id])
