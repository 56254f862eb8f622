"""Lines kept on local disk until an export's index files are written at the end.

Index files (a COCO JSON's ``images`` and ``annotations`` arrays, VOC's ``ImageSets``
lists) can only be written once every record was seen, yet must not be held in memory.
:class:`LineSpill` appends lines, grouped by a key (the file they belong to), to a
temporary SQLite file and gives them back in order, key by key.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator

from ..records import one_shot_encoder

__all__ = ["LineSpill", "compact_json"]


#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)`` of a JSON-like value
#: (no cycles), as a line of an index file.
compact_json = one_shot_encoder(separators=(",", ":"), ensure_ascii=False)

_FLUSH = 2000  # lines buffered in memory between inserts


class LineSpill:
    """Lines grouped by key, on disk; :meth:`lines` returns a key's lines in order."""

    def __init__(self, spill_dir: str | None = None) -> None:
        fd, self._path = tempfile.mkstemp(prefix="export-lines-", suffix=".sqlite",
                                          dir=spill_dir)
        os.close(fd)
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=FILE;"
            "CREATE TABLE line (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, text TEXT)")
        self._buffer: list[tuple[str, str]] = []
        self._counts: dict[str, int] = {}
        self._indexed = False

    def add(self, key: str, text: str) -> None:
        """Append ``text`` to the lines of ``key``."""
        self._buffer.append((key, text))
        self._counts[key] = self._counts.get(key, 0) + 1
        if len(self._buffer) >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO line (key, text) VALUES (?, ?)", self._buffer)
            self._db.execute("COMMIT")
            self._buffer.clear()

    def keys(self) -> list[str]:
        """The keys that have lines, in the order they first appeared."""
        return list(self._counts)

    def count(self, key: str) -> int:
        """How many lines ``key`` has."""
        return self._counts.get(key, 0)

    def lines(self, key: str) -> Iterator[str]:
        """The lines of ``key``, in the order they were added."""
        self._flush()
        if not self._indexed:
            self._db.execute("CREATE INDEX IF NOT EXISTS line_key ON line (key, seq)")
            self._indexed = True
        cursor = self._db.execute("SELECT text FROM line WHERE key=? ORDER BY seq", (key,))
        for (text,) in cursor:
            yield text

    def close(self) -> None:
        """Delete the temporary file."""
        self._buffer.clear()
        self._db.close()
        try:
            os.unlink(self._path)
        except OSError:
            pass
