"""Classifier heads: fitting one with scikit-learn on embeddings, scoring with it, its bytes.

A head is linear: ``scores = activation(X @ weights.T + bias)``, one column per concept.
Softmax heads are multi-class (concepts mutually exclusive), sigmoid heads multi-label.
Whatever the estimator, the fitted coefficients are copied out, so scoring, the stored
form (an ``.npz`` with a JSON manifest) and the exported ``model.tar`` need only numpy.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .model_types import LINEAR_SVM, LOGISTIC


class TrainingDataError(ValueError):
    """The labelled data cannot train a head; ``code`` is the MODEL_TRAINING_* status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Head:
    """A fitted linear head over ``dim``-dimensional embeddings of ``embedder``."""

    concepts: list[str]
    weights: np.ndarray  # (concepts, dim) float32
    bias: np.ndarray  # (concepts,) float32
    activation: str  # "softmax" or "sigmoid"
    embedder: str = ""
    template: str = LOGISTIC
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """The embedding dimension the head takes."""
        return int(self.weights.shape[1])

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(inputs, concepts) scores in 0..1 for the rows of ``features``."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dim:
            raise ValueError(f"the head takes {self.dim}-dimensional embeddings, got shape "
                             f"{features.shape}")
        z = features @ self.weights.T + self.bias
        if self.activation == "softmax":
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-z))

    def manifest(self) -> dict[str, Any]:
        """What the head is, as JSON: everything but the arrays."""
        return {"format": "clarifai-connect-linear-head", "version": 1,
                "concepts": self.concepts, "activation": self.activation,
                "embedder": self.embedder, "dim": self.dim, "template": self.template,
                "scores": "activation(embedding @ weights.T + bias)", "info": self.info}

    def to_bytes(self) -> bytes:
        """The head as an ``.npz`` (arrays ``weights``, ``bias``, ``manifest``)."""
        buf = io.BytesIO()
        np.savez(buf, weights=self.weights, bias=self.bias,
                 manifest=np.frombuffer(json.dumps(self.manifest()).encode(), dtype=np.uint8))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        """The head stored by :meth:`to_bytes`."""
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            manifest = json.loads(npz["manifest"].tobytes().decode())
            return cls(concepts=list(manifest["concepts"]), weights=npz["weights"],
                       bias=npz["bias"], activation=manifest["activation"],
                       embedder=manifest.get("embedder", ""),
                       template=manifest.get("template", LOGISTIC),
                       info=manifest.get("info", {}))


def _estimator(template: str, params: dict[str, Any], multinomial: bool):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    common = {"C": float(params.get("regularization", 1.0)),
              "max_iter": int(params.get("max_iter", 500)),
              "class_weight": "balanced" if params.get("balance_classes") else None,
              "random_state": int(params.get("seed", 0))}
    if template == LINEAR_SVM:
        return LinearSVC(**common)
    return LogisticRegression(**common)


def _fit(estimator, features: np.ndarray, target: np.ndarray, log: Callable[[str], None]):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        estimator.fit(features, target)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            log(f"warning: {str(warning.message).splitlines()[0]}")
    return estimator


def fit_head(features: np.ndarray, labels: np.ndarray, concepts: list[str],
             mutually_exclusive: bool, template: str = LOGISTIC,
             params: dict[str, Any] | None = None,
             log: Callable[[str], None] = lambda line: None) -> Head:
    """Fit a head on ``features`` (inputs × dim) and ``labels`` (inputs × concepts, 0/1).

    Mutually exclusive concepts give a softmax head over the concepts (each input must
    have exactly one of them; with one concept, the inputs without it are its negatives);
    otherwise one binary estimator per concept. Raises TrainingDataError when the data
    cannot train it (no inputs, a concept without positives or without negatives).
    """
    from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

    params = params or {}
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels, dtype=bool)
    if features.shape[0] == 0:
        raise TrainingDataError(codes.MODEL_TRAINING_NO_DATA,
                                "no labelled inputs with embeddings to train on")
    positives = labels.sum(axis=0)
    for concept, count in zip(concepts, positives, strict=True):
        if count == 0:
            raise TrainingDataError(codes.MODEL_TRAINING_NO_POSITIVES,
                                    f"concept '{concept}' has no positive examples")
    started = time.perf_counter()
    log(f"fitting a {template} head: {features.shape[0]} inputs, {features.shape[1]} "
        f"dimensions, {len(concepts)} concepts, "
        f"{'mutually exclusive' if mutually_exclusive else 'multi-label'}")
    if mutually_exclusive and len(concepts) > 1:
        head = _fit_multiclass(features, labels, concepts, template, params, log)
    else:
        head = _fit_per_concept(features, labels, concepts, template, params, log)
    head.template = template
    log(f"fitted in {time.perf_counter() - started:.3f}s")
    return head


def _fit_multiclass(features, labels, concepts, template, params, log) -> Head:
    target = labels.argmax(axis=1)
    estimator = _fit(_estimator(template, params, True), features, target, log)
    coef = np.asarray(estimator.coef_, dtype=np.float32)
    intercept = np.asarray(estimator.intercept_, dtype=np.float32)
    if len(concepts) == 2 and coef.shape[0] == 1:
        # Binary estimators keep one row w for class 1: softmax([-w/2, w/2]) = sigmoid(w).
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2], dtype=np.float32)
    activation = "softmax" if template == LOGISTIC else "sigmoid"
    return Head(list(concepts), coef, intercept, activation)


def _fit_per_concept(features, labels, concepts, template, params, log) -> Head:
    from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

    rows, biases = [], []
    for j, concept in enumerate(concepts):
        column = labels[:, j]
        if column.all():
            raise TrainingDataError(
                codes.MODEL_TRAINING_INSUFFICIENT_DATA,
                f"concept '{concept}' labels every training input: a head needs inputs "
                "without it too")
        estimator = _fit(_estimator(template, params, False), features, column, log)
        rows.append(np.asarray(estimator.coef_, dtype=np.float32)[0])
        biases.append(float(estimator.intercept_[0]))
        log(f"concept '{concept}': {int(column.sum())} positives, "
            f"{int((~column).sum())} negatives")
    return Head(list(concepts), np.vstack(rows), np.asarray(biases, dtype=np.float32),
                "sigmoid")
