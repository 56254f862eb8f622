"""API-key checks for the local server. Keys are compared, never logged."""

from __future__ import annotations

import hmac
import os
import secrets

from clarifai_grpc.grpc.api.status import status_code_pb2

ENV_KEYS = "CLARIFAI_CONNECT_SERVER_PATS"  # comma-separated keys the server accepts


def generate_key() -> str:
    """A fresh random key, shaped like a Clarifai PAT (32 hex characters)."""
    return secrets.token_hex(16)


def keys_from_env() -> list[str]:
    """The keys listed in ``CLARIFAI_CONNECT_SERVER_PATS``."""
    return [k.strip() for k in os.environ.get(ENV_KEYS, "").split(",") if k.strip()]


class KeyAuth:
    """Accepts ``authorization: Key <PAT>`` or ``x-clarifai-session-token: <token>``."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("the server needs at least one accepted key")
        self._keys = [k.encode() for k in keys]

    def __repr__(self) -> str:
        return f"KeyAuth(<{len(self._keys)} keys>)"

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is one of the accepted keys (constant-time comparison)."""
        given = key.encode()
        return any(hmac.compare_digest(given, k) for k in self._keys)

    def check(self, metadata) -> tuple[int, str] | None:
        """None when the call may proceed, else the (status code, description) to answer."""
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
        if not self.accepts(key):
            return status_code_pb2.CONN_KEY_INVALID, "Invalid API key or Invalid API key/application pair"
        return None

    def check_http(self, header: str | None) -> bool:
        """Whether an HTTP ``Authorization`` header carries an accepted key."""
        if not header:
            return False
        scheme, _, rest = header.strip().partition(" ")
        return scheme.lower() in ("key", "bearer") and self.accepts(rest.strip())
