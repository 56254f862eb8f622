"""The SQL that writes the ``inputs`` table (and the dataset memberships that hang on it),
apart from the RPC handlers of :mod:`.inputs` that decide what to write.
"""

from __future__ import annotations

import json
import sqlite3

from .annotations import delete_for_inputs
from .store import Store, insert_many


def insert(db: sqlite3.Connection, store: Store, pk: int, rows: list[tuple[str, int, bytes]],
           dataset_rows: list[tuple[str, str]], job_id: str | None, stamp: float) -> None:
    """Insert inputs (id, status code, stored proto), in this order of creation, and their
    dataset memberships (dataset id, input id); inside a write."""
    if rows:
        first = store.next_seq(db, "inputs", len(rows))
        insert_many(db, "INSERT INTO inputs(app_pk, id, seq, status, job_id, proto, created_at)",
                    [(pk, input_id, first + k, code, job_id, proto, stamp)
                     for k, (input_id, code, proto) in enumerate(rows)])
    if dataset_rows:
        seq = store.next_seq(db, "dataset_inputs", len(dataset_rows))
        insert_many(
            db, "INSERT OR IGNORE INTO dataset_inputs(app_pk, dataset_id, input_id, seq, "
            "created_at)", [(pk, d, i, seq + n, stamp) for n, (d, i) in enumerate(dataset_rows)])


def delete(db: sqlite3.Connection, pk: int, ids: list[str]) -> int:
    """Delete inputs with their annotations and dataset memberships; returns inputs deleted."""
    if not ids:
        return 0
    ids_json = json.dumps(list(ids))
    cur = db.execute("DELETE FROM inputs WHERE app_pk=? AND id IN "
                     "(SELECT value FROM json_each(?))", (pk, ids_json))
    delete_for_inputs(db, pk, ids)
    db.execute("DELETE FROM dataset_inputs WHERE app_pk=? AND input_id IN "
               "(SELECT value FROM json_each(?))", (pk, ids_json))
    return cur.rowcount
