"""Signed-in browsers: an unguessable session token per sign-in, held in memory.

A token names the identity of the key that signed in (never the key itself). Sessions end
when the server stops, at sign-out, or after :data:`SESSION_SECONDS`.
"""

from __future__ import annotations

import secrets
import threading
import time
from http.cookies import CookieError, SimpleCookie

from ..auth import Identity

COOKIE = "cc_session"
SESSION_SECONDS = 12 * 3600


class Sessions:
    """Session tokens → identities, expiring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: dict[str, tuple[Identity, float]] = {}

    def open(self, identity: Identity) -> str:
        """A new session for ``identity``; returns its token."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            self._by_token = {t: v for t, v in self._by_token.items() if v[1] > now}
            self._by_token[token] = (identity, now + SESSION_SECONDS)
        return token

    def close(self, token: str | None) -> None:
        """End the session of ``token`` (if any)."""
        with self._lock:
            self._by_token.pop(token or "", None)

    def identity(self, cookie_header: str | None) -> Identity | None:
        """Who the session named in a ``Cookie`` header belongs to, or None."""
        token = token_of(cookie_header)
        if not token:
            return None
        with self._lock:
            found = self._by_token.get(token)
        if found is None or found[1] < time.time():
            return None
        return found[0]


def token_of(cookie_header: str | None) -> str | None:
    """The session token in a ``Cookie`` header, or None."""
    if not cookie_header:
        return None
    try:
        cookie = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel else None


def set_cookie(token: str) -> str:
    """The ``Set-Cookie`` value of a new session (HttpOnly: no script reads it)."""
    return (f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; "
            f"Max-Age={SESSION_SECONDS}")


def clear_cookie() -> str:
    """The ``Set-Cookie`` value that ends a session in the browser."""
    return f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
