"""Annotations: PostAnnotations, GetAnnotation, ListAnnotations, PatchAnnotations,
DeleteAnnotation(s); plus the region checks PostInputs shares.

Every annotation is stored with status ANNOTATION_SUCCESS and the app owner as ``user_id``
(the local server knows keys, not users). Mask bytes are stored like input media: the
stored ``mask.image`` keeps ``hosted.suffix`` only, and responses carry hosted URLs.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from ..records import box_problem
from . import media_blobs
from .common import (
    app_pk,
    id_problem,
    invalid,
    item_status,
    not_found,
    page_window,
    patch_action,
    patch_message,
    timestamp,
    user_app,
)
from .concepts import collect_concepts, concept_problem, ensure_concepts, existing_ids
from .rpc import CallContext, RpcFailure, rpc, status
from .store import insert_many, now

ANNOTATION_OK = status(status_code_pb2.ANNOTATION_SUCCESS, "Annotation success")
_INVALID = status_code_pb2.ANNOTATION_INVALID_ARGUMENT
_BOX_SIDES = ("top_row", "left_col", "bottom_row", "right_col")


def new_id() -> str:
    """A fresh 32-hex-digit id, shaped like the API's generated ids.

    Time-ordered (microseconds first, then randomness): new rows land at the end of the
    primary-key B-tree instead of dirtying a random page each, which keeps a commit's
    write volume flat as tables grow.
    """
    return f"{time.time_ns() // 1000:014x}{os.urandom(9).hex()}"


def new_ids(count: int) -> list[str]:
    """``count`` fresh ids like :func:`new_id`'s, from one clock read and one random draw."""
    stamp = f"{time.time_ns() // 1000:014x}"
    noise = os.urandom(9 * count).hex()
    return [stamp + noise[18 * i:18 * i + 18] for i in range(count)]


def _outside(value: float) -> bool:
    return math.isnan(value) or not 0.0 <= value <= 1.0


def _point_problem(point: resources_pb2.Point, where: str) -> str | None:
    if _outside(point.row) or _outside(point.col):
        return f"{where} ({point.row}, {point.col}) is outside 0..1"
    return None


def region_problem(region: resources_pb2.Region, where: str) -> str | None:
    """Why a region is invalid (coordinates outside 0..1, inverted box, …), or None."""
    info = region.region_info
    if info.HasField("bounding_box"):
        box = info.bounding_box
        for side in _BOX_SIDES:
            if _outside(getattr(box, side)):
                return (f"{where}: bounding_box.{side} is {getattr(box, side)}, outside 0..1 "
                        "(coordinates are fractions of the image size)")
        problem = box_problem(box.top_row, box.left_col, box.bottom_row, box.right_col)
        if problem:
            return f"{where}: bounding_{problem}"
    if info.HasField("polygon"):
        if len(info.polygon.points) < 3:
            return f"{where}: polygon has {len(info.polygon.points)} points, needs at least 3"
        for i, point in enumerate(info.polygon.points):
            problem = _point_problem(point, f"{where}: polygon point {i}")
            if problem:
                return problem
    if info.HasField("point"):
        problem = _point_problem(info.point, f"{where}: point")
        if problem:
            return problem
    if info.HasField("mask"):
        image = info.mask.image
        if not (image.base64 or image.url or image.hosted.suffix):
            return f"{where}: mask has no image (set mask.image.base64 or mask.image.url)"
    for i, concept in enumerate(region.data.concepts):
        problem = concept_problem(concept, f"{where}.concepts[{i}]")
        if problem:
            return problem
    return None


def prepare_data(server: Any, data: resources_pb2.Data, where: str,
                 small: list[tuple[str, bytes]]) -> str | None:
    """Validate the labels of ``data`` (concepts, regions) in place and move mask bytes out.

    Region ids are generated where missing. Returns the first problem found, or None.
    """
    for i, concept in enumerate(data.concepts):
        problem = concept_problem(concept, f"{where}.concepts[{i}]")
        if problem:
            return problem
    return prepare_regions(server, data, where, small)


def prepare_regions(server: Any, data: resources_pb2.Data, where: str,
                    small: list[tuple[str, bytes]]) -> str | None:
    """The region half of :func:`prepare_data`: checks, missing ids, mask bytes moved out."""
    for i, region in enumerate(data.regions):
        problem = region_problem(region, f"{where}.regions[{i}]")
        if problem:
            return problem
        if region.id:
            problem = id_problem(region.id, "region id")
            if problem:
                return f"{where}.regions[{i}]: {problem}"
        else:
            region.id = new_id()
        image = region.region_info.mask.image
        if image.base64:
            image.hosted.suffix = media_blobs.stash(server, image.base64, small)
            image.ClearField("base64")
    return None


def render_annotation(annotation: resources_pb2.Annotation, media_url: str):
    """Fill the hosted URLs of stored mask images, for a response."""
    prefix = None
    for region in annotation.data.regions:
        info = region.region_info
        if not info.HasField("mask"):
            continue
        image = info.mask.image
        suffix = image.hosted.suffix
        if suffix:
            prefix = prefix or f"{media_url}/media"
            hosted = image.hosted
            hosted.prefix = prefix
            if len(hosted.sizes) != 1 or hosted.sizes[0] != "orig":  # a slice copy is slow
                hosted.sizes[:] = ["orig"]
            if not image.url:
                image.url = f"{prefix}/orig/{suffix}"
    return annotation


def new_annotation(ann_id: str, input_id: str, user_id: str, stamp_ts,
                   data: resources_pb2.Data | None = None) -> resources_pb2.Annotation:
    """A stored annotation: success status, timestamps, owner; ``input_level`` without regions."""
    ann = resources_pb2.Annotation(id=ann_id, input_id=input_id, user_id=user_id,
                                   status=ANNOTATION_OK, created_at=stamp_ts,
                                   modified_at=stamp_ts)
    if data is not None:
        ann.data.CopyFrom(data)
    ann.input_level = not ann.data.regions
    return ann


def insert_annotations(db: sqlite3.Connection, server: Any, pk: int,
                       annotations: list[resources_pb2.Annotation], stamp: float) -> None:
    """Insert stored annotations (inside a write), reserving their sequence numbers."""
    insert_annotation_rows(db, server, pk, [(a.id, a.input_id, a.SerializeToString())
                                            for a in annotations], stamp)


def insert_annotation_rows(db: sqlite3.Connection, server: Any, pk: int,
                           rows: list[tuple[str, str, bytes]], stamp: float) -> None:
    """Insert serialized stored annotations (id, input id, proto), inside a write."""
    if not rows:
        return
    first = server.store.next_seq(db, "annotations", len(rows))
    insert_many(db, "INSERT INTO annotations(app_pk, id, input_id, seq, proto, created_at)",
                [(pk, ann_id, input_id, first + i, proto, stamp)
                 for i, (ann_id, input_id, proto) in enumerate(rows)])


def refresh_input_concepts(db: sqlite3.Connection, pk: int, input_ids) -> None:
    """Set each input's ``data.concepts`` to the concepts of its input-level annotations.

    An input's labels are its input-level annotations, as in the API: after those change
    through the annotation RPCs, the input (and so every export of it) must say the same.
    """
    for input_id in sorted(set(input_ids)):
        row = db.execute("SELECT proto FROM inputs WHERE app_pk=? AND id=?",
                         (pk, input_id)).fetchone()
        if row is None:
            continue
        concepts: dict[str, resources_pb2.Concept] = {}
        for (proto,) in db.execute("SELECT proto FROM annotations WHERE app_pk=? AND "
                                   "input_id=? ORDER BY seq", (pk, input_id)):
            ann = resources_pb2.Annotation.FromString(proto)
            if ann.input_level and not ann.data.regions:
                for concept in ann.data.concepts:
                    concepts.setdefault(concept.id, concept)
        stored = resources_pb2.Input.FromString(row[0])
        if list(stored.data.concepts) == list(concepts.values()):
            continue
        del stored.data.concepts[:]
        stored.data.concepts.extend(concepts.values())
        db.execute("UPDATE inputs SET proto=? WHERE app_pk=? AND id=?",
                   (stored.SerializeToString(), pk, input_id))


def _input_ids_of(db: sqlite3.Connection, pk: int, ids) -> list[str]:
    return [r[0] for r in db.execute(
        "SELECT DISTINCT input_id FROM annotations WHERE app_pk=? AND id IN "
        "(SELECT value FROM json_each(?))", (pk, _json(ids)))]


def _overall(failed: int, total: int) -> status_pb2.Status:
    if not failed:
        return status()
    if failed == total:
        return status(status_code_pb2.FAILURE, "Failure")
    return status(status_code_pb2.MIXED_STATUS, "Mixed Success")


def _failed(ann: resources_pb2.Annotation, problem: str) -> resources_pb2.Annotation:
    out = resources_pb2.Annotation(id=ann.id, input_id=ann.input_id)
    out.status.CopyFrom(item_status(_INVALID, problem))
    return out


@rpc("PostAnnotations")
def post_annotations(
    ctx: CallContext, req: service_pb2.PostAnnotationsRequest,
) -> service_pb2.MultiAnnotationResponse:
    """Create annotations; each gets ANNOTATION_SUCCESS or ANNOTATION_INVALID_ARGUMENT."""
    user_id, app_id = user_app(req)
    if not req.annotations:
        raise invalid("no annotations given")
    stamp = now()
    ts = timestamp(stamp)
    server = ctx.server
    results: list[resources_pb2.Annotation | None] = []
    problems: list[str | None] = []
    small: list[tuple[str, bytes]] = []
    for i, ann in enumerate(req.annotations):
        where = f"annotations[{i}]"
        problem = id_problem(ann.input_id, "input_id")
        if not problem and ann.id:
            problem = id_problem(ann.id, "annotation id")
        if not problem:
            problem = prepare_data(server, ann.data, where, small)
        problems.append(f"{where}: {problem}" if problem and not problem.startswith(where)
                        else problem)
    with server.store.write() as db:
        pk = app_pk(db, req)
        inputs = existing_ids(db, "inputs", pk, {a.input_id for a in req.annotations})
        taken = existing_ids(db, "annotations", pk, {a.id for a in req.annotations if a.id})
        landed, seen, concepts = [], set(), {}
        for i, (ann, problem) in enumerate(zip(req.annotations, problems, strict=True)):
            if problem is None and ann.input_id not in inputs:
                problem = f"annotations[{i}]: input '{ann.input_id}' does not exist"
            if problem is None and ann.id and (ann.id in taken or ann.id in seen):
                problem = f"annotations[{i}]: annotation id '{ann.id}' already exists"
            if problem is not None:
                results.append(_failed(ann, problem))
                continue
            stored = new_annotation(ann.id or new_id(), ann.input_id, user_id, ts,
                                    ann.data)
            if ann.HasField("annotation_info"):
                stored.annotation_info.CopyFrom(ann.annotation_info)
            seen.add(stored.id)
            collect_concepts(stored.data, concepts)
            landed.append(stored)
            results.append(stored)
        insert_annotations(db, server, pk, landed, stamp)
        refresh_input_concepts(db, pk, [a.input_id for a in landed
                                        if a.input_level and a.data.concepts])
        ensure_concepts(db, server, pk, user_id, app_id, concepts, stamp)
        media_blobs.insert_small(db, small)
    for ann in landed:
        render_annotation(ann, server.media_url)
    return service_pb2.MultiAnnotationResponse(
        status=_overall(len(results) - len(landed), len(results)), annotations=results)


@rpc("GetAnnotation")
def get_annotation(
    ctx: CallContext, req: service_pb2.GetAnnotationRequest,
) -> service_pb2.SingleAnnotationResponse:
    """One annotation by input id and annotation id."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    row = db.execute("SELECT proto FROM annotations WHERE app_pk=? AND id=? AND input_id=?",
                     (pk, req.annotation_id, req.input_id)).fetchone()
    if row is None:
        raise not_found("annotation", req.annotation_id)
    ann = resources_pb2.Annotation.FromString(row[0])
    return service_pb2.SingleAnnotationResponse(
        annotation=render_annotation(ann, ctx.server.media_url))


def _json(values) -> str:
    return json.dumps(list(values))


@rpc("ListAnnotations")
def list_annotations(
    ctx: CallContext, req: service_pb2.ListAnnotationsRequest,
) -> service_pb2.MultiAnnotationResponse:
    """Annotations in creation order, by ``ids`` and/or ``input_ids`` or all of the app.

    Every stored annotation is a trusted user annotation with ANNOTATION_SUCCESS, so
    ``list_all_annotations`` changes nothing; ``statuses`` and ``user_ids`` filter by that.
    """
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    limit, offset = page_window(req)
    if req.ids and req.input_ids and len(req.ids) != len(req.input_ids):
        raise RpcFailure(status_code_pb2.CONN_INVALID_REQUEST, "Invalid request",
                         f"ids ({len(req.ids)}) and input_ids ({len(req.input_ids)}) must "
                         "pair up one to one when both are given")
    if req.statuses and status_code_pb2.ANNOTATION_SUCCESS not in {s.code for s in req.statuses}:
        return service_pb2.MultiAnnotationResponse()
    if req.user_ids and req.user_app_id.user_id not in req.user_ids:
        return service_pb2.MultiAnnotationResponse()
    sql, args = "SELECT id, input_id, proto FROM annotations WHERE app_pk=?", [pk]
    pairs = None
    if req.ids:
        sql += " AND id IN (SELECT value FROM json_each(?))"
        args.append(_json(req.ids))
        if req.input_ids:
            pairs = set(zip(req.ids, req.input_ids, strict=True))
    elif req.input_ids:
        sql += " AND input_id IN (SELECT value FROM json_each(?))"
        args.append(_json(req.input_ids))
    rows = db.execute(sql + " ORDER BY seq LIMIT ? OFFSET ?", (*args, limit, offset))
    media_url = ctx.server.media_url
    out = [render_annotation(resources_pb2.Annotation.FromString(proto), media_url)
           for ann_id, input_id, proto in rows
           if pairs is None or (ann_id, input_id) in pairs]
    return service_pb2.MultiAnnotationResponse(annotations=out)


@rpc("PatchAnnotations")
def patch_annotations(
    ctx: CallContext, req: service_pb2.PatchAnnotationsRequest,
) -> service_pb2.MultiAnnotationResponse:
    """Patch annotations' data (merge / overwrite / remove); per-item statuses. Merging a
    region without an id replaces the annotation's region, as the API does."""
    user_id, app_id = user_app(req)
    action = patch_action(req.action)
    stamp = now()
    ts = timestamp(stamp)
    server = ctx.server
    small: list[tuple[str, bytes]] = []
    results, patched_count = [], 0
    with server.store.write() as db:
        pk = app_pk(db, req)
        concepts: dict[str, resources_pb2.Concept] = {}
        touched: list[str] = []
        for i, patch in enumerate(req.annotations):
            where = f"annotations[{i}]"
            row = db.execute("SELECT input_id, proto FROM annotations WHERE app_pk=? AND id=?",
                             (pk, patch.id)).fetchone()
            if row is None or (patch.input_id and patch.input_id != row[0]):
                on = f" on input '{patch.input_id}'" if patch.input_id else ""
                results.append(_failed(patch, f"{where}: annotation '{patch.id}' does not "
                                              f"exist{on}"))
                continue
            stored = resources_pb2.Annotation.FromString(row[1])
            data = resources_pb2.Data()
            data.CopyFrom(patch.data)
            # An annotation holds one region: merging a region without an id replaces it
            # (a region with an id still merges into the region of that id).
            replace_region = action == "merge" and any(not reg.id for reg in data.regions)
            problem = None if action == "remove" else prepare_data(server, data, where, small)
            if problem:
                results.append(_failed(patch, problem))
                continue
            if replace_region:
                del stored.data.regions[:]
            # Field by field inside data: "overwrite" replaces the regions or concepts given
            # and keeps what the patch does not mention.
            patch_message(stored.data, data, action, top=False)
            if patch.HasField("annotation_info"):
                body = resources_pb2.Annotation(annotation_info=patch.annotation_info)
                patch_message(stored, body, action)
            stored.modified_at.CopyFrom(ts)
            stored.status.CopyFrom(ANNOTATION_OK)
            if action == "remove" and req.delete_if_empty_data and not stored.input_level \
                    and not stored.data.ListFields():
                db.execute("DELETE FROM annotations WHERE app_pk=? AND id=?", (pk, stored.id))
            else:
                db.execute("UPDATE annotations SET proto=? WHERE app_pk=? AND id=?",
                           (stored.SerializeToString(), pk, stored.id))
            collect_concepts(stored.data, concepts)
            if stored.input_level:
                touched.append(stored.input_id)
            patched_count += 1
            results.append(render_annotation(stored, server.media_url))
        refresh_input_concepts(db, pk, touched)
        ensure_concepts(db, server, pk, user_id, app_id, concepts, stamp)
        media_blobs.insert_small(db, small)
    return service_pb2.MultiAnnotationResponse(
        status=_overall(len(results) - patched_count, len(results)), annotations=results)


def delete_for_inputs(db: sqlite3.Connection, pk: int, input_ids: list[str]) -> None:
    """Delete every annotation of ``input_ids`` (inside a write)."""
    db.execute("DELETE FROM annotations WHERE app_pk=? AND input_id IN "
               "(SELECT value FROM json_each(?))", (pk, _json(input_ids)))


@rpc("DeleteAnnotations")
def delete_annotations(
    ctx: CallContext, req: service_pb2.DeleteAnnotationsRequest,
) -> status_pb2.BaseResponse:
    """Delete by ``ids`` (paired with ``input_ids`` when both are given) or all of ``input_ids``."""
    if not req.ids and not req.input_ids:
        raise invalid("give annotation ids and/or input_ids to delete")
    if req.ids and req.input_ids and len(req.ids) != len(req.input_ids):
        raise RpcFailure(status_code_pb2.CONN_INVALID_REQUEST, "Invalid request",
                         f"ids ({len(req.ids)}) and input_ids ({len(req.input_ids)}) must "
                         "pair up one to one when both are given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        if req.ids and req.input_ids:
            db.executemany("DELETE FROM annotations WHERE app_pk=? AND id=? AND input_id=?",
                           [(pk, a, i) for a, i in zip(req.ids, req.input_ids, strict=True)])
            touched = list(req.input_ids)
        elif req.ids:
            touched = _input_ids_of(db, pk, req.ids)
            db.execute("DELETE FROM annotations WHERE app_pk=? AND id IN "
                       "(SELECT value FROM json_each(?))", (pk, _json(req.ids)))
        else:
            delete_for_inputs(db, pk, list(req.input_ids))
            touched = list(req.input_ids)
        refresh_input_concepts(db, pk, touched)
    return status_pb2.BaseResponse()


@rpc("DeleteAnnotation")
def delete_annotation(
    ctx: CallContext, req: service_pb2.DeleteAnnotationRequest,
) -> status_pb2.BaseResponse:
    """Delete one annotation of one input; a missing one is reported."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        cur = db.execute("DELETE FROM annotations WHERE app_pk=? AND id=? AND input_id=?",
                         (pk, req.annotation_id, req.input_id))
        if cur.rowcount == 0:
            raise not_found("annotation", req.annotation_id)
        refresh_input_concepts(db, pk, [req.input_id])
    return status_pb2.BaseResponse()
