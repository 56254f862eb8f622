"""Plain HTTP GETs for hosted media and export archives (stdlib only), with retries."""

from __future__ import annotations

import random
import shutil
import time
import urllib.error
import urllib.request
from typing import IO

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
    with _open(url, headers, timeout, retries) as response:
        return response.read(), response.headers.get("Content-Type", "")


def download_to(url: str, target: IO[bytes], headers: dict[str, str] | None = None,
                timeout: float = 120.0, retries: int = 3) -> str:
    """Stream ``url`` into the binary file ``target`` (memory stays at one chunk); returns
    the content type."""
    check_url(url)
    with _open(url, headers, timeout, retries) as response:
        shutil.copyfileobj(response, target, CHUNK)
        return response.headers.get("Content-Type", "")
