"""The web view's reads: paged SQL over the store (and the search index's fact tables).

Every query is bounded: lists of apps, datasets and concepts are what an app holds (small);
inputs come a page at a time by ``seq``, with the page's annotations read in one query.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2

from ..auth import Identity

PER_PAGE = 48
KINDS = ("image", "video", "audio", "text")


@dataclass
class App:
    """An app with its counts."""

    pk: int
    user_id: str
    id: str
    inputs: int = 0
    datasets: int = 0
    concepts: int = 0


@dataclass
class Filters:
    """The grid's filters (each already validated)."""

    dataset: str = ""
    concept: str = ""
    kind: str = ""
    text: str = ""

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (empty ones left out)."""
        return {k: v for k, v in (("dataset", self.dataset), ("concept", self.concept),
                                  ("type", self.kind), ("q", self.text)) if v}


@dataclass
class InputRow:
    """An input of the grid or the input page, with its annotations."""

    id: str
    input: resources_pb2.Input
    annotations: list[resources_pb2.Annotation] = field(default_factory=list)


def apps_of(db: sqlite3.Connection, identity: Identity) -> list[App]:
    """The apps ``identity`` reaches, with input, dataset and concept counts."""
    sql = ("SELECT pk, user_id, id, (SELECT COUNT(*) FROM inputs WHERE app_pk=pk), "
           "(SELECT COUNT(*) FROM datasets WHERE app_pk=pk), "
           "(SELECT COUNT(*) FROM concepts WHERE app_pk=pk) FROM apps")
    args: list[Any] = []
    if identity.user_id is not None:
        sql += " WHERE user_id=?"
        args.append(identity.user_id)
        if identity.app_id is not None:
            sql += " AND id=?"
            args.append(identity.app_id)
    rows = db.execute(sql + " ORDER BY user_id, created_at, id", args).fetchall()
    return [App(*row) for row in rows]


def app_named(db: sqlite3.Connection, identity: Identity, user_id: str,
              app_id: str) -> App | None:
    """The app ``user_id``/``app_id`` when it exists and ``identity`` may use it."""
    if not identity.may_use(user_id, app_id):
        return None
    row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?",
                     (user_id, app_id)).fetchone()
    return App(row[0], user_id, app_id) if row else None


def datasets(db: sqlite3.Connection, pk: int) -> list[dict[str, Any]]:
    """The app's datasets: id, input count, version ids (newest first)."""
    out = []
    for (dataset_id,) in db.execute("SELECT id FROM datasets WHERE app_pk=? ORDER BY "
                                    "created_at, id", (pk,)):
        count = db.execute("SELECT COUNT(*) FROM dataset_inputs WHERE app_pk=? AND "
                           "dataset_id=?", (pk, dataset_id)).fetchone()[0]
        versions = [r[0] for r in db.execute(
            "SELECT id FROM dataset_versions WHERE app_pk=? AND dataset_id=? ORDER BY seq "
            "DESC", (pk, dataset_id))]
        out.append({"id": dataset_id, "inputs": count, "versions": versions})
    return out


def concepts(db: sqlite3.Connection, pk: int) -> list[dict[str, Any]]:
    """The app's concepts: id, name and how many inputs carry each (regions included)."""
    counts = dict(db.execute(
        "SELECT concept_id, COUNT(DISTINCT input_id) FROM search_concepts WHERE app_pk=? "
        "AND value>0 GROUP BY concept_id", (pk,)))
    out = []
    for (proto,) in db.execute("SELECT proto FROM concepts WHERE app_pk=? ORDER BY seq",
                               (pk,)):
        concept = resources_pb2.Concept.FromString(proto)
        out.append({"id": concept.id, "name": concept.name or concept.id,
                    "inputs": counts.pop(concept.id, 0)})
    out += [{"id": cid, "name": cid, "inputs": n} for cid, n in sorted(counts.items())]
    return out


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def input_page(db: sqlite3.Connection, pk: int, filters: Filters, after: int = 0,
               per_page: int = PER_PAGE) -> tuple[list[InputRow], int | None]:
    """A page of the app's inputs that pass ``filters``, in creation order, from the first
    after sequence number ``after`` (a keyset seek: page 1,000 costs what page 1 does), and
    the ``after`` of the next page (None on the last)."""
    where, args = ["app_pk=?", "seq>?"], [pk, after]
    if filters.dataset:
        where.append("id IN (SELECT input_id FROM dataset_inputs WHERE app_pk=? AND "
                     "dataset_id=?)")
        args += [pk, filters.dataset]
    if filters.concept:
        where.append("id IN (SELECT input_id FROM search_concepts WHERE app_pk=? AND "
                     "concept_id=? AND value>0)")
        args += [pk, filters.concept]
    if filters.kind:
        where.append("id IN (SELECT input_id FROM search_inputs WHERE app_pk=? AND kind=?)")
        args += [pk, filters.kind]
    if filters.text:
        where.append("id IN (SELECT input_id FROM search_metadata WHERE app_pk=? AND "
                     "(path LIKE ? ESCAPE '\\' OR value LIKE ? ESCAPE '\\'))")
        args += [pk, _like(filters.text), _like(filters.text)]
    rows = db.execute(f"SELECT id, proto, seq FROM inputs WHERE {' AND '.join(where)} "
                      "ORDER BY seq LIMIT ?", (*args, per_page + 1)).fetchall()
    following = rows[per_page - 1][2] if len(rows) > per_page else None
    items = [InputRow(i, resources_pb2.Input.FromString(p)) for i, p, _ in rows[:per_page]]
    attach_annotations(db, pk, items)
    return items, following


def attach_annotations(db: sqlite3.Connection, pk: int, items: list[InputRow]) -> None:
    """Read the annotations of ``items`` (one query) into each."""
    by_id = {item.id: item for item in items}
    for input_id, proto in db.execute(
            "SELECT input_id, proto FROM annotations WHERE app_pk=? AND input_id IN "
            "(SELECT value FROM json_each(?)) ORDER BY seq", (pk, json.dumps(list(by_id)))):
        by_id[input_id].annotations.append(resources_pb2.Annotation.FromString(proto))


def one_input(db: sqlite3.Connection, pk: int, input_id: str) -> InputRow | None:
    """The input ``input_id`` of app ``pk`` with its annotations, or None."""
    row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                     (pk, input_id)).fetchone()
    if row is None:
        return None
    item = InputRow(input_id, resources_pb2.Input.FromString(row[0]))
    attach_annotations(db, pk, [item])
    return item


def input_datasets(db: sqlite3.Connection, pk: int, input_id: str) -> list[str]:
    """The datasets ``input_id`` belongs to."""
    return [r[0] for r in db.execute("SELECT dataset_id FROM dataset_inputs WHERE app_pk=? "
                                     "AND input_id=? ORDER BY dataset_id", (pk, input_id))]


def annotation(db: sqlite3.Connection, pk: int,
               annotation_id: str) -> resources_pb2.Annotation | None:
    """The annotation ``annotation_id`` of app ``pk``, or None."""
    row = db.execute("SELECT proto FROM annotations WHERE app_pk=? AND id=?",
                     (pk, annotation_id)).fetchone()
    return resources_pb2.Annotation.FromString(row[0]) if row else None
