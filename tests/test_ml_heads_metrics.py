"""Classifier heads and evaluation metrics as pure functions: heads fitted by scikit-learn
score like the estimator they copy, survive their bytes, and the metrics of a tiny set
match a computation by hand."""

import numpy as np
import pytest
from clarifai_grpc.grpc.api import resources_pb2
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes
from sklearn.linear_model import LogisticRegression

from clarifai_connect.server.ml.heads import Head, TrainingDataError, fit_head
from clarifai_connect.server.ml.metrics import eval_metrics, select_fields


def _blobs(n_per_class, centers, seed=0, spread=0.6):
    rng = np.random.default_rng(seed)
    features = np.vstack([rng.normal(c, spread, size=(n_per_class, len(c))) for c in centers])
    labels = np.repeat(np.eye(len(centers), dtype=bool), n_per_class, axis=0)
    return features.astype(np.float32), labels


CENTERS = [(2, 0, 0, 0), (0, 2, 0, 0), (0, 0, 2, 0)]


@pytest.mark.parametrize("template", ["logistic-regression", "linear-svm"])
def test_multiclass_head_separates_held_out_points(template):
    features, labels = _blobs(40, CENTERS)
    test_x, test_y = _blobs(20, CENTERS, seed=1)
    head = fit_head(features, labels, ["a", "b", "c"], True, template)
    accuracy = (head.scores(test_x).argmax(axis=1) == test_y.argmax(axis=1)).mean()
    assert accuracy > 0.9  # chance is 1/3
    if template == "logistic-regression":
        assert np.allclose(head.scores(test_x).sum(axis=1), 1, atol=1e-5)


def test_softmax_head_scores_as_the_estimator_predicts():
    features, labels = _blobs(30, CENTERS[:2])
    head = fit_head(features, labels, ["a", "b"], True)
    estimator = LogisticRegression(C=1.0, max_iter=500, random_state=0).fit(
        features, labels.argmax(axis=1))
    assert np.allclose(head.scores(features), estimator.predict_proba(features), atol=1e-4)


def test_multilabel_head_has_one_sigmoid_per_concept():
    features, labels = _blobs(30, CENTERS)
    labels[:, 2] |= labels[:, 0]  # "c" is also on every "a" input
    head = fit_head(features, labels, ["a", "b", "c"], False)
    scores = head.scores(features)
    assert head.activation == "sigmoid"
    assert ((scores >= 0.5) == labels).mean() > 0.9
    assert not np.allclose(scores.sum(axis=1), 1)


def test_head_bytes_round_trip():
    features, labels = _blobs(10, CENTERS)
    head = fit_head(features, labels, ["a", "b", "c"], True)
    head.embedder = "emb"
    again = Head.from_bytes(head.to_bytes())
    assert again.concepts == ["a", "b", "c"] and again.embedder == "emb"
    assert np.array_equal(again.scores(features), head.scores(features))
    with pytest.raises(ValueError, match="4-dimensional"):
        head.scores(np.zeros((1, 3)))


def test_heads_refuse_data_that_cannot_train():
    features, labels = _blobs(5, CENTERS[:2])
    with pytest.raises(TrainingDataError) as err:
        fit_head(features[:0], labels[:0], ["a", "b"], True)
    assert err.value.code == codes.MODEL_TRAINING_NO_DATA
    with pytest.raises(TrainingDataError) as err:
        fit_head(features, np.hstack([labels, np.zeros((10, 1), bool)]), ["a", "b", "z"], False)
    assert err.value.code == codes.MODEL_TRAINING_NO_POSITIVES
    assert "'z'" in str(err.value)
    with pytest.raises(TrainingDataError) as err:
        fit_head(features, np.ones((10, 1), bool), ["a"], False)
    assert err.value.code == codes.MODEL_TRAINING_INSUFFICIENT_DATA


def test_metrics_of_a_tiny_set_match_a_hand_computation():
    # Four inputs, concepts cat and dog, mutually exclusive; predictions are the top scores.
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
    scores = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    metrics = eval_metrics(["cat", "dog"], truth, scores, True, input_ids=["a", "b", "c", "d"])
    # Predicted: cat, dog, dog, dog. cat: TP 1, FP 0, FN 1 → P 1, R 1/2, F1 2/3.
    # dog: TP 2, FP 1, FN 0 → P 2/3, R 1, F1 4/5. Top-1 right on a, c, d → 3/4.
    summary = metrics.summary
    assert summary.top1_accuracy == pytest.approx(0.75)
    assert summary.top5_accuracy == pytest.approx(1.0)
    assert summary.macro_avg_precision == pytest.approx((1 + 2 / 3) / 2)
    assert summary.macro_avg_recall == pytest.approx((0.5 + 1) / 2)
    assert summary.macro_avg_f1_score == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert summary.macro_std_f1_score == pytest.approx(abs(2 / 3 - 4 / 5) / 2)
    # ROC AUC of cat's scores: positives {0.9, 0.4} vs negatives {0.3, 0.2}: all 4 pairs
    # ordered → 1.0; dog's: positives {0.7, 0.8} vs negatives {0.1, 0.6}: 4 of 4 → 1.0.
    assert summary.macro_avg_roc_auc == pytest.approx(1.0)
    by_class = {m.concept.id: m for m in metrics.metrics_by_class}
    assert by_class["cat"].f1 == pytest.approx(2 / 3)
    assert (by_class["dog"].num_pos, by_class["dog"].num_neg, by_class["dog"].num_tot) == (2, 2, 4)
    cells = {(e.actual, e.predicted): e.value for e in metrics.confusion_matrix.matrix}
    assert cells == {("cat", "cat"): 1, ("cat", "dog"): 1, ("dog", "dog"): 2}
    assert [(c.concept_name, c.count) for c in metrics.label_counts.positive_label_counts] == \
        [("cat", 2), ("dog", 2)]
    entry = metrics.test_set[1]
    assert entry.input.id == "b"
    assert [c.id for c in entry.predicted_concepts] == ["dog", "cat"]
    assert [c.id for c in entry.ground_truth_concepts] == ["cat"]


def test_multilabel_metrics_use_the_threshold_and_roc_auc_ranks():
    truth = np.array([[1, 1], [1, 0], [0, 0]], dtype=bool)
    scores = np.array([[0.8, 0.3], [0.6, 0.7], [0.7, 0.2]])
    metrics = eval_metrics(["x", "y"], truth, scores, False, threshold=0.5)
    by_class = {m.concept.id: m for m in metrics.metrics_by_class}
    # x predicted on all three (TP 2, FP 1) → P 2/3, R 1, F1 0.8; y predicted on input 2
    # only (FP) → F1 0. ROC AUC x: positives {0.8, 0.6} vs negative {0.7} → 1 of 2 pairs
    # ordered → 0.5; y: positive {0.3} vs negatives {0.7, 0.2} → 1 of 2 → 0.5.
    assert by_class["x"].f1 == pytest.approx(0.8)
    assert by_class["y"].f1 == 0
    assert by_class["x"].roc_auc == pytest.approx(0.5)
    assert by_class["y"].roc_auc == pytest.approx(0.5)
    assert metrics.summary.macro_avg_precision == pytest.approx((2 / 3 + 0) / 2)
    # Top-1: input 1's top is x (true), input 2's top is y (false); input 3 has no labels.
    assert metrics.summary.top1_accuracy == pytest.approx(0.5)


def test_select_fields_keeps_what_was_asked():
    truth = np.array([[1, 0], [0, 1]], dtype=bool)
    metrics = eval_metrics(["a", "b"], truth, np.array([[0.9, 0.1], [0.2, 0.8]]), True)
    slim = select_fields(metrics, resources_pb2.FieldsValue(label_counts=True))
    assert slim.summary.top1_accuracy == 1.0
    assert slim.label_counts.positive_label_counts and not slim.test_set
    assert not slim.HasField("confusion_matrix") and not slim.metrics_by_class
