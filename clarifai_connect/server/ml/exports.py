"""Model version exports: PutModelVersionExports, GetModelVersionExport, and the tar.

An export of a trained version is built in the background (MODEL_EXPORTING →
MODEL_EXPORTED, or MODEL_EXPORTING_FAILED) into ``exports_dir/model-<token>.tar`` and
served by the media server at ``/model-exports/<token>/model.tar``, behind the API key
as hosted media are. The tar holds ``manifest.json`` (what the head is and how to score
with it), ``head.npz`` (its arrays; :meth:`.heads.Head.from_bytes` reads it) and
``training.log``. GetModelVersionExport answers CONN_DOES_NOT_EXIST until an export was
asked for, which is what the SDK's ``Model.export`` waits on.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import tarfile
from pathlib import Path
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..common import app_pk
from ..rpc import CallContext, RpcFailure, rpc, status
from .heads import Head
from .models import load_model, version_missing, with_version

log = logging.getLogger("clarifai_connect.server.exports")
URL_PATH = re.compile(r"^/model-exports/([0-9a-f]{32})/model\.tar$")


def tar_path(server: Any, token: str) -> Path:
    """Where the tar of export ``token`` lives."""
    return Path(server.exports_dir) / f"model-{token}.tar"


def _load_export(db, pk: int, model_id: str, version_id: str):
    row = db.execute("SELECT export FROM model_versions WHERE app_pk=? AND model_id=? AND "
                     "id=?", (pk, model_id, version_id)).fetchone()
    if row is None:
        raise version_missing(model_id, version_id)
    return resources_pb2.ModelVersionExport.FromString(row[0]) if row[0] else None


def _save_export(server: Any, pk: int, model_id: str, version_id: str,
                 export: resources_pb2.ModelVersionExport) -> None:
    with server.store.write() as db:
        db.execute("UPDATE model_versions SET export=? WHERE app_pk=? AND model_id=? AND id=?",
                   (export.SerializeToString(), pk, model_id, version_id))


def write_tar(path: Path, model: resources_pb2.Model, head: Head, train_log: str) -> int:
    """Write the export tar of ``model`` (at its version) to ``path``; returns its size."""
    manifest = {**head.manifest(), "model_id": model.id,
                "model_version_id": model.model_version.id,
                "model_type_id": model.model_type_id, "app_id": model.app_id,
                "user_id": model.user_id, "files": ["manifest.json", "head.npz",
                                                    "training.log"]}
    members = [("manifest.json", json.dumps(manifest, indent=2).encode()),
               ("head.npz", head.to_bytes()), ("training.log", train_log.encode())]
    partial = path.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(partial, path)
    return path.stat().st_size


def _build(server: Any, pk: int, model: resources_pb2.Model, token: str) -> None:
    version_id = model.model_version.id
    export = resources_pb2.ModelVersionExport()
    try:
        row = server.store.read().execute(
            "SELECT head, train_log FROM model_versions WHERE app_pk=? AND model_id=? AND "
            "id=?", (pk, model.id, version_id)).fetchone()
        if row is None:
            return
        size = write_tar(tar_path(server, token), model, Head.from_bytes(row[0]), row[1] or "")
    except Exception as err:  # the export must end, not stay "exporting"
        log.exception("export of %s/%s failed", model.id, version_id)
        export.status.CopyFrom(status(codes.MODEL_EXPORTING_FAILED,
                                      details=f"{type(err).__name__}: {err}"))
    else:
        export.status.CopyFrom(status(codes.MODEL_EXPORTED, "Model is exported"))
        export.url = f"{server.media_url}/model-exports/{token}/model.tar"
        export.size = size
    _save_export(server, pk, model.id, version_id, export)


@rpc("PutModelVersionExports")
def put_model_version_exports(ctx: CallContext,
                              req: service_pb2.PutModelVersionExportsRequest):
    """Start exporting a trained version (an export already made or under way is kept)."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        model = with_version(db, pk, load_model(db, pk, req.model_id), req.version_id)
        export = _load_export(db, pk, req.model_id, model.model_version.id)
        if export is not None and export.status.code != codes.MODEL_EXPORTING_FAILED:
            return service_pb2.SingleModelVersionExportResponse(export=export)
        if model.model_version.status.code != codes.MODEL_TRAINED or db.execute(
                "SELECT head IS NULL FROM model_versions WHERE app_pk=? AND model_id=? AND "
                "id=?", (pk, model.id, model.model_version.id)).fetchone()[0]:
            raise RpcFailure(codes.MODEL_EXPORTING_FAILED, "Model cannot be exported",
                             f"version '{model.model_version.id}' of model '{model.id}' has "
                             "no trained head to export")
        export = resources_pb2.ModelVersionExport(
            status=status(codes.MODEL_EXPORTING, "Model is exporting"))
        db.execute("UPDATE model_versions SET export=? WHERE app_pk=? AND model_id=? AND id=?",
                   (export.SerializeToString(), pk, model.id, model.model_version.id))
    ctx.server.background.submit(_build, ctx.server, pk, model, os.urandom(16).hex())
    return service_pb2.SingleModelVersionExportResponse(export=export)


@rpc("GetModelVersionExport")
def get_model_version_export(ctx: CallContext, req: service_pb2.GetModelVersionExportRequest):
    """The export of a version; CONN_DOES_NOT_EXIST until one was asked for."""
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    model = with_version(db, pk, load_model(db, pk, req.model_id), req.version_id)
    export = _load_export(db, pk, req.model_id, model.model_version.id)
    if export is None:
        raise RpcFailure(codes.CONN_DOES_NOT_EXIST, "Resource does not exist",
                         f"version '{model.model_version.id}' of model '{model.id}' has not "
                         "been exported")
    return service_pb2.SingleModelVersionExportResponse(export=export)
