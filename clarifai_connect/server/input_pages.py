"""Keyset paging for ListInputs and ListDatasetInputs: page N+1 starts after the last ``seq`` of page N.

ListInputs is page-numbered (``page``, ``per_page``), and ``LIMIT … OFFSET`` makes page N
cost N pages of index walking: the last page of a 100,000-input app took many times the
first. This module remembers, per app and page size, the last ``seq`` of every full page
it served; the next page is then an index seek (``seq > ?``). A page asked for out of
order starts from the nearest remembered page before it and skips the rest over the
``(app_pk, seq)`` index alone, without reading a row.

Remembered boundaries stay right while inputs are only added (a new input's ``seq`` is
higher than every existing one, so it lands after every full page). Any delete of an
input (DeleteInputs, app deletion, …) bumps the ``inputs_deleted`` counter through a
trigger, and boundaries remembered under another count are not used. A dataset's members
are paged the same way by the ``seq`` they joined it with (adding a member twice keeps its
first place), under a counter of their own deletes.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass

SCHEMA = """
CREATE TRIGGER IF NOT EXISTS input_pages_deleted AFTER DELETE ON inputs BEGIN
  INSERT INTO counters(name, value) VALUES ('inputs_deleted', 1)
  ON CONFLICT(name) DO UPDATE SET value=value+1; END;
CREATE TRIGGER IF NOT EXISTS dataset_input_pages_deleted AFTER DELETE ON dataset_inputs BEGIN
  INSERT INTO counters(name, value) VALUES ('dataset_inputs_deleted', 1)
  ON CONFLICT(name) DO UPDATE SET value=value+1; END;
"""

MAX_REMEMBERED = 50_000  # page boundaries kept (a few MB at most), least recently used go


@dataclass(frozen=True)
class _Listing:
    """One kind of listing: its delete counter, the index-only seek past ``skip`` rows, and
    the page query; both queries take the scope's parameters, then ``seq`` to start after."""

    counter: str
    seek: str
    page: str


_INPUTS = _Listing(
    "inputs_deleted",
    "SELECT seq FROM inputs WHERE app_pk=? AND seq>? ORDER BY seq LIMIT 1 OFFSET ?",
    "SELECT seq, proto FROM inputs WHERE app_pk=? AND seq>? ORDER BY seq LIMIT ?")
_DATASET = _Listing(
    "dataset_inputs_deleted",
    "SELECT seq FROM dataset_inputs WHERE app_pk=? AND dataset_id=? AND seq>? ORDER BY seq "
    "LIMIT 1 OFFSET ?",
    "SELECT d.seq, d.created_at, i.proto FROM dataset_inputs d JOIN inputs i "
    "ON i.app_pk=d.app_pk AND i.id=d.input_id WHERE d.app_pk=? AND d.dataset_id=? "
    "AND d.seq>? ORDER BY d.seq LIMIT ?")


class InputPages:
    """The remembered page boundaries of one store's plain (unfiltered) input listings and
    dataset member listings."""

    def __init__(self, store) -> None:
        store.extend_schema(SCHEMA)
        self._bounds: OrderedDict[tuple, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def rows(self, db: sqlite3.Connection, pk: int, page: int, per_page: int) -> list[bytes]:
        """The stored protos of page ``page`` (1-based) of app ``pk``'s inputs by creation."""
        return [r[1] for r in self._page(db, _INPUTS, (pk,), page, per_page)]

    def dataset_rows(self, db: sqlite3.Connection, pk: int, dataset_id: str, page: int,
                     per_page: int) -> list[tuple[float, bytes]]:
        """(joined at, stored proto) of page ``page`` of a dataset's inputs, in the order
        they joined it."""
        return [r[1:] for r in self._page(db, _DATASET, (pk, dataset_id), page, per_page)]

    def _page(self, db: sqlite3.Connection, listing: _Listing, scope: tuple, page: int,
              per_page: int) -> list[tuple]:
        row = db.execute("SELECT value FROM counters WHERE name=?",
                         (listing.counter,)).fetchone()
        generation = row[0] if row else 0
        key = (listing.counter, *scope, per_page)
        after, skip = self._start(key, page, per_page, generation)
        if skip:  # out of order: walk the index only (no row is read) to the page's start
            found = db.execute(listing.seek, (*scope, after, skip - 1)).fetchone()
            if found is None:
                return []
            after = found[0]
        rows = db.execute(listing.page, (*scope, after, per_page)).fetchall()
        if len(rows) == per_page:
            self._remember((*key, page), rows[-1][0], generation)
        return rows

    def _start(self, key: tuple, page: int, per_page: int, generation: int) -> tuple[int, int]:
        """(seq to start after, rows to skip past it): from the nearest page remembered
        before ``page`` (looked for a few pages back), else from the listing's beginning."""
        with self._lock:
            for back in range(1, min(page, 8)):
                hit = self._bounds.get((*key, page - back))
                if hit is not None and hit[1] == generation:
                    self._bounds.move_to_end((*key, page - back))
                    return hit[0], (back - 1) * per_page
        return 0, (page - 1) * per_page

    def _remember(self, key: tuple, seq: int, generation: int) -> None:
        with self._lock:
            self._bounds[key] = (seq, generation)
            self._bounds.move_to_end(key)
            while len(self._bounds) > MAX_REMEMBERED:
                self._bounds.popitem(last=False)
