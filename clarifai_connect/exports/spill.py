"""Lines kept on local disk until an export's index files are written at the end.

Index files (a COCO JSON's ``images`` and ``annotations`` arrays, VOC's ``ImageSets``
lists) can only be written once every record was seen, yet must not be held in memory.
:class:`LineSpill` appends lines, grouped by a key (the file they belong to), to a
temporary file (a few MB at a time) and gives them back in order, key by key.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

from ..records import one_shot_encoder

__all__ = ["LineSpill", "compact_json"]


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` of a JSON-like value
#: (no cycles), as a line of an index file.
compact_json = one_shot_encoder(separators=(",", ":"), ensure_ascii=False)

_FLUSH_BYTES = 1 << 22  # bytes of lines held in memory before they go to the file


class LineSpill:
    """Lines grouped by key, on disk; :meth:`lines` returns a key's lines in order.

    Lines are held in memory, per key, until they add up to :data:`_FLUSH_BYTES`; then
    each key's lines go to the end of one temporary file as a segment (one write of all
    of them, the key remembering where its segments are). Adding a line is a list append:
    no database statement per line (each of which also let other threads take the GIL
    from the writer). A line holds no newline (index lines are JSON or ids)."""

    def __init__(self, spill_dir: str | None = None) -> None:
        self._file = tempfile.TemporaryFile(prefix="export-lines-", dir=spill_dir)
        self._buffers: dict[str, list[str]] = {}
        # key → its segments in the file: (offset, length in bytes, lines)
        self._segments: dict[str, list[tuple[int, int, int]]] = {}
        self._held = 0
        self._end = 0

    def add(self, key: str, text: str) -> None:
        """Append ``text`` (no newline in it) to the lines of ``key``."""
        if "\n" in text:
            raise ValueError(f"a spilled line holds a newline: {text[:60]!r}")
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = []
            self._segments.setdefault(key, [])
        buffer.append(text)
        self._held += len(text) + 1
        if self._held >= _FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        self._file.seek(self._end)
        for key, buffer in self._buffers.items():
            if buffer:
                data = "\n".join(buffer).encode("utf-8", "surrogatepass")
                self._file.write(data)
                self._segments[key].append((self._end, len(data), len(buffer)))
                self._end += len(data)
                buffer.clear()
        self._held = 0

    def keys(self) -> list[str]:
        """The keys that have lines, in the order they first appeared."""
        return list(self._segments)

    def count(self, key: str) -> int:
        """How many lines ``key`` has."""
        return len(self._buffers.get(key) or ()) + sum(
            lines for _, _, lines in self._segments.get(key) or ())

    def lines(self, key: str) -> Iterator[str]:
        """The lines of ``key``, in the order they were added."""
        for offset, length, _ in list(self._segments.get(key) or ()):
            self._file.seek(offset)
            yield from self._file.read(length).decode("utf-8", "surrogatepass").split("\n")
        yield from list(self._buffers.get(key) or ())

    def close(self) -> None:
        """Delete the temporary file."""
        self._buffers.clear()
        self._segments.clear()
        self._file.close()
