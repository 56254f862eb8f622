"""Evaluations: PostEvaluations, PostModelVersionEvaluations, GetEvaluation,
GetModelVersionEvaluation, ListModelVersionEvaluations.

An evaluation scores a trained version on the labelled inputs of a ground-truth dataset
(or dataset version) in the background: MODEL_QUEUED_FOR_EVALUATION → MODEL_EVALUATING →
MODEL_EVALUATED, or MODEL_EVALUATION_NEED_INPUTS / _NEED_LABELS / _FAILED with the reason.
The metrics are those of :func:`.metrics.eval_metrics`; a Get returns the summary and the
detail fields its ``FieldsValue`` asks for, a List the summaries.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2, service_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from ..annotations import new_id
from ..common import app_pk, invalid, not_found, page_window, require_id
from ..rpc import CallContext, RpcFailure, rpc, status
from ..store import now
from . import features
from .heads import TrainingDataError
from .metrics import eval_metrics, select_fields
from .models import load_model, with_version
from .predict import load_head
from .training import TrainingLog, gather

log = logging.getLogger("clarifai_connect.server.evaluations")


def _dataset_app(db, metric: resources_pb2.EvalMetrics, user_id: str, app_id: str) -> int:
    gt = metric.ground_truth_dataset
    owner, app = gt.user_id or user_id, gt.app_id or app_id
    row = db.execute("SELECT pk FROM apps WHERE user_id=? AND id=?", (owner, app)).fetchone()
    if row is None:
        raise not_found("app", f"{owner}/{app}")
    return row[0]


def _post(ctx: CallContext, req: Any, metrics: list[resources_pb2.EvalMetrics],
          model_id: str = "", version_id: str = "") -> service_pb2.MultiEvalMetricsResponse:
    if not metrics:
        raise invalid("no eval_metrics given")
    user_id, app_id = req.user_app_id.user_id, req.user_app_id.app_id
    created, jobs = [], []
    with ctx.server.store.write() as db:
        pk = app_pk(db, req)
        for asked in metrics:
            mid = model_id or asked.model.id
            vid = version_id or asked.model.model_version.id
            model = with_version(db, pk, load_model(db, pk, mid), vid)
            if model.model_version.status.code != codes.MODEL_TRAINED:
                raise RpcFailure(codes.MODEL_NOT_EVALUATED, "Model is not trained",
                                 f"version '{model.model_version.id}' of model '{mid}' is "
                                 "not trained: only a trained version can be evaluated")
            if not asked.ground_truth_dataset.id:
                raise invalid("ground_truth_dataset.id is required")
            data_pk = _dataset_app(db, asked, user_id, app_id)
            stored = resources_pb2.EvalMetrics()
            stored.CopyFrom(asked)
            stored.id = stored.id or new_id()
            require_id(stored.id, "evaluation id")
            stored.user_id, stored.app_id = user_id, app_id
            stored.model.CopyFrom(resources_pb2.Model(
                id=model.id, app_id=app_id, user_id=user_id, model_type_id=model.model_type_id,
                model_version=resources_pb2.ModelVersion(id=model.model_version.id)))
            stored.status.CopyFrom(status(codes.MODEL_QUEUED_FOR_EVALUATION,
                                          "Model is queued for evaluation"))
            if db.execute("SELECT 1 FROM evaluations WHERE app_pk=? AND id=?",
                          (pk, stored.id)).fetchone():
                db.execute("DELETE FROM evaluations WHERE app_pk=? AND id=?", (pk, stored.id))
            seq = ctx.server.store.next_seq(db, "evaluations")
            db.execute("INSERT INTO evaluations(app_pk, id, model_id, version_id, proto, seq, "
                       "created_at) VALUES (?,?,?,?,?,?,?)",
                       (pk, stored.id, model.id, model.model_version.id,
                        stored.SerializeToString(), seq, now()))
            created.append(stored)
            jobs.append((pk, data_pk, stored.id, model))
    for job in jobs:
        ctx.server.background.submit(run, ctx.server, *job)
    return service_pb2.MultiEvalMetricsResponse(eval_metrics=created)


def _save(server: Any, pk: int, metric: resources_pb2.EvalMetrics) -> None:
    with server.store.write() as db:
        db.execute("UPDATE evaluations SET proto=? WHERE app_pk=? AND id=?",
                   (metric.SerializeToString(), pk, metric.id))


def run(server: Any, pk: int, data_pk: int, eval_id: str, model: resources_pb2.Model) -> None:
    """Evaluate one stored evaluation; it always ends in a final status."""
    row = server.store.read().execute("SELECT proto FROM evaluations WHERE app_pk=? AND id=?",
                                      (pk, eval_id)).fetchone()
    if row is None:
        return
    metric = resources_pb2.EvalMetrics.FromString(row[0])
    metric.status.CopyFrom(status(codes.MODEL_EVALUATING, "Model is evaluating"))
    _save(server, pk, metric)
    try:
        result = evaluate(server, pk, data_pk, model, metric)
    except TrainingDataError as err:
        code = codes.MODEL_EVALUATION_NEED_LABELS \
            if err.code == codes.MODEL_TRAINING_NO_DATA else codes.MODEL_EVALUATION_FAILED
        metric.status.CopyFrom(status(code, details=str(err)))
    except Exception as err:  # an evaluation bug must end the job
        log.exception("evaluation %s failed", eval_id)
        metric.status.CopyFrom(status(codes.MODEL_EVALUATION_FAILED,
                                      details=f"{type(err).__name__}: {err}"))
    else:
        metric.MergeFrom(result)  # the computed fields; the request's stay
        metric.status.CopyFrom(status(codes.MODEL_EVALUATED, "Model is evaluated"))
    _save(server, pk, metric)


def evaluate(server: Any, pk: int, data_pk: int, model: resources_pb2.Model,
             metric: resources_pb2.EvalMetrics) -> resources_pb2.EvalMetrics:
    """The metrics of ``model``'s head on the ground-truth dataset of ``metric``."""
    head = load_head(server, pk, model.id, model.model_version.id)
    if head is None:
        raise TrainingDataError(codes.MODEL_EVALUATION_FAILED, "the version has no head")
    info = features.embedder(server, head.embedder)
    gt = metric.ground_truth_dataset
    params = {"dataset_id": gt.id, "dataset_version_id": gt.version.id}
    ids, _, positives, _ = gather(server.store.read(), data_pk, params, head.concepts,
                                  head.info.get("media"), TrainingLog())
    found, matrix = features.input_features(server, data_pk, ids, info.name)
    if not found:
        raise TrainingDataError(codes.MODEL_TRAINING_NO_DATA,
                                f"no ground-truth input of dataset '{gt.id}' has an embedding")
    by_id = dict(zip(ids, positives, strict=True))
    truth = np.array([[c in by_id[i] for c in head.concepts] for i in found], dtype=bool)
    return eval_metrics(head.concepts, truth, head.scores(matrix),
                        head.activation == "softmax", input_ids=found)


@rpc("PostEvaluations")
def post_evaluations(ctx: CallContext, req: service_pb2.PostEvaluationsRequest):
    """Start evaluations, each naming its model version and ground-truth dataset."""
    return _post(ctx, req, list(req.eval_metrics))


@rpc("PostModelVersionEvaluations")
def post_model_version_evaluations(ctx: CallContext,
                                   req: service_pb2.PostModelVersionEvaluationsRequest):
    """Start evaluations of one model version."""
    return _post(ctx, req, list(req.eval_metrics), req.model_id, req.model_version_id)


def _get(ctx: CallContext, req: Any, eval_id: str, fields: resources_pb2.FieldsValue,
         model_id: str = "", version_id: str = ""):
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    row = db.execute("SELECT proto, model_id, version_id FROM evaluations WHERE app_pk=? AND "
                     "id=?", (pk, eval_id)).fetchone()
    if row is None or (model_id and row[1] != model_id) or \
            (version_id and row[2] != version_id):
        raise not_found("evaluation", eval_id)
    metric = select_fields(resources_pb2.EvalMetrics.FromString(row[0]), fields)
    return service_pb2.SingleEvalMetricsResponse(eval_metrics=metric)


@rpc("GetEvaluation")
def get_evaluation(ctx: CallContext, req: service_pb2.GetEvaluationRequest):
    """One evaluation: its summary and the detail fields asked for."""
    return _get(ctx, req, req.evaluation_id, req.fields)


@rpc("GetModelVersionEvaluation")
def get_model_version_evaluation(ctx: CallContext,
                                 req: service_pb2.GetModelVersionEvaluationRequest):
    """One evaluation of one model version."""
    return _get(ctx, req, req.evaluation_id, req.fields, req.model_id, req.model_version_id)


@rpc("ListModelVersionEvaluations")
def list_model_version_evaluations(ctx: CallContext,
                                   req: service_pb2.ListModelVersionEvaluationsRequest):
    """The evaluations of a model version, newest first, summaries only."""
    limit, offset = page_window(req)
    db = ctx.server.store.read()
    pk = app_pk(db, req)
    load_model(db, pk, req.model_id)
    rows = db.execute("SELECT proto FROM evaluations WHERE app_pk=? AND model_id=? AND "
                      "(?='' OR version_id=?) ORDER BY seq DESC LIMIT ? OFFSET ?",
                      (pk, req.model_id, req.model_version_id, req.model_version_id, limit,
                       offset)).fetchall()
    none = resources_pb2.FieldsValue()
    return service_pb2.MultiEvalMetricsResponse(eval_metrics=[
        select_fields(resources_pb2.EvalMetrics.FromString(r[0]), none) for r in rows])
