"""The facts search filters on, in indexed SQL tables kept beside the inputs and annotations.

Inputs and annotations are stored as protobuf blobs, which SQL cannot look into. For each
input this module keeps, in tables of their own with indexes:

- ``search_inputs``: its media kind and geo point (latitude, longitude);
- ``search_metadata``: one row per leaf of its metadata (a path and a canonical value:
  :func:`metadata_leaves`), so a partial JSON match is one indexed lookup per leaf;
- ``search_concepts``: one row per concept of each of its annotations (input-level and
  regions), with the concept's id, name and value.

Status codes and datasets are already columns (``inputs.status``, ``dataset_inputs``).

Staying current costs the write path almost nothing: SQL triggers append the id of every
inserted or changed input or annotation to ``search_dirty`` (deletes remove the facts at
once), and :meth:`SearchIndex.catch_up` turns dirty ids into facts — in a background
thread, and at the start of every search for the app searched, so a search always sees
every write that committed before it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2
from google.protobuf import json_format

from ...embedder import MEDIA_KINDS

__all__ = ["SCHEMA", "SearchIndex", "canonical", "metadata_leaves"]

log = logging.getLogger("clarifai_connect.server.search")

SCHEMA = """
CREATE TABLE IF NOT EXISTS search_dirty (app_pk INTEGER NOT NULL, input_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS search_inputs (
  app_pk INTEGER NOT NULL, input_id TEXT NOT NULL, kind TEXT, lat REAL, lon REAL,
  PRIMARY KEY (app_pk, input_id));
-- The indexes a filter reads hold the input id too (covering): a filter of 10,000 inputs
-- reads the index alone, not 10,000 rows scattered through the table.
DROP INDEX IF EXISTS search_inputs_by_kind;
DROP INDEX IF EXISTS search_metadata_by_value;
DROP INDEX IF EXISTS search_concepts_by_id;
DROP INDEX IF EXISTS search_concepts_by_name;
CREATE INDEX IF NOT EXISTS search_inputs_of_kind ON search_inputs (app_pk, kind, input_id);
CREATE INDEX IF NOT EXISTS search_inputs_by_lat ON search_inputs (app_pk, lat);
CREATE TABLE IF NOT EXISTS search_metadata (
  app_pk INTEGER NOT NULL, input_id TEXT NOT NULL, path TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS search_metadata_of_value
  ON search_metadata (app_pk, path, value, input_id);
CREATE INDEX IF NOT EXISTS search_metadata_by_input ON search_metadata (app_pk, input_id);
CREATE TABLE IF NOT EXISTS search_concepts (
  app_pk INTEGER NOT NULL, input_id TEXT NOT NULL, annotation_id TEXT NOT NULL,
  concept_id TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS search_concepts_of_id
  ON search_concepts (app_pk, concept_id, value, input_id, annotation_id);
CREATE INDEX IF NOT EXISTS search_concepts_of_name
  ON search_concepts (app_pk, name, value, input_id, annotation_id);
CREATE INDEX IF NOT EXISTS search_concepts_by_input ON search_concepts (app_pk, input_id);
CREATE INDEX IF NOT EXISTS search_concepts_by_annotation
  ON search_concepts (app_pk, annotation_id);
-- No index on inputs.status: SQLite would prefer it to the primary key for "status=? AND
-- id IN (…)" lookups elsewhere and scan every input of the app; a status filter reads rows.
DROP INDEX IF EXISTS inputs_by_status;

CREATE TRIGGER IF NOT EXISTS search_input_added AFTER INSERT ON inputs BEGIN
  INSERT INTO search_dirty VALUES (NEW.app_pk, NEW.id); END;
CREATE TRIGGER IF NOT EXISTS search_input_changed AFTER UPDATE OF proto ON inputs BEGIN
  INSERT INTO search_dirty VALUES (NEW.app_pk, NEW.id); END;
CREATE TRIGGER IF NOT EXISTS search_input_deleted AFTER DELETE ON inputs BEGIN
  DELETE FROM search_inputs WHERE app_pk=OLD.app_pk AND input_id=OLD.id;
  DELETE FROM search_metadata WHERE app_pk=OLD.app_pk AND input_id=OLD.id;
  DELETE FROM search_concepts WHERE app_pk=OLD.app_pk AND input_id=OLD.id; END;
CREATE TRIGGER IF NOT EXISTS search_annotation_added AFTER INSERT ON annotations BEGIN
  INSERT INTO search_dirty VALUES (NEW.app_pk, NEW.input_id); END;
CREATE TRIGGER IF NOT EXISTS search_annotation_changed AFTER UPDATE ON annotations BEGIN
  INSERT INTO search_dirty VALUES (NEW.app_pk, NEW.input_id); END;
-- Dirty as well: a catch-up that read the annotation before it went must run again.
CREATE TRIGGER IF NOT EXISTS search_annotation_deleted AFTER DELETE ON annotations BEGIN
  DELETE FROM search_concepts WHERE app_pk=OLD.app_pk AND annotation_id=OLD.id;
  INSERT INTO search_dirty VALUES (OLD.app_pk, OLD.input_id); END;
"""

# Tables whose rows belong to an app (deleted with it).
APP_TABLES = ("search_dirty", "search_inputs", "search_metadata", "search_concepts")
CHUNK = 2000  # dirty inputs turned into facts per write transaction (keeps the lock short)
_IDLE_POLL = 0.5  # seconds between looks at search_dirty when nothing woke the thread


def canonical(value: Any) -> str:
    """A JSON scalar as stored text: the type's letter, a colon, the value.

    Struct numbers are doubles, so 3 and 3.0 are one value; true is not 1.
    """
    if isinstance(value, bool):
        return f"b:{'true' if value else 'false'}"
    if isinstance(value, int | float):
        number = float(value)
        return f"n:{int(number)}" if number.is_integer() else f"n:{number!r}"
    if value is None:
        return "z:"
    return f"s:{value}"


def metadata_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, canonical value) of every scalar in a JSON value; list items share ``path[]``.

    A partial match of a query ``q`` against metadata ``m`` is: every leaf of ``q`` is a
    leaf of ``m`` (nested keys, list items, numbers, booleans and strings alike).
    """
    if isinstance(value, dict):
        for key, item in value.items():
            yield from metadata_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from metadata_leaves(item, f"{path}[]")
    else:
        yield path, canonical(value)


def _concepts(ann: resources_pb2.Annotation) -> Iterator[resources_pb2.Concept]:
    yield from ann.data.concepts
    for region in ann.data.regions:
        yield from region.data.concepts


class SearchIndex:
    """Keeps the search facts of one server's store current (see the module docstring)."""

    def __init__(self, store: Any, ingest: Any = None) -> None:
        self.store = store
        self.ingest = ingest  # an IngestActivity: background rounds give way to uploads
        store.extend_schema(SCHEMA)
        self._lock = threading.Lock()  # one catch-up at a time
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Mark inputs without facts (a store older than this index) and start the thread."""
        with self.store.write() as db:
            db.execute("INSERT INTO search_dirty SELECT app_pk, id FROM inputs i WHERE NOT "
                       "EXISTS (SELECT 1 FROM search_inputs s WHERE s.app_pk=i.app_pk AND "
                       "s.input_id=i.id)")
        self._thread = threading.Thread(target=self._run, name="search-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread (what is still dirty is caught up on the next start)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def wake(self) -> None:
        """Ask the background thread to catch up now (after a burst of writes)."""
        self._wake.set()

    def catch_up(self, pk: int | None = None) -> None:
        """Turn every dirty input (of app ``pk``, or of all apps) into current facts."""
        with self._lock:
            while self._catch_up_chunk(pk):
                pass

    def _run(self) -> None:
        from .embeddings import background_priority

        background_priority()
        while not self._stopping:
            self._wake.wait(_IDLE_POLL)
            self._wake.clear()
            if self._stopping:
                return
            try:  # a chunk at a time, each after uploads paused (or waited long enough)
                while not self._stopping:
                    if self.ingest is not None:
                        self.ingest.give_way(lambda: self._stopping)
                    with self._lock:
                        if not self._catch_up_chunk(None):
                            break
            except Exception:  # a background thread has nobody to report to but the log
                log.exception("updating the search index failed")

    def _catch_up_chunk(self, pk: int | None) -> bool:
        db = self.store.read()
        where, args = ("WHERE app_pk=?", (pk,)) if pk is not None else ("", ())
        dirty = db.execute(f"SELECT rowid, app_pk, input_id FROM search_dirty {where} "
                           f"ORDER BY rowid LIMIT ?", (*args, CHUNK)).fetchall()
        if not dirty:
            return False
        by_app: dict[int, set[str]] = {}
        for _, app, input_id in dirty:
            by_app.setdefault(app, set()).add(input_id)
        facts = {app: self._facts(db, app, sorted(ids)) for app, ids in by_app.items()}
        with self.store.write() as wdb:
            for app, ids in by_app.items():
                self._replace(wdb, app, ids, *facts[app])
            wdb.executemany("DELETE FROM search_dirty WHERE rowid=?", [(r[0],) for r in dirty])
        return len(dirty) == CHUNK

    @staticmethod
    def _facts(db: Any, pk: int, ids: list[str]) -> tuple[list, list, list]:
        ids_json = json.dumps(ids)
        inputs, metadata, concepts = [], [], []
        own: dict[str, list[resources_pb2.Concept]] = {}
        for input_id, proto in db.execute(
                "SELECT id, proto FROM inputs WHERE app_pk=? AND id IN "
                "(SELECT value FROM json_each(?))", (pk, ids_json)):
            data = resources_pb2.Input.FromString(proto).data
            kind = next((k for k in MEDIA_KINDS if data.HasField(k)), None)
            lat = lon = None
            if data.HasField("geo") and data.geo.HasField("geo_point"):
                lat, lon = data.geo.geo_point.latitude, data.geo.geo_point.longitude
            inputs.append((pk, input_id, kind, lat, lon))
            if data.metadata.fields:
                leaves = set(metadata_leaves(json_format.MessageToDict(data.metadata)))
                metadata.extend((pk, input_id, p, v) for p, v in leaves)
            own[input_id] = list(data.concepts)
        labelled: set[tuple[str, str]] = set()
        for ann_id, input_id, proto in db.execute(
                "SELECT id, input_id, proto FROM annotations WHERE app_pk=? AND input_id IN "
                "(SELECT value FROM json_each(?))", (pk, ids_json)):
            for concept in _concepts(resources_pb2.Annotation.FromString(proto)):
                concepts.append((pk, input_id, ann_id, concept.id, concept.name, concept.value))
                labelled.add((input_id, concept.id))
        # An input's own concepts are mirrored by its input-level annotation; only those
        # that are not (none, normally) get rows of their own.
        for input_id, listed in own.items():
            concepts.extend((pk, input_id, "", c.id, c.name, c.value) for c in listed
                            if (input_id, c.id) not in labelled)
        return inputs, metadata, concepts

    @staticmethod
    def _replace(db: Any, pk: int, ids: set[str], inputs: list, metadata: list,
                 concepts: list) -> None:
        ids_json = json.dumps(sorted(ids))
        for table in ("search_inputs", "search_metadata", "search_concepts"):
            db.execute(f"DELETE FROM {table} WHERE app_pk=? AND input_id IN "
                       "(SELECT value FROM json_each(?))", (pk, ids_json))
        # Inside the write: an input deleted since the facts were read gets none.
        alive = {r[0] for r in db.execute(
            "SELECT id FROM inputs WHERE app_pk=? AND id IN (SELECT value FROM json_each(?))",
            (pk, ids_json))}
        db.executemany("INSERT INTO search_inputs VALUES (?,?,?,?,?)",
                       [r for r in inputs if r[1] in alive])
        db.executemany("INSERT INTO search_metadata VALUES (?,?,?,?)",
                       [r for r in metadata if r[1] in alive])
        db.executemany("INSERT INTO search_concepts VALUES (?,?,?,?,?,?)",
                       [r for r in concepts if r[1] in alive])
