"""Concepts: PostConcepts, GetConcept, ListConcepts, PatchConcepts.

Concepts referenced by inputs and annotations are created on the fly by
:func:`ensure_concepts`, as the API does, so that labels always resolve to a concept.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2

from .common import (
    app_pk,
    id_problem,
    invalid,
    not_found,
    page_window,
    patch_action,
    patch_message,
    timestamp,
    user_app,
    visibility_private,
)
from .rpc import CallContext, rpc
from .store import now

# SQLite's host-parameter limit is 32766; stay far below it in IN (...) lists.
IN_CHUNK = 500


def in_chunks(values: list[str], size: int = IN_CHUNK) -> Iterable[list[str]]:
    """``values`` in slices small enough for one ``IN (...)`` clause."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def existing_ids(db: sqlite3.Connection, table: str, pk: int, ids: Iterable[str],
                 column: str = "id") -> set[str]:
    """Which of ``ids`` already have a row in ``table`` for app ``pk``."""
    found: set[str] = set()
    for chunk in in_chunks(list(ids)):
        marks = ",".join("?" * len(chunk))
        found.update(r[0] for r in db.execute(
            f"SELECT {column} FROM {table} WHERE app_pk=? AND {column} IN ({marks})",
            (pk, *chunk)))
    return found


def concept_problem(concept: resources_pb2.Concept, where: str) -> str | None:
    """Why a concept used as a label is invalid, or None."""
    problem = id_problem(concept.id, "concept id")
    if problem:
        return f"{where}: {problem}"
    if not (0.0 <= concept.value <= 1.0) or math.isnan(concept.value):
        return f"{where}: concept '{concept.id}' has value {concept.value}, outside 0..1"
    return None


def _new_concept(concept: resources_pb2.Concept, user_id: str, app_id: str,
                 stamp: float) -> resources_pb2.Concept:
    stored = resources_pb2.Concept(id=concept.id, name=concept.name or concept.id, value=1.0,
                                   app_id=app_id, user_id=user_id,
                                   visibility=visibility_private())
    if concept.language:
        stored.language = concept.language
    if concept.definition:
        stored.definition = concept.definition
    if concept.HasField("metadata"):
        stored.metadata.CopyFrom(concept.metadata)
    ts = timestamp(stamp)
    stored.created_at.CopyFrom(ts)
    return stored


def ensure_concepts(db: sqlite3.Connection, server: Any, pk: int, user_id: str, app_id: str,
                    concepts: dict[str, resources_pb2.Concept], stamp: float) -> None:
    """Create (inside a write) the concepts among ``concepts`` (by id) that do not exist yet."""
    if not concepts:
        return
    known = existing_ids(db, "concepts", pk, concepts)
    missing = [c for cid, c in concepts.items() if cid not in known]
    if not missing:
        return
    first = server.store.next_seq(db, "concepts", len(missing))
    db.executemany(
        "INSERT INTO concepts(app_pk, id, proto, seq, created_at) VALUES (?,?,?,?,?)",
        [(pk, c.id, _new_concept(c, user_id, app_id, stamp).SerializeToString(), first + i,
          stamp) for i, c in enumerate(missing)])


def collect_concepts(data: resources_pb2.Data, into: dict[str, resources_pb2.Concept]) -> None:
    """Add the concepts of ``data`` and of its regions to ``into`` (first one per id wins)."""
    for concept in data.concepts:
        into.setdefault(concept.id, concept)
    for region in data.regions:
        for concept in region.data.concepts:
            into.setdefault(concept.id, concept)


@rpc("PostConcepts")
def post_concepts(
    ctx: CallContext, req: service_pb2.PostConceptsRequest,
) -> service_pb2.MultiConceptResponse:
    """Create concepts; an existing id or an invalid one fails the whole call."""
    user_id, app_id = user_app(req)
    if not req.concepts:
        raise invalid("no concepts given")
    stamp = now()
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        seen: set[str] = set()
        for i, concept in enumerate(req.concepts):
            problem = id_problem(concept.id, "concept id")
            if problem:
                raise invalid(f"concepts[{i}]: {problem}")
            if concept.id in seen:
                raise invalid(f"concepts[{i}]: concept '{concept.id}' is given twice")
            seen.add(concept.id)
        taken = existing_ids(db, "concepts", pk, seen)
        if taken:
            raise invalid(f"concept '{sorted(taken)[0]}' already exists")
        created = [_new_concept(c, user_id, app_id, stamp) for c in req.concepts]
        first = ctx.server.store.next_seq(db, "concepts", len(created))
        db.executemany(
            "INSERT INTO concepts(app_pk, id, proto, seq, created_at) VALUES (?,?,?,?,?)",
            [(pk, c.id, c.SerializeToString(), first + i, stamp)
             for i, c in enumerate(created)])
    return service_pb2.MultiConceptResponse(concepts=created)


@rpc("GetConcept")
def get_concept(
    ctx: CallContext, req: service_pb2.GetConceptRequest,
) -> service_pb2.SingleConceptResponse:
    """One concept by id."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    row = db.execute("SELECT proto FROM concepts WHERE app_pk=? AND id=?",
                     (pk, req.concept_id)).fetchone()
    if row is None:
        raise not_found("concept", req.concept_id)
    return service_pb2.SingleConceptResponse(concept=resources_pb2.Concept.FromString(row[0]))


@rpc("ListConcepts")
def list_concepts(
    ctx: CallContext, req: service_pb2.ListConceptsRequest,
) -> service_pb2.MultiConceptResponse:
    """Concepts in creation order; ``id`` is a fuzzy (substring) match on id or name."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    limit, offset = page_window(req)
    sql, args = "SELECT proto FROM concepts WHERE app_pk=?", [pk]
    if req.id:
        pattern = "%" + req.id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += " AND id LIKE ? ESCAPE '\\'"
        args.append(pattern)
    rows = db.execute(sql + " ORDER BY seq LIMIT ? OFFSET ?", (*args, limit, offset))
    return service_pb2.MultiConceptResponse(
        concepts=[resources_pb2.Concept.FromString(r[0]) for r in rows])


@rpc("PatchConcepts")
def patch_concepts(
    ctx: CallContext, req: service_pb2.PatchConceptsRequest,
) -> service_pb2.MultiConceptResponse:
    """Patch existing concepts (name, definition, metadata …); a missing one fails the call."""
    action = patch_action(req.action or "overwrite")
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for concept in req.concepts:
            row = db.execute("SELECT proto FROM concepts WHERE app_pk=? AND id=?",
                             (pk, concept.id)).fetchone()
            if row is None:
                raise not_found("concept", concept.id)
            stored = resources_pb2.Concept.FromString(row[0])
            patch = resources_pb2.Concept()
            patch.CopyFrom(concept)
            patch.ClearField("value")  # a label's value is not a property of the concept
            patch_message(stored, patch, action)
            if not stored.name:
                stored.name = stored.id
            db.execute("UPDATE concepts SET proto=? WHERE app_pk=? AND id=?",
                       (stored.SerializeToString(), pk, concept.id))
            patched.append(stored)
    return service_pb2.MultiConceptResponse(concepts=patched)
