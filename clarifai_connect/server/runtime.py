"""The running local server: gRPC on one port, hosted media over HTTP on another."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from ..errors import PortTaken
from . import auth as auth_mod
from . import downloads
from .blobs import BlobStore
from .faults import FaultInjector
from .ingest_activity import IngestActivity
from .input_pages import InputPages
from .media_access import MediaAccess
from .media_http import MediaServer
from .ml.embeddings import EmbeddingService
from .ml.search_index import SearchIndex
from .rpc import build_handler
from .store import Store

log = logging.getLogger("clarifai_connect.server")
# 128 base64 images of several MB each fit in one request.
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024
# The gRPC server's options (bench.server_post_inputs gives its do-nothing servicer the same).
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0)]
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
# While a server runs, threads hand the interpreter lock over after 1 ms, not Python's 5 ms:
# every SQLite statement gives the lock away, and under an upload the request holding the
# write lock waited up to 5 ms to get it back after each one, so all writes waited.
SWITCH_INTERVAL = 0.001


class _SwitchInterval:
    """``sys.setswitchinterval`` lowered while at least one server runs, then restored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = sys.getswitchinterval()

    def acquire(self) -> None:
        with self._lock:
            if not self._users:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, SWITCH_INTERVAL))
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if not self._users:
                sys.setswitchinterval(self._saved)


_SWITCHING = _SwitchInterval()


def default_data_dir() -> Path:
    """The per-user data folder of the embedded server."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "clarifai-connect" / "server"


class LocalServer:
    """A Clarifai-compatible API server over SQLite and a blob folder under ``data_dir``.

    ``keys`` are the accepted key specs (see :mod:`.auth`: ``USER:KEY``, ``USER/APP:KEY``,
    ``*:KEY``; a bare ``KEY`` belongs to ``user``). When none is given (nor in
    ``CLARIFAI_CONNECT_SERVER_PATS``) one is generated for ``user`` — or, with ``any_user``,
    an unbound key that reaches every user's apps, for local development only. ``keys``
    then lists the secrets in order, ``auth.identities`` whom they belong to. ``port`` 0
    picks a free port. Use as a context manager or call start()/stop().
    ``embedders`` maps media kinds to registered embedder names (default
    :data:`~.ml.embeddings.DEFAULT_EMBEDDERS`; ``{}``: no embedding); ``plugins`` is the
    plugin registry embedders come from (default: the process-wide one).
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 port: int = 0, keys: list[str] | None = None, workers: int = 16,
                 faults: FaultInjector | None = None, download_timeout: float = 10.0,
                 embedders: Mapping[str, str] | None = None, plugins: Any = None,
                 user: str = auth_mod.DEFAULT_USER, any_user: bool = False) -> None:
        from . import handlers  # noqa: F401  (registers every RPC)

        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.exports_dir = self.data_dir / "exports"
        self.exports_dir.mkdir(exist_ok=True)
        self.host = host
        owner = None if any_user else user
        self.user = owner
        pairs = [auth_mod.parse_key_spec(spec, owner)
                 for spec in (keys or auth_mod.keys_from_env() or [auth_mod.generate_key()])]
        self.keys = [key for key, _ in pairs]
        self.auth = auth_mod.KeyAuth(pairs)
        self._user_keys: dict[str, str] = {}
        self._key_lock = threading.Lock()
        self.faults = faults or FaultInjector()
        self.download_timeout = download_timeout
        self.store = Store(self.data_dir)
        self.blobs = BlobStore(self.data_dir / "blobs")
        self.background = futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="bg")
        self.ingest = IngestActivity()
        self.input_pages = InputPages(self.store)
        self.embeddings = EmbeddingService(self, embedders, plugins)
        self.search_index = SearchIndex(self.store, self.ingest)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
            options=GRPC_OPTIONS)
        self._grpc.add_generic_rpc_handlers((build_handler(self),))
        try:
            self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # grpc's "Failed to bind": the port is taken
            self.port = 0
        if self.port == 0:
            self.store.close()
            raise PortTaken(f"cannot serve on {host}:{port}: the port is taken (or not "
                            "allowed); choose another with --port, or --port 0 for a free one")
        self.media_access = MediaAccess(self)
        self.media = MediaServer(self, host=host)
        self._stopped = threading.Event()
        self._started = False

    def __repr__(self) -> str:
        return f"LocalServer(base_url={self.base_url!r}, data_dir={str(self.data_dir)!r})"

    def add_key(self, spec: str) -> str:
        """Accept one more key, given as a spec (``USER:KEY``, ``USER/APP:KEY``…; a bare
        ``KEY`` belongs to this server's user); returns the key."""
        key, identity = auth_mod.parse_key_spec(spec, self.user)
        self.auth.add(key, identity)
        self.keys.append(key)
        return key

    def key_for(self, user_id: str) -> str:
        """A personal key of ``user_id`` (made and accepted on first use): what a test that
        acts as another user calls with."""
        with self._key_lock:
            key = self._user_keys.get(user_id)
            if key is None:
                key = self._user_keys[user_id] = self.add_key(
                    f"{user_id}:{auth_mod.generate_key()}")
            return key

    @property
    def base_url(self) -> str:
        """Where the gRPC API answers, as a client's ``base_url``."""
        return f"http://{self.host}:{self.port}"

    @property
    def media_url(self) -> str:
        """Where hosted media and export archives are served."""
        return self.media.base_url

    def start(self) -> LocalServer:
        """Start serving gRPC and HTTP; returns self."""
        self.media.start()
        _SWITCHING.acquire()
        self._started = True
        self._grpc.start()
        downloads.resume_pending(self)
        self.embeddings.start()
        self.search_index.start()
        log.info("serving on %s (media on %s)", self.base_url, self.media_url)
        if any(i.user_id is None for i in self.auth.identities):
            log.info("an any-user key is accepted: it reaches every user's apps")
        if self.host not in _LOOPBACK:
            log.warning("bound to %s, not loopback: anyone who can reach it and holds a key "
                        "reaches its data; this is a development server (plain gRPC and "
                        "HTTP, no TLS)", self.host)
        return self

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving and close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._grpc.stop(grace).wait()
        if self._started:
            _SWITCHING.release()
        self.media.stop()
        self.media_access.close()
        self.background.shutdown(wait=True, cancel_futures=True)
        self.embeddings.stop()
        self.search_index.stop()
        self.store.close()

    def wait(self) -> None:
        """Block until the server is stopped."""
        self._grpc.wait_for_termination()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
