"""WA, UA, macro-F1, per-class scores and the confusion matrix of serflow.train.metrics against scikit-learn.

Random inputs and the edge cases: a class absent from the truth, a class never predicted, a single class. Where our
definition deliberately differs from one scikit-learn call (UA and macro-F1 over the classes present in the truth),
the test pins the scikit-learn call that matches, and that the other one differs (the metrics module's docstring).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    recall_score,
)
from sklearn.metrics import (
    confusion_matrix as sk_confusion_matrix,
)

from serflow.train.metrics import classification_metrics, confusion_matrix


def ours(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    labels = [f"c{i}" for i in range(n_classes)]
    return classification_metrics(confusion_matrix(y_true, y_pred, n_classes), labels)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": exactly the case it drops
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def check_against_sklearn(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Every score of ours equals the scikit-learn call the metrics docstring names; returns ours."""
    m = ours(y_true, y_pred, n_classes)
    labels = list(range(n_classes))
    present = sorted(set(y_true.tolist()))
    assert m["confusion"] == sk_confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert m["n"] == len(y_true)
    assert m["wa"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert m["ua"] == pytest.approx(balanced_accuracy(y_true, y_pred), abs=1e-12)
    assert m["ua"] == pytest.approx(recall_score(y_true, y_pred, labels=present, average="macro"), abs=1e-12)
    macro_f1 = f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    assert m["macro_f1"] == pytest.approx(macro_f1, abs=1e-12)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    f1 = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    for i, name in enumerate(m["per_class_recall"]):
        if i in present:
            assert m["per_class_recall"][name] == pytest.approx(recall[i], abs=1e-12)
            assert m["per_class_f1"][name] == pytest.approx(f1[i], abs=1e-12)
        else:
            assert m["per_class_recall"][name] is None and m["per_class_f1"][name] is None
    # weighted F1 is not reported, but the per-class F1 and support give scikit-learn's
    weighted = sum(m["support"][k] * (v or 0.0) for k, v in m["per_class_f1"].items()) / m["n"]
    weighted_sk = f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    assert weighted == pytest.approx(weighted_sk, abs=1e-12)
    return m


@pytest.mark.parametrize("seed", range(40))
def test_random_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(2, 8))
    n = int(rng.integers(1, 200))
    y_true = rng.integers(0, n_classes, n)
    # a mix of right and random predictions, so scores spread between chance and 1
    y_pred = np.where(rng.random(n) < rng.random(), y_true, rng.integers(0, n_classes, n))
    check_against_sklearn(y_true, y_pred, n_classes)


def test_class_absent_from_truth_is_left_out_of_ua_and_macro_f1() -> None:
    # class 3 is never in the truth but predicted twice; class 2 never in the truth nor predicted
    y_true = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    y_pred = np.array([0, 3, 1, 1, 1, 3, 0, 0])
    m = check_against_sklearn(y_true, y_pred, 4)
    assert m["absent_classes"] == ["c2", "c3"]
    # scikit-learn's macro averages over all labels average in a 0 for each absent class: ours do not
    all_labels = [0, 1, 2, 3]
    sk_recall = recall_score(y_true, y_pred, labels=all_labels, average="macro", zero_division=0)
    sk_f1 = f1_score(y_true, y_pred, labels=all_labels, average="macro", zero_division=0)
    assert sk_recall == pytest.approx(m["ua"] * 2 / 4) and sk_f1 == pytest.approx(m["macro_f1"] * 2 / 4)


def test_class_never_predicted_has_f1_zero_as_in_sklearn() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 0, 1, 0])  # class 2 is never predicted
    m = check_against_sklearn(y_true, y_pred, 3)
    assert m["per_class_recall"]["c2"] == 0.0 and m["per_class_f1"]["c2"] == 0.0 and m["absent_classes"] == []
    # with every class present, our macro scores are scikit-learn's over all labels, too
    assert m["ua"] == pytest.approx(recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_nothing_predicted_right() -> None:
    y_true = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.array([1, 2, 0, 2, 0, 1])
    m = check_against_sklearn(y_true, y_pred, 3)
    assert m["wa"] == m["ua"] == m["macro_f1"] == 0.0


@pytest.mark.filterwarnings("ignore:A single label was found")  # scikit-learn's note on a 1x1 confusion matrix
def test_single_class() -> None:
    # one class only, all right
    m = check_against_sklearn(np.zeros(5, np.int64), np.zeros(5, np.int64), 1)
    assert m["wa"] == m["ua"] == m["macro_f1"] == 1.0
    # one class in the truth among four, partly predicted as others
    y_true = np.full(6, 2)
    y_pred = np.array([2, 2, 0, 2, 3, 2])
    m = check_against_sklearn(y_true, y_pred, 4)
    assert m["ua"] == pytest.approx(4 / 6) and m["absent_classes"] == ["c0", "c1", "c3"]


def test_single_utterance() -> None:
    check_against_sklearn(np.array([1]), np.array([1]), 3)
    check_against_sklearn(np.array([1]), np.array([2]), 3)
