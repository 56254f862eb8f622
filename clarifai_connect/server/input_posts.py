"""PostInputs, the hot path of every upload (the stored form is described in :mod:`.inputs`).

A request is validated without the write lock, then written in one transaction of
``executemany`` inserts, then answered. Profiling showed the cost per input was Python
work on protobuf messages: setting fields one at a time, copying a template annotation,
rendering hosted URLs on each echoed input, serializing each again. So each input is
touched once: its media bytes are cleared, it is serialized once, and everything else —
its stored status, timestamps and media key, its annotations, its echo in the response
with hosted URLs — is appended as wire bytes (:mod:`.wire`). The response goes out as
those bytes (:class:`~.rpc.PreSerialized`), never built as messages.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from ..mediatypes import content_problem
from . import downloads, input_jobs, input_rows, media_blobs, wire
from .annotations import (
    insert_annotation_rows,
    new_annotation,
    new_ids,
    prepare_regions,
)
from .common import (
    app_pk,
    id_problem,
    invalid,
    item_status,
    require_id,
    timestamp,
    user_app,
)
from .concepts import concept_problem, ensure_concepts, existing_ids
from .media_blobs import MEDIA_KINDS
from .rpc import CallContext, PreSerialized, ServerState, rpc, status
from .store import now

MAX_INPUTS_PER_REQUEST = 128  # the API's limit; the official SDK enforces it too
_OK = status(downloads.SUCCESS, "Download complete")
_PENDING = status(downloads.PENDING, "Download pending")
_INVALID = status_code_pb2.INPUT_INVALID_ARGUMENT
_DUPLICATE = status_code_pb2.INPUT_DUPLICATE
_RESOLUTIONS = (resources_pb2.INPUT_ID_CONFLICT_RESOLUTION_NOT_SET, resources_pb2.SKIP,
                resources_pb2.SUFFIX)
_SERVER_OWNED = ("status", "created_at", "modified_at")  # replaced, never merged

_INPUT_ID = wire.tag(resources_pb2.Input, "id")
_CONCEPTS = wire.tag(resources_pb2.Data, "concepts")
_REGIONS = wire.tag(resources_pb2.Data, "regions")
_ANN_ID = wire.tag(resources_pb2.Annotation, "id")
_ANN_INPUT_ID = wire.tag(resources_pb2.Annotation, "input_id")
_ANN_DATA = wire.tag(resources_pb2.Annotation, "data")
_RESPONSE_INPUTS = wire.tag(service_pb2.MultiInputResponse, "inputs")


def overall_status(failed: int, total: int) -> status_pb2.Status:
    """A multi-item response's status: SUCCESS, MIXED_STATUS when some items failed,
    FAILURE when all did."""
    if not failed:
        return status()
    if failed == total:
        return status(status_code_pb2.FAILURE, "Failure")
    return status(status_code_pb2.MIXED_STATUS, "Mixed Success")


@dataclass
class _Batch:
    """A request's inputs, index for index: the messages (media bytes moved out), their
    ids, and once validated, the problem of each rejected one (code, message) or, for the
    others, what will be stored and echoed."""

    items: list[resources_pb2.Input]
    ids: list[str]
    problems: list[tuple[int, str] | None]
    by_url: list[bool] = field(default_factory=list)  # media downloaded from a URL
    kinds: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # media key ("" until downloaded)
    own_urls: list[bool] = field(default_factory=list)  # the part keeps a URL of its own
    smalls: list[list[tuple[str, bytes]]] = field(default_factory=list)  # media rows
    concepts: list[list[resources_pb2.Concept]] = field(default_factory=list)
    # The annotations each input's labels become: (id, serialized without the input id,
    # which is added when storing: SUFFIX may change it).
    labels: list[list[tuple[str, bytes]]] = field(default_factory=list)
    datasets: list[Any] = field(default_factory=list)
    protos: list[bytes] = field(default_factory=list)  # the stored Input


@rpc("PostInputs")
def post_inputs(
    ctx: CallContext, req: service_pb2.PostInputsRequest,
) -> PreSerialized:
    """Create inputs; per-item statuses, MIXED_STATUS when some fail, FAILURE when all do.

    Validate (no lock) → resolve ids → store (one write transaction) → answer.
    """
    user_id, app_id = user_app(req)
    server = ctx.server
    server.ingest.touch()
    _check_request(server, req)
    stamp = now()
    # Everything that needs no lock happens first, so one request's Python overlaps
    # another's commit; the write lock then only checks ids and inserts.
    batch = _validate(server, req.inputs, user_id, timestamp(stamp))
    with server.store.write() as db:
        pk = app_pk(db, req)
        landed = _resolve_ids(db, pk, app_id, batch, req.input_id_conflict_resolution)
        _store(db, server, pk, (user_id, app_id), batch, landed, req.inputs_add_job_id,
               stamp)
    ids, by_url = batch.ids, batch.by_url
    downloads.schedule(server, pk, [ids[i] for i in landed if by_url[i]])
    server.embeddings.schedule(pk, [ids[i] for i in landed if not by_url[i]])
    head = service_pb2.MultiInputResponse(status=overall_status(len(ids) - len(landed), len(ids)))
    return PreSerialized(head, _echo(batch, media_blobs.hosted_bytes(server.media_url)))


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


def _validate(server: ServerState, inputs, user_id: str, ts) -> _Batch:
    """Validate each input, moving its media bytes out and its labels into annotation
    bytes, and serialize what will be stored (no lock held)."""
    items = list(inputs)
    total = len(items)
    batch = _Batch(items=items, ids=[inp.id for inp in items], problems=[None] * total,
                   by_url=[False] * total, kinds=[""] * total, keys=[""] * total,
                   own_urls=[False] * total, smalls=[[] for _ in range(total)],
                   concepts=[[] for _ in range(total)], labels=[[] for _ in range(total)],
                   datasets=[()] * total, protos=[b""] * total)
    level = new_annotation("", "", user_id, ts)
    level_head = level.SerializeToString()
    level.input_level = False
    region_head = level.SerializeToString()
    tails = {code.code: resources_pb2.Input(status=code, created_at=ts,
                                           modified_at=ts).SerializeToString()
             for code in (_OK, _PENDING)}
    hosted = media_blobs.hosted_bytes(server.media_url)
    ann_ids = new_ids(total)
    fresh = iter(new_ids(sum(1 for i in batch.ids if not i)))
    known_concepts: set[str] = set()
    for i, inp in enumerate(items):
        where = f"inputs[{i}]"
        if not batch.ids[i]:
            inp.id = batch.ids[i] = next(fresh)
        problem = _prepare(server, inp, i, where, batch, known_concepts)
        if problem:
            batch.problems[i] = (_INVALID, problem)
            continue
        data = inp.data
        concepts = b"".join([wire.field(_CONCEPTS, c.SerializeToString())
                             for c in data.concepts])
        labels = batch.labels[i]
        labels.append((ann_ids[i], b"".join((level_head, wire.field(_ANN_ID, ann_ids[i].encode()),
                                             wire.field(_ANN_DATA, concepts)))))
        if data.regions:
            for ann_id, region in zip(new_ids(len(data.regions)), data.regions, strict=True):
                labels.append((ann_id, b"".join((region_head, wire.field(_ANN_ID, ann_id.encode()),
                    wire.field(_ANN_DATA, wire.field(_REGIONS, region.SerializeToString()))))))
            del data.regions[:]  # the input's regions live on as annotations
        for name in _SERVER_OWNED:
            if inp.HasField(name):
                inp.ClearField(name)
        key = batch.keys[i]
        batch.protos[i] = (inp.SerializeToString()
                           + tails[_PENDING.code if batch.by_url[i] else _OK.code]
                           + (hosted.stored(batch.kinds[i], key) if key else b""))
    return batch


def _prepare(server: ServerState, inp: resources_pb2.Input, i: int, where: str,
             batch: _Batch, known_concepts: set[str]) -> str | None:
    """Validate one posted input and move its media bytes out (into ``batch.smalls`` or
    the blob folder); the problem, or None with its kind, media key and labels noted."""
    input_id = batch.ids[i]
    problem = id_problem(input_id, "input id")
    if problem:
        return f"{where}: {problem}"
    data = inp.data
    has = data.HasField
    kinds = [kind for kind in MEDIA_KINDS if has(kind)]
    if len(kinds) != 1:
        if not kinds:
            return (f"{where}: input '{input_id}' has no data: set one of image, video, "
                    "audio or text (bytes or a URL)")
        return f"{where}: input '{input_id}' sets {' and '.join(kinds)}: set only one"
    kind = batch.kinds[i] = kinds[0]
    part = getattr(data, kind)
    part.ClearField("hosted")  # hosted URLs are the server's to set
    small = batch.smalls[i]
    if kind == "text" and part.raw:
        batch.keys[i] = media_blobs.stash(server, part.raw.encode(), small)
    elif kind != "text" and part.base64:
        media = part.base64
        # Bytes that are not the declared kind are not stored (a damaged file of the right
        # kind is, as before: embedders skip what they cannot decode).
        problem = content_problem(kind, media, check_end=False)
        if problem:
            return f"{where}: input '{input_id}': {problem}"
        batch.keys[i] = media_blobs.stash(server, media, small)
        part.ClearField("base64")
    elif part.url:
        digest = media_blobs.own_digest(server, part.url)
        if digest:  # re-posting media this server hosts: no download needed
            batch.keys[i] = digest
        else:
            problem = downloads.url_problem(part.url)
            if problem:
                return f"{where}: {problem}"
            batch.by_url[i] = True
    else:
        what = "raw" if kind == "text" else "base64"
        return (f"{where}: input '{input_id}' has an empty {kind}: set {kind}.{what} or "
                f"{kind}.url")
    batch.own_urls[i] = bool(part.url)
    if inp.dataset_ids:
        for dataset_id in inp.dataset_ids:
            problem = id_problem(dataset_id, "dataset id")
            if problem:
                return f"{where}: {problem}"
        batch.datasets[i] = list(inp.dataset_ids)
    return _labels_problem(server, data, f"{where}.data", batch.smalls[i],
                           batch.concepts[i], known_concepts)


def _labels_problem(server: ServerState, data: resources_pb2.Data, where: str,
                    small: list[tuple[str, bytes]], used: list[resources_pb2.Concept],
                    known: set[str]) -> str | None:
    """:func:`~.annotations.prepare_data`, with each concept id checked once per request
    (``known``: the ids found valid so far); the concepts used are added to ``used``."""
    for j, concept in enumerate(data.concepts):
        value = concept.value
        if concept.id not in known or not 0.0 <= value <= 1.0:  # NaN fails both ways
            problem = concept_problem(concept, f"{where}.concepts[{j}]")
            if problem:
                return problem
            known.add(concept.id)
        used.append(concept)
    if data.regions:
        problem = prepare_regions(server, data, where, small)
        if problem:
            return problem
        for region in data.regions:
            used.extend(region.data.concepts)
    return None


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


def _resolve_ids(db: sqlite3.Connection, pk: int, app_id: str, batch: _Batch,
                 resolution: int) -> list[int]:
    """Check the valid inputs' ids (repeated, taken: failed or suffixed, per ``resolution``)
    and datasets against the app, inside the write; returns the indexes of those to store."""
    problems, ids = batch.problems, batch.ids
    valid = [i for i, problem in enumerate(problems) if problem is None]
    candidates = [ids[i] for i in valid]
    existing = existing_ids(db, "inputs", pk, candidates)
    wanted = {d for i in valid for d in batch.datasets[i]}
    datasets = existing_ids(db, "datasets", pk, wanted) if wanted else set()
    seen: set[str] = set()
    landed: list[int] = []
    for i in valid:
        input_id = ids[i]
        if input_id in seen:
            problems[i] = (_DUPLICATE, f"inputs[{i}]: input id '{input_id}' appears more "
                                       "than once in this request")
            continue
        unknown = [d for d in batch.datasets[i] if d not in datasets]
        if unknown:
            problems[i] = (_INVALID, f"inputs[{i}]: dataset '{unknown[0]}' does not exist "
                                     f"in app '{app_id}'")
            continue
        if input_id in existing:
            if resolution != resources_pb2.SUFFIX:
                problems[i] = (_DUPLICATE, f"inputs[{i}]: input id '{input_id}' already "
                                           "exists in this app")
                continue
            input_id = ids[i] = _suffixed(db, pk, input_id, seen | set(candidates))
            batch.items[i].id = input_id  # for a failed echo; the stored bytes: the last wins
            batch.protos[i] += wire.field(_INPUT_ID, input_id.encode())
        seen.add(input_id)
        landed.append(i)
    return landed


def _store(db: sqlite3.Connection, server: ServerState, pk: int, owner: tuple[str, str],
           batch: _Batch, landed: list[int], job_id: str, stamp: float) -> None:
    """Write the ``landed`` inputs with their dataset memberships, annotations, concepts,
    small media bytes and add-job, inside the write."""
    user_id, app_id = owner
    ids, protos, by_url = batch.ids, batch.protos, batch.by_url
    ok, pending = _OK.code, _PENDING.code
    rows, dataset_rows, annotations, small = [], [], [], []
    concepts: dict[str, resources_pb2.Concept] = {}
    for i in landed:
        input_id = ids[i]
        rows.append((input_id, pending if by_url[i] else ok, protos[i]))
        owner_field = wire.field(_ANN_INPUT_ID, input_id.encode())
        for ann_id, proto in batch.labels[i]:
            annotations.append((ann_id, input_id, proto + owner_field))
        for concept in batch.concepts[i]:
            concepts.setdefault(concept.id, concept)
        if batch.datasets[i]:
            dataset_rows.extend((dataset_id, input_id) for dataset_id in batch.datasets[i])
        small += batch.smalls[i]
    input_rows.insert(db, server.store, pk, rows, dataset_rows, job_id or None, stamp)
    insert_annotation_rows(db, server, pk, annotations, stamp)
    ensure_concepts(db, server, pk, user_id, app_id, concepts, stamp)
    media_blobs.insert_small(db, small)
    if job_id:
        input_jobs.record_job(db, server, pk, job_id, len(ids) - len(landed), stamp)


def _failed_echo(inp: resources_pb2.Input, code: int, problem: str) -> bytes:
    """A rejected request input as its response item: status set, no bytes, and no
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
    return inp.SerializeToString()


def _echo(batch: _Batch, hosted: media_blobs.HostedBytes) -> bytes:
    """The response's ``inputs``, serialized: each stored input with its hosted URLs
    (what ListInputs would answer), or the rejected one with its status."""
    out = []
    for i, problem in enumerate(batch.problems):
        if problem is None:
            key = batch.keys[i]
            item = batch.protos[i] + (hosted.rendered(batch.kinds[i], key, batch.own_urls[i])
                                      if key else b"")
        else:
            item = _failed_echo(batch.items[i], *problem)
        out.append(wire.field(_RESPONSE_INPUTS, item))
    return b"".join(out)
