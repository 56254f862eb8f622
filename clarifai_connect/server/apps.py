"""Apps: PostApps, GetApp, ListApps, PatchApps, PatchApp, DeleteApp."""

from __future__ import annotations

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_pb2

from . import archive
from .common import (
    invalid,
    not_found,
    page_window,
    patch_action,
    patch_message,
    require_id,
    timestamp,
)
from .ml import search_index
from .rpc import CallContext, rpc
from .store import now

# Tables whose rows belong to an app, deleted with it.
_APP_TABLES = ("datasets", "dataset_inputs", "dataset_versions", "inputs", "annotations",
               "concepts", "inputs_add_jobs", "dataset_version_inputs", "dataset_version_metrics",
               "modules", "module_versions", "installed_module_versions", "embeddings",
               "models", "model_versions", "evaluations", "concept_relations", "workflows",
               "workflow_versions", *search_index.APP_TABLES)


def _user_id(request) -> str:
    user_id = request.user_app_id.user_id
    if not user_id:
        raise invalid("user_app_id.user_id is required")
    return user_id


@rpc("PostApps")
def post_apps(ctx: CallContext, req: service_pb2.PostAppsRequest):
    user_id = _user_id(req)
    if not req.apps:
        raise invalid("no apps given")
    created = []
    with ctx.server.store.write() as db:
        for app in req.apps:
            require_id(app.id, "app id")
            if db.execute("SELECT 1 FROM apps WHERE user_id=? AND id=?",
                          (user_id, app.id)).fetchone():
                raise invalid(f"app '{app.id}' already exists")
            stored = resources_pb2.App()
            stored.CopyFrom(app)
            stamp = now()
            stored.user_id = user_id
            stored.created_at.CopyFrom(timestamp(stamp))
            stored.modified_at.CopyFrom(timestamp(stamp))
            db.execute("INSERT INTO apps(user_id, id, proto, created_at) VALUES (?,?,?,?)",
                       (user_id, app.id, stored.SerializeToString(), stamp))
            created.append(stored)
    return service_pb2.MultiAppResponse(apps=created)


@rpc("GetApp")
def get_app(ctx: CallContext, req: service_pb2.GetAppRequest):
    user_id = _user_id(req)
    row = ctx.server.store.read().execute(
        "SELECT proto FROM apps WHERE user_id=? AND id=?", (user_id, req.user_app_id.app_id)
    ).fetchone()
    if row is None:
        raise not_found("app", req.user_app_id.app_id)
    return service_pb2.SingleAppResponse(app=resources_pb2.App.FromString(row[0]))


@rpc("ListApps")
def list_apps(ctx: CallContext, req: service_pb2.ListAppsRequest):
    user_id = _user_id(req)
    limit, offset = page_window(req)
    sql = "SELECT proto FROM apps WHERE user_id=?"
    args: list = [user_id]
    if req.name or req.query or req.search:
        sql += " AND id LIKE ?"
        args.append(f"%{req.name or req.query or req.search}%")
    rows = ctx.server.store.read().execute(
        sql + " ORDER BY pk LIMIT ? OFFSET ?", (*args, limit, offset)).fetchall()
    return service_pb2.MultiAppResponse(apps=[resources_pb2.App.FromString(r[0]) for r in rows])


def _patch_one(db, user_id: str, app: resources_pb2.App, action: str) -> resources_pb2.App:
    row = db.execute("SELECT proto FROM apps WHERE user_id=? AND id=?",
                     (user_id, app.id)).fetchone()
    if row is None:
        raise not_found("app", app.id)
    stored = resources_pb2.App.FromString(row[0])
    patch_message(stored, app, action)
    stored.modified_at.CopyFrom(timestamp(now()))
    db.execute("UPDATE apps SET proto=? WHERE user_id=? AND id=?",
               (stored.SerializeToString(), user_id, app.id))
    return stored


@rpc("PatchApps")
def patch_apps(ctx: CallContext, req: service_pb2.PatchAppsRequest):
    user_id = _user_id(req)
    action = patch_action(req.action)
    with ctx.server.store.write() as db:
        patched = [_patch_one(db, user_id, app, action) for app in req.apps]
    return service_pb2.MultiAppResponse(apps=patched)


@rpc("PatchApp")
def patch_app(ctx: CallContext, req: service_pb2.PatchAppRequest):
    """The singular patch the SDK 12.5 sends: the app of ``user_app_id``, patched by ``app``."""
    user_id = _user_id(req)
    action = patch_action(req.action)
    app = resources_pb2.App()
    app.CopyFrom(req.app)
    app.id = app.id or req.user_app_id.app_id
    if app.id != req.user_app_id.app_id:
        raise invalid(f"app.id '{app.id}' is not the app of user_app_id "
                      f"'{req.user_app_id.app_id}'")
    with ctx.server.store.write() as db:
        patched = _patch_one(db, user_id, app, action)
    return service_pb2.SingleAppResponse(app=patched)


@rpc("DeleteApp")
def delete_app(ctx: CallContext, req: service_pb2.DeleteAppRequest):
    user_id = _user_id(req)
    app_id = req.user_app_id.app_id
    with ctx.server.store.write() as db:
        row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?",
                         (user_id, app_id)).fetchone()
        if row is None:
            raise not_found("app", app_id)
        doomed = [resources_pb2.DatasetVersion.FromString(r[0]) for r in db.execute(
            "SELECT proto FROM dataset_versions WHERE app_pk=?", (row[0],))]
        for table in _APP_TABLES:
            db.execute(f"DELETE FROM {table} WHERE app_pk=?", (row[0],))
        # Other apps' installs of this app's modules would point at nothing.
        db.execute("DELETE FROM installed_module_versions WHERE module_app_pk=?", (row[0],))
        db.execute("DELETE FROM apps WHERE pk=?", (row[0],))
        ctx.server.embeddings.drop_app(row[0])  # a later app may get the same pk
    for version in doomed:  # after the commit: a rolled-back delete keeps its archives
        archive.remove_archives(ctx.server, version)
    return status_pb2.BaseResponse()
