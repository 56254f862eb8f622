"""Batch transforms: a user function from a list of records to a list of records, run before upload.

``--transform my_module:fix`` (or ``transform:`` in a YAML settings file, or
``sync(transform=fix)``) names a function that gets each batch of records read from the
source and returns the records to sync: filtered, relabelled, enriched. Problems from the
source pass by it. A transform that raises fails the records of that batch (each with the
reason) and the run goes on; anything it returns that is not a Record fails too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .connector import Reader, ReadItem
from .errors import ConfigError
from .records import Problem, Record

__all__ = ["BatchTransform", "TransformedSource", "load_transform"]

BatchTransform = Callable[[list[Record]], Iterable[Record]]


def load_transform(spec: str | BatchTransform, base_dir: str | os.PathLike | None = None
                   ) -> BatchTransform:
    """The function named by ``spec`` (``module:function`` or ``path/to/file.py:function``).

    A module is imported with ``base_dir`` (default: the current directory) first on the
    import path, as ``python -m`` would; a callable ``spec`` is returned as it is.
    """
    if callable(spec):
        return spec
    text = str(spec or "").strip()
    module_name, sep, attr = text.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"transform '{text}' is not MODULE:FUNCTION (e.g. my_module:fix)")
    base = Path(base_dir or os.getcwd())
    try:
        if module_name.endswith(".py"):
            path = Path(module_name) if os.path.isabs(module_name) else base / module_name
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or not path.is_file():
                raise ConfigError(f"transform '{text}': no file {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            sys.path.insert(0, str(base))
            try:
                module = importlib.import_module(module_name)
            finally:
                sys.path.remove(str(base))
    except ConfigError:
        raise
    except Exception as exc:  # the user's module: any import error is a configuration error
        raise ConfigError(f"transform '{text}': cannot import {module_name}: "
                          f"{type(exc).__name__}: {exc}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"transform '{text}': {module_name} has no function {attr}")
    return function


class TransformedSource(Reader):
    """A reader whose records go through ``transform`` in batches of ``batch_size``.

    ``dropped`` counts records the transform left out, so the report can account for them.
    """

    name = "transformed"

    def __init__(self, reader: Reader, transform: BatchTransform, batch_size: int = 128,
                 label: str = "") -> None:
        super().__init__(reader.uri, storage_options=reader.storage_options)
        self.reader = reader
        self.transform = transform
        self.batch_size = max(1, int(batch_size))
        self.label = label or getattr(transform, "__name__", repr(transform))
        self.dropped = 0

    def __iter__(self) -> Iterator[ReadItem]:
        batch: list[Record] = []
        for item in self.reader:
            if not isinstance(item, Record):
                yield item  # a Problem (or junk, which the engine reports)
                continue
            batch.append(item)
            if len(batch) >= self.batch_size:
                yield from self._apply(batch)
                batch = []
        if batch:
            yield from self._apply(batch)

    def _apply(self, batch: list[Record]) -> Iterator[ReadItem]:
        try:
            out = list(self.transform(list(batch)))
        except Exception as exc:  # the user's code: its failure fails this batch only
            reason = f"transform {self.label} failed: {type(exc).__name__}: {exc}"
            for record in batch:
                yield Problem(record.source or f"record '{record.id}'", reason, id=record.id)
            return
        for index, item in enumerate(out):
            if isinstance(item, (Record, Problem)):
                yield item
            else:
                yield Problem(f"transform {self.label} result {index}",
                              f"is a {type(item).__name__}, not a Record")
        self.dropped += max(0, len(batch) - len(out))

    def count(self) -> int | None:
        """Unknown: a transform may filter or add records."""
        return None

    def __repr__(self) -> str:
        return f"TransformedSource({self.reader!r}, {self.label})"
