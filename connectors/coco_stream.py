"""Streaming COCO JSON: read a large annotation file once, without holding the document.

A COCO file's three big arrays (``images``, ``annotations``, ``categories``) may come in any
order and annotations are rarely sorted by image. :class:`SectionReader` streams the items of
the top-level arrays in one pass with the standard library's C scanner (the one ``json.load``
uses), so only a chunk of text and the item being built are in memory.
:class:`AnnotationGroups` then groups the annotations by image with a fixed memory budget,
spilling the rest to a temporary SQLite file.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import pickle
import re
import sqlite3
import tempfile
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import IO, Any

from .json_guard import MAX_DEPTH, NestingGuard, NestingTooDeep

__all__ = ["AnnotationGroups", "CocoSyntaxError", "SectionReader"]

SECTIONS = ("images", "annotations", "categories")
CHUNK = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
# An error this close to the end of the text read so far may be an item cut by the chunk.
_TAIL = 16


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# NaN and Infinity are not JSON: refused as the C parser of ijson refused them.
_SCAN = json.JSONDecoder(parse_constant=_not_json).scan_once


class CocoSyntaxError(ValueError):
    """The JSON text is broken after ``count`` items of the section were read."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class SectionReader:
    """The items of the top-level arrays of a JSON object, streamed from a binary file.

    :meth:`items` yields ``(section, item)`` for each item of the arrays named in
    ``sections``; every other value is skipped item by item, so memory holds one chunk of
    text and one item whatever the file's size. Each item is parsed by ``json``'s C scanner
    (the cost of ``json.load``, without its document). Items nested deeper than
    :data:`~connectors.json_guard.MAX_DEPTH` levels are refused, checked only on items long
    enough to be. A syntax error raises :class:`CocoSyntaxError` naming its byte offset, after
    the items before it were yielded.
    """

    def __init__(self, handle: IO[bytes], chunk: int = CHUNK) -> None:
        self._handle = handle
        self._chunk = chunk
        self._decode = codecs.getincrementaldecoder("utf-8")().decode
        self._buf = ""
        self._pos = 0
        self._bytes_before = 0  # the bytes of the file before the buffer
        self._eof = False
        self.section = ""
        self.count = 0

    # -- the text ------------------------------------------------------------------------

    def _more(self) -> bool:
        """Read on (dropping what was consumed); False at the end of the file."""
        if self._eof:
            return False
        pending = len(self._buf) - self._pos
        data = self._handle.read(max(self._chunk, pending))  # doubles for a huge item
        try:
            text = self._decode(data, final=not data)
        except UnicodeDecodeError as exc:
            self._eof = True
            raise self._broken(f"not UTF-8 text ({exc.reason})", len(self._buf)) from None
        if not data:
            self._eof = True
        if self._bytes_before == 0 and not self._buf and text.startswith("\ufeff"):
            text, self._bytes_before = text[1:], 3  # a byte order mark
        buf = self._buf
        if self._pos:
            self._bytes_before += (self._pos if buf.isascii() else
                                   _utf8_length(buf[:self._pos]))
        self._buf = buf[self._pos:] + text
        self._pos = 0
        return True

    def _peek(self) -> str:
        """The next character that is not white space ('' at the end)."""
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _expect(self, char: str, what: str) -> None:
        if self._peek() != char:
            raise self._broken(f"expecting {what}", self._pos)
        self._pos += 1

    def _value(self) -> Any:
        """Parse the value at the cursor (reading on while it may be cut by the chunk)."""
        while True:
            buf, pos = self._buf, self._pos
            try:
                value, end = _SCAN(buf, pos)
            except StopIteration as exc:
                where, message = exc.value, "expecting a value"
            except json.JSONDecodeError as exc:
                where, message = exc.pos, exc.msg
            except RecursionError:
                raise self._too_deep(pos, len(buf)) from None
            except ValueError as exc:  # NaN, Infinity, a number of too many digits
                where, message = pos, str(exc)
            else:
                if end < len(buf) or self._eof or not self._more():
                    if end - pos > 2 * MAX_DEPTH:
                        self._check_depth(pos, end)
                    self._pos = end
                    return value
                continue  # a number may go on in the next chunk
            cut = message.startswith("Unterminated string") or where >= len(buf) - _TAIL
            if not (cut and self._more()):
                raise self._broken(message, where)

    def _check_depth(self, start: int, end: int) -> None:
        text = self._buf[start:end]
        if text.count("[") + text.count("{") <= MAX_DEPTH - 2:
            return
        try:  # the item is in the top-level object and its array: two levels down
            guard = NestingGuard(io.BytesIO(text.encode("utf-8", "surrogatepass")),
                                 MAX_DEPTH - 2)
            while guard.read(1 << 16):
                pass
        except NestingTooDeep:
            raise self._too_deep(start, end) from None

    # -- the structure -------------------------------------------------------------------

    def items(self, sections: Collection[str] = SECTIONS,
              wanted: Callable[[str], bool] = lambda section: True
              ) -> Iterator[tuple[str, Any]]:
        """``(section, item)`` for the items of each top-level array named in ``sections``
        that ``wanted(section)`` accepts when its key is reached; the rest is skipped."""
        if self._peek() == "{":
            for key in self._members():
                if key in sections and self._peek() == "[" and wanted(key):
                    self.section, self.count = key, 0
                    for item in self._array():
                        self.count += 1
                        yield key, item
                else:
                    self._skip()
        else:
            self._skip()  # a list or a scalar: JSON without sections
        if self._peek() != "":
            raise self._broken("extra data after the JSON value", self._pos)

    def _array(self) -> Iterator[Any]:
        """The items of the array at the cursor, each parsed whole."""
        self._pos += 1
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            buf, pos = self._buf, self._pos
            char = buf[pos] if pos < len(buf) else self._peek()
            if char in " \t\n\r":
                char = self._peek()
            self._pos += 1
            if char == "]":
                return
            if char != ",":
                raise self._broken("expecting ',' or ']'", self._pos - 1)
            if self._pos >= len(self._buf) or self._buf[self._pos] in " \t\n\r":
                self._peek()

    def _members(self) -> Iterator[str]:
        """The keys of the object at the cursor; after each, the caller reads its value."""
        self._pos += 1
        if self._peek() == "}":
            self._pos += 1
            return
        while True:
            if self._peek() != '"':
                raise self._broken("expecting a key", self._pos)
            key = self._value()
            self._expect(":", "':'")
            self._peek()
            yield key
            char = self._peek()
            self._pos += 1
            if char == "}":
                return
            if char != ",":
                raise self._broken("expecting ',' or '}'", self._pos - 1)

    def _skip(self) -> None:
        """Step over the value at the cursor, a container member by member (so a big value
        that is not a section never sits in memory whole)."""
        char = self._peek()
        if char == "[":
            for _ in self._array():
                pass
        elif char == "{":
            for _ in self._members():
                self._value()
        else:
            self._value()

    # -- errors --------------------------------------------------------------------------

    def _broken(self, message: str, where: int) -> CocoSyntaxError:
        counted = f" after {self.count} {self.section}" if self.section else ""
        return CocoSyntaxError(f"broken JSON{counted}: {message} at byte "
                               f"{self._byte(where)}", self.count)

    def _too_deep(self, start: int, end: int) -> CocoSyntaxError:
        exc = NestingTooDeep(MAX_DEPTH, self._byte(start), self._byte(end))
        counted = f", after {self.count} {self.section}" if self.section else ""
        return CocoSyntaxError(f"{exc}{counted}", self.count)

    def _byte(self, where: int) -> int:
        """The byte offset in the file of the character at ``where`` in the buffer."""
        return self._bytes_before + _utf8_length(self._buf[:where])


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class AnnotationGroups:
    """Annotations grouped by a key (the image), in memory up to ``budget`` items, then on disk.

    ``add`` keeps annotations in a dict. When ``budget`` are held, the dict is written to a
    temporary SQLite file as one pickled blob per hash bucket of the keys (a few hundred
    rows per spill, not one per key) and starts again. :meth:`groups` then gives every key
    its annotations in the order they were added, one bucket at a time, so reading back
    holds about 1/``BUCKETS`` of what was spilled.
    """

    BUCKETS = 256

    def __init__(self, budget: int = 50_000, spill_dir: str | None = None) -> None:
        self.budget = max(1, int(budget))
        self.spill_dir = spill_dir
        self._memory: dict[str, list[Any]] = {}
        self._held = 0
        self._db: sqlite3.Connection | None = None
        self._path: str | None = None
        self.spilled = 0

    @classmethod
    def bucket(cls, key: str) -> int:
        """The spill bucket of ``key`` (stable across runs and machines)."""
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % cls.BUCKETS

    def add(self, key: str, annotation: Any) -> None:
        """Remember ``annotation`` under ``key``."""
        group = self._memory.get(key)
        if group is None:
            self._memory[key] = [annotation]
        else:
            group.append(annotation)
        self._held += 1
        if self._held >= self.budget:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            fd, self._path = tempfile.mkstemp(prefix="coco-groups-", suffix=".sqlite",
                                              dir=self.spill_dir)
            os.close(fd)
            self._db = sqlite3.connect(self._path, isolation_level=None)
            self._db.executescript(
                "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
                "CREATE TABLE ann (seq INTEGER PRIMARY KEY, bucket INTEGER NOT NULL, data BLOB);")
        parts: dict[int, dict[str, list[Any]]] = {}
        bucket = self.bucket
        for key, items in self._memory.items():
            part = parts.get(bucket(key))
            if part is None:
                parts[bucket(key)] = {key: items}
            else:
                part[key] = items
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO ann (bucket, data) VALUES (?, ?)",
                             ((b, pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))
                              for b, part in parts.items()))
        self._db.execute("COMMIT")
        self.spilled += self._held
        self._memory = {}
        self._held = 0

    def groups(self, keys: Iterable[str]) -> Iterator[tuple[str, list[Any]]]:
        """``(key, annotations)`` for each of ``keys`` (each key once).

        Without a spill, in the order of ``keys``; after one, bucket by bucket (in the order
        of ``keys`` within a bucket): a deterministic order that reads each bucket once.
        """
        if self._db is None:
            for key in keys:
                yield key, self._memory.pop(key, [])
            return
        self._db.execute("CREATE INDEX IF NOT EXISTS ann_bucket ON ann (bucket, seq)")
        by_bucket: dict[int, list[str]] = {}
        for key in keys:
            by_bucket.setdefault(self.bucket(key), []).append(key)
        for number in sorted(by_bucket):
            merged: dict[str, list[Any]] = {}
            for (data,) in self._db.execute(
                    "SELECT data FROM ann WHERE bucket = ? ORDER BY seq", (number,)):
                for key, items in pickle.loads(data).items():
                    group = merged.get(key)
                    if group is None:
                        merged[key] = items
                    else:
                        group.extend(items)
            for key in by_bucket[number]:
                out = merged.pop(key, [])
                out.extend(self._memory.pop(key, ()))
                yield key, out

    def close(self) -> None:
        """Drop everything, deleting the spill file."""
        self._memory = {}
        self._held = 0
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._path:
            try:
                os.unlink(self._path)
            except OSError:
                pass
            self._path = None

    def __enter__(self) -> AnnotationGroups:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
