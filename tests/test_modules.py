"""Modules over the real local server: the project's own Module protos match clarifai-grpc
12.1.1 field by field, a client on the old protos talks to the server unchanged, a raw stub
on the project's protos does the whole CRUD, and the client's App/Module methods work."""

import uuid
from pathlib import Path

import pytest
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from clarifai_connect.client import App, Module
from clarifai_connect.errors import ApiError, UserError
from clarifai_connect.server.protos import ModulesStub, modules_pb2
from clarifai_connect.server.protos.generate import dependency_set

REFERENCE = Path(__file__).parent / "data" / "modules_12_1_1.binpb"


def _reference() -> descriptor_pb2.FileDescriptorProto:
    return descriptor_pb2.FileDescriptorProto.FromString(REFERENCE.read_bytes())


def _fields(message: descriptor_pb2.DescriptorProto) -> dict:
    return {f.name: (f.number, f.type, f.label, f.type_name) for f in message.field}


def _ours() -> dict[str, descriptor_pb2.DescriptorProto]:
    proto = descriptor_pb2.FileDescriptorProto()
    modules_pb2.DESCRIPTOR.CopyToProto(proto)
    return {m.name: m for m in proto.message_type}


def test_messages_match_clarifai_grpc_12_1_1_field_by_field():
    ours = _ours()
    reference = {m.name: m for m in _reference().message_type}
    assert set(reference) == set(ours)
    assert {"Module", "ModuleVersion", "InstalledModuleVersion", "PostModulesRequest",
            "MultiInstalledModuleVersionResponse"} <= set(ours)
    for name, message in reference.items():
        assert _fields(ours[name]) == _fields(message), name
        assert {n.name: _fields(n) for n in ours[name].nested_type} == \
            {n.name: _fields(n) for n in message.nested_type}, name
    assert modules_pb2.DESCRIPTOR.package == "clarifai.api"


def _old_proto_classes() -> dict[str, type]:
    """Message classes built from 12.1.1's own descriptors, in a pool of their own."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in dependency_set().file:  # today's clarifai-grpc files it imports
        pool.Add(dependency)
    reference = _reference()
    pool.Add(reference)
    return {m.name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"clarifai.api.{m.name}")) for m in reference.message_type}


def _old_call(channel, metadata, name: str, request, response_cls):
    call = channel.unary_unary(f"/clarifai.api.V2/{name}",
                               request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_cls.FromString)
    return call(request, metadata=metadata)


def test_a_client_on_the_old_protos_talks_to_the_server(clarifai_raw, clarifai_app):
    old = _old_proto_classes()
    ids = old["PostModulesRequest"]().user_app_id.__class__(
        user_id=clarifai_app.user_id, app_id=clarifai_app.app_id)
    channel, meta = clarifai_raw.channel, clarifai_raw.metadata
    created = _old_call(channel, meta, "PostModules", old["PostModulesRequest"](
        user_app_id=ids, modules=[old["Module"](id="old-mod", description="from 12.1.1")]),
        old["MultiModuleResponse"])
    assert created.status.code == codes.SUCCESS, created.status
    assert created.modules[0].app_id == clarifai_app.app_id
    version = old["ModuleVersion"](id="v1", git_commit_url="https://github.com/x/y/commit/1")
    version.module_nav.title = "Nav"
    version.module_nav.module_sub_navs.add(title="Sub", query_key="k", query_value="v")
    posted = _old_call(channel, meta, "PostModuleVersions", old["PostModuleVersionsRequest"](
        user_app_id=ids, module_id="old-mod", module_versions=[version]),
        old["MultiModuleVersionResponse"])
    assert posted.status.code == codes.SUCCESS, posted.status
    got = _old_call(channel, meta, "GetModule", old["GetModuleRequest"](
        user_app_id=ids, module_id="old-mod"), old["SingleModuleResponse"])
    assert got.module.description == "from 12.1.1"
    assert got.module.module_version.module_nav.module_sub_navs[0].query_value == "v"
    assert got.module.module_version.git_commit_url.endswith("/commit/1")
    # The same bytes read with the project's protos.
    ours = modules_pb2.SingleModuleResponse.FromString(got.SerializeToString())
    assert ours.module.module_version.module_nav.title == "Nav"


def test_raw_stub_on_the_project_protos_does_modules_crud(clarifai_raw, clarifai_app):
    stub, meta = ModulesStub(clarifai_raw.channel), clarifai_raw.metadata
    ids = clarifai_app.user_app_id
    resp = stub.PostModules(modules_pb2.PostModulesRequest(user_app_id=ids, modules=[
        modules_pb2.Module(id="m1", description="one"), modules_pb2.Module(id="m2")]),
        metadata=meta)
    assert resp.status.code == codes.SUCCESS, resp.status
    assert resp.modules[0].created_at.seconds > 0
    again = stub.PostModules(modules_pb2.PostModulesRequest(
        user_app_id=ids, modules=[modules_pb2.Module(id="m1")]), metadata=meta)
    assert again.status.code == codes.CONN_INVALID_REQUEST
    assert "already exists" in again.status.details

    patched = stub.PatchModules(modules_pb2.PatchModulesRequest(
        user_app_id=ids, action="merge", modules=[modules_pb2.Module(
            id="m1", description="uno", user_id="someone-else")]), metadata=meta)
    assert patched.modules[0].description == "uno"
    assert patched.modules[0].user_id == clarifai_app.user_id  # server-owned

    for vid in ("v1", "v2", "v3"):
        posted = stub.PostModuleVersions(modules_pb2.PostModuleVersionsRequest(
            user_app_id=ids, module_id="m1",
            module_versions=[modules_pb2.ModuleVersion(id=vid, notes=f"notes {vid}")]),
            metadata=meta)
        assert posted.status.code == codes.SUCCESS, posted.status
    listed = stub.ListModuleVersions(modules_pb2.ListModuleVersionsRequest(
        user_app_id=ids, module_id="m1", page=1, per_page=2), metadata=meta)
    assert [v.id for v in listed.module_versions] == ["v3", "v2"]  # newest first
    page2 = stub.ListModuleVersions(modules_pb2.ListModuleVersionsRequest(
        user_app_id=ids, module_id="m1", page=2, per_page=2), metadata=meta)
    assert [v.id for v in page2.module_versions] == ["v1"]
    got = stub.GetModuleVersion(modules_pb2.GetModuleVersionRequest(
        user_app_id=ids, module_id="m1", module_version_id="v2"), metadata=meta)
    assert got.module_version.notes == "notes v2"
    assert stub.GetModule(modules_pb2.GetModuleRequest(user_app_id=ids, module_id="m1"),
                          metadata=meta).module.module_version.id == "v3"

    installed = stub.PostInstalledModuleVersions(modules_pb2.PostInstalledModuleVersionsRequest(
        user_app_id=ids, installed_module_versions=[modules_pb2.InstalledModuleVersion(
            module_version=modules_pb2.ModuleVersion(id="v2", module_id="m1"))]), metadata=meta)
    assert installed.status.code == codes.SUCCESS, installed.status
    install_id = installed.installed_module_versions[0].id
    assert installed.installed_module_versions[0].module_version.notes == "notes v2"
    assert installed.installed_module_versions[0].deploy_url
    missing = stub.PostInstalledModuleVersions(modules_pb2.PostInstalledModuleVersionsRequest(
        user_app_id=ids, installed_module_versions=[modules_pb2.InstalledModuleVersion(
            module_version=modules_pb2.ModuleVersion(id="v9", module_id="m1"))]), metadata=meta)
    assert missing.status.code == codes.CONN_DOES_NOT_EXIST
    listed = stub.ListInstalledModuleVersions(modules_pb2.ListInstalledModuleVersionsRequest(
        user_app_id=ids), metadata=meta)
    assert [i.id for i in listed.installed_module_versions] == [install_id]

    # Deleting the installed version takes its installs along.
    deleted = stub.DeleteModuleVersions(modules_pb2.DeleteModuleVersionsRequest(
        user_app_id=ids, module_id="m1", ids=["v2"]), metadata=meta)
    assert deleted.status.code == codes.SUCCESS, deleted.status
    assert not stub.ListInstalledModuleVersions(modules_pb2.ListInstalledModuleVersionsRequest(
        user_app_id=ids), metadata=meta).installed_module_versions
    gone = stub.GetModuleVersion(modules_pb2.GetModuleVersionRequest(
        user_app_id=ids, module_id="m1", module_version_id="v2"), metadata=meta)
    assert gone.status.code == codes.CONN_DOES_NOT_EXIST

    again = stub.PostInstalledModuleVersions(modules_pb2.PostInstalledModuleVersionsRequest(
        user_app_id=ids, installed_module_versions=[modules_pb2.InstalledModuleVersion(
            id="inst", module_version=modules_pb2.ModuleVersion(id="v1", module_id="m1"))]),
        metadata=meta)
    assert again.status.code == codes.SUCCESS, again.status
    removed = stub.DeleteInstalledModuleVersions(
        modules_pb2.DeleteInstalledModuleVersionsRequest(user_app_id=ids, ids=["inst"]),
        metadata=meta)
    assert removed.status.code == codes.SUCCESS
    unknown = stub.DeleteInstalledModuleVersions(
        modules_pb2.DeleteInstalledModuleVersionsRequest(user_app_id=ids, ids=["inst"]),
        metadata=meta)
    assert unknown.status.code == codes.CONN_DOES_NOT_EXIST

    assert stub.DeleteModules(modules_pb2.DeleteModulesRequest(
        user_app_id=ids, ids=["m1", "nope"]), metadata=meta).status.code == \
        codes.CONN_DOES_NOT_EXIST  # all or nothing
    assert stub.DeleteModules(modules_pb2.DeleteModulesRequest(user_app_id=ids, ids=["m1"]),
                              metadata=meta).status.code == codes.SUCCESS
    left = stub.ListModules(modules_pb2.ListModulesRequest(user_app_id=ids), metadata=meta)
    assert [m.id for m in left.modules] == ["m2"]
    assert stub.ListModuleVersions(modules_pb2.ListModuleVersionsRequest(
        user_app_id=ids, module_id="m1"), metadata=meta).status.code == codes.CONN_DOES_NOT_EXIST


def test_module_rpcs_need_a_key(clarifai_raw, clarifai_app):
    stub = ModulesStub(clarifai_raw.channel)
    resp = stub.ListModules(modules_pb2.ListModulesRequest(user_app_id=clarifai_app.user_app_id),
                            metadata=(("authorization", "Key wrong"),))
    assert resp.status.code != codes.SUCCESS


@pytest.fixture
def app(clarifai_server, clarifai_pat, clarifai_app):
    return App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
               base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_client_module_methods(app, clarifai_raw, clarifai_server, clarifai_pat):
    created = app.create_module("my-module", description="does things")
    assert isinstance(created, Module)
    assert (created.id, created.description, created.app_id) == \
        ("my-module", "does things", app.app_id)
    stub, meta = ModulesStub(clarifai_raw.channel), clarifai_raw.metadata
    for vid in ("a", "b"):
        stub.PostModuleVersions(modules_pb2.PostModuleVersionsRequest(
            user_app_id=app.user_app_id, module_id="my-module",
            module_versions=[modules_pb2.ModuleVersion(id=vid, description=f"version {vid}")]),
            metadata=meta)
    got = app.module("my-module")
    assert got.module_version.id == "b"  # the newest
    pinned = app.module("my-module", module_version_id="a")
    assert pinned.module_version.description == "version a"
    with pytest.raises(ApiError) as err:
        app.module("my-module", module_version_id="zzz")
    assert err.value.code == codes.CONN_DOES_NOT_EXIST
    versions = list(got.list_versions())
    assert [v.module_version.id for v in versions] == ["b", "a"]
    assert all(isinstance(v, Module) and v.id == "my-module" for v in versions)
    assert [v.module_version.id for v in got.list_versions(page_no=2, per_page=1)] == ["a"]
    same = Module(module_id="my-module", user_id=app.user_id, app_id=app.app_id,
                  base_url=clarifai_server.base_url, pat=clarifai_pat)
    assert len(list(same.list_versions())) == 2

    # A public module of another app is listed only when only_in_app is False.
    other = App(user_id=app.user_id, app_id=f"other-{uuid.uuid4().hex[:8]}",
                base_url=clarifai_server.base_url, pat=clarifai_pat)
    clarifai_raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=app.user_id),
        apps=[resources_pb2.App(id=other.app_id)]))
    try:
        other.create_module("shared", visibility=resources_pb2.Visibility(
            gettable=resources_pb2.Visibility.PUBLIC))
        other.create_module("private-one")
        assert [m.id for m in app.list_modules()] == ["my-module"]
        everything = {(m.app_id, m.id) for m in app.list_modules(only_in_app=False)}
        assert (other.app_id, "shared") in everything
        assert (other.app_id, "private-one") not in everything
        assert [m.id for m in app.list_modules(filter_by={"name": "my-"})] == ["my-module"]
        with pytest.raises(UserError, match="unknown argument"):
            list(app.list_modules(filter_by={"colour": "red"}))

        # Installing the other app's version in this app.
        stub.PostModuleVersions(modules_pb2.PostModuleVersionsRequest(
            user_app_id=other.user_app_id, module_id="shared",
            module_versions=[modules_pb2.ModuleVersion(id="s1")]), metadata=meta)
        stub.PostInstalledModuleVersions(modules_pb2.PostInstalledModuleVersionsRequest(
            user_app_id=app.user_app_id, installed_module_versions=[
                modules_pb2.InstalledModuleVersion(module_version=modules_pb2.ModuleVersion(
                    id="s1", module_id="shared", app_id=other.app_id))]), metadata=meta)
        installed = list(app.list_installed_module_versions())
        assert [(m.id, m.app_id, m.module_version.id) for m in installed] == \
            [("shared", other.app_id, "s1")]
    finally:
        clarifai_raw.call("DeleteApp", service_pb2.DeleteAppRequest(
            user_app_id=other.user_app_id))
    # The other app went, and its modules' installs here with it.
    assert list(app.list_installed_module_versions()) == []

    app.delete_module("my-module")
    assert list(app.list_modules()) == []
    with pytest.raises(ApiError) as err:
        app.delete_module("my-module")
    assert err.value.code == codes.CONN_DOES_NOT_EXIST


def test_module_object_from_url_and_bad_arguments(clarifai_server, clarifai_pat):
    module = Module(url="https://clarifai.com/u1/a1/modules/mod/versions/v7",
                    base_url=clarifai_server.base_url, pat=clarifai_pat)
    assert (module.user_id, module.app_id, module.id, module.module_version.id) == \
        ("u1", "a1", "mod", "v7")
    with pytest.raises(UserError, match="module_id"):
        Module(user_id="u1", app_id="a1", base_url=clarifai_server.base_url, pat=clarifai_pat)
    with pytest.raises(UserError, match="module_version"):
        Module(module_id="m", user_id="u1", app_id="a1", module_version={"colour": 1},
               base_url=clarifai_server.base_url, pat=clarifai_pat)
