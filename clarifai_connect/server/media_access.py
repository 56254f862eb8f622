"""Who may read a stored media key over HTTP: the users and apps whose records hold it.

Media are content-addressed and shared, so a key alone does not say whose it is. The
owners of every key are found by reading the stored inputs, annotations and frozen
dataset-version inputs of one user (their ``hosted.suffix`` fields), kept per user, and
read again when a key is not found among them (new uploads, URL downloads finished since).
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from .auth import Identity

_TABLES = (("inputs", resources_pb2.Input), ("annotations", resources_pb2.Annotation),
           ("dataset_version_inputs", resources_pb2.Input))


def hosted_keys(message: Any, out: set[str]) -> set[str]:
    """Add every ``hosted.suffix`` inside ``message`` (media, masks, nested parts) to ``out``."""
    for field, value in message.ListFields():
        if field.message_type is None or hasattr(value, "keys"):  # scalars, maps
            continue
        if field.name == "hosted":
            if value.suffix:
                out.add(value.suffix)
        elif hasattr(value, "ListFields"):
            hosted_keys(value, out)
        else:  # a repeated message field
            for item in value:
                hosted_keys(item, out)
    return out


class MediaAccess:
    """Answers whether an identity may read a media key; one per server."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._refresh = threading.Lock()
        self._owners: dict[str, dict[str, set[str]]] = {}  # user → media key → app ids

    def allows(self, identity: Identity, key: str) -> bool:
        """Whether ``identity`` owns a record that holds ``key``."""
        if identity.user_id is None:
            return True
        if self._holds(identity, key):
            return True
        # One reader at a time: the download threads of an export all miss at once, and
        # each reading every record of the user would multiply that work by their number.
        with self._refresh:
            if self._holds(identity, key):  # read by the thread that held the lock
                return True
            self._read_user(identity.user_id)
        return self._holds(identity, key)

    def _holds(self, identity: Identity, key: str) -> bool:
        apps = self._owners.get(identity.user_id or "", {}).get(key)
        return bool(apps) and (identity.app_id is None or identity.app_id in apps)

    def _read_user(self, user_id: str) -> None:
        owners: dict[str, set[str]] = {}
        # A short-lived connection: HTTP handlers run on throwaway threads (see media_blobs).
        uri = f"file:{urllib.parse.quote(str(self.server.store.path))}?mode=ro"
        db = sqlite3.connect(uri, uri=True, timeout=60)
        try:
            apps = dict(db.execute("SELECT pk, id FROM apps WHERE user_id=?", (user_id,)))
            for table, cls in _TABLES:
                for pk in apps:
                    for (proto,) in db.execute(f"SELECT proto FROM {table} WHERE app_pk=?",
                                               (pk,)):
                        for key in hosted_keys(cls.FromString(proto), set()):
                            owners.setdefault(key, set()).add(apps[pk])
        finally:
            db.close()
        with self._lock:
            self._owners[user_id] = owners
