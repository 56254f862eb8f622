"""Evaluation metrics of a classifier, as the ``EvalMetrics`` message holds them.

A pure function of the ground truth and the scores, so that it can be checked by hand:

- an input's prediction is its top-scored concept when concepts are mutually exclusive,
  else every concept scoring at least ``threshold``;
- per concept: precision, recall and F1 of those predictions, ROC AUC and average
  precision of its scores (when it has positives and negatives), its ROC and
  precision-recall curves, and its positive / negative counts;
- summary: top-1 and top-5 accuracy (the top concepts include a true one), macro
  averages (and standard deviations) over the concepts;
- confusion matrix: for each true concept of an input, its top-1 prediction;
- label counts and the test set (every input with its predicted and true concepts).

The API has no per-concept precision / recall field: they enter the summary's macro
averages, and each concept's precision-recall curve carries them at every threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from clarifai_grpc.grpc.api import resources_pb2


def _safe(fn, *args, **kwargs) -> float | None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs))
        except ValueError:
            return None


def predictions(scores: np.ndarray, mutually_exclusive: bool,
                threshold: float = 0.5) -> np.ndarray:
    """(inputs × concepts) 0/1: the predicted concepts of each input."""
    scores = np.asarray(scores, dtype=float)
    if mutually_exclusive:
        out = np.zeros(scores.shape, dtype=bool)
        if scores.size:
            out[np.arange(scores.shape[0]), scores.argmax(axis=1)] = True
        return out
    return scores >= threshold


def _concept(concept_id: str, names: dict[str, str]) -> resources_pb2.Concept:
    return resources_pb2.Concept(id=concept_id, name=names.get(concept_id, concept_id))


def eval_metrics(concepts: Sequence[str], truth: np.ndarray, scores: np.ndarray,
                 mutually_exclusive: bool, input_ids: Sequence[str] = (),
                 names: dict[str, str] | None = None,
                 threshold: float = 0.5) -> resources_pb2.EvalMetrics:
    """The metrics of ``scores`` (inputs × concepts) against ``truth`` (inputs × concepts)."""
    from sklearn.metrics import (
        average_precision_score,
        f1_score,
        precision_recall_curve,
        precision_score,
        recall_score,
        roc_auc_score,
        roc_curve,
    )

    names = names or {}
    truth = np.asarray(truth, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    predicted = predictions(scores, mutually_exclusive, threshold)
    out = resources_pb2.EvalMetrics()
    precisions, recalls, f1s, aucs = [], [], [], []
    for j, concept_id in enumerate(concepts):
        actual, guess, column = truth[:, j], predicted[:, j], scores[:, j]
        metric = out.metrics_by_class.add(
            num_pos=int(actual.sum()), num_neg=int((~actual).sum()), num_tot=len(actual),
            concept=_concept(concept_id, names))
        precisions.append(float(precision_score(actual, guess, zero_division=0)))
        recalls.append(float(recall_score(actual, guess, zero_division=0)))
        f1s.append(float(f1_score(actual, guess, zero_division=0)))
        metric.f1 = f1s[-1]
        if actual.any() and not actual.all():
            auc = _safe(roc_auc_score, actual, column)
            if auc is not None:
                aucs.append(auc)
                metric.roc_auc = auc
            metric.avg_precision = _safe(average_precision_score, actual, column) or 0.0
            fpr, tpr, thresholds = roc_curve(actual, column)
            metric.roc_curve.fpr[:] = fpr.tolist()
            metric.roc_curve.tpr[:] = tpr.tolist()
            metric.roc_curve.thresholds[:] = np.clip(thresholds, 0, 1).tolist()
            precision, recall, thresholds = precision_recall_curve(actual, column)
            metric.precision_recall_curve.precision[:] = precision.tolist()
            metric.precision_recall_curve.recall[:] = recall.tolist()
            metric.precision_recall_curve.thresholds[:] = thresholds.tolist()
    out.binary_metrics.extend(out.metrics_by_class)
    summary = out.summary
    labelled = truth.any(axis=1)
    if labelled.any():
        order = np.argsort(-scores, axis=1, kind="stable")
        for k, name in ((1, "top1_accuracy"), (5, "top5_accuracy")):
            top = order[:, :k]
            hits = truth[np.arange(len(truth))[:, None], top].any(axis=1)
            setattr(summary, name, float(hits[labelled].mean()))
    if concepts:
        summary.macro_avg_precision = float(np.mean(precisions))
        summary.macro_avg_recall = float(np.mean(recalls))
        summary.macro_avg_f1_score = float(np.mean(f1s))
        summary.macro_std_f1_score = float(np.std(f1s))
    if aucs:
        summary.macro_avg_roc_auc = float(np.mean(aucs))
        summary.macro_std_roc_auc = float(np.std(aucs))
    _confusion(out, concepts, truth, scores, names)
    for j, concept_id in enumerate(concepts):
        out.label_counts.positive_label_counts.add(
            concept_name=names.get(concept_id, concept_id), count=int(truth[:, j].sum()),
            concept=_concept(concept_id, names))
    for i in range(len(truth)):
        entry = out.test_set.add()
        if i < len(input_ids):
            entry.input.id = input_ids[i]
        for j in np.argsort(-scores[i], kind="stable"):
            concept = entry.predicted_concepts.add()
            concept.CopyFrom(_concept(concepts[j], names))
            concept.value = float(scores[i, j])
        for j in np.flatnonzero(truth[i]):
            concept = entry.ground_truth_concepts.add()
            concept.CopyFrom(_concept(concepts[j], names))
            concept.value = 1.0
    return out


def _confusion(out: resources_pb2.EvalMetrics, concepts: Sequence[str], truth: np.ndarray,
               scores: np.ndarray, names: dict[str, str]) -> None:
    counts = np.zeros((len(concepts), len(concepts)), dtype=int)
    if scores.size:
        top = scores.argmax(axis=1)
        for i, row in enumerate(truth):
            for actual in np.flatnonzero(row):
                counts[actual, top[i]] += 1
    out.confusion_matrix.concept_ids[:] = list(concepts)
    for a, actual in enumerate(concepts):
        for p, guess in enumerate(concepts):
            if counts[a, p]:
                out.confusion_matrix.matrix.add(
                    actual=actual, predicted=guess, value=float(counts[a, p]),
                    actual_concept=_concept(actual, names),
                    predicted_concept=_concept(guess, names))


def select_fields(metrics: resources_pb2.EvalMetrics,
                  fields: resources_pb2.FieldsValue) -> resources_pb2.EvalMetrics:
    """A copy of ``metrics`` keeping the summary and only the detail fields asked for."""
    out = resources_pb2.EvalMetrics()
    out.CopyFrom(metrics)
    for name in ("confusion_matrix", "cooccurrence_matrix", "label_counts", "binary_metrics",
                 "test_set", "metrics_by_area", "metrics_by_class"):
        if not getattr(fields, name):
            out.ClearField(name)
    return out
