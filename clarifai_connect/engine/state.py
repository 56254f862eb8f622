"""Sync state: a local SQLite file per (source, target) remembering what the API acknowledged.

A row per input the server acknowledged: its id, the fingerprint of the source item it
was sent from, and its phase (``input``: the input landed, its region annotations not yet
all; ``done``: everything landed). Rows are written only after the server answered, each
batch in one transaction, so a run killed at any moment leaves a state that is never ahead
of the server. What the current run has read lives in a TEMP table (on disk when large),
which finds repeated ids and, at the end, the inputs gone from the source.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["DONE", "INPUT", "SyncState", "default_state_path", "state_dir"]

INPUT, DONE = "input", "done"
ENV_STATE_DIR = "CLARIFAI_CONNECT_STATE_DIR"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    phase TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""


def state_dir() -> Path:
    """Where state files go by default: ``$CLARIFAI_CONNECT_STATE_DIR``, else the user's
    state folder (``$XDG_STATE_HOME/clarifai-connect`` or ``~/.local/state/clarifai-connect``)."""
    if os.environ.get(ENV_STATE_DIR):
        return Path(os.environ[ENV_STATE_DIR]).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join("~", ".local", "state")
    return Path(base).expanduser() / "clarifai-connect"


def default_state_path(source: str, target: str, name: str = "sync") -> Path:
    """The state file of syncing ``source`` into ``target`` (a stable key of the API, user,
    app and dataset): a readable ``name`` (the app id), then a hash of both."""
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "sync"
    return state_dir() / f"{slug}-{digest}.sqlite"


def _hold(path: Path) -> Any:
    """An exclusive lock beside the state file (``<name>.lock``), or ConfigError when
    another live run holds it."""
    handle = open(f"{path}.lock", "a+")  # noqa: SIM115 (held open for the run)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        pid = handle.read().strip()
        handle.close()
        raise ConfigError(f"another sync is using the state file {path}"
                          + (f" (process {pid})" if pid else "")
                          + ": wait for it to finish, or give this run its own --state") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class SyncState:
    """The state file of one (source, target); thread-safe (one connection, one lock).

    Opening a file that records another source or target fails fast: mixing them up would
    make ``--delete`` remove the wrong inputs. One run at a time holds a file: a second run
    on it is refused (ConfigError) while the first is alive — two runs sharing one state
    would each count the other's inputs as their own (the lock dies with its process, so a
    killed run never blocks the next).
    """

    def __init__(self, path: str | os.PathLike, source: str, target: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._held = None if str(self.path) == ":memory:" else _hold(self.path)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False,
                                   isolation_level=None, timeout=30)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            self._db.execute("CREATE TEMP TABLE seen (id TEXT PRIMARY KEY) WITHOUT ROWID")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            self._release()
            raise ConfigError(f"state file {self.path} is not usable: {exc}") from None
        self._bind(source, target)

    def _bind(self, source: str, target: str) -> None:
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if not meta:
            with self._write():
                self._db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", [
                    ("source", source), ("target", target), ("created_at", str(time.time()))])
            return
        if meta.get("source") != source or meta.get("target") != target:
            raise ConfigError(
                f"state file {self.path} belongs to syncing {meta.get('source')} into "
                f"{meta.get('target')}, not {source} into {target}: pass another --state")

    def _write(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    # -- what the server acknowledged ----------------------------------------------------

    def lookup(self, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """{id: (fingerprint, phase)} of the acknowledged ones among ``ids``."""
        ids = list(ids)
        if not ids:
            return {}
        # One result row for the whole batch: sqlite3 gives up the GIL at every row step,
        # which costs a thread switch each when other threads are busy.
        with self._lock:
            packed = self._db.execute(
                "SELECT json_group_array(json_array(id, fingerprint, phase)) FROM items "
                "WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchone()[0]
        return {i: (f, p) for i, f, p in json.loads(packed)}

    def acknowledge(self, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Record (id, fingerprint, phase, source) rows the server acknowledged, in one commit."""
        rows = [list(row) for row in rows]
        if not rows:
            return
        with self._write():
            # One statement for the batch (see lookup: no per-row GIL round trips).
            self._db.execute(
                "INSERT INTO items(id, fingerprint, phase, source, updated_at) "
                "SELECT value->>0, value->>1, value->>2, value->>3, ? FROM json_each(?) "
                "WHERE true ON CONFLICT(id) DO UPDATE SET fingerprint=excluded.fingerprint, "
                "phase=excluded.phase, source=excluded.source, updated_at=excluded.updated_at",
                (time.time(), json.dumps(rows)))

    def forget(self, ids: Iterable[str]) -> None:
        """Drop ids (before their inputs are deleted or replaced), in one commit."""
        ids = list(ids)
        if ids:
            with self._write():
                self._db.execute("DELETE FROM items WHERE id IN (SELECT value FROM json_each(?))",
                                 (json.dumps(ids),))

    def count(self) -> int:
        """How many inputs the state holds."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM items").fetchone()[0]

    # -- what this run read --------------------------------------------------------------

    def mark_seen(self, ids: list[str]) -> set[str]:
        """Note ``ids`` as read in this run; returns those read before this call (repeats
        within ``ids`` itself are the caller's to find)."""
        packed = json.dumps(ids)
        with self._lock:
            before = self._db.execute(
                "SELECT json_group_array(id) FROM temp.seen WHERE id IN "
                "(SELECT value FROM json_each(?))", (packed,)).fetchone()[0]
            self._db.execute("INSERT OR IGNORE INTO temp.seen(id) SELECT value FROM "
                             "json_each(?)", (packed,))
        return set(json.loads(before))

    def gone(self) -> Iterator[tuple[str, str]]:
        """(id, source) of acknowledged inputs this run did not read, in id order, lazily."""
        last = ""
        while True:
            with self._lock:
                rows = self._db.execute(
                    "SELECT id, source FROM items WHERE id > ? AND id NOT IN "
                    "(SELECT id FROM temp.seen) ORDER BY id LIMIT 512", (last,)).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def count_gone(self) -> int:
        """How many acknowledged inputs this run did not read."""
        with self._lock:
            return self._db.execute("SELECT count(*) FROM items WHERE id NOT IN "
                                    "(SELECT id FROM temp.seen)").fetchone()[0]

    def close(self) -> None:
        """Close the file (and let another run have it)."""
        with self._lock:
            self._db.close()
        self._release()

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()  # closing the descriptor drops the lock
            self._held = None

    def __enter__(self) -> SyncState:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SyncState({str(self.path)!r})"


class _Transaction:
    """``with``: one IMMEDIATE transaction under the state's lock, committed on success."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
