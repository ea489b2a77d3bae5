"""Metrics of the shared trainer against hand-computed values: WA, UA, macro-F1, absent classes, mean/std."""

from __future__ import annotations

import math

import numpy as np
import pytest

from serflow.train.metrics import absent_class_warning, classification_metrics, confusion_matrix, mean_std

LABELS = ["ang", "hap", "neu", "sad"]


def test_confusion_matrix_by_hand() -> None:
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    y_pred = [0, 0, 1, 1, 2, 2, 2, 2, 0, 3]
    cm = confusion_matrix(y_true, y_pred, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 1]]
    assert cm.dtype == np.int64


def test_metrics_by_hand() -> None:
    cm = [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 1]]
    m = classification_metrics(cm, LABELS)
    assert m["n"] == 10
    assert m["wa"] == pytest.approx(7 / 10)
    recall = {"ang": 2 / 3, "hap": 1 / 2, "neu": 3 / 4, "sad": 1.0}
    assert m["per_class_recall"] == pytest.approx(recall)
    assert m["ua"] == pytest.approx(sum(recall.values()) / 4)
    precision = {"ang": 2 / 3, "hap": 1 / 2, "neu": 3 / 4, "sad": 1.0}  # column sums 3, 2, 4, 1
    f1 = {k: 2 * precision[k] * recall[k] / (precision[k] + recall[k]) for k in LABELS}
    assert m["per_class_f1"] == pytest.approx(f1)
    assert m["macro_f1"] == pytest.approx(sum(f1.values()) / 4)
    assert m["support"] == {"ang": 3, "hap": 2, "neu": 4, "sad": 1}
    assert m["absent_classes"] == [] and absent_class_warning("x", m) is None


def test_absent_class_is_left_out_of_ua_with_a_warning() -> None:
    # no sad utterance in the truth, but one is predicted as sad
    cm = [[2, 0, 0, 1], [0, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    m = classification_metrics(cm, LABELS)
    assert m["per_class_recall"]["sad"] is None and m["per_class_f1"]["sad"] is None
    assert m["ua"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["wa"] == pytest.approx(5 / 7)
    assert all(math.isfinite(m[k]) for k in ("wa", "ua", "macro_f1"))
    warning = absent_class_warning("fold 3 test", m)
    assert warning is not None and "sad" in warning and "3 present classes" in warning


def test_class_never_predicted_has_zero_f1() -> None:
    m = classification_metrics([[3, 0], [2, 0]], ["a", "b"])
    assert m["per_class_f1"]["b"] == 0.0 and m["per_class_recall"]["b"] == 0.0
    assert m["ua"] == pytest.approx(0.5)


def test_empty_and_malformed_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="no utterances"):
        classification_metrics(np.zeros((4, 4), np.int64), LABELS)
    with pytest.raises(ValueError, match="shape"):
        classification_metrics([[1, 0], [0, 1]], LABELS)
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix([0, 4], [0, 1], 4)


def test_mean_std_is_sample_std() -> None:
    assert mean_std([0.5]) == (0.5, 0.0)
    mean, std = mean_std([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)
