"""Datasets and their membership: PostDatasets, GetDataset, ListDatasets, PatchDatasets,
DeleteDatasets, PostDatasetInputs, GetDatasetInput, ListDatasetInputs, DeleteDatasetInputs.

Membership lives in ``dataset_inputs`` (the single source of truth for an input's
``dataset_ids``); a dataset row holds the Dataset message as the client posted it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from . import archive
from .annotations import render_annotation
from .common import (
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
    visibility_private,
)
from .media_blobs import render_hosted
from .rpc import CallContext, RpcFailure, rpc, status
from .store import now

# Fields the server owns: a Post or Patch never sets them from the request.
_SERVER_FIELDS = ("created_at", "modified_at", "app_id", "user_id", "version", "is_starred",
                  "star_count")
_SQL_BATCH = 500  # ids per "IN (...)" query, well under SQLite's variable limit


def load_dataset(db: sqlite3.Connection, pk: int, dataset_id: str) -> resources_pb2.Dataset:
    """The stored dataset ``dataset_id`` of app ``pk``; fails the call naming it when missing."""
    require_id(dataset_id, "dataset_id")
    row = db.execute("SELECT proto FROM datasets WHERE app_pk=? AND id=?",
                     (pk, dataset_id)).fetchone()
    if row is None:
        raise not_found("dataset", dataset_id)
    return resources_pb2.Dataset.FromString(row[0])


def latest_version(db: sqlite3.Connection, pk: int, dataset_id: str):
    """The newest version of a dataset, or None."""
    row = db.execute("SELECT proto FROM dataset_versions WHERE app_pk=? AND dataset_id=? "
                     "ORDER BY seq DESC LIMIT 1", (pk, dataset_id)).fetchone()
    return resources_pb2.DatasetVersion.FromString(row[0]) if row else None


def _for_response(db: sqlite3.Connection, pk: int, stored: resources_pb2.Dataset):
    # As the API does, a dataset carries its newest version (with that version's metrics:
    # Dataset has no field of its own for an input count).
    version = latest_version(db, pk, stored.id)
    if version is not None:
        stored.version.CopyFrom(version)
    return stored


def dataset_ids_of(db: sqlite3.Connection, pk: int, input_ids: list[str]) -> dict[str, list[str]]:
    """The datasets each input belongs to, in the order it joined them."""
    found: dict[str, list[str]] = {i: [] for i in input_ids}
    for start in range(0, len(input_ids), _SQL_BATCH):
        chunk = input_ids[start:start + _SQL_BATCH]
        marks = ",".join("?" * len(chunk))
        for input_id, dataset_id in db.execute(
                f"SELECT input_id, dataset_id FROM dataset_inputs WHERE app_pk=? "
                f"AND input_id IN ({marks}) ORDER BY seq", (pk, *chunk)):
            found[input_id].append(dataset_id)
    return found


@rpc("PostDatasets")
def post_datasets(ctx: CallContext, req: service_pb2.PostDatasetsRequest):
    if not req.datasets:
        raise invalid("no datasets given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        seen = set()
        for dataset in req.datasets:
            require_id(dataset.id, "dataset id")
            if dataset.id in seen or db.execute(
                    "SELECT 1 FROM datasets WHERE app_pk=? AND id=?", (pk, dataset.id)).fetchone():
                raise invalid(f"dataset '{dataset.id}' already exists")
            seen.add(dataset.id)
            stored = resources_pb2.Dataset()
            stored.CopyFrom(dataset)
            for name in _SERVER_FIELDS:
                stored.ClearField(name)
            stamp = now()
            stored.user_id, stored.app_id = req.user_app_id.user_id, req.user_app_id.app_id
            stored.created_at.CopyFrom(timestamp(stamp))
            stored.modified_at.CopyFrom(timestamp(stamp))
            if not stored.HasField("visibility"):
                stored.visibility.CopyFrom(visibility_private())
            db.execute("INSERT INTO datasets(app_pk, id, proto, created_at) VALUES (?,?,?,?)",
                       (pk, stored.id, stored.SerializeToString(), stamp))
            created.append(stored)
    return service_pb2.MultiDatasetResponse(datasets=created)


@rpc("GetDataset")
def get_dataset(ctx: CallContext, req: service_pb2.GetDatasetRequest):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    stored = load_dataset(db, pk, req.dataset_id)
    return service_pb2.SingleDatasetResponse(dataset=_for_response(db, pk, stored))


@rpc("ListDatasets")
def list_datasets(ctx: CallContext, req: service_pb2.ListDatasetsRequest):
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    if req.starred_only or req.bookmark:  # the local server has no stars or bookmarks
        return service_pb2.MultiDatasetResponse()
    # Datasets per app are few (unlike inputs): filter and sort their messages in memory.
    rows = db.execute("SELECT proto FROM datasets WHERE app_pk=? ORDER BY rowid", (pk,))
    datasets = [resources_pb2.Dataset.FromString(r[0]) for r in rows]
    if req.id:
        datasets = [d for d in datasets if d.id == req.id]
    if req.search:
        needle = req.search.lower()
        datasets = [d for d in datasets
                    if needle in d.id.lower() or needle in d.description.lower()]
    key = None
    if req.sort_by_id:
        key = lambda d: d.id  # noqa: E731
    elif req.sort_by_created_at:
        key = lambda d: d.created_at.ToNanoseconds()  # noqa: E731
    elif req.sort_by_modified_at:
        key = lambda d: d.modified_at.ToNanoseconds()  # noqa: E731
    if key is not None:  # an explicit sort is descending unless sort_ascending, as in the API
        datasets.sort(key=key, reverse=not req.sort_ascending)
    page = [_for_response(db, pk, d) for d in datasets[offset:offset + limit]]
    return service_pb2.MultiDatasetResponse(datasets=page)


@rpc("PatchDatasets")
def patch_datasets(ctx: CallContext, req: service_pb2.PatchDatasetsRequest):
    action = patch_action(req.action)
    if not req.datasets:
        raise invalid("no datasets given")
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for patch in req.datasets:
            stored = load_dataset(db, pk, patch.id)
            patch_message(stored, patch, action, frozen=_SERVER_FIELDS)
            stored.modified_at.CopyFrom(timestamp(now()))
            db.execute("UPDATE datasets SET proto=? WHERE app_pk=? AND id=?",
                       (stored.SerializeToString(), pk, stored.id))
            patched.append(stored)
        patched = [_for_response(db, pk, d) for d in patched]
    return service_pb2.MultiDatasetResponse(datasets=patched)


@rpc("DeleteDatasets")
def delete_datasets(ctx: CallContext, req: service_pb2.DeleteDatasetsRequest):
    if not req.dataset_ids:
        raise invalid("no dataset_ids given")
    doomed: list[resources_pb2.DatasetVersion] = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for dataset_id in req.dataset_ids:  # all must exist before anything is deleted
            load_dataset(db, pk, dataset_id)
        for dataset_id in req.dataset_ids:
            doomed += [resources_pb2.DatasetVersion.FromString(r[0]) for r in db.execute(
                "SELECT proto FROM dataset_versions WHERE app_pk=? AND dataset_id=?",
                (pk, dataset_id))]
            for table in ("dataset_inputs", "dataset_versions", "dataset_version_inputs",
                          "dataset_version_metrics"):
                db.execute(f"DELETE FROM {table} WHERE app_pk=? AND dataset_id=?",
                           (pk, dataset_id))
            db.execute("DELETE FROM datasets WHERE app_pk=? AND id=?", (pk, dataset_id))
    for version in doomed:  # after the commit: a rolled-back delete keeps its archives
        archive.remove_archives(ctx.server, version)
    return status_pb2.BaseResponse()


def _matching_input_ids(db: sqlite3.Connection, pk: int, search: resources_pb2.Search) -> Iterable[str]:
    """Input ids a PostDatasetInputs ``search`` selects: the local server understands the
    filter the SDK's merge_dataset sends (inputs of other datasets) and nothing else."""
    source_ids: list[str] = []
    for flt in search.query.filters:
        if [f.name for f, _ in flt.ListFields()] != ["input"] or \
                [f.name for f, _ in flt.input.ListFields()] != ["dataset_ids"]:
            raise invalid("search: only filters on input.dataset_ids are supported by the "
                          "local server's PostDatasetInputs")
        source_ids += list(flt.input.dataset_ids)
    if not source_ids or search.query.ranks:
        raise invalid("search: give query.filters with input.dataset_ids (ranks are not "
                      "supported by the local server's PostDatasetInputs)")
    for source in source_ids:
        load_dataset(db, pk, source)
    marks = ",".join("?" * len(source_ids))
    seen: set[str] = set()
    for (input_id,) in db.execute(
            f"SELECT input_id FROM dataset_inputs WHERE app_pk=? AND dataset_id IN ({marks}) "
            "ORDER BY seq", (pk, *source_ids)):
        if input_id not in seen:
            seen.add(input_id)
            yield input_id


@rpc("PostDatasetInputs")
def post_dataset_inputs(ctx: CallContext, req: service_pb2.PostDatasetInputsRequest):
    if not req.dataset_inputs and not req.HasField("search"):
        raise invalid("give dataset_inputs (each with input.id) or a search")
    if req.dataset_inputs and req.HasField("search"):
        raise invalid("give either dataset_inputs or a search, not both")
    answered: list[resources_pb2.DatasetInput] = []
    added: list[resources_pb2.Input] = []
    failures = 0
    by_search = req.HasField("search")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_dataset(db, pk, req.dataset_id)
        if by_search:  # ids only: a merge may move many inputs, so no protos are echoed
            wanted = list(_matching_input_ids(db, pk, req.search))
        else:
            wanted = [item.input.id for item in req.dataset_inputs]
        stamp = now()
        seq = ctx.server.store.next_seq(db, "dataset_inputs", max(len(wanted), 1))
        for input_id in wanted:
            problem = id_problem(input_id, "input id")
            row = None if problem else db.execute(
                "SELECT proto FROM inputs WHERE app_pk=? AND id=?", (pk, input_id)).fetchone()
            if row is None:
                failures += 1
                code = status_code_pb2.INPUT_INVALID_ARGUMENT if problem \
                    else status_code_pb2.INPUT_DOES_NOT_EXIST
                answered.append(resources_pb2.DatasetInput(input=resources_pb2.Input(
                    id=input_id, status=item_status(
                        code, details=problem or f"input '{input_id}' does not exist"))))
                continue
            # Adding an input twice is harmless: it keeps its first place and time.
            db.execute("INSERT OR IGNORE INTO dataset_inputs(app_pk, dataset_id, input_id, seq, "
                       "created_at) VALUES (?,?,?,?,?)",
                       (pk, req.dataset_id, input_id, seq, stamp))
            seq += 1
            if by_search:
                continue
            joined = db.execute("SELECT created_at FROM dataset_inputs WHERE app_pk=? AND "
                                "dataset_id=? AND input_id=?",
                                (pk, req.dataset_id, input_id)).fetchone()[0]
            item = resources_pb2.DatasetInput(created_at=timestamp(joined),
                                              input=resources_pb2.Input.FromString(row[0]))
            answered.append(item)
            added.append(item.input)
        _render(db, pk, added, ctx)
    response = service_pb2.MultiDatasetInputResponse(dataset_inputs=answered)
    if failures:
        code = status_code_pb2.FAILURE if failures == len(wanted) \
            else status_code_pb2.MIXED_STATUS
        response.status.CopyFrom(status(code, details=f"{failures} of {len(wanted)} inputs "
                                        f"were not added to dataset '{req.dataset_id}'"))
    elif by_search:
        response.status.CopyFrom(status(details=f"{len(wanted)} inputs added to dataset "
                                         f"'{req.dataset_id}'"))
    return response


def _render(db: sqlite3.Connection, pk: int, inputs: list, ctx: CallContext) -> None:
    """Prepare stored inputs for a response: hosted URLs, current dataset_ids."""
    memberships = dataset_ids_of(db, pk, [i.id for i in inputs])
    for item in inputs:
        render_hosted(item, ctx.server.media_url)
        render_annotation(item, ctx.server.media_url)  # mask images of inline regions
        item.dataset_ids[:] = memberships.get(item.id, [])


_MEMBER_QUERY = ("SELECT d.created_at, i.proto FROM dataset_inputs d JOIN inputs i "
                 "ON i.app_pk=d.app_pk AND i.id=d.input_id "
                 "WHERE d.app_pk=? AND d.dataset_id=?")


@rpc("ListDatasetInputs")
def list_dataset_inputs(ctx: CallContext, req: service_pb2.ListDatasetInputsRequest):
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    # Keyset pages (:mod:`.input_pages`): an OFFSET joins every skipped member to its input.
    rows = ctx.server.input_pages.dataset_rows(db, pk, req.dataset_id, offset // limit + 1,
                                               limit)
    # Parsed into the response's own items: building each message apart and passing them
    # in copies every input twice.
    response = service_pb2.MultiDatasetInputResponse()
    items = response.dataset_inputs
    for joined, proto in rows:
        item = items.add()
        item.created_at.FromNanoseconds(int(joined * 1e9))
        item.input.MergeFromString(proto)
    _render(db, pk, [i.input for i in items], ctx)
    return response


@rpc("GetDatasetInput")
def get_dataset_input(ctx: CallContext, req: service_pb2.GetDatasetInputRequest):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    require_id(req.input_id, "input_id")
    row = db.execute(_MEMBER_QUERY + " AND d.input_id=?",
                     (pk, req.dataset_id, req.input_id)).fetchone()
    if row is None:
        raise not_found(f"input in dataset '{req.dataset_id}' with id", req.input_id)
    item = resources_pb2.DatasetInput(created_at=timestamp(row[0]),
                                      input=resources_pb2.Input.FromString(row[1]))
    _render(db, pk, [item.input], ctx)
    return service_pb2.SingleDatasetInputResponse(dataset_input=item)


@rpc("DeleteDatasetInputs")
def delete_dataset_inputs(ctx: CallContext, req: service_pb2.DeleteDatasetInputsRequest):
    if not req.input_ids:
        raise invalid("no input_ids given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_dataset(db, pk, req.dataset_id)
        absent = [i for i in req.input_ids if not db.execute(
            "SELECT 1 FROM dataset_inputs WHERE app_pk=? AND dataset_id=? AND input_id=?",
            (pk, req.dataset_id, i)).fetchone()]
        if absent:  # nothing is removed when any id is wrong: the caller fixes and retries
            shown = ", ".join(f"'{i}'" for i in absent[:10]) + (" …" if len(absent) > 10 else "")
            raise RpcFailure(status_code_pb2.CONN_DOES_NOT_EXIST, "Resource does not exist",
                             f"{len(absent)} input(s) are not in dataset '{req.dataset_id}': "
                             f"{shown}")
        db.executemany("DELETE FROM dataset_inputs WHERE app_pk=? AND dataset_id=? AND input_id=?",
                       [(pk, req.dataset_id, i) for i in req.input_ids])
    return status_pb2.BaseResponse()
