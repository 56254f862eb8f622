"""Inputs: PostInputs, ListInputs, StreamInputs, GetInput, PatchInputs, DeleteInput(s).

Stored form (what datasets, versions and exports read): an ``inputs`` row per input whose
``proto`` is the Input without media bytes (``hosted.suffix`` = their media key, see
:mod:`.media_blobs`; ``text.raw`` is kept as well) and without regions. Inline regions
become one annotation each; inline concepts stay in ``data.concepts`` and are mirrored by
one input-level annotation (``input_level=True``), as the API does. The ``status`` column
is the input's status code (INPUT_DOWNLOAD_*).

PostInputs is the hot path of every upload: one validation pass without the write lock,
then one write transaction of ``executemany`` inserts.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from ..mediatypes import content_problem
from . import downloads, input_jobs, input_rows, media_blobs
from .annotations import (
    insert_annotations,
    new_annotation,
    new_id,
    prepare_data,
)
from .common import (
    MAX_PER_PAGE,
    app_pk,
    id_problem,
    invalid,
    item_status,
    not_found,
    page_window,
    patch_action,
    patch_message,
    require_id,
    timestamp,
    user_app,
)
from .concepts import collect_concepts, ensure_concepts, existing_ids
from .media_blobs import MEDIA_KINDS, render_hosted
from .rpc import CallContext, RpcFailure, ServerState, rpc, status
from .store import now

MAX_INPUTS_PER_REQUEST = 128  # the API's limit; the official SDK enforces it too
STREAM_PER_PAGE = 20  # StreamInputs' default page size
_OK = status(downloads.SUCCESS, "Download complete")
_PENDING = status(downloads.PENDING, "Download pending")
_INVALID = status_code_pb2.INPUT_INVALID_ARGUMENT
_DUPLICATE = status_code_pb2.INPUT_DUPLICATE
_MISSING = status_code_pb2.INPUT_DOES_NOT_EXIST
_RESOLUTIONS = (resources_pb2.INPUT_ID_CONFLICT_RESOLUTION_NOT_SET, resources_pb2.SKIP,
                resources_pb2.SUFFIX)


def _overall(failed: int, total: int) -> status_pb2.Status:
    if not failed:
        return status()
    if failed == total:
        return status(status_code_pb2.FAILURE, "Failure")
    return status(status_code_pb2.MIXED_STATUS, "Mixed Success")


def _prepare(server: ServerState, inp: resources_pb2.Input, where: str,
             small: list[tuple[str, bytes]]) -> tuple[str | None, bool]:
    """Validate one posted input in place and move its bytes out.

    Returns (problem or None, whether its media must be downloaded from a URL).
    """
    if inp.id:
        problem = id_problem(inp.id, "input id")
        if problem:
            return f"{where}: {problem}", False
    else:
        inp.id = new_id()
    data = inp.data
    kinds = [kind for kind in MEDIA_KINDS if data.HasField(kind)]
    if len(kinds) != 1:
        if not kinds:
            return (f"{where}: input '{inp.id}' has no data: set one of image, video, audio "
                    "or text (bytes or a URL)"), False
        return f"{where}: input '{inp.id}' sets {' and '.join(kinds)}: set only one", False
    kind = kinds[0]
    part = getattr(data, kind)
    part.ClearField("hosted")  # hosted URLs are the server's to set
    is_url = False
    if kind == "text" and part.raw:
        part.hosted.suffix = media_blobs.stash(server, part.raw.encode(), small)
    elif kind != "text" and part.base64:
        # Bytes that are not the declared kind are not stored (a damaged file of the right
        # kind is, as before: embedders skip what they cannot decode).
        problem = content_problem(kind, part.base64, check_end=False)
        if problem:
            return f"{where}: input '{inp.id}': {problem}", False
        part.hosted.suffix = media_blobs.stash(server, part.base64, small)
        part.ClearField("base64")
    elif part.url:
        digest = media_blobs.own_digest(server, part.url)
        if digest:  # re-posting media this server hosts: no download needed
            part.hosted.suffix = digest
        else:
            problem = downloads.url_problem(part.url)
            if problem:
                return f"{where}: {problem}", False
            is_url = True
    else:
        what = "raw" if kind == "text" else "base64"
        return (f"{where}: input '{inp.id}' has an empty {kind}: set {kind}.{what} or "
                f"{kind}.url"), False
    for dataset_id in inp.dataset_ids:
        problem = id_problem(dataset_id, "dataset id")
        if problem:
            return f"{where}: {problem}", False
    return prepare_data(server, data, f"{where}.data", small), is_url


def _suffixed(db: sqlite3.Connection, pk: int, input_id: str, taken: set[str]) -> str:
    """A free id for SUFFIX conflict resolution: ``id-1`` … ``id-9``, then a random suffix."""
    candidates = [f"{input_id}-{n}" for n in range(1, 10)]
    used = existing_ids(db, "inputs", pk, candidates) | taken
    for candidate in candidates:
        if candidate not in used:
            return candidate
    while True:
        candidate = f"{input_id}-{os.urandom(4).hex()}"
        if candidate not in taken and not existing_ids(db, "inputs", pk, [candidate]):
            return candidate


def _inline_annotations(inp: resources_pb2.Input,
                        template: resources_pb2.Annotation) -> list[resources_pb2.Annotation]:
    """The annotations a posted input's labels become: its input-level annotation (with its
    concepts, if any: the API creates one for every input), one more per region.
    ``template`` carries owner, status and timestamps."""
    data = inp.data
    ann = resources_pb2.Annotation()
    ann.CopyFrom(template)  # cheaper than building each from keyword arguments
    ann.id, ann.input_id = new_id(), inp.id
    ann.data.concepts.extend(data.concepts)
    out = [ann]
    for region in data.regions:
        ann = resources_pb2.Annotation()
        ann.CopyFrom(template)
        ann.id, ann.input_id, ann.input_level = new_id(), inp.id, False
        ann.data.regions.add().CopyFrom(region)
        out.append(ann)
    return out


def _failed_echo(inp: resources_pb2.Input, code: int, problem: str) -> None:
    """Turn a rejected request input into its response item: status set, no bytes, and no
    hosted name (its bytes were not kept)."""
    for kind in MEDIA_KINDS:
        if inp.data.HasField(kind):
            part = getattr(inp.data, kind)
            part.ClearField("hosted")
            if kind != "text":
                part.ClearField("base64")
    for region in inp.data.regions:
        if region.region_info.HasField("mask"):
            region.region_info.mask.image.ClearField("base64")
            region.region_info.mask.image.ClearField("hosted")
    inp.status.CopyFrom(item_status(code, problem))


@dataclass
class _Posted:
    """A PostInputs request's inputs once validated, index for index with the request:
    the problem of each rejected one (code, message), whether its media is downloaded from
    a URL, its small media bytes, its stored proto and the annotations its labels become."""

    problems: list[tuple[int, str] | None]
    by_url: list[bool]
    smalls: list[list[tuple[str, bytes]]]
    protos: list[bytes]
    labels: list[list[resources_pb2.Annotation]]


@rpc("PostInputs")
def post_inputs(
    ctx: CallContext, req: service_pb2.PostInputsRequest,
) -> service_pb2.MultiInputResponse:
    """Create inputs; per-item statuses, MIXED_STATUS when some fail, FAILURE when all do.

    Validate (no lock) → resolve ids → store (one write transaction) → answer.
    """
    user_id, app_id = user_app(req)
    server = ctx.server
    server.ingest.touch()
    _check_request(server, req)
    inputs = req.inputs
    stamp = now()
    # Everything that needs no lock happens first: validation, media bytes, the stored
    # protos and their annotations, serialized. The write lock then only checks ids and
    # inserts, so one request's Python overlaps another's commit.
    posted = _validate(server, inputs, user_id, timestamp(stamp))
    with server.store.write() as db:
        pk = app_pk(db, req)
        landed = _resolve_ids(db, pk, app_id, inputs, posted, req.input_id_conflict_resolution)
        rows = _store(db, server, pk, (user_id, app_id), inputs, posted, landed,
               req.inputs_add_job_id, stamp)
    # Ids from the rows just written: indexing ``inputs`` again builds a wrapper per item.
    by_url = posted.by_url
    ids = [(row[0], by_url[i]) for i, row in zip(landed, rows, strict=True)]
    downloads.schedule(server, pk, [input_id for input_id, url in ids if url])
    server.embeddings.schedule(pk, [input_id for input_id, url in ids if not url])
    media_url = server.media_url
    for i, inp in enumerate(inputs):
        problem = posted.problems[i]
        if problem is None:
            render_hosted(inp, media_url)
        else:
            _failed_echo(inp, *problem)
    return service_pb2.MultiInputResponse(status=_overall(len(inputs) - len(landed),
                                                          len(inputs)), inputs=inputs)


def _check_request(server: ServerState, req: service_pb2.PostInputsRequest) -> None:
    """Refuse the whole request when it is malformed or its app does not exist."""
    total = len(req.inputs)
    if not total:
        raise invalid("no inputs given")
    if total > MAX_INPUTS_PER_REQUEST:
        raise invalid(f"{total} inputs in one request: at most {MAX_INPUTS_PER_REQUEST}")
    if req.inputs_add_job_id:
        require_id(req.inputs_add_job_id, "inputs_add_job_id")
    resolution = req.input_id_conflict_resolution
    if resolution not in _RESOLUTIONS:
        raise invalid(f"unknown input_id_conflict_resolution {resolution}")
    app_pk(server.store.read(), req)  # fail fast, before any work; checked again when storing


def _validate(server: ServerState, inputs, user_id: str, ts) -> _Posted:
    """Validate each input in place, moving its media bytes out and its labels into
    annotations, and serialize what will be stored (no lock held)."""
    total = len(inputs)
    posted = _Posted(problems=[None] * total, by_url=[False] * total,
                     smalls=[[] for _ in range(total)], protos=[b""] * total,
                     labels=[[] for _ in range(total)])
    template = new_annotation("", "", user_id, ts)
    for i, inp in enumerate(inputs):
        problem, posted.by_url[i] = _prepare(server, inp, f"inputs[{i}]", posted.smalls[i])
        if problem:
            posted.problems[i] = (_INVALID, problem)
            continue
        data = inp.data
        posted.labels[i] = _inline_annotations(inp, template)
        del data.regions[:]  # the input's regions live on as annotations
        inp.status.CopyFrom(_PENDING if posted.by_url[i] else _OK)
        inp.created_at.CopyFrom(ts)
        inp.modified_at.CopyFrom(ts)
        posted.protos[i] = inp.SerializeToString()
    return posted


def _resolve_ids(db: sqlite3.Connection, pk: int, app_id: str, inputs, posted: _Posted,
                 resolution: int) -> list[int]:
    """Check the valid inputs' ids (repeated, taken: failed or suffixed, per ``resolution``)
    and datasets against the app, inside the write; returns the indexes of those to store."""
    problems, total = posted.problems, len(inputs)
    candidates = [inputs[i].id for i in range(total) if problems[i] is None]
    existing = existing_ids(db, "inputs", pk, candidates)
    wanted = {d for i in range(total) if problems[i] is None for d in inputs[i].dataset_ids}
    datasets = existing_ids(db, "datasets", pk, wanted) if wanted else set()
    seen: set[str] = set()
    landed: list[int] = []
    for i, inp in enumerate(inputs):
        if problems[i] is not None:
            continue
        if inp.id in seen:
            problems[i] = (_DUPLICATE, f"inputs[{i}]: input id '{inp.id}' appears more "
                                       "than once in this request")
            continue
        unknown = [d for d in inp.dataset_ids if d not in datasets]
        if unknown:
            problems[i] = (_INVALID, f"inputs[{i}]: dataset '{unknown[0]}' does not exist "
                                     f"in app '{app_id}'")
            continue
        if inp.id in existing:
            if resolution != resources_pb2.SUFFIX:
                problems[i] = (_DUPLICATE, f"inputs[{i}]: input id '{inp.id}' already "
                                           "exists in this app")
                continue
            inp.id = _suffixed(db, pk, inp.id, seen | set(candidates))
            posted.protos[i] = inp.SerializeToString()
            for ann in posted.labels[i]:
                ann.input_id = inp.id
        seen.add(inp.id)
        landed.append(i)
    return landed


def _store(db: sqlite3.Connection, server: ServerState, pk: int, owner: tuple[str, str],
           inputs, posted: _Posted, landed: list[int], job_id: str,
           stamp: float) -> list[tuple[str, int, bytes]]:
    """Write the ``landed`` inputs with their dataset memberships, annotations, concepts,
    small media bytes and add-job, inside the write; returns the input rows written
    (id, status code, stored proto), in the order of ``landed``."""
    user_id, app_id = owner
    rows, dataset_rows, annotations, small = [], [], [], []
    concepts: dict[str, resources_pb2.Concept] = {}
    for i in landed:
        inp = inputs[i]
        rows.append((inp.id, inp.status.code, posted.protos[i]))
        for ann in posted.labels[i]:
            annotations.append(ann)
            collect_concepts(ann.data, concepts)
        dataset_rows.extend((dataset_id, inp.id) for dataset_id in inp.dataset_ids)
        small += posted.smalls[i]
    input_rows.insert(db, server.store, pk, rows, dataset_rows, job_id or None, stamp)
    insert_annotations(db, server, pk, annotations, stamp)
    ensure_concepts(db, server, pk, user_id, app_id, concepts, stamp)
    media_blobs.insert_small(db, small)
    if job_id:
        input_jobs.record_job(db, server, pk, job_id, len(inputs) - len(landed), stamp)
    return rows


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
    return service_pb2.MultiInputResponse(status=_overall(len(results) - patched, len(results)),
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
