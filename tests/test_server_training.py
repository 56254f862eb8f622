"""Models that really train, predict, evaluate and export, over the real local server:
a text classifier on wordllama embeddings and an image classifier on image features, held-out
predictions above chance, output_config honoured, evaluations that agree with the
predictions, the exported model.tar read back, and every training failure status."""

import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from clarifai_grpc.grpc.api import resources_pb2 as r
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from PIL import Image

from clarifai_connect.client import App
from clarifai_connect.errors import ApiError
from clarifai_connect.server.ml.heads import Head

SPORT = ["the striker scored a late goal in the football match",
         "the tennis player won the final set at the open",
         "the team trained hard before the basketball game",
         "a marathon runner crossed the finish line first",
         "the goalkeeper saved a penalty in extra time",
         "the cyclist won the mountain stage of the race",
         "fans cheered as the boxer won the title fight",
         "the coach praised the players after the victory",
         "the swimmer broke the world record in the pool",
         "the rugby team scored a try in the second half"]
FOOD = ["she baked fresh bread with butter and honey",
        "the soup was made with tomatoes garlic and basil",
        "we cooked pasta with a creamy mushroom sauce",
        "the chef grilled salmon with lemon and herbs",
        "a chocolate cake with strawberries for dessert",
        "he fried eggs and bacon for breakfast",
        "the salad had fresh lettuce cucumber and olive oil",
        "they ate spicy curry with rice and naan bread",
        "the pizza was topped with cheese and pepperoni",
        "roasted vegetables with potatoes and rosemary"]
HELD_OUT = [("the midfielder passed the ball and scored a goal", "sport"),
            ("the sprinter won the gold medal in the final race", "sport"),
            ("the players celebrated the championship win", "sport"),
            ("the goal in the last minute won the match", "sport"),
            ("a warm bowl of soup with bread and cheese", "food"),
            ("she cooked rice with chicken and garlic sauce", "food"),
            ("fresh strawberries with cream and sugar for dessert", "food"),
            ("the chef baked a pie with apples and butter", "food")]


@pytest.fixture
def app(clarifai_server, clarifai_pat, clarifai_app):
    return App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
               base_url=clarifai_server.base_url, pat=clarifai_pat)


def _texts(app, dataset_id, items):
    inputs = app.inputs()
    app.create_dataset(dataset_id) if dataset_id not in {d.id for d in app.list_datasets()} \
        else None
    protos = [inputs.get_text_input(input_id, raw, dataset_id=dataset_id, labels=labels)
              for input_id, raw, labels in items]
    inputs.upload_inputs(protos)


def _train_texts(app, tmp_path, exclusive=True):
    _texts(app, "train", [(f"s{i}", t, ["sport"]) for i, t in enumerate(SPORT)] +
           [(f"f{i}", t, ["food"]) for i, t in enumerate(FOOD)])
    model = app.create_model("topics", model_type_id="text-classifier")
    model.get_params(template="logistic-regression", save_to=str(tmp_path / "params.yaml"))
    model.update_params(dataset_id="train", concepts=["sport", "food"],
                        concepts_mutually_exclusive=exclusive, regularization=10.0)
    version_id = model.train()
    return model, version_id


def test_text_classifier_trains_predicts_evaluates_and_exports(app, tmp_path, monkeypatch):
    model, version_id = _train_texts(app, tmp_path)
    queued = model.model_info.model_version.status.code
    assert queued in (codes.MODEL_QUEUED_FOR_TRAINING, codes.MODEL_TRAINING,
                      codes.MODEL_TRAINED)
    final = model.wait_for_training(version_id, timeout=120)
    assert final.code == codes.MODEL_TRAINED, final
    monkeypatch.chdir(tmp_path)
    assert model.training_status(version_id, training_logs=True).code == codes.MODEL_TRAINED
    log_text = (tmp_path / f"{version_id}.log").read_text()
    assert "20 labelled text inputs from dataset 'train'" in log_text
    assert "embeddings: wordllama (256 dimensions)" in log_text and "trained" in log_text

    # Held-out texts, by bytes: the top concept is right far above chance (1/2).
    right = 0
    for raw, label in HELD_OUT:
        outputs = model.predict_by_bytes(raw.encode(), "text").outputs
        concepts = outputs[0].data.concepts
        assert {c.id for c in concepts} == {"sport", "food"}
        assert sum(c.value for c in concepts) == pytest.approx(1.0, abs=1e-5)  # softmax
        right += concepts[0].id == label
    assert right >= 7, f"{right} of {len(HELD_OUT)} held-out texts right"

    # output_config: max_concepts, min_value, select_concepts.
    raw = HELD_OUT[0][0].encode()
    one = model.predict_by_bytes(raw, "text", output_config={"max_concepts": 1})
    assert [c.id for c in one.outputs[0].data.concepts] == ["sport"]
    top = one.outputs[0].data.concepts[0].value
    none = model.predict_by_bytes(raw, "text", output_config={"min_value": top + 1e-3})
    assert list(none.outputs[0].data.concepts) == []
    chosen = model.predict_by_bytes(raw, "text",
                                    output_config={"select_concepts": [{"id": "food"}]})
    assert [c.id for c in chosen.outputs[0].data.concepts] == ["food"]

    # Stored inputs by id score as their own text does.
    by_id = model.predict([r.Input(id="s0")]).outputs[0].data.concepts
    by_text = model.predict_by_bytes(SPORT[0].encode(), "text").outputs[0].data.concepts
    assert [(c.id, round(c.value, 5)) for c in by_id] == \
        [(c.id, round(c.value, 5)) for c in by_text]
    with pytest.raises(ApiError) as err:
        model.predict([r.Input(id="nope")])
    assert err.value.response.outputs[0].status.code == codes.INPUT_DOES_NOT_EXIST

    # Evaluation on a held-out ground-truth dataset agrees with the predictions.
    _texts(app, "test", [(f"t{i}", raw, [label]) for i, (raw, label) in enumerate(HELD_OUT)])
    pending = model.evaluate(dataset_id="test", eval_id="held-out")
    assert pending.status.code == codes.MODEL_QUEUED_FOR_EVALUATION
    done = model.wait_for_evaluation("held-out", timeout=120)
    assert done.status.code == codes.MODEL_EVALUATED, done.status
    assert done.summary.top1_accuracy == pytest.approx(right / len(HELD_OUT))
    latest = model.get_latest_eval(label_counts=True, confusion_matrix=True)
    assert latest.id == "held-out"
    assert sorted((c.concept.id, c.count) for c in latest.label_counts.positive_label_counts) \
        == [("food", 4), ("sport", 4)]
    assert sum(e.value for e in latest.confusion_matrix.matrix) == len(HELD_OUT)
    assert not latest.test_set  # not asked for
    app.create_dataset("unlabelled")
    model.evaluate(dataset_id="unlabelled", eval_id="nothing")
    empty = model.wait_for_evaluation("nothing", timeout=120)
    assert empty.status.code == codes.MODEL_EVALUATION_NEED_LABELS, empty.status
    assert model.get_latest_eval() is None  # the latest one failed
    detailed = model.get_eval_by_id("held-out", test_set=True, metrics_by_class=True)
    assert len(detailed.test_set) == len(HELD_OUT)
    assert {m.concept.id for m in detailed.metrics_by_class} == {"sport", "food"}

    # Export: model.tar holds the head and its manifest; the head scores as predict does.
    target = model.export(str(tmp_path / "export"))
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        manifest = json.loads(tar.extractfile("manifest.json").read())
        head = Head.from_bytes(tar.extractfile("head.npz").read())
    assert names == {"manifest.json", "head.npz", "training.log"}
    assert manifest["model_version_id"] == version_id and manifest["embedder"] == "wordllama"
    assert head.concepts == ["sport", "food"] and head.dim == 256
    builtin = app.model("wordllama", user_id="clarifai", app_id="main")
    vector = builtin.predict_by_bytes(SPORT[0].encode(), "text").outputs[0].data \
        .embeddings[0].vector
    scores = dict(zip(head.concepts, head.scores(np.array([vector]))[0], strict=True))
    assert scores["sport"] == pytest.approx({c.id: c.value for c in by_text}["sport"], abs=1e-4)


def test_export_needs_the_key(app, tmp_path, clarifai_server):
    import urllib.error
    import urllib.request

    model, version_id = _train_texts(app, tmp_path)
    assert model.wait_for_training(version_id, timeout=120).code == codes.MODEL_TRAINED
    model.export(str(tmp_path))
    url = model._get_export(version_id).export.url
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 401


def _scene(colour, seed):
    rng = np.random.default_rng(seed)
    base = np.array(colour, dtype=float)
    pixels = np.clip(base + rng.normal(0, 40, (24, 32, 3)), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).resize((96, 72)).save(out, format="PNG")
    return out.getvalue()


def test_image_classifier_multilabel_on_image_features(app, tmp_path, monkeypatch):
    colours = {"red": (200, 40, 40), "blue": (40, 60, 200)}
    inputs = app.inputs()
    app.create_dataset("pics")
    protos = [inputs.get_input_from_bytes(f"{name}{i}", image_bytes=_scene(rgb, i),
                                          dataset_id="pics", labels=[name])
              for name, rgb in colours.items() for i in range(12)]
    inputs.upload_inputs(protos)
    model = app.create_model("colours", model_type_id="embedding-classifier")
    model.get_params(save_to=str(tmp_path / "p.yaml"))
    model.update_params(dataset_id="pics", concepts=["red", "blue"])
    version_id = model.train()
    assert model.wait_for_training(version_id, timeout=120).code == codes.MODEL_TRAINED
    right = 0
    for name, rgb in colours.items():
        for seed in range(100, 105):
            concepts = model.predict_by_bytes(_scene(rgb, seed), "image").outputs[0].data.concepts
            right += concepts[0].id == name
    assert right >= 9, f"{right} of 10 held-out images right"

    # By URL (the server fetches it) and by file path, as by bytes.
    served = {"/red.png": _scene(colours["red"], 200), "/blue.png": _scene(colours["blue"], 201)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        by_url = model.predict_by_url(f"{base}/blue.png", "image").outputs[0].data.concepts
        assert by_url[0].id == "blue"
        with pytest.raises(ApiError) as err:
            model.predict_by_url(f"{base}/missing.png", "image")
        assert err.value.response.outputs[0].status.code == codes.INPUT_DOWNLOAD_FAILED
        assert "404" in err.value.response.outputs[0].status.details
    finally:
        httpd.shutdown()
        httpd.server_close()
    (tmp_path / "red.png").write_bytes(served["/red.png"])
    by_path = model.predict_by_filepath(str(tmp_path / "red.png"), "image")
    assert by_path.outputs[0].data.concepts[0].id == "red"
    monkeypatch.chdir(tmp_path)
    model.training_status(version_id, training_logs=True)
    assert "2 concepts, multi-label" in (tmp_path / f"{version_id}.log").read_text()
    with pytest.raises(ApiError) as err:
        model.predict_by_bytes(b"some words", "text")
    assert err.value.response.outputs[0].status.code == codes.INPUT_INVALID_ARGUMENT


def _train_status(app, tmp_path, name, **params):
    model = app.create_model(name, model_type_id="text-classifier")
    model.get_params(template=params.pop("template", "logistic-regression"),
                     save_to=str(tmp_path / f"{name}.yaml"))
    model.training_params["train_params"].update(params.pop("train_params", {}))
    model.update_params(**params)
    version_id = model.train()
    status = model.wait_for_training(version_id, timeout=120)
    if status.code != codes.MODEL_TRAINED:
        with pytest.raises(ApiError) as err:  # a failed version never predicts
            model.predict_by_bytes(b"anything", "text")
        assert err.value.code == status.code
    return status


def test_every_training_failure_has_its_status(app, tmp_path):
    app.create_dataset("empty")
    _texts(app, "few", [("a", "a goal in the match", ["sport"]),
                        ("b", "bread and butter", ["food"])])
    status = _train_status(app, tmp_path, "m1", dataset_id="empty")
    assert status.code == codes.MODEL_TRAINING_NO_DATA and "dataset 'empty'" in status.details
    app.inputs().upload_inputs([app.inputs().get_text_input("c", "tea", labels=["drink"])])
    status = _train_status(app, tmp_path, "m2", dataset_id="few", concepts=["sport", "drink"])
    assert status.code == codes.MODEL_TRAINING_NO_POSITIVES and "'drink'" in status.details
    status = _train_status(app, tmp_path, "m3", dataset_id="few",
                           train_params={"regularization": -1})
    assert status.code == codes.MODEL_TRAINING_INVALID_PARAMS
    assert "regularization" in status.details
    status = _train_status(app, tmp_path, "m4", dataset_id="missing")
    assert status.code == codes.MODEL_TRAINING_INVALID_PARAMS and "missing" in status.details
    # One concept trains against the inputs without it; with none such, it cannot.
    status = _train_status(app, tmp_path, "m5", dataset_id="few", concepts=["sport"])
    assert status.code == codes.MODEL_TRAINED
    _texts(app, "same", [("d", "a goal", ["sport"]), ("e", "a match", ["sport"])])
    status = _train_status(app, tmp_path, "m6", dataset_id="same", concepts=["sport"])
    assert status.code == codes.MODEL_TRAINING_INSUFFICIENT_DATA


def test_training_without_an_embedder_fails_with_the_reason(tmp_path):
    from clarifai_connect.server import LocalServer

    with LocalServer(tmp_path / "server", embedders={}, user="u") as server:
        app = App(user_id="u", app_id="a", base_url=server.base_url, pat=server.keys[0])
        from clarifai_grpc.grpc.api import service_pb2

        app._call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=r.UserAppIDSet(user_id="u"), apps=[r.App(id="a")]))
        _texts(app, "train", [("a", "a goal", ["sport"]), ("b", "bread", ["food"])])
        status = _train_status(app, tmp_path, "m", dataset_id="train")
    assert status.code == codes.MODEL_TRAINING_FAILED
    assert "embeds no text" in status.details


def test_builtin_models_embed(app):
    models = {m.id: m for m in app.list_models(only_in_app=False)}
    assert models["wordllama"].model_type_id == "text-embedder"
    assert models["image-features"].model_type_id == "visual-embedder"
    assert not [m for m in app.list_models() if m.app_id == "main"]
    out = app.model("wordllama", user_id="clarifai", app_id="main").predict_by_bytes(
        b"hello world", "text").outputs[0]
    assert out.status.code == codes.SUCCESS
    assert out.data.embeddings[0].num_dimensions == 256
    assert np.linalg.norm(out.data.embeddings[0].vector) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_bench_training_ratio_small():
    """bench/training_ratio.py at a small size: the server trains on every input (times are
    printed, never asserted)."""
    from bench.training_ratio import run

    report = run(total=1000, n_concepts=3, repeats=1)
    print(report)
    assert report["trained_on"] == 1000 and report["dimensions"] == 256


def test_base_workflows_name_the_builtin_models(clarifai_server, app):
    from clarifai_connect.server.ml.builtin import base_workflows

    flows = {w.id: [n.model for n in w.nodes] for w in base_workflows(clarifai_server)}
    assert set(flows) == {"Universal", "General", "Language-Understanding", "Empty"}
    assert [m.id for m in flows["Language-Understanding"]] == ["wordllama"]
    assert [m.id for m in flows["General"]] == ["image-features"]
    assert flows["Empty"] == []
    for model in flows["Universal"]:
        got = app.model(model.id, user_id=model.user_id, app_id=model.app_id)
        assert got.model_version.id == model.model_version.id


def test_training_on_a_dataset_version_uses_its_frozen_inputs(app, tmp_path):
    _texts(app, "topics", [(f"s{i}", t, ["sport"]) for i, t in enumerate(SPORT[:4])] +
           [(f"f{i}", t, ["food"]) for i, t in enumerate(FOOD[:4])])
    version = app.dataset("topics").create_version(description="eight")
    deadline_version = version.version.id
    _texts(app, "topics", [(f"late{i}", t, ["food"]) for i, t in enumerate(FOOD[4:])])
    model = app.create_model("frozen", model_type_id="text-classifier")
    model.get_params(template="linear-svm", save_to=str(tmp_path / "p.yaml"))
    model.update_params(dataset_id="topics", dataset_version_id=deadline_version,
                        concepts=["sport", "food"], concepts_mutually_exclusive=True)
    frozen = model.train()
    model.update_params(dataset_version_id="")
    live = model.train()
    assert model.wait_for_training(frozen, timeout=120).code == codes.MODEL_TRAINED
    assert model.wait_for_training(live, timeout=120).code == codes.MODEL_TRAINED
    counts = {v.model_version.id: v.model_version.total_input_count
              for v in model.list_versions()}
    assert counts == {frozen: 8, live: 8 + len(FOOD[4:])}
    assert model.predict_by_bytes(b"the team won the match", "text").outputs[0] \
        .data.concepts[0].id == "sport"


def test_training_waits_for_inputs_still_downloading(app, tmp_path, clarifai_raw, clarifai_app):
    import time

    # Fewer downloads than the server's background workers: training runs beside them.
    texts = {f"/s{i}.txt": t for i, t in enumerate(SPORT[:2])}
    texts.update({f"/f{i}.txt": t for i, t in enumerate(FOOD[:2])})

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            time.sleep(2.0)  # the inputs are still downloading when training starts
            body = texts[self.path].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        app.create_dataset("remote")
        inputs = app.inputs()
        posted = [inputs.get_input_from_url(
            path[1:-4], text_url=base + path, dataset_id="remote",
            labels=["sport" if path.startswith("/s") else "food"]) for path in texts]
        from clarifai_grpc.grpc.api import service_pb2  # a raw post: nothing waits for them

        clarifai_raw.call("PostInputs", service_pb2.PostInputsRequest(
            user_app_id=clarifai_app.user_app_id, inputs=posted))
        model = app.create_model("remote", model_type_id="text-classifier")
        model.get_params(template="logistic-regression", save_to=str(tmp_path / "p.yaml"))
        model.update_params(dataset_id="remote", concepts_mutually_exclusive=True)
        version_id = model.train()
        assert model.wait_for_training(version_id, timeout=120).code == codes.MODEL_TRAINED
    finally:
        httpd.shutdown()
        httpd.server_close()
    version = next(v.model_version for v in model.list_versions())
    assert version.total_input_count == 4
    assert sorted(c.id for c in version.output_info.data.concepts) == ["food", "sport"]
