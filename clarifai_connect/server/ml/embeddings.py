"""Embeddings of the local server: computed in the background at ingest, stored, indexed.

Every server has one :class:`EmbeddingService` (``server.embeddings``). Inputs whose media
are stored (posted with bytes or raw text, or downloaded from their URL) are queued by
PostInputs and by the downloader; one background thread embeds them in batches with the
embedder chosen for their app and media kind, writes one row per input to the
``embeddings`` table (beside the input: same app, same input id; deleted with it) and adds
the vector to the app's in-memory :class:`~.vectors.VectorIndex`. Inputs left unembedded
by a stopped server are queued again when it starts.

Which embedder: ``LocalServer(embedders={"text": "wordllama", "image": "image-features"})``
(the default, :data:`DEFAULT_EMBEDDERS`; ``{}`` turns embedding off) names one registered
embedder per kind; an app whose base workflow (``default_workflow.id``) is the name of a
registered embedder uses that one for the kinds it covers. Video and audio have no
built-in embedder: such inputs get no vector unless a plugin provides one.

The internal API (for search, training and prediction; ``pk`` is the app's primary key
from :func:`..common.app_pk`)::

    service = server.embeddings
    service.embed(pk, "text", "a red car")     # -> float32 unit vector of the app's embedder
    service.embedder_name(pk, "image")         # -> "image-features" (or None: not embedded)
    ids, matrix = service.vectors(pk, ["a", "b"])  # the stored vectors of those inputs
    service.wait(pk, timeout=60)               # True once nothing of the app is queued
    service.index(pk, "wordllama")             # the VectorIndex, for exact k-NN search

``vectors`` returns the ids that have a vector (in the order asked) and an ``n × dim``
matrix; when the ids were embedded by several embedders (an app with images and texts)
pass ``embedder=`` to pick one. ``wait`` covers queued inputs only: inputs whose URL is
still downloading are queued when the download ends.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2

from ...embedder import MEDIA_KINDS, Embedder
from ...errors import ConfigError
from .vectors import VectorIndex, unit_rows

__all__ = ["DEFAULT_EMBEDDERS", "EmbeddingService"]

log = logging.getLogger("clarifai_connect.server.embeddings")

DEFAULT_EMBEDDERS: Mapping[str, str] = {"text": "wordllama", "image": "image-features"}
BATCH = 256  # inputs embedded per round: one read, one embed call per embedder, one write
_STORED = status_code_pb2.INPUT_DOWNLOAD_SUCCESS


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux), so that ingest keeps the cores."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


class EmbeddingService:
    """The embedders, the background embedding queue and the vector indexes of one server."""

    def __init__(self, server: Any, embedders: Mapping[str, str] | None = None,
                 registry: Any = None) -> None:
        if registry is None:
            from ...plugins import get_registry

            registry = get_registry()
        self.server = server
        self.registry = registry
        self.defaults = dict(DEFAULT_EMBEDDERS if embedders is None else embedders)
        for kind, name in self.defaults.items():
            if kind not in MEDIA_KINDS:
                raise ConfigError(f"embedders: unknown media kind '{kind}' "
                                  f"(one of {', '.join(MEDIA_KINDS)})")
            if kind not in registry.embedder(name).cls.kinds:
                raise ConfigError(f"embedders: embedder '{name}' does not embed {kind}")
        self._instances: dict[str, Embedder] = {}
        self._choices: dict[int, dict[str, str]] = {}
        self._indexes: dict[tuple[int, str], VectorIndex] = {}
        self._lock = threading.RLock()  # instances, choices, indexes
        self._queue: deque[tuple[int, list[str]]] = deque()
        self._pending: Counter[int] = Counter()
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Queue what a previous run left unembedded and start the background thread."""
        rows = self.server.store.read().execute(
            "SELECT app_pk, id FROM inputs i WHERE status=? AND NOT EXISTS (SELECT 1 FROM "
            "embeddings e WHERE e.app_pk=i.app_pk AND e.input_id=i.id) ORDER BY app_pk, seq",
            (_STORED,)).fetchall()
        by_app: dict[int, list[str]] = {}
        for pk, input_id in rows:
            by_app.setdefault(pk, []).append(input_id)
        for pk, ids in by_app.items():
            self.schedule(pk, ids)
        self._thread = threading.Thread(target=self._run, name="embeddings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread after its current batch (the rest resumes on restart)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)

    # -- the internal API -----------------------------------------------------------------

    def schedule(self, pk: int, input_ids: Sequence[str]) -> None:
        """Queue inputs whose media are stored for embedding (returns at once)."""
        if not input_ids:
            return
        with self._cv:
            self._queue.append((pk, list(input_ids)))
            self._pending[pk] += len(input_ids)
            self._cv.notify_all()

    def wait(self, pk: int | None = None, timeout: float = 60.0) -> bool:
        """Block until nothing of app ``pk`` (of any app when None) is queued or being
        embedded; False when ``timeout`` seconds passed first."""
        def done() -> bool:
            return not (self._pending[pk] if pk is not None else +self._pending)

        with self._cv:
            return self._cv.wait_for(done, timeout)

    def embedder_name(self, pk: int, kind: str) -> str | None:
        """The name of the embedder that embeds ``kind`` media in app ``pk`` (None: none)."""
        return self._choice(pk).get(kind)

    def embedder(self, name: str) -> Embedder:
        """The server's instance of the registered embedder ``name``."""
        with self._lock:
            instance = self._instances.get(name)
            if instance is None:
                instance = self._instances[name] = self.registry.embedder(name).cls()
            return instance

    def embed(self, pk: int, kind: str, item: str | bytes) -> np.ndarray:
        """The unit vector of one item (text ``str``, media ``bytes``) by the embedder of
        ``kind`` in app ``pk``; LookupError when the app embeds no ``kind``, ValueError when
        the embedder cannot read the item."""
        name = self.embedder_name(pk, kind)
        if name is None:
            raise LookupError(f"no embedder embeds {kind} in this app")
        row = self.embedder(name).embed(kind, [item])[0]
        if row is None:
            raise ValueError(f"the {kind} could not be read by embedder '{name}'")
        return unit_rows(np.asarray(row))[0]

    def vectors(self, pk: int, input_ids: Sequence[str],
                embedder: str | None = None) -> tuple[list[str], np.ndarray]:
        """The stored vectors of ``input_ids``: (ids that have one, in order; n × dim).

        With ``embedder`` None the ids must all have been embedded by one embedder
        (ValueError naming them otherwise); ids without a vector are left out.
        """
        names = [embedder] if embedder else self._embedders_of(pk, input_ids)
        if not names:
            return [], np.zeros((0, 0), dtype=np.float32)
        if len(names) > 1:
            raise ValueError(f"these inputs were embedded by {', '.join(sorted(names))}: "
                             "pass embedder= to choose one")
        return self.index(pk, names[0]).vectors(input_ids)

    def index(self, pk: int, embedder: str) -> VectorIndex:
        """The vector index of app ``pk`` and ``embedder``, loaded from storage on first use."""
        key = (pk, embedder)
        with self._lock:
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = self._load(pk, embedder)
            return index

    # -- hooks for the data plane ---------------------------------------------------------

    def forget(self, db: sqlite3.Connection, pk: int, input_ids: Sequence[str]) -> None:
        """Delete the vectors of deleted inputs (inside the deleting write transaction)."""
        db.execute("DELETE FROM embeddings WHERE app_pk=? AND input_id IN "
                   "(SELECT value FROM json_each(?))", (pk, json.dumps(list(input_ids))))
        with self._lock:
            for (index_pk, _), index in self._indexes.items():
                if index_pk == pk:
                    index.remove(input_ids)

    def drop_app(self, pk: int) -> None:
        """Forget everything cached for a deleted app (its rows go with the app's)."""
        with self._lock:
            self._choices.pop(pk, None)
            for key in [k for k in self._indexes if k[0] == pk]:
                del self._indexes[key]

    # -- internals ------------------------------------------------------------------------

    def _choice(self, pk: int) -> dict[str, str]:
        with self._lock:
            choice = self._choices.get(pk)
            if choice is not None:
                return choice
        choice = dict(self.defaults)
        row = self.server.store.read().execute(
            "SELECT proto FROM apps WHERE pk=?", (pk,)).fetchone()
        if row is not None:
            app = resources_pb2.App.FromString(row[0])
            workflow = app.default_workflow.id or app.default_workflow_id
            registration = self.registry.embedders.get(workflow) if workflow else None
            if registration is not None:
                choice.update(dict.fromkeys(registration.cls.kinds, registration.name))
        with self._lock:
            self._choices[pk] = choice
        return choice

    def _embedders_of(self, pk: int, input_ids: Sequence[str]) -> list[str]:
        rows = self.server.store.read().execute(
            "SELECT DISTINCT embedder FROM embeddings WHERE app_pk=? AND input_id IN "
            "(SELECT value FROM json_each(?))", (pk, json.dumps(list(input_ids)))).fetchall()
        return [r[0] for r in rows]

    def _load(self, pk: int, embedder: str) -> VectorIndex:
        rows = self.server.store.read().execute(
            "SELECT input_id, vector FROM embeddings WHERE app_pk=? AND embedder=?",
            (pk, embedder)).fetchall()
        dim = len(rows[0][1]) // 4 if rows else self.embedder(embedder).dim
        index = VectorIndex(dim)
        if rows:
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            index.add([r[0] for r in rows], matrix.reshape(len(rows), dim))
        return index

    def _run(self) -> None:
        background_priority()
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._queue or self._stopping)
            self.server.ingest.give_way(lambda: self._stopping)  # uploads first
            with self._cv:
                if self._stopping:
                    return
                batch: dict[int, list[str]] = {}
                taken = 0
                while self._queue and taken < BATCH:
                    pk, ids = self._queue.popleft()
                    batch.setdefault(pk, []).extend(ids)
                    taken += len(ids)
            for pk, ids in batch.items():
                try:
                    self._embed_inputs(pk, ids)
                except Exception:  # a background thread has nobody to report to but the log
                    log.exception("embedding %d inputs of app %d failed", len(ids), pk)
                finally:
                    with self._cv:
                        self._pending[pk] -= len(ids)
                        if self._pending[pk] <= 0:
                            del self._pending[pk]
                        self._cv.notify_all()

    def _embed_inputs(self, pk: int, input_ids: list[str]) -> None:
        db = self.server.store.read()
        rows = db.execute(
            "SELECT id, proto FROM inputs WHERE app_pk=? AND status=? AND id IN "
            "(SELECT value FROM json_each(?))", (pk, _STORED, json.dumps(input_ids))).fetchall()
        choice = self._choice(pk)
        groups: dict[tuple[str, str], list[tuple[str, Any]]] = {}
        media_keys: dict[str, str] = {}
        for input_id, proto in rows:
            data = resources_pb2.Input.FromString(proto).data
            kind = next((k for k in MEDIA_KINDS if data.HasField(k)), None)
            name = choice.get(kind) if kind else None
            if name is None:
                continue
            part = getattr(data, kind)
            if kind == "text" and part.raw:
                groups.setdefault((name, kind), []).append((input_id, part.raw))
            elif part.hosted.suffix:
                media_keys[input_id] = part.hosted.suffix
                groups.setdefault((name, kind), []).append((input_id, None))
        media = self._read_media(db, media_keys.values())
        for (name, kind), items in groups.items():
            payloads, ids = [], []
            for input_id, payload in items:
                if payload is None:
                    payload = media.get(media_keys[input_id])
                    if payload is not None and kind == "text":
                        payload = payload.decode("utf-8", errors="replace")
                if payload is not None:
                    ids.append(input_id)
                    payloads.append(payload)
            if ids:
                self._store(pk, name, ids, self._vectors(name, kind, ids, payloads))

    def _vectors(self, name: str, kind: str, ids: list[str],
                 payloads: list[Any]) -> list[np.ndarray | None]:
        embedder = self.embedder(name)
        try:
            rows = list(embedder.embed(kind, payloads))
            if len(rows) != len(payloads):
                raise ValueError(f"returned {len(rows)} vectors for {len(payloads)} items")
        except Exception as exc:  # isolate the item that breaks the batch
            log.warning("embedder '%s' failed on a batch (%s); embedding one by one",
                        name, exc)
            rows = []
            for input_id, payload in zip(ids, payloads, strict=False):
                try:
                    rows.append(embedder.embed(kind, [payload])[0])
                except Exception as one:
                    log.warning("embedder '%s' cannot embed input %s: %s", name, input_id, one)
                    rows.append(None)
        return [None if r is None else np.asarray(r, dtype=np.float32).ravel() for r in rows]

    def _store(self, pk: int, name: str, ids: list[str],
               vectors: list[np.ndarray | None]) -> None:
        keep = [(i, v) for i, v in zip(ids, vectors, strict=False) if v is not None]
        if not keep:
            return
        dims = {len(v) for _, v in keep}
        if len(dims) != 1:
            log.warning("embedder '%s' returned vectors of several lengths %s: dropped",
                        name, sorted(dims))
            return
        matrix = unit_rows(np.stack([v for _, v in keep]))
        index = self.index(pk, name)
        if index.dim != matrix.shape[1]:
            log.warning("embedder '%s' returned %d-d vectors, its index holds %d-d: dropped",
                        name, matrix.shape[1], index.dim)
            return
        with self.server.store.write() as db:
            # Inside the write: an input deleted meanwhile gets no orphan vector.
            alive = {r[0] for r in db.execute(
                "SELECT id FROM inputs WHERE app_pk=? AND id IN (SELECT value FROM json_each(?))",
                (pk, json.dumps([i for i, _ in keep])))}
            picked = [n for n, (i, _) in enumerate(keep) if i in alive]
            if not picked:
                return
            kept_ids = [keep[n][0] for n in picked]
            db.executemany(
                "INSERT OR REPLACE INTO embeddings(app_pk, input_id, embedder, vector) "
                "VALUES (?,?,?,?)",
                [(pk, keep[n][0], name, matrix[n].tobytes()) for n in picked])
            index.add(kept_ids, matrix[picked])

    def _read_media(self, db: sqlite3.Connection, keys: Iterable[str]) -> dict[str, bytes]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        found = {k: bytes(v) for k, v in db.execute(
            "SELECT digest, data FROM media_blobs WHERE digest IN "
            "(SELECT value FROM json_each(?))", (json.dumps(keys),))}
        for key in keys:
            if key not in found:
                try:
                    found[key] = self.server.blobs.get(key)
                except KeyError:
                    log.warning("media %s of an input is missing: not embedded", key[:16])
        return found

