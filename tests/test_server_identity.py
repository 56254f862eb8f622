"""Keys belong to users on the local server: nobody reaches another user's apps or media."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api import service_pb2 as s
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from click.testing import CliRunner

from clarifai_connect.server import LocalServer
from clarifai_connect.server.auth import parse_key_spec, read_keys_file
from clarifai_connect.testing import raw_api

from .sync_support import png

ALICE, BOB, BOB_APP = "a" * 32, "b" * 32, "c" * 32


def ids(user, app=""):
    return r.UserAppIDSet(user_id=user, app_id=app)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Alice's and Bob's personal keys, and a key of Bob's app ``b1`` only."""
    with LocalServer(data_dir=tmp_path_factory.mktemp("identity"),
                     keys=[f"alice:{ALICE}", f"bob:{BOB}", f"bob/b1:{BOB_APP}"]) as srv:
        bob = raw_api(srv, BOB)
        for app in ("b1", "b2"):
            assert bob.call("PostApps", s.PostAppsRequest(
                user_app_id=ids("bob"), apps=[r.App(id=app)])).status.code == codes.SUCCESS
            assert bob.call("PostDatasets", s.PostDatasetsRequest(
                user_app_id=ids("bob", app), datasets=[r.Dataset(id="d")])).status.code == \
                codes.SUCCESS
        posted = bob.call("PostInputs", s.PostInputsRequest(
            user_app_id=ids("bob", "b1"), inputs=[r.Input(id="secret", dataset_ids=["d"], data=r.Data(
                image=r.Image(base64=png(7))))]))
        assert posted.status.code == codes.SUCCESS, posted.status
        srv.bob_media = posted.inputs[0].data.image.url
        yield srv


def calls(user, app):
    """One call of each kind on ``user``'s app ``app``."""
    where = ids(user, app)
    return {
        "list": ("ListInputs", s.ListInputsRequest(user_app_id=where)),
        "get": ("GetInput", s.GetInputRequest(user_app_id=where, input_id="secret")),
        "post": ("PostInputs", s.PostInputsRequest(user_app_id=where, inputs=[
            r.Input(id="planted", data=r.Data(text=r.Text(raw="x")))])),
        "delete": ("DeleteInputs", s.DeleteInputsRequest(user_app_id=where, ids=["secret"])),
        "get app": ("GetApp", s.GetAppRequest(user_app_id=where)),
        "create app": ("PostApps", s.PostAppsRequest(user_app_id=ids(user),
                                                      apps=[r.App(id="planted")])),
        "list apps": ("ListApps", s.ListAppsRequest(user_app_id=ids(user))),
    }


def test_a_users_key_reaches_none_of_another_users_apps(server):
    alice = raw_api(server, ALICE)
    for what, (method, request) in calls("bob", "b1").items():
        resp = alice.call(method, request)
        assert resp.status.code == codes.CONN_INSUFFICIENT_SCOPES, (what, resp.status)
        assert "alice" in resp.status.details and "bob" in resp.status.details
    # Nothing changed: Bob still sees his input, and no planted input or app.
    bob = raw_api(server, BOB)
    listed = bob.call("ListInputs", s.ListInputsRequest(user_app_id=ids("bob", "b1")))
    assert [i.id for i in listed.inputs] == ["secret"]
    apps = bob.call("ListApps", s.ListAppsRequest(user_app_id=ids("bob")))
    assert sorted(a.id for a in apps.apps) == ["b1", "b2"]


def test_a_users_own_key_works_and_fills_in_its_user(server):
    alice = raw_api(server, ALICE)
    resp = alice.call("PostApps", s.PostAppsRequest(user_app_id=ids(""), apps=[r.App(id="mine")]))
    assert resp.status.code == codes.SUCCESS and resp.apps[0].user_id == "alice"
    assert alice.call("GetApp", s.GetAppRequest(user_app_id=ids("alice", "mine"))).app.id == "mine"


def test_an_app_key_works_on_its_app_only(server):
    app_key = raw_api(server, BOB_APP)
    assert app_key.call("GetInput", s.GetInputRequest(
        user_app_id=ids("bob", "b1"), input_id="secret")).status.code == codes.SUCCESS
    # Ids left out are the key's own, as on the real API.
    assert app_key.call("GetInput", s.GetInputRequest(
        user_app_id=ids(""), input_id="secret")).status.code == codes.SUCCESS
    for what, (method, request) in calls("bob", "b2").items():
        resp = app_key.call(method, request)
        assert resp.status.code == codes.CONN_KEY_INVALID, (what, resp.status)
        assert resp.status.description == "Invalid API key or Invalid API key/application pair"


def test_no_key_and_unknown_keys_are_refused(server):
    channel = raw_api(server, ALICE).channel
    from clarifai_grpc.grpc.api import service_pb2_grpc

    bare = service_pb2_grpc.V2Stub(channel)
    resp = bare.GetApp(s.GetAppRequest(user_app_id=ids("bob", "b1")))
    assert resp.status.code == codes.CONN_KEY_NOT_FOUND
    resp = raw_api(server, "z" * 32).call("GetApp", s.GetAppRequest(user_app_id=ids("bob", "b1")))
    assert resp.status.code == codes.CONN_KEY_INVALID


def fetch(url, key=None):
    headers = {"Authorization": f"Key {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_hosted_media_needs_a_key_of_its_owner(server):
    assert fetch(server.bob_media, BOB) == (200, png(7))
    assert fetch(server.bob_media, BOB_APP) == (200, png(7))
    assert fetch(server.bob_media, ALICE)[0] == 404  # another user's: as if missing
    assert fetch(server.bob_media)[0] == 401


def export_url(api, user, app):
    version = api.call("PostDatasetVersions", s.PostDatasetVersionsRequest(
        user_app_id=ids(user, app), dataset_id="d",
        dataset_versions=[r.DatasetVersion(id=f"v{time.time_ns()}")]))
    assert version.status.code == codes.SUCCESS, version.status
    for _ in range(100):
        resp = api.call("PutDatasetVersionExports", s.PutDatasetVersionExportsRequest(
            user_app_id=ids(user, app), dataset_id="d",
            dataset_version_id=version.dataset_versions[0].id,
            exports=[r.DatasetVersionExport(format=r.CLARIFAI_DATA_PROTOBUF)]))
        if resp.exports[0].url:
            return resp.exports[0].url
        time.sleep(0.05)
    raise AssertionError("the export never finished")


def test_export_archives_need_the_owners_key_or_the_signed_url(server):
    signed = export_url(raw_api(server, BOB), "bob", "b1")
    plain = signed.split("?")[0]
    assert fetch(signed)[0] == 200  # the signed URL works without a key (as the SDK fetches)
    assert fetch(plain)[0] == 401
    assert fetch(plain, BOB)[0] == 200 and fetch(plain, BOB_APP)[0] == 200
    assert fetch(plain, ALICE)[0] == 404
    tampered = signed.replace("expires=", "expires=9")
    assert fetch(tampered)[0] == 401
    expired = f"{plain}?{server.auth.sign(plain[len(server.media_url):], seconds=-1)}"
    assert fetch(expired)[0] == 401


def test_key_specs():
    assert parse_key_spec("alice:k1") == ("k1", parse_key_spec("alice:k1")[1])
    key, who = parse_key_spec("bob/app:k2")
    assert (key, who.user_id, who.app_id) == ("k2", "bob", "app")
    assert parse_key_spec("*:k3")[1].user_id is None
    assert parse_key_spec("k4", "carol")[1].user_id == "carol"
    for bad in (":k", "alice:", "*/app:k"):
        with pytest.raises(ValueError):
            parse_key_spec(bad)


def test_a_keys_file_must_be_private(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# who may call\nalice:k1\n\nbob/app:k2\n")
    os.chmod(keys, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        read_keys_file(keys)
    os.chmod(keys, 0o600)
    assert read_keys_file(keys) == ["alice:k1", "bob/app:k2"]


def test_serve_names_whose_keys_it_takes(tmp_path, monkeypatch):
    """`serve` exits at once here (its wait is stubbed): what it prints is what a user sees."""
    from clarifai_connect import cli as cli_module
    from clarifai_connect.server import runtime

    monkeypatch.setattr(runtime.LocalServer, "wait", lambda self: self.stop())
    monkeypatch.setattr(cli_module.signal, "signal", lambda *a: None)
    run = CliRunner().invoke
    out = run(cli_module.cli, ["serve", "--port", "0", "--data-dir", str(tmp_path / "a"),
                               "--user", "dana"])
    assert out.exit_code == 0, out.output
    assert "Generated key for user 'dana'" in out.output and "any-user" not in out.output
    out = run(cli_module.cli, ["serve", "--port", "0", "--data-dir", str(tmp_path / "b"),
                               "--any-user"])
    assert "Generated key for any user" in out.output and "any-user key" in out.output
    keys = tmp_path / "keys"
    keys.write_text("erin:" + "e" * 32 + "\n")
    keys.chmod(0o640)
    out = run(cli_module.cli, ["serve", "--port", "0", "--data-dir", str(tmp_path / "c"),
                               "--keys-file", str(keys)])
    assert out.exit_code != 0 and "chmod 600" in out.output
    keys.chmod(0o600)
    out = run(cli_module.cli, ["serve", "--port", "0", "--data-dir", str(tmp_path / "c"),
                               "--keys-file", str(keys), "--pat", "fay/f1:" + "f" * 32])
    assert out.exit_code == 0, out.output
    assert "Accepting keys of: user 'erin', user 'fay', app 'f1'" in out.output
    assert "e" * 32 not in out.output and "f" * 32 not in out.output


def test_public_models_are_read_only_to_personal_keys():
    from clarifai_connect.server.auth import Identity

    alice, app_key = Identity("alice"), Identity("alice", "a1")
    assert alice.refusal("GetModel", "clarifai", "main") is None
    assert alice.refusal("PostModelOutputs", "clarifai", "main") is None
    assert alice.refusal("PostInputs", "clarifai", "main")[0] == codes.CONN_INSUFFICIENT_SCOPES
    assert alice.refusal("DeleteModel", "clarifai", "main")[0] == codes.CONN_INSUFFICIENT_SCOPES
    assert app_key.refusal("GetModel", "clarifai", "main")[0] == codes.CONN_KEY_INVALID
