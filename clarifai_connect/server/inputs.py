"""Inputs: PostInputs, ListInputs, StreamInputs, GetInput, PatchInputs, DeleteInput(s).

Stored form (what datasets, versions and exports read): an ``inputs`` row per input whose
``proto`` is the Input without media bytes (``hosted.suffix`` = their media key, see
:mod:`.media_blobs`; ``text.raw`` is kept as well) and without regions. Inline regions
become one annotation each; inline concepts stay in ``data.concepts`` and are mirrored by
one input-level annotation (``input_level=True``), as the API does. The ``status`` column
is the input's status code (INPUT_DOWNLOAD_*).

PostInputs, the hot path of every upload, is in :mod:`.input_posts`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from . import input_rows
from .annotations import (
    insert_annotations,
    new_annotation,
    new_id,
    prepare_data,
)
from .common import (
    MAX_PER_PAGE,
    app_pk,
    invalid,
    item_status,
    not_found,
    page_window,
    patch_action,
    patch_message,
    timestamp,
    user_app,
)
from .concepts import collect_concepts, ensure_concepts
from .input_posts import overall_status
from .media_blobs import MEDIA_KINDS, render_hosted
from .rpc import CallContext, RpcFailure, ServerState, rpc
from .store import now

STREAM_PER_PAGE = 20  # StreamInputs' default page size
_INVALID = status_code_pb2.INPUT_INVALID_ARGUMENT
_MISSING = status_code_pb2.INPUT_DOES_NOT_EXIST


def _json(values) -> str:
    return json.dumps(list(values))


def _rendered(proto: bytes, media_url: str) -> resources_pb2.Input:
    return render_hosted(resources_pb2.Input.FromString(proto), media_url)


@rpc("ListInputs")
def list_inputs(
    ctx: CallContext, req: service_pb2.ListInputsRequest,
) -> service_pb2.MultiInputResponse:
    """The app's inputs in creation order, paged; filters ``ids`` and ``status.code``.

    Unfiltered pages are keyset seeks (:mod:`.input_pages`); filtered ones are OFFSET queries."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    limit, offset = page_window(req)
    media_url = ctx.server.media_url
    if not req.ids and not (req.HasField("status") and req.status.code):
        protos = ctx.server.input_pages.rows(db, pk, offset // limit + 1, limit)
        return service_pb2.MultiInputResponse(inputs=[_rendered(p, media_url) for p in protos])
    sql, args = "SELECT proto FROM inputs WHERE app_pk=?", [pk]
    if req.ids:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        args.append(_json(req.ids))
    if req.HasField("status") and req.status.code:
        sql += " AND status=?"
        args.append(req.status.code)
    rows = db.execute(sql + " ORDER BY seq LIMIT ? OFFSET ?", (*args, limit, offset))
    return service_pb2.MultiInputResponse(inputs=[_rendered(r[0], media_url) for r in rows])


@rpc("StreamInputs")
def stream_inputs(
    ctx: CallContext, req: service_pb2.StreamInputsRequest,
) -> service_pb2.MultiInputResponse:
    """A cursor over the inputs: the ``per_page`` inputs after ``last_id``.

    Ordered by creation (or by id with ``order_by_id``), reversed with ``descending``.
    """
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    per_page = req.per_page or STREAM_PER_PAGE
    if per_page > MAX_PER_PAGE:
        raise invalid(f"per_page must be between 1 and {MAX_PER_PAGE}")
    column = "id" if req.order_by_id else "seq"
    direction, op = ("DESC", "<") if req.descending else ("ASC", ">")
    sql, args = "SELECT proto FROM inputs WHERE app_pk=?", [pk]
    if req.last_id:
        cursor: Any = req.last_id
        if not req.order_by_id:
            row = db.execute("SELECT seq FROM inputs WHERE app_pk=? AND id=?",
                             (pk, req.last_id)).fetchone()
            if row is None:
                raise RpcFailure(status_code_pb2.CONN_DOES_NOT_EXIST, "Resource does not exist",
                                 f"last_id '{req.last_id}' is not an input of this app "
                                 "(deleted since?): restart the stream or use order_by_id")
            cursor = row[0]
        sql += f" AND {column} {op} ?"
        args.append(cursor)
    rows = db.execute(sql + f" ORDER BY {column} {direction} LIMIT ?", (*args, per_page))
    media_url = ctx.server.media_url
    return service_pb2.MultiInputResponse(inputs=[_rendered(r[0], media_url) for r in rows])


@rpc("GetInput")
def get_input(
    ctx: CallContext, req: service_pb2.GetInputRequest,
) -> service_pb2.SingleInputResponse:
    """One input by id."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                     (pk, req.input_id)).fetchone()
    if row is None:
        raise not_found("input", req.input_id)
    return service_pb2.SingleInputResponse(input=_rendered(row[0], ctx.server.media_url))


def _sync_input_level(db: sqlite3.Connection, server: ServerState, pk: int, stored: resources_pb2.Input,
                      user_id: str, ts, stamp: float) -> None:
    """Make the input's input-level annotations carry exactly the input's concepts.

    The first one gets them all (and stays, empty or not: every input has one); any other
    drops the concepts the input no longer has (and goes when nothing is left of it); with
    none, one is created.
    """
    wanted = {c.id for c in stored.data.concepts}
    first = True
    for ann_id, proto in db.execute("SELECT id, proto FROM annotations WHERE app_pk=? AND "
                                    "input_id=? ORDER BY seq", (pk, stored.id)).fetchall():
        ann = resources_pb2.Annotation.FromString(proto)
        if not ann.input_level or ann.data.regions:
            continue
        keep = list(stored.data.concepts) if first else [
            c for c in ann.data.concepts if c.id in wanted]
        was_first, first = first, False
        if not keep and not ann.data.metadata.fields and not was_first:
            db.execute("DELETE FROM annotations WHERE app_pk=? AND id=?", (pk, ann_id))
            continue
        del ann.data.concepts[:]
        ann.data.concepts.extend(keep)
        ann.modified_at.CopyFrom(ts)
        db.execute("UPDATE annotations SET proto=? WHERE app_pk=? AND id=?",
                   (ann.SerializeToString(), pk, ann_id))
    if first:
        ann = new_annotation(new_id(), stored.id, user_id, ts)
        ann.data.concepts.extend(stored.data.concepts)
        insert_annotations(db, server, pk, [ann], stamp)


@rpc("PatchInputs")
def patch_inputs(
    ctx: CallContext, req: service_pb2.PatchInputsRequest,
) -> service_pb2.MultiInputResponse:
    """Patch inputs' concepts and metadata (merge / overwrite / remove); per-item statuses.

    Media cannot change (delete and re-post instead); regions are annotations, changed
    with the annotation RPCs.
    """
    user_id, app_id = user_app(req)
    action = patch_action(req.action)
    server = ctx.server
    stamp = now()
    ts = timestamp(stamp)
    results: list[resources_pb2.Input] = []
    patched = 0
    with server.store.write() as db:
        pk = app_pk(db, req)
        concepts: dict[str, resources_pb2.Concept] = {}
        for i, patch in enumerate(req.inputs):
            where = f"inputs[{i}]"
            row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                             (pk, patch.id)).fetchone()
            problem, code = None, _INVALID
            data = patch.data
            if row is None:
                problem, code = f"{where}: input '{patch.id}' does not exist", _MISSING
            elif any(data.HasField(kind) for kind in MEDIA_KINDS):
                problem = (f"{where}: the media of input '{patch.id}' cannot be patched: "
                           "delete the input and post it again")
            elif data.regions:
                problem = (f"{where}: regions are annotations: change them with "
                           "PostAnnotations / PatchAnnotations")
            elif action != "remove":
                problem = prepare_data(server, data, f"{where}.data", [])
            if problem:
                results.append(resources_pb2.Input(id=patch.id, status=item_status(code, problem)))
                continue
            stored = resources_pb2.Input.FromString(row[0])
            # Field by field inside data: "overwrite" replaces the concepts or metadata given,
            # never the media the patch does not mention.
            patch_message(stored.data, data, action, top=False)
            stored.modified_at.CopyFrom(ts)
            db.execute("UPDATE inputs SET proto=? WHERE app_pk=? AND id=?",
                       (stored.SerializeToString(), pk, stored.id))
            if data.concepts:
                _sync_input_level(db, server, pk, stored, user_id, ts, stamp)
            collect_concepts(stored.data, concepts)
            patched += 1
            results.append(render_hosted(stored, server.media_url))
        ensure_concepts(db, server, pk, user_id, app_id, concepts, stamp)
    return service_pb2.MultiInputResponse(status=overall_status(len(results) - patched, len(results)),
                                          inputs=results)


@rpc("DeleteInputs")
def delete_inputs(
    ctx: CallContext, req: service_pb2.DeleteInputsRequest,
) -> status_pb2.BaseResponse:
    """Delete inputs by id in one transaction; ids that do not exist are ignored."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        input_rows.delete(db, pk, list(req.ids))
        ctx.server.embeddings.forget(db, pk, list(req.ids))
    return status_pb2.BaseResponse()


@rpc("DeleteInput")
def delete_input(ctx: CallContext, req: service_pb2.DeleteInputRequest) -> status_pb2.BaseResponse:
    """Delete one input; a missing one is reported."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        if not input_rows.delete(db, pk, [req.input_id]):
            raise not_found("input", req.input_id)
        ctx.server.embeddings.forget(db, pk, [req.input_id])
    return status_pb2.BaseResponse()
