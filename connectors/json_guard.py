"""A guard against JSON nested absurdly deep, checked on the bytes before ijson sees them.

ijson keeps the path ("prefix") of every open level, so its memory grows with the square
of the nesting depth: ``[[[[…]]]]`` 20,000 levels deep takes about 1 GB, 100,000 levels
exhausts the machine, whatever the file size. :class:`NestingGuard` wraps a binary file,
tracks the depth of brackets outside strings as the bytes are read (about 1 s per 200 MB:
string contents are dropped with ``bytes.split``, or a regex when the chunk has escapes) and
raises :class:`NestingTooDeep` at the first level past the limit. :class:`ReadLimit` stops a
later pass over the same file at the offset where the first one was refused.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import IO

__all__ = ["MAX_DEPTH", "NestingGuard", "NestingTooDeep", "ReadLimit"]

# COCO needs 5 levels; generous room for nested attributes, far below ijson's danger zone.
MAX_DEPTH = 512
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class NestingTooDeep(ValueError):
    """The JSON nests deeper than allowed in the chunk starting at ``offset``."""

    def __init__(self, depth: int, start: int, end: int) -> None:
        super().__init__(f"JSON nested deeper than {depth} levels within bytes {start}-{end}")
        self.offset = start


class NestingGuard:
    """A read-only binary file that raises :class:`NestingTooDeep` once the JSON it holds
    goes deeper than ``max_depth``; ``offset`` counts the bytes handed out."""

    def __init__(self, handle: IO[bytes], max_depth: int = MAX_DEPTH) -> None:
        self.handle = handle
        self.max_depth = max_depth
        self.offset = 0
        self._depth = 0
        self._in_string = False
        self._pending = b""  # trailing backslashes: an escape may continue in the next chunk

    def read(self, size: int = -1) -> bytes:
        """Read like the wrapped file, checking the depth of what is returned."""
        chunk = self.handle.read(size)
        if chunk or self._pending:
            self._check(chunk)
        self.offset += len(chunk)
        return chunk

    def _check(self, chunk: bytes) -> None:
        data = self._pending + chunk
        if chunk:
            kept = len(data.rstrip(b"\\"))
            data, self._pending = data[:kept], data[kept:]
        else:
            self._pending = b""
        if b"\\" not in data:
            # No escapes: quotes alternate, so every other piece is outside a string.
            pieces = data.split(b'"')
            outside = b"".join(pieces[1::2] if self._in_string else pieces[0::2])
            if len(pieces) % 2 == 0:
                self._in_string = not self._in_string
        else:
            outside = _STRING.sub(b"", (b'"' if self._in_string else b"") + data)
            quote = outside.find(b'"')
            self._in_string = quote >= 0
            if self._in_string:
                outside = outside[:quote]
        steps = outside.translate(None, _NOT_BRACKETS).translate(_STEPS)
        if not steps:
            return
        signed = array("b", steps)
        if self._depth + len(signed) > self.max_depth and \
                max(accumulate(signed, initial=self._depth)) > self.max_depth:
            raise NestingTooDeep(self.max_depth, self.offset, self.offset + len(chunk))
        self._depth += sum(signed)


class ReadLimit:
    """A read-only binary file that ends at ``limit`` bytes."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.remaining = limit

    def read(self, size: int = -1) -> bytes:
        """Read like the wrapped file, never past the limit."""
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        chunk = self.handle.read(size)
        self.remaining -= len(chunk)
        return chunk
