"""Many hosted media of a local server in one request (``POST …/media/batch``).

The local server's hosted URLs end in ``/media/orig/<64 hex>``; it also answers a POST of
many such keys with their bytes in one body (:data:`clarifai_connect.server.media_http.BATCH_PATH`
describes the format). An export of a local-server app then costs one request per page of
media, not one per input. Any other URL — the Clarifai cloud's, a third party's — is never
batched, and a host that answers the POST with an error is remembered and asked one URL
at a time from then on: :func:`fetch_many` leaves ``None`` for what its caller must GET.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence

from .http import post

__all__ = ["batch_key", "fetch_many"]

log = logging.getLogger("clarifai_connect.client.media")

_HOSTED = re.compile(r"^(https?://[^/?#]+)/media/orig/([0-9a-f]{64})$")
_MAX_KEYS = 512  # the server's BATCH_KEYS
_refused: set[str] = set()  # hosts whose answer to the batch POST was not one
_lock = threading.Lock()


def batch_key(url: str | None) -> tuple[str, str] | None:
    """``(host URL, media key)`` when ``url`` is a local server's hosted URL on a host not
    known to refuse batches; else None."""
    match = _HOSTED.match(url or "")
    if match is None or match.group(1) in _refused:
        return None
    return match.group(1), match.group(2)


def fetch_many(urls: Sequence[str], headers: Mapping[str, str]) -> list[bytes | None]:
    """The bytes of each of ``urls`` that a batch answer held, in order; None for the rest
    (not batchable, refused, missing, or past the answer's size bound): GET those."""
    out: list[bytes | None] = [None] * len(urls)
    by_host: dict[str, list[tuple[int, str]]] = {}
    for index, url in enumerate(urls):
        found = batch_key(url)
        if found is not None:
            by_host.setdefault(found[0], []).append((index, found[1]))
    for host, wanted in by_host.items():
        for start in range(0, len(wanted), _MAX_KEYS):
            part = wanted[start:start + _MAX_KEYS]
            bodies = _post_batch(host, [key for _, key in part], headers)
            for (index, _), body in zip(part, bodies, strict=True):
                out[index] = body
    return out


def _post_batch(host: str, keys: list[str], headers: Mapping[str, str]) -> list[bytes | None]:
    body = json.dumps({"keys": keys}).encode()
    try:
        status, payload = post(f"{host}/media/batch", body,
                               {**headers, "Content-Type": "application/json"})
    except OSError as err:  # the GETs that follow retry, and say what went wrong
        log.debug("media batch from %s failed: %s", host, err)
        return [None] * len(keys)
    if status in (400, 404, 405, 501):  # not a server that batches: never ask it again
        with _lock:
            _refused.add(host)
        return [None] * len(keys)
    if status != 200:  # a refused key (401), a transient fault: each GET says why
        return [None] * len(keys)
    try:
        head, _, rest = payload.partition(b"\n")
        sizes = json.loads(head)["sizes"]
        if len(sizes) != len(keys) or sum(max(s, 0) for s in sizes) != len(rest):
            raise ValueError("sizes do not match the body")
    except (ValueError, KeyError, TypeError) as err:
        log.debug("media batch from %s unreadable: %s", host, err)
        with _lock:
            _refused.add(host)
        return [None] * len(keys)
    out: list[bytes | None] = []
    offset = 0
    for size in sizes:
        if size < 0:
            out.append(None)
        else:
            out.append(rest[offset:offset + size])
            offset += size
    return out
