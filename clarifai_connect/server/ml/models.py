"""Models and their versions: PostModels, GetModel, ListModels, PatchModels, DeleteModel(s),
PostModelVersions, GetModelVersion, ListModelVersions, DeleteModelVersion, ListModelTypes,
GetModelType.

A model is stored without a version; responses carry its latest version (or the one asked
for) in ``model_version``, as the API does. The built-in embedders answer as models of the
app ``clarifai/main`` (see :mod:`.builtin`). Training starts in :mod:`.training`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from clarifai_grpc.grpc.api.status import status_pb2

from ..annotations import new_id
from ..common import (
    app_pk,
    invalid,
    page_window,
    patch_action,
    patch_message,
    require_id,
    timestamp,
    user_app,
    visibility_private,
)
from ..rpc import CallContext, RpcFailure, rpc, status
from ..store import now
from . import builtin, predict, training
from .model_types import KINDS, all_model_types, model_type

# Fields of a model the server owns: a patch never changes them.
_SERVER_FIELDS = ("model_type_id", "model_version", "modified_at", "version_count")


def model_missing(model_id: str) -> RpcFailure:
    """The failure for an unknown model id."""
    return RpcFailure(codes.MODEL_DOES_NOT_EXIST, "Model does not exist",
                      f"model '{model_id}' does not exist")


def version_missing(model_id: str, version_id: str) -> RpcFailure:
    """The failure for an unknown version of a model."""
    return RpcFailure(codes.CONN_DOES_NOT_EXIST, "Resource does not exist",
                      f"version '{version_id}' of model '{model_id}' does not exist")


def load_model(db: sqlite3.Connection, pk: int, model_id: str) -> resources_pb2.Model:
    """The stored model (without a version); fails the call when there is none."""
    row = db.execute("SELECT proto FROM models WHERE app_pk=? AND id=?",
                     (pk, model_id)).fetchone()
    if row is None:
        raise model_missing(model_id)
    return resources_pb2.Model.FromString(row[0])


def load_version(db: sqlite3.Connection, pk: int, model_id: str,
                 version_id: str = "") -> resources_pb2.ModelVersion | None:
    """A stored version of a model, its latest when ``version_id`` is empty (None: none)."""
    if version_id:
        row = db.execute("SELECT proto FROM model_versions WHERE app_pk=? AND model_id=? "
                         "AND id=?", (pk, model_id, version_id)).fetchone()
    else:
        row = db.execute("SELECT proto FROM model_versions WHERE app_pk=? AND model_id=? "
                         "ORDER BY seq DESC LIMIT 1", (pk, model_id)).fetchone()
    return resources_pb2.ModelVersion.FromString(row[0]) if row else None


def with_version(db: sqlite3.Connection, pk: int, model: resources_pb2.Model,
                 version_id: str = "") -> resources_pb2.Model:
    """``model`` with ``model_version`` filled (the given version, else the latest)."""
    version = load_version(db, pk, model.id, version_id)
    if version_id and version is None:
        raise version_missing(model.id, version_id)
    if version is not None:
        model.model_version.CopyFrom(version)
    model.version_count = db.execute("SELECT COUNT(*) FROM model_versions WHERE app_pk=? AND "
                                     "model_id=?", (pk, model.id)).fetchone()[0]
    return model


def resolve(ctx: CallContext, req: Any, model_id: str, version_id: str = "",
            db: sqlite3.Connection | None = None) -> tuple[int | None, resources_pb2.Model]:
    """(app pk, model with its version) for a request naming a model of an app or a
    built-in one (pk None)."""
    user_id, app_id = user_app(req)
    if builtin.is_builtin_app(user_id, app_id):
        return None, builtin.model(ctx.server, model_id, version_id)
    db = db or ctx.server.store.read()
    pk = app_pk(db, req)
    return pk, with_version(db, pk, load_model(db, pk, model_id), version_id)


def _new_model(model: resources_pb2.Model, user_id: str, app_id: str) -> resources_pb2.Model:
    require_id(model.id, "model id")
    if not model.model_type_id:
        raise invalid(f"model '{model.id}': model_type_id is required (one of "
                      f"{', '.join(KINDS)})")
    if model.model_type_id not in KINDS:
        raise invalid(f"model '{model.id}': unknown model_type_id '{model.model_type_id}' "
                      f"(known: {', '.join(KINDS)})")
    stored = resources_pb2.Model()
    stored.CopyFrom(model)
    stored.ClearField("model_version")
    stored.user_id, stored.app_id = user_id, app_id
    stored.name = stored.name or stored.id
    if not stored.HasField("visibility"):
        stored.visibility.CopyFrom(visibility_private())
    stamp = timestamp(now())
    stored.created_at.CopyFrom(stamp)
    stored.modified_at.CopyFrom(stamp)
    return stored


@rpc("PostModels")
def post_models(ctx: CallContext, req: service_pb2.PostModelsRequest):
    """Create models (``model`` or ``models``); an existing id fails the call."""
    user_id, app_id = user_app(req)
    wanted = list(req.models) or ([req.model] if req.HasField("model") else [])
    if not wanted:
        raise invalid("no model given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for model in wanted:
            stored = _new_model(model, user_id, app_id)
            if db.execute("SELECT 1 FROM models WHERE app_pk=? AND id=?",
                          (pk, stored.id)).fetchone():
                raise invalid(f"model '{stored.id}' already exists")
            seq = ctx.server.store.next_seq(db, "models")
            db.execute("INSERT INTO models(app_pk, id, proto, seq, created_at) VALUES "
                       "(?,?,?,?,?)", (pk, stored.id, stored.SerializeToString(), seq, now()))
            created.append(stored)
    return service_pb2.SingleModelResponse(model=created[0])


@rpc("GetModel")
def get_model(ctx: CallContext, req: service_pb2.GetModelRequest):
    """One model with its latest version, or with ``version_id``."""
    return service_pb2.SingleModelResponse(model=resolve(ctx, req, req.model_id,
                                                         req.version_id)[1])


def _matches(model: resources_pb2.Model, req: service_pb2.ListModelsRequest) -> bool:
    kind = KINDS.get(model.model_type_id)
    if req.model_type_id and model.model_type_id != req.model_type_id:
        return False
    if req.trained_only and model.model_version.status.code != codes.MODEL_TRAINED:
        return False
    if req.input_fields and (kind is None or not set(req.input_fields) & set(kind.input_fields)):
        return False
    if req.output_fields and (kind is None or
                              not set(req.output_fields) & set(kind.output_fields)):
        return False
    if req.model_version_ids and model.model_version.id not in req.model_version_ids:
        return False
    text = (req.name or req.query or req.search).lower()
    if text and text not in model.id.lower() and text not in model.name.lower() and \
            text not in model.description.lower():
        return False
    return True


def _sort_key(req: service_pb2.ListModelsRequest):
    if req.sort_by_name:
        return lambda m: m.name.lower()
    if req.sort_by_created_at:
        return lambda m: m.created_at.ToNanoseconds()
    return lambda m: m.modified_at.ToNanoseconds()  # the API's default order


@rpc("ListModels")
def list_models(ctx: CallContext, req: service_pb2.ListModelsRequest):
    """The app's models (and the built-in ones unless ``dont_fetch_from_main``), filtered
    by type, trained state, input/output fields, version ids and name; newest first
    unless ``sort_ascending``."""
    limit, offset = page_window(req)
    user_id, app_id = user_app(req)
    models: list[resources_pb2.Model] = []
    if not builtin.is_builtin_app(user_id, app_id):
        db = ctx.server.store.read()
        pk = app_pk(db, req)
        models = [with_version(db, pk, resources_pb2.Model.FromString(r[0])) for r in
                  db.execute("SELECT proto FROM models WHERE app_pk=? ORDER BY seq", (pk,))]
    if builtin.is_builtin_app(user_id, app_id) or not req.dont_fetch_from_main:
        models.extend(builtin.models(ctx.server))
    models = [m for m in models if _matches(m, req)]
    models.sort(key=_sort_key(req), reverse=not req.sort_ascending)
    return service_pb2.MultiModelResponse(models=models[offset:offset + limit])


@rpc("PatchModels")
def patch_models(ctx: CallContext, req: service_pb2.PatchModelsRequest):
    """Patch models' name, description, notes, metadata, output info …; the type, versions
    and ids never change."""
    action = patch_action(req.action)
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for model in req.models:
            stored = load_model(db, pk, model.id)
            patch_message(stored, model, action, frozen=_SERVER_FIELDS)
            stored.modified_at.CopyFrom(timestamp(now()))
            db.execute("UPDATE models SET proto=? WHERE app_pk=? AND id=?",
                       (stored.SerializeToString(), pk, stored.id))
            patched.append(with_version(db, pk, stored))
    return service_pb2.MultiModelResponse(models=patched)


def _delete(db: sqlite3.Connection, pk: int, model_id: str) -> None:
    for table, column in (("model_versions", "model_id"), ("evaluations", "model_id"),
                          ("models", "id")):
        db.execute(f"DELETE FROM {table} WHERE app_pk=? AND {column}=?", (pk, model_id))


@rpc("DeleteModels")
def delete_models(ctx: CallContext, req: service_pb2.DeleteModelsRequest):
    """Delete models by ``ids`` (every one must exist) or all of them."""
    if not req.ids and not req.delete_all:
        raise invalid("give the ids of the models to delete, or delete_all")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        ids = list(req.ids) or [r[0] for r in db.execute("SELECT id FROM models WHERE "
                                                        "app_pk=?", (pk,))]
        for model_id in ids:
            load_model(db, pk, model_id)
            _delete(db, pk, model_id)
    predict.forget_heads(ctx.server)
    return status_pb2.BaseResponse()


@rpc("DeleteModel")
def delete_model(ctx: CallContext, req: service_pb2.DeleteModelRequest):
    """Delete one model with its versions and evaluations."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_model(db, pk, req.model_id)
        _delete(db, pk, req.model_id)
    predict.forget_heads(ctx.server)
    return status_pb2.BaseResponse()


@rpc("PostModelVersions")
def post_model_versions(ctx: CallContext, req: service_pb2.PostModelVersionsRequest):
    """Create a version: trainable types queue a training job, embedders need none, and a
    type the local server cannot train is refused with NOT_IMPLEMENTED."""
    user_id, app_id = user_app(req)
    if len(req.model_versions) > 1:
        raise invalid("give one model version at a time")
    asked = req.model_versions[0] if req.model_versions else resources_pb2.ModelVersion()
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        model = load_model(db, pk, req.model_id)
        kind = KINDS[model.model_type_id]
        if not kind.trainable and not kind.embeds:
            raise RpcFailure(
                codes.NOT_IMPLEMENTED, "Model type not trainable here",
                f"the local server cannot train {kind.id} models; it trains "
                f"{', '.join(k for k in KINDS if KINDS[k].trainable)} heads on embeddings")
        version = resources_pb2.ModelVersion()
        version.CopyFrom(asked)
        version.id = version.id or new_id()
        require_id(version.id, "model version id")
        if load_version(db, pk, model.id, version.id) is not None:
            raise invalid(f"version '{version.id}' of model '{model.id}' already exists")
        version.description = version.description or req.description
        version.user_id, version.app_id = user_id, app_id
        stamp = timestamp(now())
        version.created_at.CopyFrom(stamp)
        version.modified_at.CopyFrom(stamp)
        if not version.HasField("visibility"):
            version.visibility.CopyFrom(visibility_private())
        if not version.HasField("output_info"):
            version.output_info.CopyFrom(model.output_info)
        if kind.embeds:
            version.status.CopyFrom(status(codes.MODEL_TRAINED, "Model is trained and ready"))
            version.completed_at.CopyFrom(stamp)
        else:
            version.status.CopyFrom(status(codes.MODEL_QUEUED_FOR_TRAINING,
                                           "Model is queued for training"))
        seq = ctx.server.store.next_seq(db, "model_versions")
        db.execute("INSERT INTO model_versions(app_pk, model_id, id, proto, seq, created_at, "
                   "train_log) VALUES (?,?,?,?,?,?,?)",
                   (pk, model.id, version.id, version.SerializeToString(), seq, now(), ""))
        model.modified_at.CopyFrom(stamp)
        db.execute("UPDATE models SET proto=? WHERE app_pk=? AND id=?",
                   (model.SerializeToString(), pk, model.id))
        model = with_version(db, pk, model, version.id)
    if not kind.embeds:
        training.start(ctx.server, pk, model.id, version.id)
    return service_pb2.SingleModelResponse(model=model)


@rpc("GetModelVersion")
def get_model_version(ctx: CallContext, req: service_pb2.GetModelVersionRequest):
    """One version of a model."""
    model = resolve(ctx, req, req.model_id, req.version_id or "")[1]
    if not model.HasField("model_version"):
        raise version_missing(req.model_id, req.version_id)
    return service_pb2.SingleModelVersionResponse(model_version=model.model_version)


@rpc("ListModelVersions")
def list_model_versions(ctx: CallContext, req: service_pb2.ListModelVersionsRequest):
    """The versions of a model, newest first (``trained_only``, ``concept_ids`` filter)."""
    limit, offset = page_window(req)
    user_id, app_id = user_app(req)
    if builtin.is_builtin_app(user_id, app_id):
        versions = [builtin.model(ctx.server, req.model_id).model_version]
    else:
        db = ctx.server.store.read()
        pk = app_pk(db, req)
        load_model(db, pk, req.model_id)
        versions = [resources_pb2.ModelVersion.FromString(r[0]) for r in db.execute(
            "SELECT proto FROM model_versions WHERE app_pk=? AND model_id=? ORDER BY seq "
            + ("ASC" if req.sort_ascending else "DESC"), (pk, req.model_id))]
    if req.trained_only:
        versions = [v for v in versions if v.status.code == codes.MODEL_TRAINED]
    if req.concept_ids:
        wanted = set(req.concept_ids)
        versions = [v for v in versions
                    if wanted & {c.id for c in v.output_info.data.concepts}]
    return service_pb2.MultiModelVersionResponse(model_versions=versions[offset:offset + limit])


@rpc("DeleteModelVersion")
def delete_model_version(ctx: CallContext, req: service_pb2.DeleteModelVersionRequest):
    """Delete one version of a model (with its evaluations)."""
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        load_model(db, pk, req.model_id)
        cur = db.execute("DELETE FROM model_versions WHERE app_pk=? AND model_id=? AND id=?",
                         (pk, req.model_id, req.version_id))
        if cur.rowcount == 0:
            raise version_missing(req.model_id, req.version_id)
        db.execute("DELETE FROM evaluations WHERE app_pk=? AND model_id=? AND version_id=?",
                   (pk, req.model_id, req.version_id))
    predict.forget_heads(ctx.server)
    return status_pb2.BaseResponse()


@rpc("ListModelTypes")
def list_model_types(ctx: CallContext, req: service_pb2.ListModelTypesRequest):
    """Every model type, with the fields of those the local server trains."""
    limit, offset = page_window(req)
    return service_pb2.MultiModelTypeResponse(
        model_types=all_model_types()[offset:offset + limit])


@rpc("GetModelType")
def get_model_type(ctx: CallContext, req: service_pb2.GetModelTypeRequest):
    """One model type by id."""
    kind = KINDS.get(req.model_type_id)
    if kind is None:
        raise RpcFailure(codes.CONN_DOES_NOT_EXIST, "Resource does not exist",
                         f"model type '{req.model_type_id}' does not exist")
    return service_pb2.SingleModelTypeResponse(model_type=model_type(kind))
