"""Credentials and connection settings: where the API is, how to reach it, who is calling.

``base_url`` forms:

- ``https://host[:port]`` — a TLS channel (``root_certificates_path`` replaces the system roots);
- ``http://host:port`` or a bare ``host:port`` — an insecure channel (a bare host without a
  port, or port 443, means TLS);
- ``local`` or ``local:PATH`` — the embedded local server, started in this process on first
  use (one per data folder, shared by every client object, stopped at exit), whose key is
  used automatically.

Channels are cached per target and shared: gRPC channels are thread-safe and expensive.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc

from ..errors import CredentialsMissing, UserError, register_secret

DEFAULT_BASE = "https://api.clarifai.com"
DEFAULT_UI = "https://clarifai.com"
ENV_PAT = "CLARIFAI_PAT"
ENV_TOKEN = "CLARIFAI_SESSION_TOKEN"
ENV_BASE = "CLARIFAI_API_BASE"
ENV_USER = "CLARIFAI_USER_ID"
ENV_APP = "CLARIFAI_APP_ID"
ENV_ROOT_CERTS = "CLARIFAI_ROOT_CERTIFICATES_PATH"
# 128 base64 images of several MB each fit in one message.
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024

_CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 0),  # the client retries itself, with a deadline and jitter
    ("grpc.keepalive_time_ms", 60_000),
]


def env(name: str) -> str:
    """The value of environment variable ``name`` stripped, or ''."""
    return os.environ.get(name, "").strip()


@dataclass(frozen=True)
class Endpoint:
    """Where the gRPC API answers: ``target`` (host:port), TLS or not, or the local server."""

    target: str
    tls: bool
    local_dir: str | None = None  # set for ``local`` endpoints: the server's data folder

    @property
    def is_local(self) -> bool:
        """Whether this endpoint is the embedded local server."""
        return self.local_dir is not None


def parse_base_url(base_url: str) -> Endpoint:
    """Turn a ``base_url`` into an :class:`Endpoint`; raises UserError when it cannot be read."""
    text = (base_url or "").strip()
    if not text:
        raise UserError("base_url is empty: give https://host, http://host:port or 'local'.")
    if text == "local" or text.startswith("local:"):
        path = text[len("local:"):] if text.startswith("local:") else ""
        from ..server import default_data_dir

        folder = Path(path).expanduser() if path else default_data_dir()
        return Endpoint(target="", tls=False, local_dir=str(folder.resolve()))
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise UserError(f"base_url '{text}' has scheme '{parts.scheme}': use https://, "
                            "http:// or 'local'.")
        if not parts.hostname:
            raise UserError(f"base_url '{text}' names no host.")
        try:
            port = parts.port
        except ValueError:
            raise UserError(f"base_url '{text}' has an invalid port.") from None
        tls = parts.scheme == "https"
        port = port or (443 if tls else 80)
        return Endpoint(target=f"{_host(parts.hostname)}:{port}", tls=tls)
    host, sep, port_text = text.rpartition(":")
    if sep and port_text.isdigit() and host:
        port = int(port_text)
        return Endpoint(target=f"{host}:{port}", tls=port == 443)
    if "/" in text or ":" in text:
        raise UserError(f"base_url '{text}' is not a URL: give https://host, http://host:port "
                        "or 'local'.")
    return Endpoint(target=f"{text}:443", tls=True)


def _host(hostname: str) -> str:
    return f"[{hostname}]" if ":" in hostname else hostname  # IPv6 literal


_servers: dict[str, Any] = {}
_channels: dict[tuple[str, bool, str], grpc.Channel] = {}
_lock = threading.Lock()


def local_server(data_dir: str) -> Any:
    """The embedded LocalServer of ``data_dir``, started on first use and stopped at exit."""
    with _lock:
        server = _servers.get(data_dir)
        if server is None:
            from ..server import LocalServer

            # In-process and on loopback, its generated key never leaves this process:
            # one key for whatever USER/APP the caller names.
            server = LocalServer(data_dir=data_dir, any_user=True).start()
            for key in server.keys:
                register_secret(key)
            _servers[data_dir] = server
        return server


@atexit.register
def _shutdown() -> None:
    with _lock:
        for channel in _channels.values():
            channel.close()
        _channels.clear()
        for server in _servers.values():
            server.stop(grace=0.5)
        _servers.clear()


def shared_channel(endpoint: Endpoint, root_certificates_path: str = "") -> grpc.Channel:
    """A channel to ``endpoint``, shared by every client object that names the same target."""
    target, tls = endpoint.target, endpoint.tls
    if endpoint.is_local:
        server = local_server(endpoint.local_dir)
        target, tls = f"{server.host}:{server.port}", False
    key = (target, tls, root_certificates_path if tls else "")
    with _lock:
        channel = _channels.get(key)
        if channel is None:
            if tls:
                roots = None
                if root_certificates_path:
                    roots = Path(root_certificates_path).read_bytes()
                credentials = grpc.ssl_channel_credentials(root_certificates=roots)
                channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
            else:
                channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
            _channels[key] = channel
        return channel


@dataclass(frozen=True, repr=False)
class ClientAuth:
    """Who calls (``pat`` or session ``token``), for which ``user_id``/``app_id``, and where.

    Build it with :meth:`resolve`, which reads arguments first and the ``CLARIFAI_*``
    environment variables second. Secrets are registered for redaction and never shown by
    ``repr``.
    """

    base_url: str
    endpoint: Endpoint
    user_id: str = ""
    app_id: str = ""
    pat: str = field(default="", compare=False)
    token: str = field(default="", compare=False)
    root_certificates_path: str = ""
    ui: str = DEFAULT_UI

    @classmethod
    def resolve(cls, user_id: str | None = None, app_id: str | None = None,
                base_url: str | None = None, pat: str | None = None, token: str | None = None,
                root_certificates_path: str | None = None, ui: str | None = None,
                ) -> ClientAuth:
        """Settings from arguments, falling back on the environment; fails fast on bad ones."""
        base_url = (base_url or env(ENV_BASE) or DEFAULT_BASE).strip()
        endpoint = parse_base_url(base_url)
        certs = root_certificates_path or env(ENV_ROOT_CERTS)
        if certs and not Path(certs).is_file():
            raise UserError(f"root_certificates_path '{certs}' is not a readable file.")
        pat, token = (pat or "").strip(), (token or "").strip()
        if endpoint.is_local:
            if not (pat or token):  # the embedded server's own key; env PATs are for the cloud
                pat = local_server(endpoint.local_dir).keys[0]
        elif not (pat or token):
            pat, token = env(ENV_PAT), env(ENV_TOKEN)
            if not (pat or token):
                # The CLI words this for its users (--pat, --base-url local).
                raise CredentialsMissing(
                    f"no credentials for {base_url}: pass pat= or token=, or set "
                    "CLARIFAI_PAT or CLARIFAI_SESSION_TOKEN (or use base_url='local' for the "
                    "local server)")
        register_secret(pat)
        register_secret(token)
        return cls(base_url=base_url, endpoint=endpoint,
                   user_id=(user_id or env(ENV_USER) or "").strip(),
                   app_id=(app_id or env(ENV_APP) or "").strip(),
                   pat=pat, token=token if not pat else "",
                   root_certificates_path=certs or "", ui=ui or DEFAULT_UI)

    def with_ids(self, user_id: str | None = None, app_id: str | None = None) -> ClientAuth:
        """The same connection for other ids (None keeps the current one)."""
        return replace(self, user_id=self.user_id if user_id is None else user_id,
                       app_id=self.app_id if app_id is None else app_id)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """gRPC metadata that authenticates a call."""
        if self.pat:
            return (("authorization", f"Key {self.pat}"),)
        return (("x-clarifai-session-token", self.token),)

    @property
    def http_headers(self) -> dict[str, str]:
        """HTTP headers that authenticate a download of hosted media."""
        if self.pat:
            return {"Authorization": f"Key {self.pat}"}
        return {"X-Clarifai-Session-Token": self.token, "Authorization": f"Bearer {self.token}"}

    def channel(self) -> grpc.Channel:
        """The shared channel to this endpoint."""
        return shared_channel(self.endpoint, self.root_certificates_path)

    def __repr__(self) -> str:
        kind = "pat" if self.pat else "token"
        return (f"ClientAuth(base_url={self.base_url!r}, user_id={self.user_id!r}, "
                f"app_id={self.app_id!r}, {kind}=***)")
