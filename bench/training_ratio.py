"""Training time of the local server for N labelled inputs, as a ratio to the same
scikit-learn fit on the same arrays in the same run.

The server is started in this process with N labelled texts (K topics, words drawn at
random from per-topic vocabularies, so the classes overlap a little), embedded by the
server's text embedder. The server's training is timed from PostModelVersions to
MODEL_TRAINED (reading the labelled inputs and their vectors, the fit, storing the head);
the baseline is ``LogisticRegression`` with the same parameters fitted on the vectors the
server holds for those inputs and the same labels. The ratio is the cost of everything
around the fit, whatever the machine's speed.

    python -m bench.training_ratio [--inputs 10000] [--concepts 4]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import struct_pb2

from clarifai_connect.server import LocalServer
from clarifai_connect.testing import raw_api

BATCH = 128
WORDS = {
    "sport": "goal match team player score coach league race win ball field game",
    "food": "bread soup cheese pasta sauce garlic butter cake salad rice cook bake",
    "music": "song guitar band concert album piano drum singer melody stage tune",
    "weather": "rain storm cloud wind snow sunny forecast cold warm thunder fog",
    "travel": "train flight hotel beach museum ticket map city trip road luggage",
    "money": "bank loan price market stock tax budget coin profit invest credit",
}
COMMON = "the a of and with in on at for to is was very".split()


def texts(total: int, concepts: list[str], seed: int = 0) -> list[tuple[str, str, str]]:
    """(input id, text, concept) for ``total`` inputs spread over ``concepts``."""
    rng = random.Random(seed)
    out = []
    for n in range(total):
        concept = concepts[n % len(concepts)]
        own = WORDS[concept].split()
        other = WORDS[concepts[(n + 1) % len(concepts)]].split()
        words = rng.choices(own, k=5) + rng.choices(other, k=1) + rng.choices(COMMON, k=4)
        rng.shuffle(words)
        out.append((f"t{n:06d}", " ".join(words), concept))
    return out


def _post(api, user_app, items) -> None:
    for start in range(0, len(items), BATCH):
        batch = [resources_pb2.Input(id=i, dataset_ids=["bench"], data=resources_pb2.Data(
            text=resources_pb2.Text(raw=t), concepts=[resources_pb2.Concept(id=c, value=1)]))
            for i, t, c in items[start:start + BATCH]]
        resp = api.call("PostInputs", service_pb2.PostInputsRequest(user_app_id=user_app,
                                                                    inputs=batch))
        if resp.status.code != codes.SUCCESS:
            raise RuntimeError(resp.status.description)


def _train(api, user_app, version) -> tuple[float, service_pb2.SingleModelVersionResponse]:
    """Seconds from PostModelVersions to a final status, and the final version."""
    started = time.perf_counter()
    resp = api.call("PostModelVersions", service_pb2.PostModelVersionsRequest(
        user_app_id=user_app, model_id="topics", model_versions=[version]))
    version_id = resp.model.model_version.id
    while True:
        got = api.call("GetModelVersion", service_pb2.GetModelVersionRequest(
            user_app_id=user_app, model_id="topics", version_id=version_id))
        if got.model_version.status.code not in (codes.MODEL_QUEUED_FOR_TRAINING,
                                                 codes.MODEL_TRAINING):
            return time.perf_counter() - started, got
        time.sleep(0.005)


def run(total: int = 10000, n_concepts: int = 4, regularization: float = 1.0,
        max_iter: int = 500, repeats: int = 3) -> dict:
    """Train ``repeats`` times on the server and with scikit-learn alone; return the median
    times and their ratio."""
    from sklearn.linear_model import LogisticRegression

    concepts = list(WORDS)[:n_concepts]
    items = texts(total, concepts)
    # The server's key belongs to its user, so the bench acts as that user.
    with tempfile.TemporaryDirectory() as data_dir, \
            LocalServer(data_dir=data_dir, user="bench") as server:
        api = raw_api(server)
        user_app = resources_pb2.UserAppIDSet(user_id="bench", app_id="bench")
        api.call("PostApps", service_pb2.PostAppsRequest(
            user_app_id=user_app, apps=[resources_pb2.App(id="bench")]))
        api.call("PostDatasets", service_pb2.PostDatasetsRequest(
            user_app_id=user_app, datasets=[resources_pb2.Dataset(id="bench")]))
        api.call("PostModels", service_pb2.PostModelsRequest(user_app_id=user_app, models=[
            resources_pb2.Model(id="topics", model_type_id="text-classifier")]))
        started = time.perf_counter()
        _post(api, user_app, items)
        pk = server.store.read().execute("SELECT pk FROM apps WHERE id='bench'").fetchone()[0]
        server.embeddings.wait(pk, timeout=3600)
        ingest = time.perf_counter() - started

        params = struct_pb2.Struct()
        params.update({"dataset_id": "bench", "template": "logistic-regression",
                       "regularization": regularization, "max_iter": max_iter})
        version = resources_pb2.ModelVersion(train_info=resources_pb2.TrainInfo(params=params))
        version.output_info.output_config.concepts_mutually_exclusive = True
        version.output_info.data.concepts.extend(resources_pb2.Concept(id=c) for c in concepts)
        server_runs = [_train(api, user_app, version) for _ in range(repeats)]
        got = server_runs[-1][1]
        if got.model_version.status.code != codes.MODEL_TRAINED:
            raise RuntimeError(got.model_version.status.details)

        ids, matrix = server.embeddings.vectors(pk, [i for i, _, _ in items],
                                                embedder="wordllama")
        label_of = {i: concepts.index(c) for i, _, c in items}
        target = np.array([label_of[i] for i in ids])
        sklearn_runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            LogisticRegression(C=regularization, max_iter=max_iter, random_state=0).fit(
                matrix, target)
            sklearn_runs.append(time.perf_counter() - started)
        api.channel.close()
    server_seconds = statistics.median(t for t, _ in server_runs)
    sklearn_seconds = statistics.median(sklearn_runs)
    return {"inputs": total, "concepts": n_concepts, "dimensions": int(matrix.shape[1]),
            "ingest_and_embed_s": round(ingest, 3), "repeats": repeats,
            "server_training_s": round(server_seconds, 3),
            "sklearn_fit_s": round(sklearn_seconds, 3),
            "ratio": round(server_seconds / sklearn_seconds, 3),
            "trained_on": got.model_version.total_input_count}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10000)
    parser.add_argument("--concepts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.inputs, args.concepts, repeats=args.repeats), indent=2))


if __name__ == "__main__":
    main()
