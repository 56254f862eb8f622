"""Keyset paging for ListInputs: page N+1 starts after the last ``seq`` of page N.

ListInputs is page-numbered (``page``, ``per_page``), and ``LIMIT … OFFSET`` makes page N
cost N pages of index walking: the last page of a 100,000-input app took many times the
first. This module remembers, per app and page size, the last ``seq`` of every full page
it served; the next page is then an index seek (``seq > ?``). A page asked for out of
order starts from the nearest remembered page before it and skips the rest over the
``(app_pk, seq)`` index alone, without reading a row.

Remembered boundaries stay right while inputs are only added (a new input's ``seq`` is
higher than every existing one, so it lands after every full page). Any delete of an
input (DeleteInputs, app deletion, …) bumps the ``inputs_deleted`` counter through a
trigger, and boundaries remembered under another count are not used.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict

SCHEMA = """
CREATE TRIGGER IF NOT EXISTS input_pages_deleted AFTER DELETE ON inputs BEGIN
  INSERT INTO counters(name, value) VALUES ('inputs_deleted', 1)
  ON CONFLICT(name) DO UPDATE SET value=value+1; END;
"""

MAX_REMEMBERED = 50_000  # page boundaries kept (a few MB at most), least recently used go


class InputPages:
    """The remembered page boundaries of one store's plain (unfiltered) input listings."""

    def __init__(self, store) -> None:
        store.extend_schema(SCHEMA)
        self._bounds: OrderedDict[tuple[int, int, int], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, db: sqlite3.Connection, pk: int, page: int, per_page: int) -> list[bytes]:
        """The stored protos of page ``page`` (1-based) of app ``pk``'s inputs by creation."""
        row = db.execute("SELECT value FROM counters WHERE name='inputs_deleted'").fetchone()
        generation = row[0] if row else 0
        after, skip = self._start(pk, page, per_page, generation)
        if skip:  # out of order: walk the index only (no row is read) to the page's start
            found = db.execute("SELECT seq FROM inputs WHERE app_pk=? AND seq>? ORDER BY seq "
                               "LIMIT 1 OFFSET ?", (pk, after, skip - 1)).fetchone()
            if found is None:
                return []
            after = found[0]
        rows = db.execute("SELECT seq, proto FROM inputs WHERE app_pk=? AND seq>? ORDER BY seq "
                          "LIMIT ?", (pk, after, per_page)).fetchall()
        if len(rows) == per_page:
            self._remember((pk, per_page, page), rows[-1][0], generation)
        return [r[1] for r in rows]

    def _start(self, pk: int, page: int, per_page: int, generation: int) -> tuple[int, int]:
        """(seq to start after, rows to skip past it): from the nearest page remembered
        before ``page`` (looked for a few pages back), else from the app's beginning."""
        with self._lock:
            for back in range(1, min(page, 8)):
                hit = self._bounds.get((pk, per_page, page - back))
                if hit is not None and hit[1] == generation:
                    self._bounds.move_to_end((pk, per_page, page - back))
                    return hit[0], (back - 1) * per_page
        return 0, (page - 1) * per_page

    def _remember(self, key: tuple[int, int, int], seq: int, generation: int) -> None:
        with self._lock:
            self._bounds[key] = (seq, generation)
            self._bounds.move_to_end(key)
            while len(self._bounds) > MAX_REMEMBERED:
                self._bounds.popitem(last=False)
