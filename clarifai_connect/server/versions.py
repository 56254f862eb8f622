"""Dataset versions: PostDatasetVersions, GetDatasetVersion, ListDatasetVersions,
PatchDatasetVersions, DeleteDatasetVersions, ListDatasetVersionMetricsGroups and
PutDatasetVersionExports.

A version is created READY in one write transaction that freezes the dataset (see
snapshots.py); its export archive is built on request (see archive.py).
"""

from __future__ import annotations

import sqlite3
import uuid

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2, status_pb2

from . import archive
from .common import (
    app_pk,
    invalid,
    not_found,
    page_window,
    patch_action,
    patch_message,
    require_id,
    timestamp,
    visibility_private,
)
from .datasets import load_dataset
from .rpc import CallContext, rpc, status
from .snapshots import ROOT, store_metrics, take_snapshot
from .store import now

# Fields the server owns: never taken from a Post or Patch.
_SERVER_FIELDS = ("created_at", "modified_at", "app_id", "user_id", "dataset_id", "status",
                  "metrics", "export_info", "processing_info")
_FORMAT_NAMES = dict(resources_pb2.DatasetVersionExportFormat.items())


def load_version(db: sqlite3.Connection, pk: int, dataset_id: str,
                 version_id: str) -> resources_pb2.DatasetVersion:
    """A stored version; fails the call naming it (and its dataset) when missing."""
    require_id(version_id, "dataset_version_id")
    row = db.execute("SELECT proto FROM dataset_versions WHERE app_pk=? AND dataset_id=? AND id=?",
                     (pk, dataset_id, version_id)).fetchone()
    if row is None:
        raise not_found(f"version of dataset '{dataset_id}' with id", version_id)
    return resources_pb2.DatasetVersion.FromString(row[0])


def _describe(copied: int, not_ready: int, unlabeled: int) -> str:
    text = f"{copied} input{'s' if copied != 1 else ''}"
    left_out = []
    if not_ready:
        left_out.append(f"{not_ready} not downloaded (pending or failed)")
    if unlabeled:
        left_out.append(f"{unlabeled} without annotations (ignore_empty_inputs)")
    return text + (f"; left out: {', '.join(left_out)}" if left_out else "")


@rpc("PostDatasetVersions")
def post_dataset_versions(ctx: CallContext, req: service_pb2.PostDatasetVersionsRequest):
    if not req.dataset_versions:
        raise invalid("no dataset_versions given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_dataset(db, pk, req.dataset_id)
        for given in req.dataset_versions:
            stored = resources_pb2.DatasetVersion()
            stored.CopyFrom(given)
            for name in _SERVER_FIELDS:
                stored.ClearField(name)
            stored.id = stored.id or uuid.uuid4().hex
            require_id(stored.id, "dataset version id")
            if db.execute("SELECT 1 FROM dataset_versions WHERE app_pk=? AND dataset_id=? AND id=?",
                          (pk, req.dataset_id, stored.id)).fetchone():
                raise invalid(f"version '{stored.id}' of dataset '{req.dataset_id}' already exists")
            config = stored.annotation_filter_config
            if config.HasField("annotation_filter"):
                raise invalid("annotation_filter_config.annotation_filter is not supported by "
                              "the local server (ignore_empty_inputs is)")
            stamp = now()
            stored.user_id, stored.app_id = req.user_app_id.user_id, req.user_app_id.app_id
            stored.dataset_id = req.dataset_id
            stored.created_at.CopyFrom(timestamp(stamp))
            stored.modified_at.CopyFrom(timestamp(stamp))
            if not stored.HasField("visibility"):
                stored.visibility.CopyFrom(visibility_private())
            if not stored.request_origin:
                stored.request_origin = resources_pb2.MANUAL
            snap = take_snapshot(db, pk, req.dataset_id, stored.id,
                                 config.ignore_empty_inputs)
            store_metrics(db, pk, req.dataset_id, stored.id, snap.tally)
            stored.metrics[ROOT].CopyFrom(snap.tally.overall())
            stored.status.CopyFrom(status(status_code_pb2.DATASET_VERSION_READY,
                                          details=_describe(snap.copied, snap.not_ready,
                                                            snap.unlabeled_skipped)))
            seq = ctx.server.store.next_seq(db, "dataset_versions")
            db.execute("INSERT INTO dataset_versions(app_pk, dataset_id, id, proto, seq, created_at)"
                       " VALUES (?,?,?,?,?,?)",
                       (pk, req.dataset_id, stored.id, stored.SerializeToString(), seq, stamp))
            created.append(stored)
    return service_pb2.MultiDatasetVersionResponse(dataset_versions=created)


@rpc("GetDatasetVersion")
def get_dataset_version(ctx: CallContext, req: service_pb2.GetDatasetVersionRequest):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    return service_pb2.SingleDatasetVersionResponse(
        dataset_version=load_version(db, pk, req.dataset_id, req.dataset_version_id))


@rpc("ListDatasetVersions")
def list_dataset_versions(ctx: CallContext, req: service_pb2.ListDatasetVersionsRequest):
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    origins = set(req.request_origins)
    page: list[resources_pb2.DatasetVersion] = []
    skipped = 0
    # Newest first, as the API lists versions; the origin filter is applied while paging.
    for (proto,) in db.execute("SELECT proto FROM dataset_versions WHERE app_pk=? AND "
                               "dataset_id=? ORDER BY seq DESC", (pk, req.dataset_id)):
        version = resources_pb2.DatasetVersion.FromString(proto)
        if origins and version.request_origin not in origins:
            continue
        if skipped < offset:
            skipped += 1
            continue
        page.append(version)
        if len(page) == limit:
            break
    return service_pb2.MultiDatasetVersionResponse(dataset_versions=page)


@rpc("PatchDatasetVersions")
def patch_dataset_versions(ctx: CallContext, req: service_pb2.PatchDatasetVersionsRequest):
    action = patch_action(req.action)
    if not req.dataset_versions:
        raise invalid("no dataset_versions given")
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_dataset(db, pk, req.dataset_id)
        for patch in req.dataset_versions:
            stored = load_version(db, pk, req.dataset_id, patch.id)
            # The frozen content (and what was measured of it) never changes after creation.
            patch_message(stored, patch, action, frozen=(
                *_SERVER_FIELDS, "annotation_filter_config", "request_origin",
                "embed_model_version_ids", "model_predict_config"))
            stored.modified_at.CopyFrom(timestamp(now()))
            db.execute("UPDATE dataset_versions SET proto=? WHERE app_pk=? AND dataset_id=? "
                       "AND id=?", (stored.SerializeToString(), pk, req.dataset_id, stored.id))
            patched.append(stored)
    return service_pb2.MultiDatasetVersionResponse(dataset_versions=patched)


@rpc("DeleteDatasetVersions")
def delete_dataset_versions(ctx: CallContext, req: service_pb2.DeleteDatasetVersionsRequest):
    if not req.dataset_version_ids:
        raise invalid("no dataset_version_ids given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_dataset(db, pk, req.dataset_id)
        # All must exist before anything is deleted.
        doomed = [load_version(db, pk, req.dataset_id, v) for v in req.dataset_version_ids]
        for version in doomed:
            for table, column in (("dataset_versions", "id"),
                                  ("dataset_version_inputs", "version_id"),
                                  ("dataset_version_metrics", "version_id")):
                db.execute(f"DELETE FROM {table} WHERE app_pk=? AND dataset_id=? AND {column}=?",
                           (pk, req.dataset_id, version.id))
    for version in doomed:
        archive.remove_archives(ctx.server, version)
    return status_pb2.BaseResponse()


@rpc("ListDatasetVersionMetricsGroups")
def list_metrics_groups(ctx: CallContext, req: service_pb2.ListDatasetVersionMetricsGroupsRequest):
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    load_version(db, pk, req.dataset_id, req.dataset_version_id)
    paths, kinds, values = set(req.parent_paths), set(req.types), list(req.values)
    page: list[resources_pb2.DatasetVersionMetricsGroup] = []
    skipped = 0
    for (proto,) in db.execute(
            "SELECT proto FROM dataset_version_metrics WHERE app_pk=? AND dataset_id=? AND "
            "version_id=? ORDER BY pos", (pk, req.dataset_id, req.dataset_version_id)):
        group = resources_pb2.DatasetVersionMetricsGroup.FromString(proto)
        if (paths and group.parent_path not in paths) or (kinds and group.type not in kinds) \
                or (values and group.value not in values):
            continue
        if skipped < offset:
            skipped += 1
            continue
        page.append(group)
        if len(page) == limit:
            break
    return service_pb2.MultiDatasetVersionMetricsGroupResponse(
        dataset_version_metrics_groups=page)


@rpc("PutDatasetVersionExports")
def put_exports(ctx: CallContext, req: service_pb2.PutDatasetVersionExportsRequest):
    if not req.exports:
        raise invalid("no exports given: ask for format CLARIFAI_DATA_PROTOBUF")
    for export in req.exports:
        if export.format != resources_pb2.CLARIFAI_DATA_PROTOBUF:
            name = next((n for n, v in _FORMAT_NAMES.items() if v == export.format),
                        str(export.format))
            raise invalid(f"export format {name} is not supported by the local server: "
                          "use CLARIFAI_DATA_PROTOBUF")
        if export.include_embeddings:
            raise invalid("include_embeddings is not supported by the local server")
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_dataset(db, pk, req.dataset_id)
    version = load_version(db, pk, req.dataset_id, req.dataset_version_id)
    if version.status.code != status_code_pb2.DATASET_VERSION_READY:
        raise invalid(f"version '{version.id}' of dataset '{req.dataset_id}' is not ready")
    result = archive.request_export(ctx.server, pk, version)
    return service_pb2.MultiDatasetVersionExportResponse(exports=[result])
