"""The connector contract: readers turn a source into records, writers turn records into files.

A :class:`Reader` is built from a source URI (any fsspec URL), ``storage_options`` passed
through to fsspec, and keyword options of its own; iterating it lazily yields
:class:`~clarifai_connect.records.Record` for good items and
:class:`~clarifai_connect.records.Problem` for broken ones, and goes on after a problem.
A :class:`Writer` is built from a destination URI the same way and is fed records.
Plugins register reader and writer classes through the hooks in :mod:`clarifai_connect.hookspecs`.
"""

from __future__ import annotations

import os.path
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from .errors import SourceError
from .records import Problem, Record

__all__ = ["Reader", "Writer", "ReadItem", "filesystem", "resolve_uri", "display_uri"]


ReadItem = Record | Problem

def filesystem(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec filesystem and the path within it for ``uri`` (local paths included)."""
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(uri, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise SourceError(f"cannot open {display_uri(uri)}: {exc}") from None


def display_uri(uri: str) -> str:
    """``uri`` safe to show: any ``user:password@`` part of a URL is removed."""
    if "://" in uri and "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = uri.split("://", 1)
        host_part, _, path = rest.partition("/")
        return f"{scheme}://{host_part.rsplit('@', 1)[1]}/{path}"
    return uri


def resolve_uri(base_uri: str, ref: str) -> str:
    """Resolve ``ref`` (a URL, an absolute path or a path relative to the file ``base_uri``).

    ``https://…`` and other URLs are kept; a relative path is joined to the directory of
    ``base_uri`` keeping its protocol, so ``img/a.jpg`` in ``s3://b/data.csv`` becomes
    ``s3://b/img/a.jpg``.
    """
    if "://" in ref or ref.startswith("/"):
        return ref
    if "://" in base_uri:
        scheme, rest = base_uri.split("://", 1)
        return f"{scheme}://{posixpath.normpath(posixpath.join(posixpath.dirname(rest), ref))}"
    return os.path.normpath(os.path.join(os.path.dirname(base_uri), ref))


class Reader(ABC):
    """Reads one source lazily into records.

    Subclasses set ``name`` (the format name users type: ``csv``, ``folder``…) and a one-line
    ``description``, take their own options as keyword-only ``__init__`` parameters (so an
    unknown option fails fast) and implement :meth:`__iter__`. They never read the whole
    source into memory and never stop at a broken item: it becomes a :class:`Problem`.
    A source that cannot be opened at all raises :class:`~clarifai_connect.errors.SourceError`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        # May hold credentials: kept out of reprs and errors.
        self.storage_options: dict[str, Any] = dict(storage_options or {})

    @abstractmethod
    def __iter__(self) -> Iterator[ReadItem]:
        """Yield a Record or a Problem per source item, lazily."""

    def count(self) -> int | None:
        """How many items the source holds when that is cheap to know (for progress), else None."""
        return None

    @classmethod
    def detect(cls, uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
        """Whether ``uri`` looks like this format (used by format detection); False by default."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"


class Writer(ABC):
    """Writes records to a destination (an exporter): a context manager fed with :meth:`write`.

    Subclasses set ``name`` and ``description``, take their options as keyword-only
    ``__init__`` parameters, implement :meth:`write` and, when they buffer, :meth:`close`
    (which must leave a complete, valid output). Media is read through
    ``record.media.read_bytes()`` only when the format stores it.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, uri: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        self.storage_options: dict[str, Any] = dict(storage_options or {})

    @abstractmethod
    def write(self, record: Record) -> None:
        """Write one record."""

    def close(self) -> None:
        """Finish the output (indexes, footers); called once, also after an error."""
        return None

    def write_all(self, records: Iterable[Record]) -> int:
        """Write every record and close; returns how many were written."""
        written = 0
        with self:
            for record in records:
                self.write(record)
                written += 1
        return written

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({display_uri(self.uri)!r})"
