"""Concept relations: PostConceptRelations, ListConceptRelations, DeleteConceptRelations.

A relation links a subject concept to an object concept of the same app with a predicate
(``hypernym``, ``hyponym`` or ``synonym``). Both concepts must exist. Listing by a concept
returns the relations it takes part in either way round, each seen from that concept (a
hypernym stored from the other side reads as a hyponym), as the API's knowledge graph does.
"""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_pb2

from .annotations import new_id
from .common import app_pk, invalid, not_found, page_window, visibility_private
from .concepts import existing_ids
from .rpc import CallContext, rpc

PREDICATES = ("hypernym", "hyponym", "synonym")
_INVERSE = {"hypernym": "hyponym", "hyponym": "hypernym", "synonym": "synonym"}


def _concept(db, pk: int, concept_id: str) -> resources_pb2.Concept:
    row = db.execute("SELECT proto FROM concepts WHERE app_pk=? AND id=?",
                     (pk, concept_id)).fetchone()
    if row is None:
        raise not_found("concept", concept_id)
    stored = resources_pb2.Concept.FromString(row[0])
    return resources_pb2.Concept(id=stored.id, name=stored.name, app_id=stored.app_id,
                                 user_id=stored.user_id)


def _relation(db, pk: int, rel_id: str, subject_id: str, object_id: str, predicate: str,
              seen_from: str = "") -> resources_pb2.ConceptRelation:
    if seen_from and seen_from == object_id and seen_from != subject_id:
        subject_id, object_id, predicate = object_id, subject_id, _INVERSE[predicate]
    return resources_pb2.ConceptRelation(
        id=rel_id, subject_concept=_concept(db, pk, subject_id),
        object_concept=_concept(db, pk, object_id), predicate=predicate,
        visibility=visibility_private())


@rpc("PostConceptRelations")
def post_concept_relations(
    ctx: CallContext, req: service_pb2.PostConceptRelationsRequest,
) -> service_pb2.MultiConceptRelationResponse:
    """Relate ``concept_id`` (the subject) to each relation's object concept."""
    if not req.concept_id:
        raise invalid("concept_id (the subject concept) is required")
    if not req.concept_relations:
        raise invalid("no concept_relations given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        wanted = {req.concept_id} | {r.object_concept.id for r in req.concept_relations}
        missing = sorted(wanted - existing_ids(db, "concepts", pk, wanted))
        if missing:
            raise not_found("concept", missing[0])
        for i, rel in enumerate(req.concept_relations):
            object_id = rel.object_concept.id
            if rel.predicate not in PREDICATES:
                raise invalid(f"concept_relations[{i}]: predicate '{rel.predicate}' is not one "
                              f"of {', '.join(PREDICATES)}")
            if object_id == req.concept_id:
                raise invalid(f"concept_relations[{i}]: concept '{object_id}' cannot relate "
                              "to itself")
            clash = db.execute(
                "SELECT 1 FROM concept_relations WHERE app_pk=? AND ((subject_id=? AND "
                "object_id=? AND predicate=?) OR (subject_id=? AND object_id=? AND "
                "predicate=?))", (pk, req.concept_id, object_id, rel.predicate, object_id,
                                  req.concept_id, _INVERSE[rel.predicate])).fetchone()
            if clash:
                raise invalid(f"concept_relations[{i}]: '{req.concept_id}' is already a "
                              f"{rel.predicate} of '{object_id}'")
            rel_id = rel.id or new_id()
            seq = ctx.server.store.next_seq(db, "concept_relations")
            db.execute("INSERT INTO concept_relations(app_pk, id, subject_id, object_id, "
                       "predicate, seq) VALUES (?,?,?,?,?,?)",
                       (pk, rel_id, req.concept_id, object_id, rel.predicate, seq))
            created.append(_relation(db, pk, rel_id, req.concept_id, object_id,
                                     rel.predicate))
    return service_pb2.MultiConceptRelationResponse(concept_relations=created)


@rpc("ListConceptRelations")
def list_concept_relations(
    ctx: CallContext, req: service_pb2.ListConceptRelationsRequest,
) -> service_pb2.MultiConceptRelationResponse:
    """Relations of ``concept_id`` (or of the whole app), optionally of one ``predicate``."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    limit, offset = page_window(req)
    sql, args = ("SELECT id, subject_id, object_id, predicate FROM concept_relations "
                 "WHERE app_pk=?", [pk])
    if req.concept_id:
        _concept(db, pk, req.concept_id)
        sql += " AND (subject_id=? OR object_id=?)"
        args += [req.concept_id, req.concept_id]
    rows = db.execute(sql + " ORDER BY seq", args).fetchall()
    relations = [_relation(db, pk, *row, seen_from=req.concept_id) for row in rows]
    if req.predicate:
        relations = [r for r in relations if r.predicate == req.predicate]
    return service_pb2.MultiConceptRelationResponse(
        concept_relations=relations[offset:offset + limit])


@rpc("DeleteConceptRelations")
def delete_concept_relations(
    ctx: CallContext, req: service_pb2.DeleteConceptRelationsRequest,
) -> status_pb2.BaseResponse:
    """Delete relations of ``concept_id`` by id; an id that is not one of them is refused."""
    if not req.ids:
        raise invalid("give the ids of the concept relations to delete")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for rel_id in req.ids:
            cur = db.execute("DELETE FROM concept_relations WHERE app_pk=? AND id=? AND "
                             "(?='' OR subject_id=? OR object_id=?)",
                             (pk, rel_id, req.concept_id, req.concept_id, req.concept_id))
            if cur.rowcount == 0:
                raise not_found("concept relation", rel_id)
    return status_pb2.BaseResponse()
