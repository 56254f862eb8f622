"""A two-node workflow over real models: the built-in text embedder → a text classifier
trained in the app. Each node's output is what the model gives on its own."""

import pytest
import yaml
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import App

SPORT = ["the striker scored a late goal in the football match",
         "the tennis player won the final set at the open",
         "the team trained hard before the basketball game",
         "a marathon runner crossed the finish line first",
         "the goalkeeper saved a penalty in extra time",
         "the cyclist won the mountain stage of the race"]
FOOD = ["she baked fresh bread with butter and honey",
        "the soup was made with tomatoes garlic and basil",
        "we cooked pasta with a creamy mushroom sauce",
        "the chef grilled salmon with lemon and herbs",
        "a chocolate cake with strawberries for dessert",
        "he fried eggs and bacon for breakfast"]


def _text_embedder(clarifai_raw) -> resources_pb2.Model | None:
    listed = clarifai_raw.call("ListModels", service_pb2.ListModelsRequest(
        user_app_id=resources_pb2.UserAppIDSet(user_id="clarifai", app_id="main")))
    return next((m for m in listed.models if m.model_type_id == "text-embedder"), None)


def test_embedder_then_trained_classifier(clarifai_server, clarifai_pat, clarifai_app,
                                          clarifai_raw, tmp_path):
    embedder = _text_embedder(clarifai_raw)
    if embedder is None:
        pytest.skip("the server has no built-in text embedder")
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, pat=clarifai_pat)
    inputs = app.inputs()
    app.create_dataset("train")
    inputs.upload_inputs(
        [inputs.get_text_input(f"s{i}", t, dataset_id="train", labels=["sport"])
         for i, t in enumerate(SPORT)] +
        [inputs.get_text_input(f"f{i}", t, dataset_id="train", labels=["food"])
         for i, t in enumerate(FOOD)])
    model = app.create_model("topics", model_type_id="text-classifier")
    model.get_params(template="logistic-regression", save_to=str(tmp_path / "params.yaml"))
    model.update_params(dataset_id="train", concepts=["sport", "food"],
                        concepts_mutually_exclusive=True, regularization=10.0)
    version_id = model.train()
    assert model.wait_for_training(version_id, timeout=120).code == codes.MODEL_TRAINED

    config = {"workflow": {"id": "embed-classify", "nodes": [
        {"id": "embed", "model": {"model_id": embedder.id, "user_id": "clarifai",
                                  "app_id": "main"}},
        {"id": "classify", "model": {"model_id": "topics"},
         "node_inputs": [{"node_id": "embed"}]}]}}
    path = tmp_path / "wf.yml"
    path.write_text(yaml.safe_dump(config))
    workflow = app.create_workflow(str(path), display=False)
    assert workflow.nodes[1].model.model_version.id == version_id

    text = "the goalkeeper and the striker celebrated the winning goal"
    (result,) = workflow.predict_by_bytes(text.encode(), "text").results
    embedded, classified = result.outputs
    assert embedded.model.id == embedder.id and classified.model.id == "topics"
    vector = embedded.data.embeddings[0]
    assert vector.num_dimensions == len(vector.vector) > 0
    assert classified.data.concepts[0].id == "sport"
    # Each node answers as the model does on its own.
    alone = model.predict_by_bytes(text.encode(), "text").outputs[0].data.concepts
    assert [(c.id, round(c.value, 5)) for c in classified.data.concepts] == \
        [(c.id, round(c.value, 5)) for c in alone]
    direct = app.model(embedder.id, user_id="clarifai", app_id="main") \
        .predict_by_bytes(text.encode(), "text").outputs[0].data.embeddings[0].vector
    assert list(vector.vector) == pytest.approx(list(direct), abs=1e-6)
    # min_value from the workflow's output_config filters the classifier's concepts.
    strict = workflow.__class__(workflow_id=workflow.id, auth=workflow.auth,
                                output_config={"min_value": 0.99})
    outputs = strict.predict_by_bytes(text.encode(), "text").results[0].outputs
    assert all(c.value >= 0.99 for c in outputs[1].data.concepts)


def test_base_workflow_runs_on_a_stored_input(clarifai_server, clarifai_pat, clarifai_app,
                                              clarifai_raw):
    embedder = _text_embedder(clarifai_raw)
    if embedder is None:
        pytest.skip("the server has no built-in text embedder")
    app = App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
              base_url=clarifai_server.base_url, pat=clarifai_pat)
    app.inputs().upload_text("stored", "words kept in the app")
    run = clarifai_raw.call("PostWorkflowResults", service_pb2.PostWorkflowResultsRequest(
        user_app_id=clarifai_app.user_app_id, workflow_id="Language-Understanding",
        inputs=[resources_pb2.Input(id="stored")]))
    assert run.status.code == codes.SUCCESS, run.status
    assert run.workflow.user_id == "clarifai"  # the base workflow, served in the app
    (output,) = run.results[0].outputs
    direct = app.model(embedder.id, user_id="clarifai", app_id="main").predict_by_bytes(
        b"words kept in the app", "text").outputs[0].data.embeddings[0].vector
    assert list(output.data.embeddings[0].vector) == pytest.approx(list(direct), abs=1e-6)
