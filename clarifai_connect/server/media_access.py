"""Who may read a stored media key over HTTP: the users and apps whose records hold it.

Media are content-addressed and shared, so a key alone does not say whose it is. The
owners of every key are found by reading the stored inputs, annotations and frozen
dataset-version inputs of one user (their ``hosted.suffix`` fields), kept per user, and
read again when a key is not found among them (new uploads, URL downloads finished since)
— but only when the store was written since that user's last reading (SQLite's
``data_version``): a key that is nobody's, or another user's, costs one dictionary look-up
after the first miss, not a reading of every record of the user per request.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
import urllib.parse
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from . import wire
from .auth import Identity

_TABLES = (("inputs", resources_pb2.Input), ("annotations", resources_pb2.Annotation),
           ("dataset_version_inputs", resources_pb2.Input))
# A media key is a SHA-256 digest (64 hex digits): a stored record holding one holds the
# bytes that start a ``suffix`` field of that length. Records without them (most
# annotations: labels, boxes) are not parsed; those with them are, and only what parsing
# finds counts (the bytes alone never make anyone an owner).
_KEY_FIELD = wire.field(wire.tag(resources_pb2.HostedURL, "suffix"), b"0" * 64)[:2]


def hosted_keys(message: Any, out: set[str]) -> set[str]:
    """Add every ``hosted.suffix`` inside ``message`` (media, masks, nested parts) to ``out``."""
    hosting = _hosting_fields(message.DESCRIPTOR)
    for field, value in message.ListFields():
        if field.name not in hosting:
            continue
        if field.message_type is _HOSTED:
            if value.suffix:
                out.add(value.suffix)
        elif field.is_repeated:
            for item in value:
                hosted_keys(item, out)
        else:
            hosted_keys(value, out)
    return out


_HOSTED = resources_pb2.HostedURL.DESCRIPTOR


@functools.cache
def _hosting_fields(descriptor: Any) -> frozenset[str]:
    """The message fields of ``descriptor`` through which a ``hosted`` HostedURL can be
    reached (maps left out, as is a video's ``hosted_thumbnail``): a record's metadata,
    status and timestamps are never walked."""
    return frozenset(f.name for f in descriptor.fields if f.message_type is not None
                     and not f.message_type.GetOptions().map_entry
                     and (f.name == "hosted" if f.message_type is _HOSTED
                          else _reaches_hosted(f.message_type)))


@functools.cache
def _reaches_hosted(descriptor: Any) -> bool:
    """Whether a message of type ``descriptor`` can hold a HostedURL, however deep."""
    seen, todo = {descriptor}, [descriptor]
    while todo:
        current = todo.pop()
        if current is _HOSTED:
            return True
        for field in current.fields:
            kind = field.message_type
            if kind is not None and not kind.GetOptions().map_entry and kind not in seen:
                seen.add(kind)
                todo.append(kind)
    return False


class MediaAccess:
    """Answers whether an identity may read a media key; one per server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._refresh = threading.Lock()
        self._owners: dict[str, dict[str, set[str]]] = {}  # user → media key → app ids
        self._read_at: dict[str, int] = {}  # user → the store's data_version when read
        self._db: sqlite3.Connection | None = None  # used under ``_refresh`` only

    def allows(self, identity: Identity, key: str) -> bool:
        """Whether ``identity`` owns a record that holds ``key``."""
        return self.allows_many(identity, [key])[0]

    def allows_many(self, identity: Identity, keys: list[str]) -> list[bool]:
        """Whether ``identity`` owns a record holding each of ``keys`` (one reading of the
        user's records at most, however many of them are not known yet)."""
        if identity.user_id is None:
            return [True] * len(keys)
        found = [self._holds(identity, key) for key in keys]
        if all(found):
            return found
        # One reader at a time: the download threads of an export all miss at once, and
        # each reading every record of the user would multiply that work by their number.
        with self._refresh:
            if not all(self._holds(identity, k) for k, ok in zip(keys, found, strict=True) if not ok):
                self._read_user(identity.user_id)  # unless read by the lock's last holder
        return [ok or self._holds(identity, key) for key, ok in zip(keys, found, strict=True)]

    def _holds(self, identity: Identity, key: str) -> bool:
        apps = self._owners.get(identity.user_id or "", {}).get(key)
        return bool(apps) and (identity.app_id is None or identity.app_id in apps)

    def _read_user(self, user_id: str) -> None:
        """Read the owners of ``user_id``'s keys again, unless nothing was written since the
        last time (then a key not among them is not theirs). Called under ``_refresh``."""
        if self._db is None:
            # Its own connection, kept (only the thread holding ``_refresh`` uses it):
            # ``data_version`` tells it whether another connection committed since.
            uri = f"file:{urllib.parse.quote(str(self.server.store.path))}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False)
        db = self._db
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if self._read_at.get(user_id) == version:
            return
        owners: dict[str, set[str]] = {}
        db.execute("BEGIN")  # one snapshot for every table
        try:
            apps = dict(db.execute("SELECT pk, id FROM apps WHERE user_id=?", (user_id,)))
            for table, cls in _TABLES:
                for pk in apps:
                    for (proto,) in db.execute(f"SELECT proto FROM {table} WHERE app_pk=? "
                                               "AND instr(proto, ?) > 0", (pk, _KEY_FIELD)):
                        for key in hosted_keys(cls.FromString(proto), set()):
                            owners.setdefault(key, set()).add(apps[pk])
        finally:
            db.execute("COMMIT")
        with self._lock:
            self._owners[user_id] = owners
            self._read_at[user_id] = version

    def close(self) -> None:
        """Close the store connection."""
        with self._refresh:
            if self._db is not None:
                self._db.close()
                self._db = None
