"""Training a model version in the background: its labelled inputs, their embeddings, a head.

The job moves the version MODEL_QUEUED_FOR_TRAINING → MODEL_TRAINING → MODEL_TRAINED, or
ends it in MODEL_TRAINING_INVALID_PARAMS, _NO_DATA, _NO_POSITIVES, _INSUFFICIENT_DATA or
_FAILED with the reason in ``status.details``. Every step writes a line to the version's
training log (``train_log`` is its URL). Training data: the inputs of
``train_info.params.dataset_id`` (frozen at ``dataset_version_id`` when given; the whole
app when neither is given), labelled by their input-level concepts (value > 0 positive).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from google.protobuf import json_format

from ..common import timestamp
from ..rpc import status
from ..store import now
from . import features
from .heads import Head, TrainingDataError, fit_head
from .model_types import DEFAULT_TEMPLATE, KINDS, TEMPLATE_PARAMS, params_of

log = logging.getLogger("clarifai_connect.server.training")
_PAGE = 1000
_MEDIA_OF = {"visual-classifier": "image", "text-classifier": "text"}


class TrainingLog:
    """The lines of one training run, with the seconds since it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(f"[{time.monotonic() - self.started:8.3f}s] {line}")

    def text(self) -> str:
        """The log as text, one line per step."""
        return "\n".join(self.lines) + "\n"


def log_token() -> str:
    """An unguessable token naming a version's training log URL."""
    return os.urandom(16).hex()


def start(server: Any, pk: int, model_id: str, version_id: str) -> None:
    """Queue the training of a version (already stored as MODEL_QUEUED_FOR_TRAINING)."""
    server.background.submit(run, server, pk, model_id, version_id)


def log_path(server: Any, token: str) -> Path:
    """Where the training log of ``token`` is served from (``/training-logs/<token>.log``)."""
    return Path(server.exports_dir) / f"training-{token}.log"


def _save(server: Any, pk: int, model_id: str, version: resources_pb2.ModelVersion,
          logbook: TrainingLog, token: str, head: Head | None = None) -> None:
    version.modified_at.CopyFrom(timestamp(now()))
    log_path(server, token).write_text(logbook.text(), encoding="utf-8")
    with server.store.write() as db:
        db.execute("UPDATE model_versions SET proto=?, train_log=?, head=COALESCE(?, head) "
                   "WHERE app_pk=? AND model_id=? AND id=?",
                   (version.SerializeToString(), logbook.text(),
                    head.to_bytes() if head is not None else None, pk, model_id, version.id))


def _load(server: Any, pk: int, model_id: str, version_id: str):
    db = server.store.read()
    row = db.execute("SELECT proto FROM model_versions WHERE app_pk=? AND model_id=? AND id=?",
                     (pk, model_id, version_id)).fetchone()
    model = db.execute("SELECT proto FROM models WHERE app_pk=? AND id=?",
                       (pk, model_id)).fetchone()
    if row is None or model is None:
        return None, None
    return resources_pb2.Model.FromString(model[0]), resources_pb2.ModelVersion.FromString(row[0])


def run(server: Any, pk: int, model_id: str, version_id: str) -> None:
    """Train one version; whatever happens, the version ends in a final status."""
    model, version = _load(server, pk, model_id, version_id)
    if version is None:  # deleted while queued
        return
    logbook = TrainingLog()
    token = log_token()
    version.train_log = f"{server.media_url}/training-logs/{token}.log"
    version.status.CopyFrom(status(codes.MODEL_TRAINING, "Model is currently training"))
    logbook(f"training version '{version_id}' of {model.model_type_id} model '{model_id}'")
    _save(server, pk, model_id, version, logbook, token)
    head = None
    try:
        head = train(server, pk, model, version, logbook)
    except TrainingDataError as err:
        logbook(f"failed: {err}")
        version.status.CopyFrom(status(err.code, details=str(err)))
    except features.FeatureError as err:
        logbook(f"failed: {err}")
        version.status.CopyFrom(status(codes.MODEL_TRAINING_FAILED, details=str(err)))
    except Exception as err:  # a training bug must end the job, not leave it "training"
        log.exception("training %s/%s failed", model_id, version_id)
        logbook(f"failed: {type(err).__name__}: {err}")
        version.status.CopyFrom(status(codes.MODEL_TRAINING_FAILED,
                                       details=f"{type(err).__name__}: {err}"))
    else:
        version.status.CopyFrom(status(codes.MODEL_TRAINED, "Model is trained and ready"))
        logbook("trained")
    version.completed_at.CopyFrom(timestamp(now()))
    if _load(server, pk, model_id, version_id)[1] is not None:
        _save(server, pk, model_id, version, logbook, token, head)


def training_params(model: resources_pb2.Model,
                    version: resources_pb2.ModelVersion) -> dict[str, Any]:
    """The version's ``train_info.params`` checked against its type's fields, defaults
    filled; raises TrainingDataError (MODEL_TRAINING_INVALID_PARAMS) on a bad one."""
    kind = KINDS[model.model_type_id]
    given = json_format.MessageToDict(version.train_info.params)
    template = given.get("template") or DEFAULT_TEMPLATE
    if kind.templated and template not in TEMPLATE_PARAMS:
        raise TrainingDataError(codes.MODEL_TRAINING_INVALID_PARAMS,
                                f"unknown template '{template}' (templates: "
                                f"{', '.join(TEMPLATE_PARAMS)})")
    out: dict[str, Any] = {"template": template if kind.templated else DEFAULT_TEMPLATE}
    for param in params_of(kind, template):
        value = given.get(param.name, param.default)
        problem = param.check(value)
        if problem:
            raise TrainingDataError(codes.MODEL_TRAINING_INVALID_PARAMS, problem)
        out[param.name] = value
    for key in ("dataset_id", "dataset_version_id"):
        out[key] = str(given.get(key) or "")
    return out


def _labelled_inputs(db: sqlite3.Connection, pk: int, dataset_id: str,
                     version_id: str) -> Iterator[resources_pb2.Input]:
    """The inputs to train on, page by page (memory bounded by the page)."""
    if version_id:
        sql = ("SELECT proto FROM dataset_version_inputs WHERE app_pk=? AND dataset_id=? AND "
               "version_id=? AND pos>? ORDER BY pos LIMIT ?")
        args: tuple = (pk, dataset_id, version_id)
        cursor_col = 0
    elif dataset_id:
        sql = ("SELECT i.proto, d.seq FROM dataset_inputs d JOIN inputs i ON i.app_pk=d.app_pk "
               "AND i.id=d.input_id WHERE d.app_pk=? AND d.dataset_id=? AND d.seq>? "
               "ORDER BY d.seq LIMIT ?")
        args = (pk, dataset_id)
        cursor_col = 1
    else:
        sql = "SELECT proto, seq FROM inputs WHERE app_pk=? AND seq>? ORDER BY seq LIMIT ?"
        args = (pk,)
        cursor_col = 1
    if version_id:
        sql = sql.replace("SELECT proto", "SELECT proto, pos")
        cursor_col = 1
    last = -1
    while True:
        rows = db.execute(sql, (*args, last, _PAGE)).fetchall()
        for row in rows:
            yield resources_pb2.Input.FromString(row[0])
        if len(rows) < _PAGE:
            return
        last = rows[-1][cursor_col]


def gather(db: sqlite3.Connection, pk: int, params: dict[str, Any],
           concept_ids: list[str], media: str | None, logbook: TrainingLog,
           ) -> tuple[list[str], list[str], list[set[str]], str]:
    """(input ids, concepts, positive concepts per input, media kind) of the training data."""
    dataset_id, version_id = params["dataset_id"], params["dataset_version_id"]
    if version_id and not dataset_id:
        raise TrainingDataError(codes.MODEL_TRAINING_INVALID_PARAMS,
                                "dataset_version_id needs its dataset_id")
    if dataset_id and not db.execute("SELECT 1 FROM datasets WHERE app_pk=? AND id=?",
                                     (pk, dataset_id)).fetchone():
        raise TrainingDataError(codes.MODEL_TRAINING_INVALID_PARAMS,
                                f"dataset '{dataset_id}' does not exist")
    if version_id and not db.execute("SELECT 1 FROM dataset_versions WHERE app_pk=? AND "
                                     "dataset_id=? AND id=?",
                                     (pk, dataset_id, version_id)).fetchone():
        raise TrainingDataError(codes.MODEL_TRAINING_INVALID_PARAMS,
                                f"version '{version_id}' of dataset '{dataset_id}' does not "
                                "exist")
    source = (f"dataset '{dataset_id}'" + (f" version '{version_id}'" if version_id else "")
              if dataset_id else "every input of the app")
    rows: list[tuple[str, set[str], str]] = []
    kinds = {"image": 0, "text": 0}
    for inp in _labelled_inputs(db, pk, dataset_id, version_id):
        kind = features.media_kind(inp.data)
        if kind is None or not inp.data.concepts or (media and kind != media):
            continue
        kinds[kind] += 1
        rows.append((inp.id, {c.id for c in inp.data.concepts if c.value > 0}, kind))
    if not media:  # an embedding classifier trains on the kind most of its data is
        media = max(kinds, key=kinds.get)
        if kinds["image"] and kinds["text"]:
            logbook(f"mixed media: training on the {kinds[media]} {media} inputs")
        rows = [row for row in rows if row[2] == media]
    logbook(f"training data: {len(rows)} labelled {media} inputs from {source}")
    concepts = concept_ids or sorted({c for _, labels, _ in rows for c in labels})
    if not rows or not concepts:
        raise TrainingDataError(codes.MODEL_TRAINING_NO_DATA,
                                f"no labelled {media} inputs in {source}")
    return [r[0] for r in rows], concepts, [r[1] for r in rows], media


def train(server: Any, pk: int, model: resources_pb2.Model, version: resources_pb2.ModelVersion,
          logbook: TrainingLog) -> Head:
    """Fit the version's head (raises TrainingDataError when the data cannot train it)."""
    params = training_params(model, version)
    logbook(f"params: {params}")
    concept_ids = [c.id for c in version.output_info.data.concepts]
    exclusive = version.output_info.output_config.concepts_mutually_exclusive
    media = _MEDIA_OF.get(model.model_type_id)
    db = server.store.read()
    ids, concepts, positives, media = gather(db, pk, params, concept_ids, media, logbook)
    info = features.embedder_for(server, pk, media)
    logbook(f"embeddings: {info.name} ({info.dim} dimensions)")
    _wait_for_downloads(server, pk, ids, logbook)
    found, matrix = features.input_features(server, pk, ids, info.name)
    by_id = dict(zip(ids, positives, strict=True))
    missing = len(ids) - len(found)
    if missing:
        logbook(f"{missing} inputs have no embedding (unreadable media) and are left out")
    labels = np.array([[c in by_id[i] for c in concepts] for i in found], dtype=bool)
    labels = labels.reshape(len(found), len(concepts))
    if exclusive and len(concepts) > 1:
        single = labels.sum(axis=1) == 1
        if (~single).any():
            logbook(f"{int((~single).sum())} inputs without exactly one of the mutually "
                    "exclusive concepts are left out")
        found = [i for i, ok in zip(found, single, strict=True) if ok]
        matrix, labels = matrix[single], labels[single]
    found, matrix, labels, held = _holdout(found, matrix, labels, params, logbook)
    head = fit_head(matrix, labels, concepts, exclusive, params["template"], params,
                    log=logbook)
    head.embedder = info.name
    head.info = {"model_type_id": model.model_type_id, "inputs": len(found), "media": media,
                 "dataset_id": params["dataset_id"],
                 "dataset_version_id": params["dataset_version_id"]}
    if held is not None:
        hits = held[1][np.arange(len(held[1])), head.scores(held[0]).argmax(axis=1)]
        logbook(f"held-out top-1 accuracy: {float(hits.mean()):.4f} on {len(hits)} inputs")
    version.total_input_count = len(found)
    version.active_concept_count = len(concepts)
    del version.output_info.data.concepts[:]
    version.output_info.data.concepts.extend(resources_pb2.Concept(id=c, name=c)
                                             for c in concepts)
    version.train_info.params.update({"embedder": info.name, "template": params["template"]})
    return head


def _wait_for_downloads(server: Any, pk: int, ids: list[str], logbook: TrainingLog,
                        timeout: float = 600.0) -> None:
    """Wait (bounded) until none of ``ids`` is still being downloaded from its URL: their
    vectors come only once their bytes are there."""
    busy = (codes.INPUT_DOWNLOAD_PENDING, codes.INPUT_DOWNLOAD_IN_PROGRESS)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        pending = server.store.read().execute(
            "SELECT COUNT(*) FROM inputs WHERE app_pk=? AND status IN (?, ?) AND id IN "
            "(SELECT value FROM json_each(?))", (pk, *busy, json.dumps(ids))).fetchone()[0]
        if not pending:
            return
        if time.monotonic() + delay > deadline:
            logbook(f"{pending} inputs still downloading after {timeout:g}s: left out")
            return
        time.sleep(delay)
        delay = min(1.0, delay * 2)


def _holdout(found, matrix, labels, params, logbook):
    """Split off ``holdout_fraction`` of the inputs (seeded) to score the fitted head."""
    fraction = float(params.get("holdout_fraction") or 0)
    if fraction <= 0 or len(found) < 4:
        return found, matrix, labels, None
    order = np.random.default_rng(int(params.get("seed", 0))).permutation(len(found))
    cut = max(1, int(round(len(found) * fraction)))
    test, fit = order[:cut], order[cut:]
    logbook(f"holding out {len(test)} inputs to score the head")
    return [found[i] for i in fit], matrix[fit], labels[fit], (matrix[test], labels[test])
