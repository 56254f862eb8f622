"""Small helpers of the client: Chunker, read-ahead, Clarifai UI URL parsing, input id
cleaning."""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import UserError

T = TypeVar("T")

# Resource types that appear in UI URLs, singular and plural spellings accepted.
RESOURCE_TYPES = {
    "models": "models", "model": "models", "workflows": "workflows", "workflow": "workflows",
    "datasets": "datasets", "dataset": "datasets", "modules": "modules", "module": "modules",
    "inputs": "inputs", "input": "inputs", "concepts": "concepts", "concept": "concepts",
}


class Chunker:
    """Split an input sequence into small chunks of ``size`` items (the last may be shorter)."""

    def __init__(self, seq: Sequence[T], size: int) -> None:
        if size < 1:
            raise UserError(f"Chunker size must be 1 or more, got {size}.")
        self.seq = seq
        self.size = size

    def chunk(self) -> list[list[T]]:
        """Chunk input sequence."""
        return [list(self.seq[pos:pos + self.size]) for pos in range(0, len(self.seq), self.size)]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lazily group any iterable into lists of at most ``size`` items."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


_END = object()


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items``, produced by a thread of their own up to ``depth`` ahead of
    the consumer: a listing asks for its next page while the caller handles this one.
    An error of ``items`` is raised where the consumer reached it; closing the iterator
    stops the thread at its next item."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_END, None))
        except BaseException as exc:  # handed over: raised in the consumer
            offer((_END, exc))

    thread = threading.Thread(target=produce, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()


@dataclass(frozen=True)
class ClarifaiUrl:
    """The parts of a Clarifai UI URL ``https://clarifai.com/USER/APP[/TYPE/ID[/versions/VID]]``."""

    user_id: str
    app_id: str
    resource_type: str = ""
    resource_id: str = ""
    version_id: str = ""


def parse_clarifai_url(url: str) -> ClarifaiUrl:
    """Split a UI URL into its ids; tolerant of a trailing slash, query and fragment.

    Raises UserError naming the URL when it has not the shape of a Clarifai resource URL.
    """
    text = (url or "").strip()
    if "://" not in text:
        text = "https://" + text.lstrip("/")
    parts = [p for p in urlsplit(text).path.split("/") if p]
    shape = ("https://clarifai.com/USER/APP, or .../USER/APP/TYPE/ID, or "
             ".../USER/APP/TYPE/ID/versions/VERSION")
    if len(parts) not in (2, 4, 6):
        raise UserError(f"URL '{url}' is not a Clarifai resource URL: expected {shape}.")
    user_id, app_id = parts[0], parts[1]
    if len(parts) == 2:
        return ClarifaiUrl(user_id, app_id)
    kind = RESOURCE_TYPES.get(parts[2].lower())
    if kind is None:
        raise UserError(f"URL '{url}' names an unknown resource type '{parts[2]}': expected one "
                        f"of {', '.join(sorted(set(RESOURCE_TYPES.values())))}.")
    version = ""
    if len(parts) == 6:
        if parts[4].lower() not in ("versions", "version", "version_id"):
            raise UserError(f"URL '{url}' is not a Clarifai resource URL: expected {shape}.")
        version = parts[5]
    return ClarifaiUrl(user_id, app_id, kind, parts[3], version)


def expect_url(url: str, resource_type: str | None) -> ClarifaiUrl:
    """Parse ``url`` and check that it names ``resource_type`` (None: an app URL)."""
    parsed = parse_clarifai_url(url)
    if resource_type is None:
        if parsed.resource_type:
            # An app object may be made from any URL inside the app.
            return ClarifaiUrl(parsed.user_id, parsed.app_id)
        return parsed
    if parsed.resource_type != resource_type:
        raise UserError(f"URL '{url}' does not name a {resource_type[:-1]}: expected "
                        f"https://clarifai.com/USER/APP/{resource_type}/ID.")
    return parsed


def resource_ids(url: str, resource_id: str, resource_type: str, user_id: str, app_id: str,
                 version_id: str = "") -> tuple[str, str, str, str]:
    """(user_id, app_id, resource id, version id) of a resource object made from a UI
    ``url`` (naming ``resource_type``, e.g. "workflows") or from the ids given."""
    if url and resource_id:
        raise UserError(f"Give either url or {resource_type[:-1]}_id, not both.")
    if not url:
        return user_id, app_id, resource_id, version_id
    parsed = expect_url(url, resource_type)
    return parsed.user_id, parsed.app_id, parsed.resource_id, parsed.version_id or version_id


def clean_input_id(input_id: str) -> str:
    """Turn a file name or free text into a valid input id (lower case, '_' and '-' kept)."""
    input_id = re.sub(r"[., /]+", "_", input_id)
    input_id = re.sub(r"_+", "_", input_id)
    input_id = re.sub(r"-+", "-", input_id)
    input_id = input_id.lower().strip("_-")
    return re.sub(r"[^a-z0-9\-_]+", "", input_id)


def make_proto(message_cls: Any, what: str, **fields: Any) -> Any:
    """``message_cls(**fields)``, with a UserError naming ``what`` for unknown or ill-typed
    fields instead of protobuf's ValueError/TypeError."""
    known = message_cls.DESCRIPTOR.fields_by_name
    unknown = sorted(k for k in fields if k not in known)
    if unknown:
        raise UserError(f"{what} got unknown argument(s) {', '.join(unknown)}: "
                        f"{message_cls.__name__} has no such field.")
    try:
        return message_cls(**fields)
    except (TypeError, ValueError) as err:
        raise UserError(f"{what} got an invalid argument: {err}") from None
