"""Who may call the local server: keys that belong to users (or to one app), as on the real API.

A key is given as a spec: ``USER:KEY`` (a personal key of USER: every app of that user),
``USER/APP:KEY`` (an app-scoped key: that one app only), or ``*:KEY`` (an unbound key that
reaches every user's apps, for local development only). Keys are compared in constant
time and never logged; refusals carry the real API's status codes:

- no key: ``CONN_KEY_NOT_FOUND``; an unknown key, or an app-scoped key used on another
  app: ``CONN_KEY_INVALID`` ("Invalid API key or Invalid API key/application pair");
- a personal key used on another user's resources: ``CONN_INSUFFICIENT_SCOPES`` — except
  reading and predicting with the public models of the user ``clarifai``, as a PAT may.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clarifai_grpc.grpc.api.status import status_code_pb2

ENV_KEYS = "CLARIFAI_CONNECT_SERVER_PATS"  # comma-separated key specs the server accepts
ANY_USER = "*"
DEFAULT_USER = "me"
# The public models' owner: any personal key may read and predict with them (never change).
PUBLIC_USER = "clarifai"
_PAIR = "Invalid API key or Invalid API key/application pair"
# Methods on the apps collection: an app-scoped key reaches one app, never the list.
_APP_COLLECTION = frozenset({"PostApps", "ListApps", "PatchApps", "DeleteApps",
                             "PostAppsSearches"})


def _reads(method: str) -> bool:
    """Whether ``method`` only reads or predicts (what a PAT may do with public models)."""
    return method.startswith(("Get", "List")) or method in (
        "PostModelOutputs", "PostWorkflowResults")


def generate_key() -> str:
    """A fresh random key, shaped like a Clarifai PAT (32 hex characters)."""
    return secrets.token_hex(16)


def keys_from_env() -> list[str]:
    """The key specs listed in ``CLARIFAI_CONNECT_SERVER_PATS``."""
    return [k.strip() for k in os.environ.get(ENV_KEYS, "").split(",") if k.strip()]


@dataclass(frozen=True)
class Identity:
    """Whom a key belongs to: a user (``user_id``; None for the unbound development key)
    and, for an app-scoped key, one app."""

    user_id: str | None
    app_id: str | None = None

    def __str__(self) -> str:
        if self.user_id is None:
            return "any user"
        return f"user '{self.user_id}'" + (f", app '{self.app_id}'" if self.app_id else "")

    def may_use(self, user_id: str, app_id: str = "") -> bool:
        """Whether this identity reaches the app ``app_id`` of ``user_id`` (any app when
        ``app_id`` is empty and the key is personal)."""
        if self.user_id is None:
            return True
        if user_id != self.user_id:
            return False
        return self.app_id is None or app_id == self.app_id

    def refusal(self, method: str, user_id: str, app_id: str) -> tuple[int, str, str] | None:
        """None when a call of ``method`` on ``user_id``/``app_id`` is allowed, else the
        (status code, description, details) the real API answers."""
        if self.user_id is None:
            return None
        if self.app_id is not None and (method in _APP_COLLECTION or user_id != self.user_id
                                        or app_id != self.app_id):
            return (status_code_pb2.CONN_KEY_INVALID, _PAIR,
                    f"this key belongs to app '{self.app_id}' only")
        if user_id != self.user_id and not (user_id == PUBLIC_USER and self.app_id is None
                                            and _reads(method)):
            return (status_code_pb2.CONN_INSUFFICIENT_SCOPES, "API key has insufficient scopes",
                    f"the key of user '{self.user_id}' has no access to user '{user_id}'")
        return None


def parse_key_spec(spec: str, default_user: str | None = DEFAULT_USER) -> tuple[str, Identity]:
    """``(key, identity)`` of ``USER:KEY``, ``USER/APP:KEY``, ``*:KEY`` or a bare ``KEY``
    (which belongs to ``default_user``; None: any user). ValueError when malformed."""
    owner, sep, key = spec.strip().partition(":")
    if not sep:
        owner, key = default_user if default_user is not None else ANY_USER, owner
    key = key.strip()
    if not key or not owner.strip():
        raise ValueError("a key is given as USER:KEY, USER/APP:KEY or *:KEY")
    user, _, app = owner.strip().partition("/")
    if user == ANY_USER:
        if app:
            raise ValueError("an any-user key (*:KEY) cannot be bound to an app")
        return key, Identity(None)
    return key, Identity(user, app or None)


def read_keys_file(path: str | os.PathLike) -> list[str]:
    """The key specs of a keys file (one per line; ``#`` comments). Like ssh, refuses a file
    that others can read or write (it must be mode 0600 or stricter)."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the keys file {file}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"the keys file {file} is readable by others "
                         f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it")
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


class KeyAuth:
    """Accepts ``authorization: Key <PAT>`` or ``x-clarifai-session-token: <token>`` and
    tells whose key it is."""

    def __init__(self, keys: Iterable[tuple[str, Identity]]) -> None:
        self._keys = [(k.encode(), identity) for k, identity in keys]
        if not self._keys:
            raise ValueError("the server needs at least one accepted key")
        # Signs expiring media/export URLs; new per server start (old links stop working).
        self._secret = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"KeyAuth(<{len(self._keys)} keys>)"

    def add(self, key: str, identity: Identity) -> None:
        """Accept one more key (e.g. a test's second user)."""
        self._keys = [*self._keys, (key.encode(), identity)]

    @property
    def identities(self) -> list[Identity]:
        """Whom the accepted keys belong to, in order (no secrets)."""
        return [identity for _, identity in self._keys]

    def identify(self, key: str) -> Identity | None:
        """The identity of ``key``, or None when no accepted key matches (constant time)."""
        given = key.encode()
        found = None
        for known, identity in self._keys:
            if hmac.compare_digest(given, known) and found is None:
                found = identity
        return found

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is one of the accepted keys."""
        return self.identify(key) is not None

    def check(self, metadata) -> Identity | tuple[int, str]:
        """The caller's identity, or the (status code, description) to answer."""
        key = None
        for name, value in metadata or ():
            if name == "authorization":
                scheme, _, rest = value.strip().partition(" ")
                if scheme.lower() == "key" and rest.strip():
                    key = rest.strip()
            elif name == "x-clarifai-session-token" and value.strip():
                key = value.strip()
        if key is None:
            return (status_code_pb2.CONN_KEY_NOT_FOUND,
                    "API key not found: send 'authorization: Key <PAT>'")
        identity = self.identify(key)
        if identity is None:
            return status_code_pb2.CONN_KEY_INVALID, _PAIR
        return identity

    def check_http(self, header: str | None) -> Identity | None:
        """The identity of an HTTP ``Authorization: Key|Bearer <key>`` header, or None."""
        if not header:
            return None
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() not in ("key", "bearer") or not rest.strip():
            return None
        return self.identify(rest.strip())

    # -- signed URLs ----------------------------------------------------------------------

    def sign(self, path: str, seconds: float = 3600) -> str:
        """A query string (``expires=…&signature=…``) that lets ``path`` be fetched without
        a key until it expires."""
        expires = int(time.time() + seconds)
        return f"expires={expires}&signature={self._signature(path, expires)}"

    def signed(self, path: str, expires: str | None, signature: str | None) -> bool:
        """Whether ``signature`` signs ``path`` and ``expires`` has not passed."""
        if not expires or not signature or not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, self._signature(path, int(expires)))

    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
