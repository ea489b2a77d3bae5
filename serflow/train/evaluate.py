"""The per-model results: every fold checked against what its job recorded, then aggregated (``docs/results.md``).

:func:`evaluate_model` reads the folds' ``metrics.json`` (and ``run.json``), refuses a fold whose outputs changed
after its job wrote them (:func:`check_fold`: the damaged files are set aside, so the next run retrains that fold
alone), and writes nothing itself: the caller writes ``results/{corpus}_{model}.json`` and its compact sibling
(:func:`compact_metrics`). No torch here: evaluation jobs stay light.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serflow.io import quarantine
from serflow.report.figures import paper_entry
from serflow.train.integrity import fold_damage
from serflow.train.leakage import leakage_total
from serflow.train.metrics import classification_metrics, mean_std
from serflow.train.tasks import Task, regression_metrics, score_keys, summary_scores

RESULTS_FORMAT = "serflow-results/1"


def check_fold(metrics_path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Refuse a fold whose outputs changed after its job wrote them; set them aside so the next run retrains it.

    The damaged files and the fold's ``metrics.json`` go to ``.damaged/`` (:func:`serflow.io.quarantine`), so
    Snakemake sees the fold's outputs missing and reruns that fold's job alone.
    """
    metrics_path = Path(metrics_path)
    if "files" not in record:
        raise FoldIntegrityError(f"{metrics_path}: records no hashes of its outputs (written by an older serflow)")
    damaged = fold_damage(metrics_path.parent, record)
    if not damaged:
        return
    reason = f"differs from the sha256 recorded in {metrics_path} (changed after its job wrote it)"
    for path in damaged:
        if path.exists():
            quarantine(path, f"{path} {reason}")
    quarantine(metrics_path, f"{metrics_path}: fold outputs damaged: {[str(p) for p in damaged]}")
    raise FoldIntegrityError(
        f"{', '.join(map(str, damaged))}: missing or {reason}; set aside with {metrics_path.name} in "
        f"{metrics_path.parent / '.damaged'}. Run the workflow again: it retrains this fold alone"
    )


class FoldIntegrityError(RuntimeError):
    """A fold's outputs are not what its job wrote; the message names them."""


def evaluate_model(
    fold_metrics: Sequence[str | os.PathLike[str]],
    fold_runs: Sequence[str | os.PathLike[str]] = (),
    corpus_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The per-model results (``docs/results.md``) from the folds' ``metrics.json`` (and ``run.json``)."""
    records = [(Path(p), _read_json(p)) for p in fold_metrics]
    problems = []
    for path, record in records:
        try:
            check_fold(path, record)
        except FoldIntegrityError as exc:
            problems.append(str(exc))
    if problems:
        raise FoldIntegrityError("; ".join(problems))
    folds = sorted((record for _, record in records), key=lambda r: r["fold"])
    if not folds:
        raise ValueError("no fold metrics to aggregate")
    runs_by_fold = {record["fold"]: _read_json(run) for (_, record), run in zip(records, fold_runs, strict=False)}
    first = _check_consistent(folds)
    task = task_of(first)
    keys = score_keys(task)
    seeds = [s["seed"] for s in first["seeds"]]
    per_seed = [_seed_summary(folds, i, seed, task) for i, seed in enumerate(seeds)]
    runs = [runs_by_fold[f["fold"]] for f in folds if f["fold"] in runs_by_fold]
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        **{k: first[k] for k in ("corpus", "model", "family", "protocol", "text_source", "labels", "label_merge")},
        "task": task.as_dict(),
        "n_folds": len(folds),
        "seeds": seeds,
        "folds": [_fold_summary(f, task) for f in folds],
        "per_seed": per_seed,
    }
    for key in keys:
        results[key], results[f"{key}_std"] = mean_std([s[key] for s in per_seed])
    results["fold_std"] = {key: mean_std([f[key] for f in folds])[1] for key in keys}
    if task.categorical:
        confusion = np.sum([f["confusion"] for f in folds], axis=0)
        pooled = classification_metrics(confusion, task.outputs)
        results["pooled"] = {key: pooled[key] for key in keys}
        results["per_class_recall"] = pooled["per_class_recall"]
        results["confusion"] = confusion.tolist()
    else:  # every test prediction of all folds together, per seed, then the mean over seeds
        predictions = [pd.read_parquet(Path(path).with_name("predictions.parquet")) for path, _ in records]
        results["pooled"] = _pooled_regression(pd.concat(predictions, ignore_index=True), task, seeds)
    results["features"] = {name: _store_summary(name, f) for name, f in first["features"].items()}
    # what the folds were drawn from: the manifest and the folds file (sha256, label merge, seed, validation share)
    results["inputs"] = first.get("inputs")
    # random_split is not speaker-independent (the same speakers in train and test); the leakage check of every fold
    results["speaker_independent"] = first.get("speaker_independent")
    results["leakage"] = leakage_total(folds)
    results["utterances"] = _utterance_summary(folds)
    results["prepare_counts"] = _prepare_counts(folds)
    results["feature_scaling"] = _feature_scaling(folds)  # train.feature_scaling: per fold, where statistics came from
    for key in ("hparams", "fixed", "optim", "train"):
        results[key] = first[key]
    # the model as built (fold 1; a model with a training-split vocabulary differs by a few rows per fold: see folds)
    results["reduced"] = first.get("reduced", {})  # a corpus's smaller setting of the paper's model ({}: none)
    results["parameters"] = first.get("parameters")
    results["model_settings"] = first.get("model_settings", {})
    # the paper's own figures for this model, with their data set and whether it is this corpus's
    results["paper"] = paper_entry(first["model"], corpus_spec)
    results["warnings"] = [w for f in folds for w in f["warnings"]]
    results["code"] = first["code"]
    # No wall times here: the same config gives the same bytes (they stay in each fold's run.json and in the rules'
    # benchmark files). What ran where does vary, and is recorded: device, CPU and git checkout of every fold.
    results["runtime"] = runs[0]["runtime"] if runs else None
    results["runs"] = [{"fold": fold, **_run_summary(run)} for fold, run in sorted(runs_by_fold.items())]
    return results


def task_of(record: Mapping[str, Any]) -> Task:
    """The task a fold or results record was made for (older records: the categorical task over its labels)."""
    spec = record.get("task") or {"name": "categorical", "outputs": record["labels"]}
    scale = tuple(spec["scale"]) if spec.get("scale") else None
    return Task(spec["name"], tuple(spec["outputs"]), spec.get("loss", "cross_entropy"), scale)


def _pooled_regression(predictions: pd.DataFrame, task: Task, seeds: Sequence[int]) -> dict[str, float]:
    per_seed = []
    for seed in seeds:
        rows = predictions.loc[predictions["seed"] == seed]
        pred = rows[[f"pred_{d}" for d in task.outputs]].to_numpy()
        true = rows[[f"true_{d}" for d in task.outputs]].to_numpy()
        per_seed.append(summary_scores(regression_metrics(pred, true, task.outputs), task))
    return {key: float(np.mean([s[key] for s in per_seed])) for key in score_keys(task)}


def compact_metrics(results: Mapping[str, Any]) -> dict[str, Any]:
    """The numbers of a results file and nothing else (DVC's metrics file: ``dvc metrics diff`` compares these)."""
    keys = score_keys(task_of(results))
    out: dict[str, Any] = {key: results[key] for key in keys}
    out.update({f"{key}_std": results[f"{key}_std"] for key in keys})
    out["fold_std"] = dict(results["fold_std"])
    out["pooled"] = dict(results["pooled"])
    out["n"] = results["utterances"]["used"]
    out["dropped"] = results["utterances"]["dropped"]
    return out


def _run_summary(run: Mapping[str, Any]) -> dict[str, Any]:
    runtime = run.get("runtime", {})
    return {
        "device": runtime.get("device"),
        "threads": runtime.get("threads"),
        "machine": runtime.get("machine"),
        "git": run.get("git"),
    }


def _read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _check_consistent(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """All folds must come from one model, protocol, label set, seed list and feature versions."""
    first = folds[0]
    keys = ("corpus", "model", "protocol", "labels", "text_source", "features", "hparams", "optim", "train", "inputs")
    for f in folds[1:]:
        for key in keys:
            if f.get(key) != first.get(key):
                raise ValueError(f"fold {f['fold']} differs from fold {first['fold']} in {key!r}: cannot aggregate")
        if [s["seed"] for s in f["seeds"]] != [s["seed"] for s in first["seeds"]]:
            raise ValueError(f"fold {f['fold']} was trained with other seeds than fold {first['fold']}")
    numbers = [f["fold"] for f in folds]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"fold numbers repeat: {numbers}")
    return first


def _store_summary(name: str, store: Mapping[str, Any]) -> dict[str, Any]:
    """A store a model read, as its folds recorded it (less its folder), with ``effective_params``: every parameter
    it was computed with, including those its ``params`` (as hashed into its version) leave out."""
    from serflow.features.plan import effective_params

    summary = {k: v for k, v in store.items() if k != "path"}
    summary["effective_params"] = effective_params(name, store.get("params"))
    return summary


def _seed_summary(folds: list[dict[str, Any]], index: int, seed: int, task: Task) -> dict[str, Any]:
    """One seed's cross-validated scores: the mean over folds of that seed's fold scores."""
    scores = [summary_scores(f["seeds"][index]["test"], task) for f in folds]
    return {"seed": seed, **{key: float(np.mean([s[key] for s in scores])) for key in score_keys(task)}}


def _fold_summary(fold: dict[str, Any], task: Task) -> dict[str, Any]:
    keys = score_keys(task)
    categorical = {"confusion": fold["confusion"], "absent_classes": fold["absent_classes"]} if task.categorical else {}
    return {
        "fold": fold["fold"],
        "test_group": fold["test_group"],
        "n": fold["n"],
        **{key: fold[key] for key in keys},
        **{f"{key}_std": fold[f"{key}_std"] for key in keys},
        **categorical,
        "per_seed": [
            {"seed": s["seed"], "best_epoch": s["best_epoch"], **summary_scores(s["test"], task)} for s in fold["seeds"]
        ],
        "used": fold["utterances"]["used"],
        "dropped": fold["utterances"]["dropped"],
        "parameters": fold.get("parameters", {}).get("total"),
        "fold_hparams": fold.get("fold_hparams", {}),
        "fold_fit": fold.get("fold_fit", {}),
        "oov": fold.get("oov", {}),
    }


def _feature_scaling(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """``train.feature_scaling`` of the folds: ``{"mode": "none"}``, or the mode and each fold's record (a fold
    written before the setting existed records none)."""
    records = [f.get("feature_scaling") or {"mode": "none"} for f in folds]
    mode = records[0]["mode"]
    if mode == "none":
        return {"mode": mode}
    return {"mode": mode, "folds": [{"fold": f["fold"], **r} for f, r in zip(folds, records, strict=True)]}


def _utterance_summary(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """Utterances scored (each test utterance once) and those dropped, once each, with their reasons."""
    dropped: dict[str, dict[str, str]] = {}
    for f in folds:
        for d in f["utterances"]["dropped_utterances"]:
            dropped.setdefault(d["utt_id"], {"utt_id": d["utt_id"], "reason": d["reason"]})
    reasons: dict[str, int] = {}
    for d in dropped.values():
        reasons[d["reason"]] = reasons.get(d["reason"], 0) + 1
    return {
        "used": int(sum(f["n"] for f in folds)),
        "dropped": len(dropped),
        "dropped_by_reason": dict(sorted(reasons.items())),
        "dropped_utterances": sorted(dropped.values(), key=lambda d: d["utt_id"]),
    }


def _prepare_counts(folds: list[dict[str, Any]]) -> dict[str, int]:
    """prepare() counts over the test splits: every utterance once across a leave-one-group-out protocol."""
    total: dict[str, int] = {}
    for f in folds:
        for key, value in f["utterances"]["prepare_counts"].get("test", {}).items():
            total[key] = total.get(key, 0) + int(value)
    return dict(sorted(total.items()))
