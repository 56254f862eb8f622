"""Model and the model methods of App against the real local server: CRUD, versions, model
types and training params (the YAML of get_params), untrainable types, concept relations
and the singular PatchApp."""

import pytest
import yaml
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import App, Model
from clarifai_connect.errors import ApiError, UserError


@pytest.fixture
def app(clarifai_server, clarifai_pat, clarifai_app):
    return App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
               base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_model_lifecycle(app):
    created = app.create_model("clf", model_type_id="embedding-classifier",
                               description="first")
    assert isinstance(created, Model) and created.id == "clf"
    assert created.model_type_id == "embedding-classifier"
    app.create_model("det", model_type_id="visual-detector")
    got = app.model("clf")
    assert got.description == "first" and got.created_at.seconds > 0
    assert sorted(m.id for m in app.list_models()) == ["clf", "det"]
    assert [m.id for m in app.list_models(filter_by={"model_type_id": "visual-detector"})] == \
        ["det"]
    assert [m.id for m in app.list_models(filter_by={"name": "cl"})] == ["clf"]
    assert list(app.list_models(filter_by={"trained_only": True})) == []
    with pytest.raises(UserError, match="unknown filter"):
        list(app.list_models(filter_by={"colour": "red"}))
    app.delete_model("det")
    with pytest.raises(ApiError) as err:
        app.model("det")
    assert err.value.code == codes.MODEL_DOES_NOT_EXIST
    with pytest.raises(ApiError, match="already exists"):
        app.create_model("clf", model_type_id="embedding-classifier")
    with pytest.raises(ApiError, match="unknown model_type_id"):
        app.create_model("odd", model_type_id="no-such-type")


def test_patch_models_keeps_the_type(clarifai_raw, clarifai_app, app):
    app.create_model("m", model_type_id="text-classifier")
    resp = clarifai_raw.call("PatchModels", service_pb2.PatchModelsRequest(
        user_app_id=clarifai_app.user_app_id, action="merge",
        models=[resources_pb2.Model(id="m", description="new", model_type_id="visual-detector",
                                    notes="n")]))
    assert resp.status.code == codes.SUCCESS, resp.status
    got = app.model("m")
    assert (got.description, got.notes, got.model_type_id) == ("new", "n", "text-classifier")


def test_model_types_and_training_params(app, tmp_path):
    assert app.list_trainable_model_types() == ["embedding-classifier", "visual-classifier",
                                                "text-classifier"]
    visual = app.create_model("v", model_type_id="visual-classifier")
    assert visual.list_training_templates() == ["logistic-regression", "linear-svm"]
    with pytest.raises(UserError, match="needs a template"):
        visual.get_params(save_to=str(tmp_path / "p.yaml"))
    target = tmp_path / "params.yaml"
    params = visual.get_params(template="linear-svm", save_to=str(target))
    assert yaml.safe_load(target.read_text()) == params
    assert params["train_params"]["template"] == "linear-svm"
    assert params["train_params"]["regularization"] == 1.0
    assert params["train_params"]["max_iter"] == 500
    assert "embedder" not in params["train_params"]  # internal_only
    assert params["concepts_mutually_exclusive"] is False
    assert (params["dataset_id"], params["concepts"]) == ("", [])
    visual.update_params(regularization=0.5, dataset_id="ds")
    assert visual.training_params["train_params"]["regularization"] == 0.5
    assert visual.training_params["dataset_id"] == "ds"
    with pytest.raises(UserError, match="unknown params"):
        visual.update_params(learning_rate=3)
    info = visual.get_param_info("regularization")
    assert info["param"] == "regularization" and info["fieldType"] == "RANGE"
    assert info["modelTypeRangeInfo"]["max"] == 10000
    embedding = app.create_model("e", model_type_id="embedding-classifier")
    assert embedding.list_training_templates() == []
    assert embedding.get_params(save_to=str(tmp_path / "e.yaml"))["train_params"]["seed"] == 0
    with pytest.raises(UserError, match="not trainable"):
        app.create_model("d", model_type_id="visual-detector").list_training_templates()


def test_an_untrainable_type_is_refused_clearly(app):
    detector = app.create_model("det", model_type_id="visual-detector")
    with pytest.raises(ApiError) as err:
        detector.create_version(description="please")
    assert err.value.code == codes.NOT_IMPLEMENTED
    assert "cannot train visual-detector" in str(err.value)
    assert list(detector.list_versions()) == []


def test_versions_of_an_embedder_model(app):
    embedder = app.create_model("emb", model_type_id="text-embedder")
    first = embedder.create_version(description="one")
    second = embedder.create_version(description="two")
    assert first.model_version.status.code == codes.MODEL_TRAINED
    assert [m.model_version.description for m in embedder.list_versions()] == ["two", "one"]
    assert app.model("emb").model_version.id == second.model_version.id  # the latest
    assert app.model("emb", model_version={"id": first.model_version.id}).model_version \
        .description == "one"
    embedder.delete_version(first.model_version.id)
    assert [m.model_version.id for m in embedder.list_versions()] == [second.model_version.id]
    with pytest.raises(ApiError) as err:
        embedder.delete_version(first.model_version.id)
    assert err.value.code == codes.CONN_DOES_NOT_EXIST


def test_model_from_url_and_errors(clarifai_server, clarifai_pat, app):
    app.create_model("m", model_type_id="text-embedder")
    model = Model(f"https://clarifai.com/{app.user_id}/{app.app_id}/models/m/versions/v1",
                  base_url=clarifai_server.base_url, pat=clarifai_pat)
    assert (model.user_id, model.app_id, model.id, model.model_version.id) == \
        (app.user_id, app.app_id, "m", "v1")
    with pytest.raises(UserError, match="either url or model_id"):
        Model("https://clarifai.com/u/a/models/m", model_id="m")
    with pytest.raises(UserError, match="no model version"):
        Model(model_id="m", auth=app.auth).training_status()
    with pytest.raises(UserError, match="at most 128"):
        model.predict([resources_pb2.Input()] * 129)
    with pytest.raises(UserError, match="input_type"):
        model.predict_by_bytes(b"x", "smell")


def test_concept_relations(app, clarifai_raw, clarifai_app):
    clarifai_raw.call("PostConcepts", service_pb2.PostConceptsRequest(
        user_app_id=clarifai_app.user_app_id,
        concepts=[resources_pb2.Concept(id=c) for c in ("animal", "cat", "kitty", "dog")]))
    created = app.create_concept_relations("animal", ["cat", "dog"], ["hyponym", "hyponym"])
    assert [(r.subject_concept.id, r.object_concept.id) for r in created] == \
        [("animal", "cat"), ("animal", "dog")]
    app.create_concept_relations("cat", ["kitty"], ["synonym"])
    seen_from_cat = {(r.object_concept.id, r.predicate)
                     for r in app.search_concept_relations(concept_id="cat")}
    assert seen_from_cat == {("animal", "hypernym"), ("kitty", "synonym")}
    assert len(list(app.search_concept_relations())) == 3
    assert [r.object_concept.id for r in app.search_concept_relations(
        concept_id="animal", predicate="hyponym")] == ["cat", "dog"]
    with pytest.raises(ApiError, match="already"):
        app.create_concept_relations("cat", ["animal"], ["hypernym"])
    with pytest.raises(ApiError, match="predicate"):
        app.create_concept_relations("cat", ["dog"], ["enemy"])
    with pytest.raises(ApiError, match="concept 'fish'"):
        app.create_concept_relations("cat", ["fish"], ["synonym"])
    app.delete_concept_relations("animal")
    assert [r.predicate for r in app.search_concept_relations()] == ["synonym"]


def test_patch_app_singular(clarifai_raw, clarifai_app):
    resp = clarifai_raw.call("PatchApp", service_pb2.PatchAppRequest(
        user_app_id=clarifai_app.user_app_id, action="overwrite",
        app=resources_pb2.App(description="patched")))
    assert resp.status.code == codes.SUCCESS, resp.status
    assert resp.app.description == "patched" and resp.app.id == clarifai_app.app_id
    got = clarifai_raw.call("GetApp", service_pb2.GetAppRequest(
        user_app_id=clarifai_app.user_app_id))
    assert got.app.description == "patched"
    wrong = clarifai_raw.call("PatchApp", service_pb2.PatchAppRequest(
        user_app_id=clarifai_app.user_app_id, app=resources_pb2.App(id="other")))
    assert wrong.status.code == codes.CONN_INVALID_REQUEST



def test_polling_has_a_deadline():
    import time

    from clarifai_connect.client.model_params import backoff, poll
    from clarifai_connect.errors import ApiClientError

    delays = backoff(initial=0.05, cap=0.4)
    assert [round(next(delays), 2) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]
    calls = []
    started = time.monotonic()
    with pytest.raises(ApiClientError, match="still not done after 0.3s"):
        poll(lambda: calls.append(1), lambda _: False, 0.3, "the thing")
    assert time.monotonic() - started < 5 and len(calls) >= 2
    assert poll(lambda: 7, lambda value: value == 7, 0.1, "done at once") == 7


def test_predict_refuses_more_than_128_inputs_on_the_server(clarifai_raw, clarifai_app, app):
    app.create_model("emb", model_type_id="text-embedder").create_version()
    resp = clarifai_raw.call("PostModelOutputs", service_pb2.PostModelOutputsRequest(
        user_app_id=clarifai_app.user_app_id, model_id="emb",
        inputs=[resources_pb2.Input(data=resources_pb2.Data(text=resources_pb2.Text(raw="x")))]
        * 129))
    assert resp.status.code == codes.CONN_INVALID_REQUEST
    assert "at most 128" in resp.status.details
    ok = clarifai_raw.call("PostModelOutputs", service_pb2.PostModelOutputsRequest(
        user_app_id=clarifai_app.user_app_id, model_id="emb",
        inputs=[resources_pb2.Input(data=resources_pb2.Data(text=resources_pb2.Text(raw="x")))]
        * 128))
    assert ok.status.code == codes.SUCCESS, ok.status
    assert len(ok.outputs) == 128 and ok.outputs[0].data.embeddings[0].num_dimensions == 256
