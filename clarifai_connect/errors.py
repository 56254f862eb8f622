"""Typed errors shared by the client, the engine and the CLI.

Every error that can reach a user says what went wrong in one sentence and never carries a
credential: messages pass through :func:`redact` before they are stored.
"""

from __future__ import annotations

import re
from typing import Any

# The exit codes of the command line (documented in the README, enforced by tests).
EXIT_OK = 0  # every item landed (or was already there)
EXIT_FAILED = 1  # the run finished, but some items failed: see the report
EXIT_USAGE = 2  # bad arguments or configuration: nothing was done
EXIT_AUTH = 3  # the API refused the credentials
EXIT_UNREACHABLE = 4  # the API did not answer: a rerun resumes
EXIT_INTERRUPTED = 130  # Ctrl-C: a rerun resumes

# Anything that looks like a key in an authorization header, or a value after pat=/token=
# that looks like a secret: long and holding a digit, so that prose ("pass pat= or token=",
# "the key configuration") is never rewritten.
_SECRETISH = r"(?=[^\s'\",)]*\d)[^\s'\",)]{8,}"
_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*['\"]?key\s+)[^\s'\"]+"),
    re.compile(r"(?i)(x-clarifai-session-token['\"]?\s*[:=,]\s*['\"]?)[^\s'\"]+"),
    re.compile(r"(?i)(\bkey\s+)(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(\b(?:pat|token|secret|password)\s*[=:]\s*['\"]?)" + _SECRETISH),
]
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential so that :func:`redact` removes it wherever it appears."""
    if value and len(value) >= 4:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with every known credential and key-shaped token replaced by ``***``."""
    if not text:
        return text
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text


class ClarifaiConnectError(Exception):
    """Base class of every error raised by clarifai-connect."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(str(message)))


class UserError(ClarifaiConnectError):
    """Bad arguments or configuration: the caller must change something."""

    exit_code = EXIT_USAGE


class CredentialsMissing(UserError):
    """No key or session token was given for an API that needs one."""


class ConfigError(UserError):
    """A configuration file or option is invalid."""


class SourceError(UserError):
    """A source could not be read (missing, unreadable, or not of the expected format)."""


class PortTaken(UserError):
    """A server cannot listen on the port it was given."""


class ApiClientError(ClarifaiConnectError):
    """The client could not talk to the API at all (connection, TLS, protocol)."""

    exit_code = EXIT_FAILED


class ApiUnreachableError(ApiClientError):
    """The API did not answer: never reached, or every call failed for the give-up time."""

    exit_code = EXIT_UNREACHABLE


class ApiError(ClarifaiConnectError):
    """The API answered a call with a failure status.

    Carries the Clarifai status ``code``, its ``description`` and ``details``, the
    ``request_id`` and the name of the ``method`` that failed.
    """

    exit_code = EXIT_FAILED

    def __init__(
        self,
        method: str = "",
        code: int = 0,
        description: str = "",
        details: str = "",
        request_id: str = "",
        response: Any = None,
    ) -> None:
        self.method = method
        self.code = int(code)
        self.description = redact(description)
        self.details = redact(details)
        self.request_id = request_id
        self.response = response
        parts = [f"{method} failed" if method else "API call failed", f"status {self.code}"]
        if self.description:
            parts.append(self.description)
        if self.details:
            parts.append(self.details)
        if request_id:
            parts.append(f"request id {request_id}")
        super().__init__(": ".join(parts[:1]) + " (" + ", ".join(parts[1:]) + ")")

    def __reduce__(self):  # keep the error picklable (multiprocessing, pytest-xdist)
        return (
            type(self),
            (self.method, self.code, self.description, self.details, self.request_id),
        )


class AuthError(ApiError):
    """The API refused the credentials (a wrong, expired or under-scoped key)."""

    exit_code = EXIT_AUTH

    @property
    def reason(self) -> str:
        """What the API said, without the call's name: ``Invalid API key (status 11008)``."""
        what = self.description or "refused"
        return f"{what} (status {self.code})" if self.code else what
