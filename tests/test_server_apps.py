"""Apps over the raw gRPC stub, plus auth refusal and persistence across restarts."""

import random

from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

USER = resources_pb2.UserAppIDSet(user_id="u1")


def _post_app(api, app_id, **fields):
    return api.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=USER, apps=[resources_pb2.App(id=app_id, **fields)]))


def test_app_lifecycle(clarifai_server, tmp_path):
    with LocalServer(data_dir=tmp_path, user="u1") as server:
        api = raw_api(server)
        resp = _post_app(api, "first", description="d1")
        assert resp.status.code == codes.SUCCESS
        assert resp.apps[0].id == "first" and resp.apps[0].user_id == "u1"
        assert resp.apps[0].created_at.seconds > 0
        assert _post_app(api, "first").status.code == codes.CONN_INVALID_REQUEST

        got = api.call("GetApp", service_pb2.GetAppRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="u1", app_id="first")))
        assert got.app.description == "d1"

        patch = resources_pb2.App(id="first", description="d2")
        patch.metadata.update({"team": "cv"})
        resp = api.call("PatchApps", service_pb2.PatchAppsRequest(
            user_app_id=USER, apps=[patch], action="merge"))
        assert resp.apps[0].description == "d2" and resp.apps[0].metadata["team"] == "cv"

        missing = api.call("GetApp", service_pb2.GetAppRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="u1", app_id="nope")))
        assert missing.status.code == codes.CONN_DOES_NOT_EXIST
        assert "nope" in missing.status.details


def test_list_apps_pages_until_empty(tmp_path):
    with LocalServer(data_dir=tmp_path, user="u1") as server:
        api = raw_api(server)
        for i in range(7):
            assert _post_app(api, f"a{i}").status.code == codes.SUCCESS
        seen, page = [], 1
        while True:
            resp = api.call("ListApps", service_pb2.ListAppsRequest(
                user_app_id=USER, page=page, per_page=3))
            assert resp.status.code == codes.SUCCESS
            if not resp.apps:
                break
            seen += [a.id for a in resp.apps]
            page += 1
        assert seen == [f"a{i}" for i in range(7)]
        assert page == 4


def test_persistence_across_restart(tmp_path):
    with LocalServer(data_dir=tmp_path, keys=["k" * 32], user="u1") as server:
        assert _post_app(raw_api(server), "kept").status.code == codes.SUCCESS
    with LocalServer(data_dir=tmp_path, keys=["k" * 32], user="u1") as server:
        resp = raw_api(server).call("GetApp", service_pb2.GetAppRequest(
            user_app_id=resources_pb2.UserAppIDSet(user_id="u1", app_id="kept")))
        assert resp.status.code == codes.SUCCESS and resp.app.id == "kept"


def test_auth_refusal_returns_status_not_data(clarifai_server, clarifai_app, caplog):
    wrong = raw_api(clarifai_server, key="not-the-key-0123456789abcdef")
    resp = wrong.call("GetApp", service_pb2.GetAppRequest(user_app_id=clarifai_app.user_app_id))
    assert resp.status.code == codes.CONN_KEY_INVALID
    assert not resp.HasField("app")
    none = raw_api(clarifai_server)
    resp = none.stub.GetApp(service_pb2.GetAppRequest(user_app_id=clarifai_app.user_app_id))
    assert resp.status.code == codes.CONN_KEY_NOT_FOUND
    assert "not-the-key-0123456789abcdef" not in caplog.text
    assert clarifai_server.keys[0] not in caplog.text
    assert clarifai_server.keys[0] not in repr(clarifai_server.auth)


def test_unlisted_rpc_is_unimplemented(clarifai_raw):
    import grpc
    import pytest
    with pytest.raises(grpc.RpcError) as err:
        clarifai_raw.call("ListKnowledgeGraphs",
                          service_pb2.ListKnowledgeGraphsRequest(user_app_id=USER))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_stop_without_start_returns(tmp_path):
    server = LocalServer(data_dir=tmp_path, user="u1")
    server.stop()  # must not hang waiting for a serve loop that never ran
    assert server.store.path.exists()


def test_testing_plugin_dataset_fixture(clarifai_raw, clarifai_dataset):
    """The pytest plugin's dataset fixture gives a real, empty dataset in a fresh app."""
    resp = clarifai_raw.call("GetDataset", service_pb2.GetDatasetRequest(
        user_app_id=clarifai_dataset.app.user_app_id, dataset_id=clarifai_dataset.dataset_id))
    assert resp.status.code == codes.SUCCESS and resp.dataset.id == "ds"
    assert clarifai_dataset.app.target == f"test-user/{clarifai_dataset.app.app_id}"


def test_fault_injection_is_reproducible_from_its_seed():
    from clarifai_connect.server import FaultInjector

    faults = FaultInjector()

    def hits():
        return [faults.before_call("PostInputs", None) is not None for _ in range(64)]

    faults.configure(rate=0.5, kind="throttle", seed=5)
    first = hits()
    faults.configure(seed=5)
    assert hits() == first
    expected = random.Random(5)
    assert first == [expected.random() < 0.5 for _ in range(64)] and 0 < sum(first) < 64
    faults.configure(rate=1.0)
    assert faults.before_call("PostInputs", None) == (
        codes.CONN_THROTTLED, "Making too many requests (injected fault)")
    faults.configure(rate=0.0)
    assert faults.before_call("PostInputs", None) is None
