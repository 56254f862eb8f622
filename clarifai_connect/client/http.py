"""Plain HTTP GETs for hosted media and export archives (stdlib only), with retries.

:func:`fetch` keeps one connection per host and thread alive between requests (HTTP/1.1
keep-alive), as an export fetches thousands of small media files from one host: a new
TCP (and TLS) connection per file costs more than the file. It follows redirects; with a
proxy configured for the host it goes through urllib, which knows proxies. :func:`post`
sends one POST the same way (the local server's media batches, :mod:`.media_batch`).
"""

from __future__ import annotations

import functools
import http.client
import random
import shutil
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import IO
from urllib.parse import urljoin, urlsplit

from ..errors import ApiClientError, redact

RETRY_HTTP = frozenset({429, 500, 502, 503, 504})
CHUNK = 1 << 20


class HttpError(ApiClientError):
    """A GET failed; ``status`` is the HTTP status (0 when no answer came)."""

    def __init__(self, url: str, status: int, reason: str) -> None:
        self.url = url
        self.status = status
        super().__init__(f"GET {_short(url)} failed: "
                         + (f"HTTP {status} {reason}" if status else reason))


def _short(url: str) -> str:
    return redact(url.split("?")[0])


def _open(url: str, headers: dict[str, str] | None, timeout: float, retries: int):
    delay = 0.2
    for attempt in range(retries + 1):
        request = urllib.request.Request(url, headers=headers or {})
        try:
            return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as err:
            err.close()
            if err.code not in RETRY_HTTP or attempt == retries:
                raise HttpError(url, err.code, err.reason) from err
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            if attempt == retries:
                raise HttpError(url, 0, str(reason)) from err
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, 5.0)
    raise HttpError(url, 0, "no attempt made")  # not reached: the loop returns or raises


def check_url(url: str) -> None:
    """Refuse anything but http(s) URLs (urllib would also open file:// and ftp://)."""
    if not url.startswith(("http://", "https://")):
        raise ApiClientError(f"cannot download '{_short(url)}': only http(s) URLs are supported")


def fetch(url: str, headers: dict[str, str] | None = None, timeout: float = 60.0,
          retries: int = 3) -> tuple[bytes, str]:
    """GET ``url``; returns (body, content type). Raises HttpError naming the URL."""
    check_url(url)
    if _proxied(url):
        with _open(url, headers, timeout, retries) as response:
            return response.read(), response.headers.get("Content-Type", "")
    delay = 0.2
    for attempt in range(retries + 1):
        try:
            status, reason, body, content_type = _get(url, headers or {}, timeout)
        except (OSError, http.client.HTTPException) as err:
            if attempt == retries:
                raise HttpError(url, 0, str(err) or type(err).__name__) from err
        else:
            if status < 300:
                return body, content_type
            if status not in RETRY_HTTP or attempt == retries:
                raise HttpError(url, status, reason)
        time.sleep(random.uniform(0, delay))
        delay = min(delay * 2, 5.0)
    raise HttpError(url, 0, "no attempt made")  # not reached: the loop returns or raises


_local = threading.local()
_TLS = ssl.create_default_context()


def _proxied(url: str) -> bool:
    parts = urlsplit(url)
    return _proxied_host(parts.scheme, parts.hostname or "")


@functools.lru_cache(maxsize=256)
def _proxied_host(scheme: str, host: str) -> bool:
    """Whether urllib would send a request to ``host`` through a proxy (read once per
    host: scanning the environment on every request cost more than a small download)."""
    return bool(urllib.request.getproxies().get(scheme)) and \
        not urllib.request.proxy_bypass(host)


def _connection(scheme: str, netloc: str, timeout: float) -> http.client.HTTPConnection:
    """This thread's open connection to ``netloc`` (made on first use)."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    connection = pool.get((scheme, netloc))
    if connection is None:
        if scheme == "https":
            connection = http.client.HTTPSConnection(netloc, timeout=timeout, context=_TLS)
        else:
            connection = http.client.HTTPConnection(netloc, timeout=timeout)
        pool[(scheme, netloc)] = connection
    return connection


def post(url: str, body: bytes, headers: Mapping[str, str],
         timeout: float = 60.0) -> tuple[int, bytes]:
    """One POST of ``body`` (no retries, no redirects followed); returns (status, body).
    OSError when no answer came."""
    check_url(url)
    if _proxied(url):
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            err.close()
            return err.code, b""
        except urllib.error.URLError as err:
            raise OSError(str(err.reason)) from err
    try:
        status, _, answer, _ = _get(url, dict(headers), timeout, method="POST", body=body)
    except http.client.HTTPException as err:
        raise OSError(str(err) or type(err).__name__) from err
    return status, answer


def _get(url: str, headers: dict[str, str], timeout: float, redirects: int = 5,
         method: str = "GET", body: bytes | None = None) -> tuple[int, str, bytes, str]:
    """One GET (or ``method``) over a kept-alive connection (reopened once if the server
    had closed it), following a GET's redirects; returns (status, reason, body, content
    type)."""
    for _ in range(redirects + 1):
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for fresh in (False, True):
            connection = _connection(parts.scheme, parts.netloc, timeout)
            try:
                connection.request(method, target, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                connection.close()
                _local.pool.pop((parts.scheme, parts.netloc), None)
                if fresh:
                    raise
            except BaseException:
                connection.close()
                _local.pool.pop((parts.scheme, parts.netloc), None)
                raise
        if response.will_close:
            connection.close()
            _local.pool.pop((parts.scheme, parts.netloc), None)
        location = response.getheader("Location")
        if response.status in (301, 302, 303, 307, 308) and location and method == "GET":
            next_url = urljoin(url, location)
            if urlsplit(next_url).netloc != parts.netloc:
                headers = {k: v for k, v in headers.items()  # the key stays with its host
                           if k.lower() not in ("authorization", "x-clarifai-session-token")}
            url = next_url
            check_url(url)
            continue
        return (response.status, response.reason, answer,
                response.getheader("Content-Type", "") or "")
    raise http.client.HTTPException(f"more than {redirects} redirects")


def download_to(url: str, target: IO[bytes], headers: dict[str, str] | None = None,
                timeout: float = 120.0, retries: int = 3) -> str:
    """Stream ``url`` into the binary file ``target`` (memory stays at one chunk); returns
    the content type."""
    check_url(url)
    with _open(url, headers, timeout, retries) as response:
        shutil.copyfileobj(response, target, CHUNK)
        return response.headers.get("Content-Type", "")
