"""SQLite persistence for the local server.

Resources are stored as serialized protobuf messages beside the few columns that queries
need (ids, ordering, status, foreign keys). One write lock serialises writers (SQLite
allows one at a time anyway); readers use per-thread connections and WAL lets them run
beside a writer.

WAL checkpoints run on a thread of their own (:class:`_Checkpointer`), not inside the
commit that happens to cross SQLite's threshold: under a steady upload one commit in ~30
copied the WAL into the database and synced it while holding the write lock, and those
commits took ~70% of all the time spent committing.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
  pk INTEGER PRIMARY KEY, user_id TEXT NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL,
  created_at REAL NOT NULL, UNIQUE (user_id, id));
CREATE TABLE IF NOT EXISTS datasets (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL, created_at REAL NOT NULL,
  PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS dataset_inputs (
  app_pk INTEGER NOT NULL, dataset_id TEXT NOT NULL, input_id TEXT NOT NULL,
  seq INTEGER NOT NULL, created_at REAL NOT NULL,
  PRIMARY KEY (app_pk, dataset_id, input_id));
CREATE INDEX IF NOT EXISTS dataset_inputs_by_input ON dataset_inputs (app_pk, input_id);
CREATE TABLE IF NOT EXISTS dataset_versions (
  app_pk INTEGER NOT NULL, dataset_id TEXT NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL,
  seq INTEGER NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, dataset_id, id));
CREATE TABLE IF NOT EXISTS inputs (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, status INTEGER NOT NULL,
  job_id TEXT, proto BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE INDEX IF NOT EXISTS inputs_by_seq ON inputs (app_pk, seq);
-- Only inputs posted with an inputs_add_job_id are indexed by it (most are not).
DROP INDEX IF EXISTS inputs_by_job;
CREATE INDEX IF NOT EXISTS inputs_of_job ON inputs (app_pk, job_id) WHERE job_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS annotations (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, input_id TEXT NOT NULL, seq INTEGER NOT NULL,
  proto BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE INDEX IF NOT EXISTS annotations_by_input ON annotations (app_pk, input_id);
CREATE TABLE IF NOT EXISTS concepts (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL, seq INTEGER NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS inputs_add_jobs (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL, seq INTEGER NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- Media bytes up to media_blobs.SMALL_MEDIA_BYTES (larger ones are files under blobs/).
CREATE TABLE IF NOT EXISTS media_blobs (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS dataset_inputs_by_seq ON dataset_inputs (app_pk, dataset_id, seq);
-- A dataset version's frozen copy: each input with its annotations merged in (export-ready),
-- and its precomputed metrics groups; pos is the order within the version.
CREATE TABLE IF NOT EXISTS dataset_version_inputs (
  app_pk INTEGER NOT NULL, dataset_id TEXT NOT NULL, version_id TEXT NOT NULL,
  pos INTEGER NOT NULL, input_id TEXT NOT NULL, proto BLOB NOT NULL,
  PRIMARY KEY (app_pk, dataset_id, version_id, pos));
CREATE TABLE IF NOT EXISTS dataset_version_metrics (
  app_pk INTEGER NOT NULL, dataset_id TEXT NOT NULL, version_id TEXT NOT NULL,
  pos INTEGER NOT NULL, proto BLOB NOT NULL,
  PRIMARY KEY (app_pk, dataset_id, version_id, pos));
-- Modules (protos/modules.proto); public marks those other apps list too. An installed
-- version lives in app_pk and names the module version of module_app_pk it installs.
CREATE TABLE IF NOT EXISTS modules (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, public INTEGER NOT NULL,
  proto BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS module_versions (
  app_pk INTEGER NOT NULL, module_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
  proto BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, module_id, id));
CREATE TABLE IF NOT EXISTS installed_module_versions (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, module_app_pk INTEGER NOT NULL,
  module_id TEXT NOT NULL, version_id TEXT NOT NULL, proto BLOB NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE INDEX IF NOT EXISTS installed_by_module ON installed_module_versions
  (module_app_pk, module_id, version_id);
-- One vector per input (float32, L2-normalized) by the embedder named; see ml/embeddings.py.
CREATE TABLE IF NOT EXISTS embeddings (
  app_pk INTEGER NOT NULL, input_id TEXT NOT NULL, embedder TEXT NOT NULL,
  vector BLOB NOT NULL, PRIMARY KEY (app_pk, input_id));
-- Models (ml/models.py) and their versions; a trained version keeps its head (npz bytes)
-- and its training log beside the proto, and its export (ml/exports.py) once asked for.
CREATE TABLE IF NOT EXISTS models (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL, seq INTEGER NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS model_versions (
  app_pk INTEGER NOT NULL, model_id TEXT NOT NULL, id TEXT NOT NULL, proto BLOB NOT NULL,
  seq INTEGER NOT NULL, created_at REAL NOT NULL, head BLOB, train_log TEXT,
  export BLOB, PRIMARY KEY (app_pk, model_id, id));
CREATE TABLE IF NOT EXISTS evaluations (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, model_id TEXT NOT NULL,
  version_id TEXT NOT NULL, proto BLOB NOT NULL, seq INTEGER NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS concept_relations (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, subject_id TEXT NOT NULL,
  object_id TEXT NOT NULL, predicate TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (app_pk, id));
-- Workflows (ml/workflows.py): the workflow row holds its newest nodes; every version of
-- the graph is a row of workflow_versions.
CREATE TABLE IF NOT EXISTS workflows (
  app_pk INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, proto BLOB NOT NULL,
  created_at REAL NOT NULL, PRIMARY KEY (app_pk, id));
CREATE TABLE IF NOT EXISTS workflow_versions (
  app_pk INTEGER NOT NULL, workflow_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
  proto BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (app_pk, workflow_id, id));
-- Compute clusters, nodepools and runners (ml/compute.py, ml/runners.py) belong to a user.
CREATE TABLE IF NOT EXISTS compute_clusters (
  user_id TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, proto BLOB NOT NULL,
  PRIMARY KEY (user_id, id));
CREATE TABLE IF NOT EXISTS nodepools (
  user_id TEXT NOT NULL, compute_cluster_id TEXT NOT NULL, id TEXT NOT NULL,
  seq INTEGER NOT NULL, proto BLOB NOT NULL, PRIMARY KEY (user_id, compute_cluster_id, id));
CREATE TABLE IF NOT EXISTS runners (
  user_id TEXT NOT NULL, id TEXT NOT NULL, nodepool_id TEXT NOT NULL,
  compute_cluster_id TEXT NOT NULL, seq INTEGER NOT NULL, proto BLOB NOT NULL,
  PRIMARY KEY (user_id, id));
"""


class Store:
    """The server's SQLite database under ``data_dir/server.sqlite3``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "server.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.extend_schema(SCHEMA)
        self._checkpointer = _Checkpointer(self.path)

    def extend_schema(self, script: str) -> None:
        """Run ``CREATE … IF NOT EXISTS`` statements (a module's own tables, indexes, triggers)."""
        with self._write_lock:  # executescript commits by itself: no BEGIN around it
            self._connection().executescript(script)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
            self._local.db = db
            with self._all_lock:
                self._all.append(db)
        return db

    def read(self) -> sqlite3.Connection:
        """This thread's connection, for queries outside a write transaction."""
        return self._connection()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: serialised, committed on success, rolled back on error."""
        with self._write_lock:
            db = self._connection()
            if db.in_transaction:  # nested use joins the outer transaction
                yield db
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._checkpointer.committed()

    def next_seq(self, db: sqlite3.Connection, name: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive sequence numbers (inside a write); returns the first."""
        return self.next_seqs(db, {name: count})[name]

    @staticmethod
    def next_seqs(db: sqlite3.Connection, counts: dict[str, int]) -> dict[str, int]:
        """Reserve ``counts[name]`` consecutive numbers of each sequence ``name`` (inside a
        write) in one statement; returns the first of each."""
        rows = db.execute(
            f"INSERT INTO counters(name, value) VALUES {_values(2, len(counts))} ON CONFLICT"
            "(name) DO UPDATE SET value=value+excluded.value RETURNING name, value",
            [v for item in counts.items() for v in item]).fetchall()
        return {name: value - counts[name] + 1 for name, value in rows}

    def close(self) -> None:
        """Stop the checkpointer and close every connection this store opened (the last
        one to close checkpoints what is left)."""
        self._checkpointer.stop()
        with self._all_lock:
            for db in self._all:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
        self._local = threading.local()


CHECKPOINT_EVERY = 32  # commits between checkpoints (~1,000 WAL pages under an upload)
_CHECKPOINT_IDLE = 1.0  # seconds: a quiet store's last commits are checkpointed this late


class _Checkpointer:
    """A thread that copies the WAL into the database (``PRAGMA wal_checkpoint(PASSIVE)``,
    which waits for no reader or writer) every :data:`CHECKPOINT_EVERY` commits, and a
    second after the last one. Writers' connections turn SQLite's own checkpoints off."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._commits = 0  # since the last checkpoint (a plain counter: off by one is fine)
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """Note one commit (called by the writer, with the write lock held)."""
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY:
            self._wanted.set()

    def stop(self) -> None:
        """Stop the thread (a last checkpoint happens when the store's connections close)."""
        self._stopping = True
        self._wanted.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def _run(self) -> None:
        db = sqlite3.connect(self._path, timeout=60, isolation_level=None,
                             check_same_thread=False)
        try:
            while not self._stopping:
                self._wanted.wait(_CHECKPOINT_IDLE)
                self._wanted.clear()
                if self._stopping or not self._commits:
                    continue
                self._commits = 0
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:  # busy or closing: the next round tries again
                    pass
        finally:
            db.close()


_MAX_PARAMS = 32000  # SQLite's limit on host parameters per statement is 32766


@functools.lru_cache(maxsize=256)
def _values(width: int, count: int) -> str:
    row = f"({','.join('?' * width)})"
    return ",".join([row] * count)


def insert_many(db: sqlite3.Connection, head: str, rows: list[tuple]) -> None:
    """Run ``head VALUES (…), (…), …`` for ``rows``, in as few statements as SQLite allows.

    Not ``executemany``: that steps once per row, and every step gives up the GIL and has to
    win it back from the threads validating the next requests — under an upload this
    stretched each write transaction, which holds the write lock, to twice its length.
    """
    if not rows:
        return
    width = len(rows[0])
    per = _MAX_PARAMS // width
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        db.execute(f"{head} VALUES {_values(width, len(chunk))}",
                   [value for row in chunk for value in row])


def now() -> float:
    """Wall-clock seconds, the unit of every ``created_at`` column."""
    return time.time()
