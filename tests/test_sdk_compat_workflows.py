"""Wire compatibility of workflow calls: the official `clarifai` SDK, unchanged, creates a
workflow from its own YAML format, gets, lists, predicts with, exports and deletes it on the
local server, and the project's client reads the SDK's export back."""

import uuid

import pytest
import yaml

pytestmark = pytest.mark.compat

clarifai_user = pytest.importorskip("clarifai.client.user", reason="install the compat extra")
from clarifai.client.workflow import Workflow as SdkWorkflow  # noqa: E402
from clarifai_grpc.grpc.api import resources_pb2, service_pb2  # noqa: E402

from clarifai_connect.client import App  # noqa: E402


@pytest.fixture
def sdk_app(clarifai_server):
    user = clarifai_user.User(user_id="sdk-workflows", base_url=clarifai_server.base_url,
                              pat=clarifai_server.key_for("sdk-workflows"))
    app_id = f"sdk_wf_{uuid.uuid4().hex[:6]}"
    app = user.create_app(app_id=app_id)
    yield app
    user.delete_app(app_id)


def _text_embedder(clarifai_raw):
    listed = clarifai_raw.call("ListModels", service_pb2.ListModelsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")))
    return next((m for m in listed.models if m.model_type_id == "text-embedder"), None)


def test_sdk_workflow_create_predict_export_delete(sdk_app, clarifai_server, clarifai_raw,
                                                   tmp_path):
    embedder = _text_embedder(clarifai_raw)
    if embedder is None:
        pytest.skip("the server has no built-in text embedder")
    # An embedder model of the app's own (created by the SDK's create_workflow, as a model
    # the YAML names that does not exist yet), beside the built-in one.
    config = {"workflow": {"id": "sdk-wf", "nodes": [
        {"id": "builtin", "model": {"model_id": embedder.id, "user_id": "clarifai",
                                    "app_id": "main"}},
        {"id": "mine", "model": {"model_id": "my-embedder", "model_type_id": "text-embedder",
                                 "description": "created from the YAML"},
         "node_inputs": [{"node_id": "builtin"}]}]}}
    path = tmp_path / "wf.yml"
    path.write_text(yaml.safe_dump(config))
    workflow = sdk_app.create_workflow(config_filepath=str(path), display=True)
    assert workflow.id == "sdk-wf"

    got = sdk_app.workflow(workflow_id="sdk-wf")
    response = got.predict_by_bytes(b"a short text to embed", input_type="text")
    (result,) = response.results
    assert [o.model.id for o in result.outputs] == [embedder.id, "my-embedder"]
    assert all(o.data.embeddings[0].num_dimensions > 0 for o in result.outputs)

    assert [w.id for w in sdk_app.list_workflows()] == ["sdk-wf"]
    by_url = SdkWorkflow(url=f"https://clarifai.com/{sdk_app.user_id}/{sdk_app.id}/workflows/"
                             "sdk-wf", base_url=clarifai_server.base_url,
                         pat=clarifai_server.key_for("sdk-workflows"))
    versions = list(by_url.list_versions())
    assert len(versions) == 1
    out = tmp_path / "exported.yml"
    by_url.export(str(out))
    exported = yaml.safe_load(out.read_text())["workflow"]
    assert [n["id"] for n in exported["nodes"]] == ["builtin", "mine"]
    assert exported["nodes"][0]["model"]["user_id"] == "clarifai"

    sdk_app.delete_workflow(workflow_id="sdk-wf")
    assert list(sdk_app.list_workflows()) == []
    # The project's client reads the SDK's export back into the same graph, and writes the
    # same YAML the SDK wrote.
    ours = App(user_id=sdk_app.user_id, app_id=sdk_app.id, base_url=clarifai_server.base_url,
               pat=clarifai_server.key_for("sdk-workflows"))
    again = ours.create_workflow(str(out), display=False)
    assert [(n.id, n.model.id) for n in again.nodes] == \
        [("builtin", embedder.id), ("mine", "my-embedder")]
    ours_out = tmp_path / "ours.yml"
    again.export(str(ours_out))
    assert yaml.safe_load(ours_out.read_text()) == yaml.safe_load(out.read_text())
