"""The hosted-media HTTP server: stored media over HTTP on loopback, as the API's hosted
URLs serve them (:func:`~.media_blobs.render_hosted` writes those URLs into responses).

``GET /media/orig/<key>`` returns stored bytes to a key (``Authorization: Key <PAT>``) whose
user (or app) holds them. ``POST /media/batch`` returns many of them in one answer (see
:data:`BATCH_PATH`): an export of a local-server app fetches a page of media per request.
``GET /exports/<token>.zip`` returns a dataset-version export
archive to a key of its app's owner, or to anyone holding the signed, expiring URL that
PutDatasetVersionExports hands out (the real service's pre-signed URL; the official SDK
downloads it without a key).
``GET /training-logs/<token>.log`` (a model version's training log) still takes its
unguessable token as the credential; ``GET /model-exports/<token>/model.tar`` (a model
version export) needs a key. Every other path belongs to the browser view (:mod:`.web`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import media_blobs
from .archive import archive_owner
from .web import WebView
from .web.routes import security_headers

log = logging.getLogger("clarifai_connect.server.media")
_MEDIA = re.compile(r"^/media/orig/([0-9a-f]{64})$")
_EXPORT = re.compile(r"^/exports/([0-9a-f]{32})\.zip$")
_MODEL_EXPORT = re.compile(r"^/model-exports/([0-9a-f]{32})/model\.tar$")
_TRAINING_LOG = re.compile(r"^/training-logs/([0-9a-f]{32})\.log$")

BATCH_PATH = "/media/batch"
"""``POST`` a JSON body ``{"keys": [media key, …]}`` (at most :data:`BATCH_KEYS`) with the
same ``Authorization`` a GET of one of them takes. The answer (200,
``application/x-media-batch``) is one JSON line ``{"sizes": [n, …]}``, then the bytes of each
key in order, ``n`` bytes each; ``-1`` is a key not in the answer (not the key's user's,
missing, or past :data:`BATCH_BYTES` in all): the client GETs its own URL, which says why.
A server without it answers 404, and the client GETs every URL."""
BATCH_KEYS = 512
BATCH_BYTES = 16 << 20
_KEY = re.compile(r"^[0-9a-f]{64}$")

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"), (b"RIFF", "image/webp"), (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"), (b"ID3", "audio/mpeg"),
    (b"fLaC", "audio/flac"), (b"OggS", "audio/ogg"), (b"\x1aE\xdf\xa3", "video/webm"),
]


def sniff_mime(data: bytes) -> str:
    """A content type from the first bytes of ``data`` (octet-stream when unknown)."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


class _HttpServer(ThreadingHTTPServer):
    # An export opens one connection per download thread at once: the default backlog of
    # 5 drops the rest, which then wait for a SYN retry.
    request_queue_size = 128

    def handle_error(self, request, client_address) -> None:
        """A client that hung up mid-answer is normal (an export stopped, a browser tab
        closed): not a traceback on the terminal of ``serve``. Anything else is logged."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("media request from %s failed", client_address[0])


class MediaServer:
    """A threaded HTTP server bound to ``host``; ``base_url`` is where it answers."""

    def __init__(self, server: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self.web = WebView(server)
        handler = type("Handler", (_Handler,), {"local": server, "web": self.web})
        self.httpd = _HttpServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://{host}:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="media-http",
                                        daemon=True)

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():  # shutdown() waits forever for a serve loop never started
            self.httpd.shutdown()
        self.httpd.server_close()
        self.web.close()


class _Handler(BaseHTTPRequestHandler):
    local: Any = None
    web: Any = None
    protocol_version = "HTTP/1.1"  # keep-alive: a client fetching many files keeps one
    # The headers and the body go out as two writes: with Nagle's algorithm the body would
    # wait for the client's delayed ACK of the headers (~40 ms a response).
    disable_nagle_algorithm = True

    _db: Any = None  # one read-only store connection per client connection (keep-alive)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._db is not None:
                self._db.close()
                self._db = None

    def log_message(self, fmt: str, *args: Any) -> None:  # never log headers (keys)
        log.debug("media %s", self.path.split("?")[0])

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        identity = self.local.auth.check_http(self.headers.get("Authorization"))
        if match := _MEDIA.match(path):
            if identity is None:
                return self._send(401, b"missing or invalid key", "text/plain")
            if not self.local.media_access.allows(identity, match.group(1)):
                # The real API does not tell another user's media from missing media.
                return self._send(404, b"not found", "text/plain")
            if self._db is None:
                self._db = media_blobs.reader(self.local)
            try:
                data = media_blobs.read(self.local, match.group(1), self._db)
            except KeyError:
                return self._send(404, b"not found", "text/plain")
            return self._send(200, data, sniff_mime(data))
        if match := _EXPORT.match(path):
            archive = Path(self.local.exports_dir) / f"{match.group(1)}.zip"
            params = urllib.parse.parse_qs(query)
            signed = self.local.auth.signed(path, params.get("expires", [None])[0],
                                            params.get("signature", [None])[0])
            if not signed:
                if identity is None:
                    return self._send(401, b"missing or invalid key, or an expired link",
                                      "text/plain")
                user, _, app = archive_owner(archive).partition("/")
                if not identity.may_use(user, app):
                    return self._send(404, b"not found", "text/plain")
            if not archive.exists():
                return self._send(404, b"not found", "text/plain")
            return self._send(200, archive.read_bytes(), "application/zip")
        if match := _MODEL_EXPORT.match(path):
            if not self.local.auth.check_http(self.headers.get("Authorization")):
                return self._send(401, b"missing or invalid key", "text/plain")
            return self._send_file(Path(self.local.exports_dir) / f"model-{match.group(1)}.tar",
                                   "application/x-tar")
        if match := _TRAINING_LOG.match(path):
            return self._send_file(Path(self.local.exports_dir) /
                                   f"training-{match.group(1)}.log", "text/plain; charset=utf-8")
        return self._send_web("GET", path, query)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        if path == BATCH_PATH:
            return self._send_batch()
        return self._send_web("POST", path, query)

    def _send_batch(self) -> None:
        length = self.headers.get("Content-Length", "0")
        size = int(length) if length.isdigit() else 0
        if size > 80 * BATCH_KEYS:  # a key and its quoting: 67 bytes
            return self._send(413, b"request too large", "text/plain")
        body = self.rfile.read(size)
        identity = self.local.auth.check_http(self.headers.get("Authorization"))
        if identity is None:
            return self._send(401, b"missing or invalid key", "text/plain")
        try:
            keys = json.loads(body)["keys"]
        except (ValueError, TypeError, KeyError):
            keys = None
        if not isinstance(keys, list) or len(keys) > BATCH_KEYS or \
                not all(isinstance(k, str) and _KEY.match(k) for k in keys):
            return self._send(400, f"expected {{\"keys\": [up to {BATCH_KEYS} media keys]}}"
                              .encode(), "text/plain")
        allowed = self.local.media_access.allows_many(identity, keys)
        if self._db is None:
            self._db = media_blobs.reader(self.local)
        wanted = [k for k, ok in zip(keys, allowed, strict=True) if ok]
        found = iter(media_blobs.read_many(self.local, wanted, self._db, BATCH_BYTES))
        parts = [next(found) if ok else None for ok in allowed]
        head = json.dumps({"sizes": [-1 if p is None else len(p) for p in parts]})
        return self._send(200, b"".join([head.encode(), b"\n", *(p for p in parts if p)]),
                          "application/x-media-batch")

    def _send_web(self, method: str, path: str, query: str) -> None:
        body = b""
        if method == "POST":
            length = self.headers.get("Content-Length", "0")
            size = int(length) if length.isdigit() else 0
            if size > 64 * 1024:  # a sign-in form is tiny
                return self._send(413, b"request too large", "text/plain")
            body = self.rfile.read(size)
        answer = self.web.handle(method, path, query, self.headers, body)
        if answer is None:
            return self._send(404, b"not found", "text/plain")
        return self._send(answer.status, answer.body, answer.content_type,
                          {**security_headers(), **answer.headers})

    def _send_file(self, path: Path, content_type: str) -> None:
        if not path.exists():
            return self._send(404, b"not found", "text/plain")
        return self._send(200, path.read_bytes(), content_type)

    def _send(self, code: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
