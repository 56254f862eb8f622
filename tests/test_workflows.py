"""Workflows over the real local server: YAML configs (checked as the official SDK checks
them), graphs run in dependency order with every node's output in declared order, YAML
export that creates the same graph again, versions, and the server's own checks.

The node models here are served by Runner subclasses, so each node's output is known
exactly; the embedder → trained-classifier chain lives in test_workflow_models.py."""

import uuid
from pathlib import Path

import pytest
import yaml
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import App, Runner, User, Workflow
from clarifai_connect.client.workflow_config import validate
from clarifai_connect.errors import ApiError, UserError


class Transform(Runner):
    """A model made of a text function: upper-cases, or appends '!' …"""

    def __init__(self, fn, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fn = fn

    def run_input(self, input, output_info):
        text = self.fn(input.data.text.raw)
        return resources_pb2.Output(data=resources_pb2.Data(text=resources_pb2.Text(raw=text)))


def _boom(text: str) -> str:
    if "boom" in text:
        raise ValueError("boom")
    return text + "!"


@pytest.fixture
def env(clarifai_server, clarifai_pat, clarifai_app, clarifai_raw):
    """An app with models 'upper' and 'shout' (served by runners) and the runners running."""
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, pat=clarifai_pat)
    user = User(app.user_id, base_url=clarifai_server.base_url, pat=clarifai_pat)
    suffix = uuid.uuid4().hex[:6]
    runners = []
    for model_id, fn in (("upper", str.upper), ("shout", _boom)):
        clarifai_raw.call("PostModels", service_pb2.PostModelsRequest(
            user_app_id=app.user_app_id,
            models=[resources_pb2.Model(id=model_id, model_type_id="text-embedder")]))
        clarifai_raw.call("PostModelVersions", service_pb2.PostModelVersionsRequest(
            user_app_id=app.user_app_id, model_id=model_id,
            model_versions=[resources_pb2.ModelVersion()]))
        runner_id = f"{model_id}-{suffix}"
        user.create_runner(runner_id, labels=[model_id])
        runner = Transform(fn, runner_id, user_id=app.user_id,
                           base_url=clarifai_server.base_url, pat=clarifai_pat,
                           num_parallel_polls=2)
        runner.start_in_background()
        runners.append(runner)
    yield app
    for runner in runners:
        runner.stop(timeout=0)  # all stop at once; then wait for each
    for runner in runners:
        runner.stop()
        user.delete_runner(runner.id)


def _write(tmp_path: Path, config: dict, name: str = "wf.yml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


CHAIN = {"workflow": {"id": "chain", "nodes": [
    {"id": "up", "model": {"model_id": "upper"}},
    {"id": "bang", "model": {"model_id": "shout"}, "node_inputs": [{"node_id": "up"}]},
]}}


def test_two_node_workflow_runs_in_dependency_order(env, tmp_path, capsys):
    workflow = env.create_workflow(_write(tmp_path, CHAIN), display=True)
    assert isinstance(workflow, Workflow) and workflow.id == "chain"
    tree = capsys.readouterr().out
    assert "up (upper)" in tree and "bang (shout)" in tree
    assert tree.index("up (upper)") < tree.index("bang (shout)")
    assert [n.id for n in workflow.nodes] == ["up", "bang"]
    assert all(len(n.model.model_version.id) == 32 for n in workflow.nodes)  # pinned

    response = workflow.predict_by_bytes(b"hello", "text")
    (result,) = response.results
    assert [o.model.id for o in result.outputs] == ["upper", "shout"]  # declared order
    assert [o.data.text.raw for o in result.outputs] == ["HELLO", "HELLO!"]  # b read a
    assert result.status.code == codes.SUCCESS

    many = workflow.predict([resources_pb2.Input(id=f"in{n}", data=resources_pb2.Data(
        text=resources_pb2.Text(raw=f"text {n}"))) for n in range(5)])
    assert [r.input.id for r in many.results] == [f"in{n}" for n in range(5)]
    assert [r.outputs[1].data.text.raw for r in many.results] == \
        [f"TEXT {n}!" for n in range(5)]

    path = tmp_path / "in.txt"
    path.write_text("from a file")
    assert env.workflow("chain").predict_by_filepath(str(path), "text") \
        .results[0].outputs[1].data.text.raw == "FROM A FILE!"
    with pytest.raises(UserError, match="at most 32"):
        workflow.predict([resources_pb2.Input()] * 33)


def test_a_failing_node_fails_its_dependents(env, tmp_path):
    config = {"workflow": {"id": "fails", "nodes": [
        {"id": "bang", "model": {"model_id": "shout"}},
        {"id": "up", "model": {"model_id": "upper"}, "node_inputs": [{"node_id": "bang"}]},
    ]}}
    workflow = env.create_workflow(_write(tmp_path, config), display=False)
    with pytest.raises(ApiError) as err:
        workflow.predict([resources_pb2.Input(id="ok", data=resources_pb2.Data(
            text=resources_pb2.Text(raw="fine"))), resources_pb2.Input(
            id="bad", data=resources_pb2.Data(text=resources_pb2.Text(raw="boom")))])
    assert err.value.code == codes.MIXED_STATUS
    ok, bad = err.value.response.results
    assert [o.data.text.raw for o in ok.outputs] == ["fine!", "FINE!"]
    assert bad.status.code == codes.FAILURE
    assert [o.status.code for o in bad.outputs] == [codes.MODEL_PREDICTION_FAILED] * 2


def test_export_then_create_gives_the_same_yaml(env, tmp_path, clarifai_server, clarifai_pat,
                                                clarifai_raw):
    env.create_workflow(_write(tmp_path, CHAIN), display=False)
    first = tmp_path / "first.yml"
    env.workflow("chain").export(str(first))
    exported = yaml.safe_load(first.read_text())
    assert [n["id"] for n in exported["workflow"]["nodes"]] == ["up", "bang"]
    assert exported["workflow"]["nodes"][1]["node_inputs"] == [{"node_id": "up"}]
    validate(exported)  # the SDK's rules accept what we write

    other = App(user_id=env.user_id, app_id=f"copy-{uuid.uuid4().hex[:8]}",
                base_url=clarifai_server.base_url, pat=clarifai_pat)
    clarifai_raw.call("PostApps", service_pb2.PostAppsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id=env.user_id),
        apps=[resources_pb2.App(id=other.app_id)]))
    try:
        copy = other.create_workflow(str(first), display=False)
        second = tmp_path / "second.yml"
        copy.export(str(second))
        assert second.read_text() == first.read_text()
        # The copy runs the first app's models.
        assert copy.predict_by_bytes(b"hi", "text").results[0].outputs[1].data.text.raw == \
            "HI!"
        renamed = other.create_workflow(str(first), generate_new_id=True, display=False)
        assert renamed.id != "chain" and len(renamed.nodes) == 2
    finally:
        clarifai_raw.call("DeleteApp", service_pb2.DeleteAppRequest(
            user_app_id=other.user_app_id))


def test_list_versions_delete_and_missing_models(env, tmp_path, clarifai_raw):
    workflow = env.create_workflow(_write(tmp_path, CHAIN), display=False)
    first_version = workflow.version.id
    patched = clarifai_raw.call("PatchWorkflows", service_pb2.PatchWorkflowsRequest(
        user_app_id=env.user_app_id, action="overwrite", workflows=[resources_pb2.Workflow(
            id="chain", description="only shouting", nodes=[resources_pb2.WorkflowNode(
                id="bang", model=resources_pb2.Model(id="shout"))])]))
    assert patched.status.code == codes.SUCCESS, patched.status
    versions = list(env.workflow("chain").list_versions())
    assert len(versions) == 2 and versions[1].version.id == first_version
    assert [len(v.nodes) for v in versions] == [1, 2]  # newest first
    old = Workflow(workflow_id="chain", workflow_version={"id": first_version},
                   auth=env.auth)
    assert [o.data.text.raw for o in old.predict_by_bytes(b"x", "text").results[0].outputs] \
        == ["X", "X!"]
    assert [o.data.text.raw for o in env.workflow("chain").predict_by_bytes(
        b"x", "text").results[0].outputs] == ["x!"]
    assert env.workflow("chain").description == "only shouting"

    # A model that does not exist is created (with its model_type_id) and versioned.
    config = {"workflow": {"id": "fresh", "nodes": [{"id": "n", "model": {
        "model_id": "brand-new", "model_type_id": "text-embedder",
        "description": "made by the workflow"}}]}}
    fresh = env.create_workflow(_write(tmp_path, config, "fresh.yml"), display=False)
    assert fresh.nodes[0].model.id == "brand-new" and fresh.nodes[0].model.model_version.id
    assert env.model("brand-new").description == "made by the workflow"

    assert sorted(w.id for w in env.list_workflows()) == ["chain", "fresh"]
    assert [w.id for w in env.list_workflows(filter_by={"search": "fre"})] == ["fresh"]
    everything = [w.id for w in env.list_workflows(only_in_app=False)]
    assert {"chain", "fresh", "Universal", "Empty"} <= set(everything)
    env.delete_workflow("fresh")
    assert [w.id for w in env.list_workflows()] == ["chain"]
    with pytest.raises(ApiError) as err:
        env.workflow("fresh")
    assert err.value.code == codes.WORKFLOW_DOES_NOT_EXIST


@pytest.mark.parametrize("nodes, message", [
    ([{"id": "b", "model": {"model_id": "shout"}, "node_inputs": [{"node_id": "a"}]},
      {"id": "a", "model": {"model_id": "upper"}}], "missing input 'a'"),
    ([{"id": "a", "model": {"model_id": "upper", "model_version_id": "0" * 32,
                            "description": "x"}}], "model_version_id and description"),
    ([{"id": "a", "model": {"model_id": "upper", "model_version_id": "xyz"}}], "32 hex"),
    ([{"id": "a", "model": {"model_id": "bad id!"}}], "not a valid id"),
    ([{"id": "a", "model": {"model_id": "upper", "colour": "red"}}], "unknown key"),
    ([], "non-empty"),
])
def test_config_validation(env, tmp_path, nodes, message):
    path = _write(tmp_path, {"workflow": {"id": "bad", "nodes": nodes}})
    with pytest.raises(UserError, match=message) as err:
        env.create_workflow(path, display=False)
    assert path in str(err.value)


def test_config_file_problems(env, tmp_path):
    with pytest.raises(UserError, match="not found"):
        env.create_workflow(str(tmp_path / "nope.yml"))
    broken = tmp_path / "broken.yml"
    broken.write_text("workflow: [unclosed")
    with pytest.raises(UserError, match="not valid YAML"):
        env.create_workflow(str(broken))


def test_server_checks_graphs(env, clarifai_raw):
    def post(*nodes):
        return clarifai_raw.call("PostWorkflows", service_pb2.PostWorkflowsRequest(
            user_app_id=env.user_app_id, workflows=[resources_pb2.Workflow(
                id=f"w{uuid.uuid4().hex[:6]}", nodes=list(nodes))]))

    def node(node_id, model_id, *inputs, **kw):
        return resources_pb2.WorkflowNode(
            id=node_id, model=resources_pb2.Model(id=model_id),
            node_inputs=[resources_pb2.NodeInput(node_id=i) for i in inputs], **kw)

    cycle = post(node("a", "upper", "b"), node("b", "shout", "a"))
    assert cycle.status.code == codes.CONN_INVALID_REQUEST and "cycle" in cycle.status.details
    dangling = post(node("a", "upper", "zz"))
    assert "does not have" in dangling.status.details
    twice = post(node("a", "upper"), node("a", "shout"))
    assert "twice" in twice.status.details
    missing = post(node("a", "no-such-model"))
    assert missing.status.code == codes.MODEL_DOES_NOT_EXIST
    # Declared out of order is fine for the server: it runs by dependencies.
    reversed_ = post(node("b", "shout", "a"), node("a", "upper", suppress_output=True))
    assert reversed_.status.code == codes.SUCCESS, reversed_.status
    run = clarifai_raw.call("PostWorkflowResults", service_pb2.PostWorkflowResultsRequest(
        user_app_id=env.user_app_id, workflow_id=reversed_.workflows[0].id,
        inputs=[resources_pb2.Input(data=resources_pb2.Data(
            text=resources_pb2.Text(raw="quiet")))]))
    assert run.status.code == codes.SUCCESS, run.status
    assert [o.data.text.raw for o in run.results[0].outputs] == ["QUIET!"]  # 'a' suppressed
    assert run.results[0].input.id  # an id was given to it
    base = clarifai_raw.call("ListWorkflows", service_pb2.ListWorkflowsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")))
    assert {"Universal", "General", "Language-Understanding", "Empty"} <= \
        {w.id for w in base.workflows}
