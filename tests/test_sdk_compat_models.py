"""Wire compatibility of model calls: the official `clarifai` SDK, unchanged, creates,
gets, patches, trains, lists, predicts with and deletes models on the local server."""

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

pytestmark = pytest.mark.compat

clarifai_user = pytest.importorskip("clarifai.client.user", reason="install the compat extra")
from clarifai.client.model import Model as SdkModel  # noqa: E402

from clarifai_connect.client.model_params import poll  # noqa: E402

SPORT = ["the striker scored a goal in the football match", "the tennis player won the set",
         "the team won the basketball game", "a runner crossed the finish line first",
         "the goalkeeper saved a penalty", "the cyclist won the race"]
FOOD = ["she baked bread with butter and honey", "tomato soup with garlic and basil",
        "pasta with a creamy mushroom sauce", "grilled salmon with lemon and herbs",
        "a chocolate cake with strawberries", "fried eggs and bacon for breakfast"]


@pytest.fixture
def sdk_app(clarifai_server):
    user = clarifai_user.User(user_id="sdk-models", base_url=clarifai_server.base_url,
                              pat=clarifai_server.key_for("sdk-models"))
    app = user.create_app(app_id="sdk_models")
    yield app
    user.delete_app("sdk_models")


def test_sdk_model_lifecycle_train_and_predict(sdk_app, clarifai_server, tmp_path,
                                               monkeypatch):
    sdk_app.create_dataset(dataset_id="topics")
    inputs = sdk_app.inputs()
    for n, text in enumerate(SPORT):
        inputs.upload_text(input_id=f"s{n}", raw_text=text, dataset_id="topics",
                           labels=["sport"])
    for n, text in enumerate(FOOD):
        inputs.upload_text(input_id=f"f{n}", raw_text=text, dataset_id="topics",
                           labels=["food"])

    model = sdk_app.create_model(model_id="topics", model_type_id="text-classifier")
    assert model.list_training_templates() == ["logistic-regression", "linear-svm"]
    params = model.get_params(template="logistic-regression",
                              save_to=str(tmp_path / "params.yaml"))
    assert params["train_params"]["template"] == "logistic-regression"
    model.update_params(dataset_id="topics", concepts=["sport", "food"],
                        concepts_mutually_exclusive=True, regularization=10.0)
    version_id = model.train()
    assert version_id
    status = poll(lambda: model.training_status(version_id=version_id),
                  lambda s: s.code not in (codes.MODEL_QUEUED_FOR_TRAINING,
                                           codes.MODEL_TRAINING), 120, "training")
    assert status.code == codes.MODEL_TRAINED, status
    monkeypatch.chdir(tmp_path)
    model.training_status(version_id=version_id, training_logs=True)
    assert "12 labelled text inputs" in (tmp_path / f"{version_id}.log").read_text()

    patched = sdk_app.patch_model(model_id="topics", action="merge", description="topics")
    assert patched.id == "topics"
    got = sdk_app.model(model_id="topics")
    assert got.model_info.description == "topics"
    assert got.model_info.model_version.id == version_id
    assert [m.id for m in sdk_app.list_models()] == ["topics"]
    assert [v.model_info.model_version.id for v in model.list_versions()] == [version_id]

    trained = SdkModel(model_id="topics", user_id="sdk-models", app_id="sdk_models",
                       model_version={"id": version_id}, base_url=clarifai_server.base_url,
                       pat=clarifai_server.key_for("sdk-models"))
    response = trained.predict_by_bytes(b"the players scored two goals in the match", "text")
    concepts = response.outputs[0].data.concepts
    assert concepts[0].id == "sport"
    assert {c.id for c in concepts} == {"sport", "food"}

    queued = trained.evaluate(dataset_id="topics", eval_id="e1")
    assert queued[0].status.code == codes.MODEL_QUEUED_FOR_EVALUATION  # the SDK returns the list
    latest = poll(lambda: trained.get_latest_eval(label_counts=True, confusion_matrix=True),
                  lambda m: m is not None, 120, "evaluation")
    assert latest.id == "e1" and latest.summary.top1_accuracy == 1.0  # its training data
    assert sum(c.count for c in latest.label_counts.positive_label_counts) == 12

    import tarfile

    trained.export(str(tmp_path / "export"))
    with tarfile.open(tmp_path / "export" / "model.tar") as tar:
        assert "head.npz" in tar.getnames()

    sdk_app.delete_model("topics")
    assert list(sdk_app.list_models()) == []


def test_sdk_concept_relations_and_patch_app(clarifai_server):
    user = clarifai_user.User(user_id="sdk-relations", base_url=clarifai_server.base_url,
                              pat=clarifai_server.key_for("sdk-relations"))
    app = user.create_app(app_id="sdk_relations")
    try:
        app.create_concepts(["animal", "cat", "dog"])
        app.create_concept_relations("animal", ["cat", "dog"], ["hyponym", "hyponym"])
        relations = list(app.search_concept_relations(concept_id="animal"))
        assert sorted(r.object_concept.id for r in relations) == ["cat", "dog"]
        assert {r.predicate for r in relations} == {"hyponym"}
        from_cat = list(app.search_concept_relations(concept_id="cat"))
        assert [(r.object_concept.id, r.predicate) for r in from_cat] == \
            [("animal", "hypernym")]
        app.delete_concept_relations("animal")
        assert list(app.search_concept_relations()) == []

        user.patch_app("sdk_relations", action="overwrite", description="patched")
        assert user.app("sdk_relations").app_info.description == "patched"
    finally:
        user.delete_app("sdk_relations")
