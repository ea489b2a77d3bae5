"""Classification metrics, all from one confusion matrix (rows: true class, columns: predicted class).

- WA (weighted accuracy) = overall accuracy = trace / total.
- UA (unweighted accuracy) = mean per-class recall, over the classes present in the truth.
- macro-F1 = mean per-class F1, over the same classes.

A class with no utterance in the truth has no recall. Averaging a recall of 0 for it would punish a
model for the data, and averaging nothing would hide it; so UA and macro-F1 are taken over the present
classes, the class's recall is ``None``, and the absence is returned as a warning that the results
file keeps. Numpy only: used by the training loop, the fold job and the aggregation alike.

In scikit-learn's terms (``tests/test_metrics_sklearn.py`` holds every line to it, with ``labels`` the class
indices ``0..n-1`` and ``present`` those in ``y_true``):

- confusion = ``confusion_matrix(y_true, y_pred, labels=labels)``; WA = ``accuracy_score(y_true, y_pred)``.
- UA = ``balanced_accuracy_score(y_true, y_pred)`` = ``recall_score(..., labels=present, average="macro")``. It
  differs from ``recall_score(..., labels=labels, average="macro", zero_division=0)`` only when a class is absent
  from ``y_true``: scikit-learn then averages in a recall of 0 for it, we leave it out (see above).
- macro-F1 = ``f1_score(..., labels=present, average="macro", zero_division=0)``: a class never predicted has
  F1 0 (as in scikit-learn); a class absent from ``y_true`` is left out (``labels=labels`` would average in its 0).
- per-class recall and F1 = ``recall_score`` / ``f1_score(..., labels=labels, average=None, zero_division=0)``
  for the present classes (``None`` for the absent ones); their ``support``-weighted mean is
  ``f1_score(..., average="weighted")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion_matrix(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int
) -> np.ndarray:
    """``[n_classes, n_classes]`` int64 counts; ``[i, j]`` = utterances of class ``i`` predicted as ``j``."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and of one length, got {t.shape} and {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class indices must be in 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def classification_metrics(confusion: np.ndarray | Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, Any]:
    """WA, UA, macro-F1, per-class recall/F1 and the absent classes of one confusion matrix.

    Returns plain Python types (JSON-ready). An empty matrix is an error: there is nothing to score.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {len(labels)} labels")
    n = int(cm.sum())
    if n == 0:
        raise ValueError("no utterances to score (empty confusion matrix)")
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    present = support > 0
    recall = np.divide(tp, support, out=np.zeros(len(labels)), where=present)
    precision = np.divide(tp, predicted, out=np.zeros(len(labels)), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(len(labels)), where=denom > 0)
    absent = [label for label, ok in zip(labels, present, strict=True) if not ok]
    return {
        "n": n,
        "wa": float(tp.sum() / n),
        "ua": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class_recall": {
            label: (float(r) if ok else None) for label, r, ok in zip(labels, recall, present, strict=True)
        },
        "per_class_f1": {label: (float(v) if ok else None) for label, v, ok in zip(labels, f1, present, strict=True)},
        "support": {label: int(s) for label, s in zip(labels, support, strict=True)},
        "confusion": cm.tolist(),
        "absent_classes": absent,
    }


def absent_class_warning(where: str, metrics: dict[str, Any]) -> str | None:
    """The warning for a scored set lacking some classes (None if every class is present)."""
    absent = metrics["absent_classes"]
    if not absent:
        return None
    present = len(metrics["per_class_recall"]) - len(absent)
    return (
        f"{where}: no utterances of class(es) {', '.join(absent)}; UA and macro-F1 are over the "
        f"{present} present classes"
    )


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no values to average")
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return float(arr.mean()), std
