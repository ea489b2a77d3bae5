"""One fold job (one model, one protocol, one fold, every configured seed) and the per-model results.

:func:`train_fold` writes, into ``models/{corpus}/{model}/{protocol}/fold{k}/``:

- ``metrics.json``: the fold's scores per seed and their mean/std, what was used and dropped, the feature
  versions, hyperparameters and settings (deterministic: same config, same bytes on CPU);
- ``predictions.parquet``: one row per test utterance and seed (``utt_id, seed, label, prediction,
  p_<class>...``);
- ``history.tsv``: the training curves, one row per seed and epoch (losses, validation WA/UA, lr, best);
- ``checkpoints/seed{s}.safetensors`` + ``seed{s}.json``: the selected weights of each seed;
- ``run.json``: what varies between identical runs (wall time, device), kept apart from the metrics.

:func:`evaluate_model` aggregates the folds into ``results/{corpus}_{model}.json`` (``docs/results.md``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.io import write_json, write_parquet, write_text
from serflow.train.config import OptimSettings, TrainSettings, check_hparams, family_settings, model_hparams
from serflow.train.metrics import absent_class_warning, classification_metrics, mean_std

if TYPE_CHECKING:  # torch-importing modules, loaded by train_fold itself (evaluate_model needs no torch)
    from serflow.models import ModelSpec
    from serflow.train.data import FoldData, Split
    from serflow.train.device import Runtime

log = logging.getLogger(__name__)

RESULTS_FORMAT = "serflow-results/1"
FOLD_FORMAT = "serflow-fold-metrics/1"
SCORE_KEYS = ("wa", "ua", "macro_f1")


@dataclass(frozen=True)
class FoldOutputs:
    """The files one fold job writes (the workflow passes its declared outputs)."""

    metrics: Path
    predictions: Path
    history: Path
    run: Path
    checkpoints: Path

    @classmethod
    def under(cls, directory: str | os.PathLike[str]) -> FoldOutputs:
        d = Path(directory)
        return cls(d / "metrics.json", d / "predictions.parquet", d / "history.tsv", d / "run.json", d / "checkpoints")


@dataclass(frozen=True)
class FoldJob:
    """Everything that defines one fold job; ``stores`` maps each store the model reads to its folder."""

    corpus: str
    model: str
    protocol: str
    fold: int
    classes: tuple[str, ...]
    stores: Mapping[str, str | os.PathLike[str]]
    manifest: Path
    folds: Path
    train: TrainSettings
    family_config: Mapping[str, Any] = field(default_factory=dict)
    text_source: str = "gold"
    label_merge: Mapping[str, str] = field(default_factory=dict)


# --- one fold -------------------------------------------------------------------------------------------


def train_fold(job: FoldJob, out: FoldOutputs, *, progress: bool | None = None) -> dict[str, Any]:
    """Train and score every seed of one fold; write the fold's outputs; return its metrics record."""
    from serflow.models import get_spec
    from serflow.train.data import build_fold_data, fold_assignment, open_stores, store_arrays
    from serflow.train.device import job_settings, resolve_runtime, seed_everything

    started = time.perf_counter()
    spec = get_spec(job.model)
    _check_stores(job.model, spec.features, job.stores)
    configured, optim = family_settings(job.family_config)
    check_hparams(spec.name, spec.builder(), configured)
    runtime = resolve_runtime(job.train.device, job.train.amp, job.train.threads)
    feature_sets = open_stores({name: job.stores[name] for name in spec.features})
    hparams, warnings = model_hparams(configured, {name: fs.dims for name, fs in feature_sets.items()})
    arrays = {name: store_arrays(fs, job.train.threads) for name, fs in feature_sets.items()}
    test_group, assignment = fold_assignment(pd.read_parquet(job.folds), job.protocol, job.fold)
    n_classes = len(job.classes)
    with job_settings(runtime):
        seed_everything(job.train.seeds[0])
        data = build_fold_data(
            spec.create(n_classes, **hparams),
            arrays,
            _labels_by_utt(job.manifest),
            job.classes,
            protocol=job.protocol,
            fold=job.fold,
            test_group=test_group,
            assignment=assignment,
        )
        if not len(data.splits["test"]):
            raise ValueError(
                f"fold {job.fold} ({test_group}): no test utterances left after dropping; nothing to score"
            )
        load_s = time.perf_counter() - started
        seeds = [_run_seed(job, spec, hparams, optim, runtime, data, seed, out, progress) for seed in job.train.seeds]
    context = {
        "features": {
            name: {
                "version": fs.version,
                "dims": fs.dims,
                "extractor": fs.meta.get("extractor"),
                "params": fs.meta.get("params"),
                "path": str(fs.path),
            }
            for name, fs in feature_sets.items()
        },
        "hparams": hparams,
        "fixed": dict(spec.fixed),
        "optim": optim.as_dict(),
        "family": spec.family,
    }
    record = _fold_record(job, data, [s["record"] for s in seeds], context, warnings)
    _write_fold_outputs(out, record, seeds, job.classes, data.splits["test"])
    elapsed = time.perf_counter() - started
    run_info = {
        "elapsed_s": elapsed,
        "load_s": load_s,
        "seed_s": {str(s["record"]["seed"]): s["seconds"] for s in seeds},
    }
    write_json({**run_info, "runtime": runtime.describe(), "pid": os.getpid()}, out.run)
    log.info("fold %d (%s) done in %.1f s: UA %.4f, WA %.4f", job.fold, test_group, elapsed, record["ua"], record["wa"])
    return record


def _check_stores(model: str, features: Sequence[str], stores: Mapping[str, Any]) -> None:
    missing = [f for f in features if f not in stores]
    if missing:
        raise ValueError(f"model {model!r} reads stores {list(features)}; no folder given for {missing}")


def _labels_by_utt(manifest: Path) -> dict[str, str | None]:
    table = pd.read_parquet(manifest, columns=["utt_id", "label"])
    return {u: (None if pd.isna(lab) else str(lab)) for u, lab in zip(table["utt_id"], table["label"], strict=True)}


def _run_seed(
    job: FoldJob,
    spec: ModelSpec,
    hparams: dict[str, Any],
    optim: OptimSettings,
    runtime: Runtime,
    data: FoldData,
    seed: int,
    out: FoldOutputs,
    progress: bool | None,
) -> dict[str, Any]:
    """Train one seed, score the test split once with the selected weights, save the checkpoint."""
    from serflow.train.checkpoint import save_checkpoint
    from serflow.train.loop import fit, predict, scores

    started = time.perf_counter()
    splits, n_classes = data.splits, len(job.classes)
    model, fitted = fit(
        lambda: spec.create(n_classes, **hparams),
        splits["train"],
        splits["valid"],
        job.classes,
        settings=job.train,
        optim=optim,
        runtime=runtime,
        seed=seed,
        progress=sys.stderr.isatty() if progress is None else progress,
        desc=f"{job.model} fold {job.fold} seed {seed}",
    )
    logits = predict(model, splits["test"].samples, job.train.batch_size, runtime)
    test = scores(logits, splits["test"].y, job.classes)
    record = {
        "seed": seed,
        "best_epoch": fitted.best_epoch,
        "epochs_run": fitted.epochs_run,
        "stopped_early": fitted.stopped_early,
        "valid": {k: fitted.valid[k] for k in (*SCORE_KEYS, "loss", "n")},
        "test": test,
    }
    meta = {
        "model": job.model,
        "family": spec.family,
        "n_classes": n_classes,
        "labels": list(job.classes),
        "hparams": hparams,
        "fixed": dict(spec.fixed),
        "optim": optim.as_dict(),
        "train": job.train.result_params(),
        "corpus": job.corpus,
        "protocol": job.protocol,
        "fold": job.fold,
        **record,
    }
    save_checkpoint(out.checkpoints, f"seed{seed}", fitted.state, meta)
    return {
        "record": record,
        "history": fitted.history_rows(),
        "logits": logits,
        "seconds": time.perf_counter() - started,
    }


def _fold_record(
    job: FoldJob, data: FoldData, seeds: list[dict[str, Any]], context: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    """The fold's ``metrics.json``: per-seed scores, their mean and std, the summed confusion, the account."""
    confusion = np.sum([s["test"]["confusion"] for s in seeds], axis=0)
    where = f"{job.protocol} fold {job.fold} ({data.test_group}) test"
    absent = absent_class_warning(where, seeds[0]["test"])
    valid_absent = _absent_in_validation(job, data.splits["valid"])
    record: dict[str, Any] = {
        "format": FOLD_FORMAT,
        "corpus": job.corpus,
        "model": job.model,
        "protocol": job.protocol,
        "fold": job.fold,
        "test_group": data.test_group,
        "text_source": job.text_source,
        "labels": list(job.classes),
        "label_merge": dict(job.label_merge),
        "n": len(data.splits["test"]),
        "seeds": seeds,
        "confusion": confusion.tolist(),
        "absent_classes": seeds[0]["test"]["absent_classes"],
        "utterances": data.summary(),
        "train": job.train.result_params(),
        **context,
        "warnings": [*warnings, *(w for w in (absent, valid_absent) if w)],
    }
    for key in SCORE_KEYS:
        record[key], record[f"{key}_std"] = mean_std([s["test"][key] for s in seeds])
    for w in record["warnings"]:
        log.warning("%s", w)
    return record


def _absent_in_validation(job: FoldJob, valid: Split) -> str | None:
    """A warning when the validation split lacks a class: model selection is then blind to it."""
    absent = [c for i, c in enumerate(job.classes) if i not in set(valid.labels)]
    if not absent:
        return None
    return f"{job.protocol} fold {job.fold} validation: no utterances of class(es) {', '.join(absent)}"


def _write_fold_outputs(
    out: FoldOutputs, record: dict[str, Any], seeds: list[dict[str, Any]], classes: Sequence[str], test: Split
) -> None:
    write_json(record, out.metrics)
    history = pd.DataFrame([row for s in seeds for row in s["history"]])
    write_text(history.to_csv(sep="\t", index=False, lineterminator="\n"), out.history)
    write_parquet(_predictions_table(seeds, classes, test.ids, test.labels), out.predictions)


def _predictions_table(
    seeds: list[dict[str, Any]], classes: Sequence[str], utt_ids: list[str], y: list[int]
) -> pa.Table:
    """One row per (seed, test utterance): true and predicted class and the softmax probabilities."""
    columns: dict[str, list[Any]] = {"utt_id": [], "seed": [], "label": [], "prediction": []}
    probs: list[np.ndarray] = []
    for s in seeds:
        logits = s["logits"]
        columns["utt_id"] += utt_ids
        columns["seed"] += [s["record"]["seed"]] * len(utt_ids)
        columns["label"] += [classes[i] for i in y]
        columns["prediction"] += [classes[i] for i in logits.argmax(axis=1)]
        probs.append(_softmax(logits))
    p = np.concatenate(probs).astype(np.float32)
    arrays = {
        "utt_id": pa.array(columns["utt_id"], pa.string()),
        "seed": pa.array(columns["seed"], pa.int32()),
        "label": pa.array(columns["label"], pa.string()),
        "prediction": pa.array(columns["prediction"], pa.string()),
        **{f"p_{c}": pa.array(p[:, i], pa.float32()) for i, c in enumerate(classes)},
    }
    return pa.table(arrays)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fold_index(folds: pd.DataFrame, protocol: str) -> dict[str, Any]:
    """The folds of one protocol with their test group and split sizes (the workflow's list of fold jobs)."""
    rows = folds[folds["protocol"] == protocol]
    if rows.empty:
        have = sorted(folds["protocol"].unique().tolist())
        raise ValueError(f"the folds table has no protocol {protocol!r} (it has {have}); add it to folds.protocols")
    entries = []
    for fold, part in rows.groupby("fold", sort=True):
        sizes = part["split"].value_counts().to_dict()
        entries.append(
            {
                "fold": int(fold),
                "test_group": str(part["test_group"].iloc[0]),
                **{k: int(v) for k, v in sorted(sizes.items())},
            }
        )
    return {"protocol": protocol, "folds": entries}


# --- all folds of one model -------------------------------------------------------------------------------


def evaluate_model(
    fold_metrics: Sequence[str | os.PathLike[str]], fold_runs: Sequence[str | os.PathLike[str]] = ()
) -> dict[str, Any]:
    """The per-model results (``docs/results.md``) from the folds' ``metrics.json`` (and ``run.json``)."""
    folds = sorted((_read_json(p) for p in fold_metrics), key=lambda r: r["fold"])
    if not folds:
        raise ValueError("no fold metrics to aggregate")
    first = _check_consistent(folds)
    labels = first["labels"]
    seeds = [s["seed"] for s in first["seeds"]]
    per_seed = [_seed_summary(folds, i, seed) for i, seed in enumerate(seeds)]
    confusion = np.sum([f["confusion"] for f in folds], axis=0)
    pooled = classification_metrics(confusion, labels)
    runs = [_read_json(p) for p in fold_runs]
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        **{k: first[k] for k in ("corpus", "model", "family", "protocol", "text_source", "labels", "label_merge")},
        "n_folds": len(folds),
        "seeds": seeds,
        "folds": [_fold_summary(f) for f in folds],
        "per_seed": per_seed,
    }
    for key in SCORE_KEYS:
        results[key], results[f"{key}_std"] = mean_std([s[key] for s in per_seed])
    results["fold_std"] = {key: mean_std([f[key] for f in folds])[1] for key in SCORE_KEYS}
    results["pooled"] = {key: pooled[key] for key in SCORE_KEYS}
    results["per_class_recall"] = pooled["per_class_recall"]
    results["confusion"] = confusion.tolist()
    results["features"] = {name: {k: v for k, v in f.items() if k != "path"} for name, f in first["features"].items()}
    results["utterances"] = _utterance_summary(folds)
    results["prepare_counts"] = _prepare_counts(folds)
    for key in ("hparams", "fixed", "optim", "train"):
        results[key] = first[key]
    results["warnings"] = [w for f in folds for w in f["warnings"]]
    # No wall times here: this file is DVC's metrics file and must be the same bytes for the same config
    # (they stay in each fold's run.json and in the rules' benchmark files).
    results["runtime"] = runs[0]["runtime"] if runs else None
    return results


def _read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _check_consistent(folds: list[dict[str, Any]]) -> dict[str, Any]:
    """All folds must come from one model, protocol, label set, seed list and feature versions."""
    first = folds[0]
    keys = ("corpus", "model", "protocol", "labels", "text_source", "features", "hparams", "optim", "train")
    for f in folds[1:]:
        for key in keys:
            if f[key] != first[key]:
                raise ValueError(f"fold {f['fold']} differs from fold {first['fold']} in {key!r}: cannot aggregate")
        if [s["seed"] for s in f["seeds"]] != [s["seed"] for s in first["seeds"]]:
            raise ValueError(f"fold {f['fold']} was trained with other seeds than fold {first['fold']}")
    numbers = [f["fold"] for f in folds]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"fold numbers repeat: {numbers}")
    return first


def _seed_summary(folds: list[dict[str, Any]], index: int, seed: int) -> dict[str, Any]:
    """One seed's cross-validated scores: the mean over folds of that seed's fold scores."""
    return {
        "seed": seed,
        **{key: float(np.mean([f["seeds"][index]["test"][key] for f in folds])) for key in SCORE_KEYS},
    }


def _fold_summary(fold: dict[str, Any]) -> dict[str, Any]:
    return {
        "fold": fold["fold"],
        "test_group": fold["test_group"],
        "n": fold["n"],
        **{key: fold[key] for key in SCORE_KEYS},
        **{f"{key}_std": fold[f"{key}_std"] for key in SCORE_KEYS},
        "confusion": fold["confusion"],
        "absent_classes": fold["absent_classes"],
        "per_seed": [
            {"seed": s["seed"], "best_epoch": s["best_epoch"], **{key: s["test"][key] for key in SCORE_KEYS}}
            for s in fold["seeds"]
        ],
        "used": fold["utterances"]["used"],
        "dropped": fold["utterances"]["dropped"],
    }


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
