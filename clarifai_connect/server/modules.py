"""Modules, their versions, and versions installed in apps: PostModules, GetModule, ListModules,
PatchModules, DeleteModules, PostModuleVersions, ListModuleVersions, GetModuleVersion,
DeleteModuleVersions, PostInstalledModuleVersions, ListInstalledModuleVersions,
DeleteInstalledModuleVersions.

The messages are the project's own (``protos/modules.proto``, wire-compatible with
clarifai-grpc 12.1.1), served on the real ``clarifai.api.V2`` path.
"""

from __future__ import annotations

import sqlite3
import uuid

from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_pb2

from .common import (
    app_pk,
    fresh_copy,
    invalid,
    not_found,
    page_window,
    patch_action,
    patch_message,
    require_id,
    stamp_created,
    timestamp,
)
from .protos import modules_pb2 as pb
from .rpc import CallContext, rpc
from .store import now

_SERVER_FIELDS = ("created_at", "modified_at", "app_id", "user_id", "module_version",
                  "is_starred", "star_count", "bookmark_origin")
_PUBLIC = resources_pb2.Visibility.PUBLIC


def _stamp(message, user_id: str, app_id: str) -> float:
    stamp = now()
    stamp_created(message, user_id, app_id, stamp)
    return stamp


def _load_module(db: sqlite3.Connection, pk: int, module_id: str) -> pb.Module:
    require_id(module_id, "module_id")
    row = db.execute("SELECT proto FROM modules WHERE app_pk=? AND id=?",
                     (pk, module_id)).fetchone()
    if row is None:
        raise not_found("module", module_id)
    return pb.Module.FromString(row[0])


def _load_version(db: sqlite3.Connection, pk: int, module_id: str,
                  version_id: str) -> pb.ModuleVersion:
    row = db.execute("SELECT proto FROM module_versions WHERE app_pk=? AND module_id=? AND id=?",
                     (pk, module_id, version_id)).fetchone()
    if row is None:
        raise not_found("module version", f"{module_id}/{version_id}")
    return pb.ModuleVersion.FromString(row[0])


def _with_latest(db: sqlite3.Connection, pk: int, module: pb.Module) -> pb.Module:
    # As the API does, a module carries its newest version.
    row = db.execute("SELECT proto FROM module_versions WHERE app_pk=? AND module_id=? "
                     "ORDER BY seq DESC LIMIT 1", (pk, module.id)).fetchone()
    if row is not None:
        module.module_version.CopyFrom(pb.ModuleVersion.FromString(row[0]))
    return module


@rpc("PostModules")
def post_modules(ctx: CallContext, req: pb.PostModulesRequest):
    if not req.modules:
        raise invalid("no modules given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for module in req.modules:
            stored = fresh_copy(db, "modules", {"app_pk": pk}, module, "module", _SERVER_FIELDS)
            stamp = _stamp(stored, req.user_app_id.user_id, req.user_app_id.app_id)
            db.execute("INSERT INTO modules(app_pk, id, seq, public, proto, created_at) "
                       "VALUES (?,?,?,?,?,?)",
                       (pk, stored.id, ctx.server.store.next_seq(db, "modules"),
                        stored.visibility.gettable == _PUBLIC, stored.SerializeToString(),
                        stamp))
            created.append(stored)
    return pb.MultiModuleResponse(modules=created)


@rpc("GetModule")
def get_module(ctx: CallContext, req: pb.GetModuleRequest):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    return pb.SingleModuleResponse(module=_with_latest(db, pk, _load_module(db, pk, req.module_id)))


@rpc("ListModules")
def list_modules(ctx: CallContext, req: pb.ListModulesRequest):
    """The app's own modules, then the public modules of other apps (as the API lists the
    modules an app can use; the SDK's ``only_in_app`` keeps the app's own)."""
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    if req.starred_only or req.bookmark:  # the local server has no stars or bookmarks
        return pb.MultiModuleResponse()
    sql = "SELECT app_pk, proto FROM modules WHERE (app_pk=? OR public)"
    args: list = [pk]
    if req.filter_by_user_id:
        sql += " AND app_pk IN (SELECT pk FROM apps WHERE user_id=?)"
        args.append(req.user_app_id.user_id)
    needle = (req.name or req.search).lower()
    order = "id" if req.sort_by_id else "seq"
    direction = "ASC" if req.sort_ascending or not (req.sort_by_id or req.sort_by_created_at
                                                     or req.sort_by_modified_at) else "DESC"
    rows = db.execute(f"{sql} ORDER BY app_pk != ?, {order} {direction}", (*args, pk))
    found = []
    for owner, blob in rows:
        module = pb.Module.FromString(blob)
        if needle and needle not in module.id.lower() and needle not in \
                module.description.lower():
            continue
        found.append((owner, module))
    return pb.MultiModuleResponse(modules=[
        _with_latest(db, owner, m) for owner, m in found[offset:offset + limit]])


@rpc("PatchModules")
def patch_modules(ctx: CallContext, req: pb.PatchModulesRequest):
    action = patch_action(req.action)
    if not req.modules:
        raise invalid("no modules given")
    patched = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for patch in req.modules:
            stored = _load_module(db, pk, patch.id)
            patch_message(stored, patch, action, frozen=_SERVER_FIELDS)
            stored.modified_at.CopyFrom(timestamp(now()))
            db.execute("UPDATE modules SET proto=?, public=? WHERE app_pk=? AND id=?",
                       (stored.SerializeToString(), stored.visibility.gettable == _PUBLIC, pk,
                        stored.id))
            patched.append(_with_latest(db, pk, stored))
    return pb.MultiModuleResponse(modules=patched)


@rpc("DeleteModules")
def delete_modules(ctx: CallContext, req: pb.DeleteModulesRequest):
    if not req.ids:
        raise invalid("no module ids given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for module_id in req.ids:  # all must exist before anything is deleted
            _load_module(db, pk, module_id)
        for module_id in req.ids:
            db.execute("DELETE FROM modules WHERE app_pk=? AND id=?", (pk, module_id))
            db.execute("DELETE FROM module_versions WHERE app_pk=? AND module_id=?",
                       (pk, module_id))
            # Installs of its versions, in any app, go with it: they would point at nothing.
            db.execute("DELETE FROM installed_module_versions WHERE module_app_pk=? "
                       "AND module_id=?", (pk, module_id))
    return status_pb2.BaseResponse()


@rpc("PostModuleVersions")
def post_module_versions(ctx: CallContext, req: pb.PostModuleVersionsRequest):
    if not req.module_versions:
        raise invalid("no module_versions given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        module = _load_module(db, pk, req.module_id)
        for version in req.module_versions:
            stored = pb.ModuleVersion()
            stored.CopyFrom(version)
            stored.id = stored.id or uuid.uuid4().hex
            require_id(stored.id, "module version id")
            if db.execute("SELECT 1 FROM module_versions WHERE app_pk=? AND module_id=? "
                          "AND id=?", (pk, module.id, stored.id)).fetchone():
                raise invalid(f"module version '{module.id}/{stored.id}' already exists")
            stored.module_id = module.id
            stamp = _stamp(stored, module.user_id, module.app_id)
            db.execute("INSERT INTO module_versions(app_pk, module_id, id, seq, proto, "
                       "created_at) VALUES (?,?,?,?,?,?)",
                       (pk, module.id, stored.id, ctx.server.store.next_seq(db, "module_versions"),
                        stored.SerializeToString(), stamp))
            created.append(stored)
    return pb.MultiModuleVersionResponse(module_versions=created)


@rpc("GetModuleVersion")
def get_module_version(ctx: CallContext, req: pb.GetModuleVersionRequest):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    _load_module(db, pk, req.module_id)
    return pb.SingleModuleVersionResponse(
        module_version=_load_version(db, pk, req.module_id, req.module_version_id))


@rpc("ListModuleVersions")
def list_module_versions(ctx: CallContext, req: pb.ListModuleVersionsRequest):
    """A module's versions, newest first."""
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    _load_module(db, pk, req.module_id)
    rows = db.execute("SELECT proto FROM module_versions WHERE app_pk=? AND module_id=? "
                      "ORDER BY seq DESC LIMIT ? OFFSET ?", (pk, req.module_id, limit, offset))
    return pb.MultiModuleVersionResponse(
        module_versions=[pb.ModuleVersion.FromString(r[0]) for r in rows])


@rpc("DeleteModuleVersions")
def delete_module_versions(ctx: CallContext, req: pb.DeleteModuleVersionsRequest):
    if not req.ids:
        raise invalid("no module version ids given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        _load_module(db, pk, req.module_id)
        for version_id in req.ids:
            _load_version(db, pk, req.module_id, version_id)
        for version_id in req.ids:
            db.execute("DELETE FROM module_versions WHERE app_pk=? AND module_id=? AND id=?",
                       (pk, req.module_id, version_id))
            db.execute("DELETE FROM installed_module_versions WHERE module_app_pk=? "
                       "AND module_id=? AND version_id=?", (pk, req.module_id, version_id))
    return status_pb2.BaseResponse()


def _version_owner(db: sqlite3.Connection, req, version: pb.ModuleVersion) -> int:
    """The app holding the module version an install names (the request's app by default)."""
    user_id = version.user_id or req.user_app_id.user_id
    app_id = version.app_id or req.user_app_id.app_id
    row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?", (user_id, app_id)).fetchone()
    if row is None:
        raise not_found("app", f"{user_id}/{app_id}")
    return row[0]


@rpc("PostInstalledModuleVersions")
def post_installed_module_versions(ctx: CallContext,
                                   req: pb.PostInstalledModuleVersionsRequest):
    if not req.installed_module_versions:
        raise invalid("no installed_module_versions given")
    created = []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for install in req.installed_module_versions:
            wanted = install.module_version
            if not wanted.module_id or not wanted.id:
                raise invalid("installed_module_versions[].module_version needs module_id "
                              "and id")
            owner = _version_owner(db, req, wanted)
            _load_module(db, owner, wanted.module_id)
            version = _load_version(db, owner, wanted.module_id, wanted.id)
            stored = pb.InstalledModuleVersion()
            stored.CopyFrom(install)
            stored.id = stored.id or uuid.uuid4().hex
            require_id(stored.id, "installed module version id")
            if db.execute("SELECT 1 FROM installed_module_versions WHERE app_pk=? AND id=?",
                          (pk, stored.id)).fetchone():
                raise invalid(f"installed module version '{stored.id}' already exists")
            stored.module_version.CopyFrom(version)
            stamp = _stamp(stored, req.user_app_id.user_id, req.user_app_id.app_id)
            stored.deploy_url = stored.deploy_url or (
                f"https://clarifai.com/{stored.user_id}/{stored.app_id}"
                f"/installed_module_versions/{stored.id}")
            db.execute("INSERT INTO installed_module_versions(app_pk, id, seq, module_app_pk, "
                       "module_id, version_id, proto, created_at) VALUES (?,?,?,?,?,?,?,?)",
                       (pk, stored.id, ctx.server.store.next_seq(db, "installed_modules"),
                        owner, version.module_id, version.id, stored.SerializeToString(),
                        stamp))
            created.append(stored)
    return pb.MultiInstalledModuleVersionResponse(installed_module_versions=created)


@rpc("ListInstalledModuleVersions")
def list_installed_module_versions(ctx: CallContext,
                                   req: pb.ListInstalledModuleVersionsRequest):
    """The module versions installed in the app, in install order."""
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    rows = db.execute("SELECT proto FROM installed_module_versions WHERE app_pk=? "
                      "ORDER BY seq LIMIT ? OFFSET ?", (pk, limit, offset))
    return pb.MultiInstalledModuleVersionResponse(
        installed_module_versions=[pb.InstalledModuleVersion.FromString(r[0]) for r in rows])


@rpc("DeleteInstalledModuleVersions")
def delete_installed_module_versions(ctx: CallContext,
                                     req: pb.DeleteInstalledModuleVersionsRequest):
    if not req.ids:
        raise invalid("no installed module version ids given")
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for install_id in req.ids:
            if db.execute("SELECT 1 FROM installed_module_versions WHERE app_pk=? AND id=?",
                          (pk, install_id)).fetchone() is None:
                raise not_found("installed module version", install_id)
        db.executemany("DELETE FROM installed_module_versions WHERE app_pk=? AND id=?",
                       [(pk, i) for i in req.ids])
    return status_pb2.BaseResponse()
