"""What a model is trained to predict: the emotion class, or emotion dimensions (valence, arousal, dominance).

A run's name says its task: ``cnn14`` is the categorical task, ``cnn14@vad`` the multi-task regression of the three
dimensions with the mean CCC loss (the CNN14 paper's Table 3), ``cnn14@arousal`` (``@valence``, ``@dominance``) a
single-task regression with the MSE loss (its Table 2). Result files, model folders and logs carry the name, so the
tasks' results coexist: ``results/{corpus}_cnn14@vad.json``.

The dimensional targets are the manifest's ``valence``, ``arousal``, ``dominance``, on the corpus's own scale (IEMOCAP:
1 to 5, annotator means; the scale is ``corpora.<name>.dimensions.scale``); an utterance without them, or outside the
scale, is dropped from a dimensional run with the reason. Values are used as they are (not rescaled), so the MSE is
in the corpus's units.

Metrics per dimension (:func:`regression_metrics`): the concordance correlation coefficient
``CCC = 2 cov(x, y) / (var x + var y + (mean x - mean y)^2)`` (population moments), Pearson's r and the MSE.
Degenerate cases are defined, never NaN: when the denominator is 0 (predictions and targets both constant and equal)
the CCC is 1 (perfect agreement); Pearson's r of a constant series is 0 (no linear relation can be measured); with
fewer than two values both are 0. The trainer selects the epoch on the mean CCC over the task's dimensions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DIMENSIONS = ("valence", "arousal", "dominance")
TASK_SEPARATOR = "@"
TEXT_SEPARATOR = "+"  # a model's run on the other text source: results/{corpus}_{model}+asr.json (docs/results.md)
PROTOCOL_SEPARATOR = "~"  # a model's further protocol: results/{corpus}_{model}~{protocol}.json (docs/results.md)
TEXT_SOURCES = ("gold", "asr")
# task name -> (dimensions, loss)
DIMENSIONAL_TASKS: dict[str, tuple[tuple[str, ...], str]] = {
    "vad": (DIMENSIONS, "ccc"),
    **{dim: ((dim,), "mse") for dim in DIMENSIONS},
}
TASKS = ("categorical", *DIMENSIONAL_TASKS)
REGRESSION_KEYS = ("ccc", "pearson", "mse")


@dataclass(frozen=True)
class Task:
    """One task: ``categorical`` over ``outputs`` (the classes), or a regression of ``outputs`` (dimensions)."""

    name: str
    outputs: tuple[str, ...]
    loss: str = "cross_entropy"  # cross_entropy | mse | ccc
    scale: tuple[float, float] | None = None  # the dimensions' scale (regression only)

    @property
    def categorical(self) -> bool:
        return self.name == "categorical"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "outputs": list(self.outputs), "loss": self.loss, "scale": self.scale}


def split_run(run: str) -> tuple[str, str]:
    """``"cnn14@vad"`` -> ``("cnn14", "vad")``; ``"cnn14"`` -> ``("cnn14", "categorical")``; a text suffix
    (``"bert+asr"``, :func:`split_text`) and a protocol suffix (``"mmer_speech~loso_speaker"``,
    :func:`split_protocol`) are ignored."""
    model, _, task = split_text(split_protocol(run)[0])[0].partition(TASK_SEPARATOR)
    task = task or "categorical"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} in {run!r}; known: {', '.join(TASKS)}")
    return model, task


def run_name(model: str, task: str, protocol: str | None = None, text_source: str | None = None) -> str:
    """``model``, ``model@task``; with the text source that is not the corpus's own, ``...+asr`` (or ``+gold``); with
    a further ``protocol`` (not the model's main one), ``...~protocol``: ``bert@vad+asr~loso_session``."""
    name = model if task == "categorical" else f"{model}{TASK_SEPARATOR}{task}"
    if text_source:
        name = f"{name}{TEXT_SEPARATOR}{text_source}"
    return f"{name}{PROTOCOL_SEPARATOR}{protocol}" if protocol else name


def split_text(run: str) -> tuple[str, str | None]:
    """``"bert@vad+asr"`` -> ``("bert@vad", "asr")``; no suffix -> ``(run, None)``: the corpus's own text source
    (``corpora.<name>.text_source``). Call it on a run without its protocol suffix (:func:`split_protocol`)."""
    name, _, source = run.partition(TEXT_SEPARATOR)
    if source and source not in TEXT_SOURCES:
        raise ValueError(f"unknown text source {source!r} in {run!r}; known: {', '.join(TEXT_SOURCES)}")
    return name, source or None


def split_protocol(run: str) -> tuple[str, str | None]:
    """``"mmer_speech~loso_speaker"`` -> ``("mmer_speech", "loso_speaker")``; no suffix -> ``(run, None)``: the
    model's main protocol (results/{corpus}_{run}.json keeps the plain name)."""
    name, _, protocol = run.partition(PROTOCOL_SEPARATOR)
    return name, protocol or None


def make_task(task: str, classes: Sequence[str], scale: Sequence[float] | None = None) -> Task:
    """The :class:`Task` called ``task`` for a corpus with these classes and this dimensional scale."""
    if task == "categorical":
        return Task("categorical", tuple(classes))
    dims, loss = DIMENSIONAL_TASKS[task]
    if scale is None:
        raise ValueError(f"task {task!r} needs the corpus's dimensional scale (corpora.<name>.dimensions.scale)")
    lo, hi = (float(x) for x in scale)
    return Task(task, dims, loss, (lo, hi))


# --------------------------------------------------------------------------------- targets


def dimensional_targets(manifest: Any, task: Task) -> dict[str, np.ndarray | str]:
    """Per utterance of ``manifest`` its target vector, or the reason it has none (missing, outside the scale)."""
    lo, hi = task.scale or (-np.inf, np.inf)
    values = manifest[list(task.outputs)].to_numpy(dtype=np.float64)
    out: dict[str, np.ndarray | str] = {}
    for utt_id, row in zip(manifest["utt_id"], values, strict=True):
        missing = [d for d, v in zip(task.outputs, row, strict=True) if not np.isfinite(v)]
        outside = [f"{d} {v:g}" for d, v in zip(task.outputs, row, strict=True) if np.isfinite(v) and not lo <= v <= hi]
        if missing:
            out[utt_id] = f"no {', '.join(missing)} in the manifest"
        elif outside:
            out[utt_id] = f"{', '.join(outside)} outside the corpus's scale {lo:g}-{hi:g}"
        else:
            out[utt_id] = row.astype(np.float32)
    return out


# --------------------------------------------------------------------------------- metrics


def ccc(pred: np.ndarray, true: np.ndarray) -> float:
    """Concordance correlation coefficient of two 1-D series (see the module docstring for degenerate cases)."""
    x, y = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if x.size < 2:
        return 0.0
    mx, my = x.mean(), y.mean()
    vx, vy = x.var(), y.var()
    cov = ((x - mx) * (y - my)).mean()
    denom = vx + vy + (mx - my) ** 2
    if denom == 0:
        return 1.0
    return float(2 * cov / denom)


def pearson(pred: np.ndarray, true: np.ndarray) -> float:
    """Pearson's r; 0 for a constant series or fewer than two values (see the module docstring)."""
    x, y = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    if x.size < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])


def regression_metrics(pred: np.ndarray, true: np.ndarray, dims: Sequence[str]) -> dict[str, Any]:
    """Per dimension CCC, Pearson's r, MSE, and their means over the dimensions (``[N, D]`` arrays)."""
    n = len(true)
    pred, true = np.asarray(pred, np.float64).reshape(n, -1), np.asarray(true, np.float64).reshape(n, -1)
    if len(true) == 0:
        raise ValueError("no utterances to score")
    out: dict[str, Any] = {"n": len(true)}
    for key, fn in (("ccc", ccc), ("pearson", pearson)):
        out[key] = {d: fn(pred[:, i], true[:, i]) for i, d in enumerate(dims)}
    out["mse"] = {d: float(np.mean((pred[:, i] - true[:, i]) ** 2)) for i, d in enumerate(dims)}
    for key in REGRESSION_KEYS:
        out[f"mean_{key}"] = float(np.mean(list(out[key].values())))
    return out


def summary_scores(metrics: Mapping[str, Any], task: Task) -> dict[str, float]:
    """The flat scores a fold or seed is summarised by: ``wa``, ``ua``, ``macro_f1`` for the categorical task;
    ``ccc`` (the mean over the dimensions), then per dimension ``ccc_<dim>``, ``pearson_<dim>``, ``mse_<dim>``."""
    if task.categorical:
        return {key: float(metrics[key]) for key in ("wa", "ua", "macro_f1")}
    out = {"ccc": float(metrics["mean_ccc"])}
    for key in REGRESSION_KEYS:
        out.update({f"{key}_{d}": float(metrics[key][d]) for d in task.outputs})
    return out


def score_keys(task: Task) -> tuple[str, ...]:
    if task.categorical:
        return ("wa", "ua", "macro_f1")
    return ("ccc", *(f"{key}_{d}" for key in REGRESSION_KEYS for d in task.outputs))
