"""One fold job (one model, one protocol, one fold, every configured seed) and the per-model results.

:func:`train_fold` writes, into ``models/{corpus}/{model}/{protocol}/fold{k}/``:

- ``metrics.json``: the fold's scores per seed and their mean/std, what was used and dropped, the feature
  versions, hyperparameters and settings (deterministic: same config, same bytes on CPU);
- ``predictions.parquet``: one row per test utterance and seed (``utt_id, seed, label, prediction,
  p_<class>...``);
- ``history.tsv``: the training curves, one row per seed and epoch (losses, validation WA/UA, lr, best);
- ``checkpoints/seed{s}.safetensors`` + ``seed{s}.json``: the selected weights of each seed;
- ``run.json``: what varies between identical runs (wall time, device, CPU, git checkout), kept apart from the
  metrics.

``metrics.json`` is written last and records the sha256 of every other output, the job's identity (its settings,
inputs and code hash) and the code's provenance. Two processes never train one fold at once: the job holds a lock
on the fold folder (:mod:`serflow.locks`), and a job that had to wait keeps the outputs another process finished
for the same identity instead of training again. A feature store found damaged while loading is set aside so the
next run rebuilds it (:func:`serflow.shards.reader.set_aside_damaged`).

:func:`serflow.train.evaluate.evaluate_model` checks every fold's outputs against these hashes, then aggregates
the folds into ``results/{corpus}_{model}.json`` (``docs/results.md``).
"""

from __future__ import annotations

import hashlib
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

from serflow.corpora.folds import SPEAKER_INDEPENDENT
from serflow.io import write_json, write_parquet, write_text
from serflow.locks import LOCK_NAME, once
from serflow.shards.version import canonical_json, hash_file
from serflow.train.config import (
    OptimSettings,
    TrainSettings,
    check_hparams,
    family_settings,
    fold_code,
    model_hparams,
)
from serflow.train.integrity import fold_damage
from serflow.train.leakage import split_leakage
from serflow.train.metrics import absent_class_warning, mean_std
from serflow.train.tasks import Task, dimensional_targets, make_task, score_keys, split_run, summary_scores

if TYPE_CHECKING:  # torch-importing modules, loaded by train_fold itself (evaluate_model needs no torch)
    from serflow.models import ModelSpec
    from serflow.train.data import FoldData, Split
    from serflow.train.device import Runtime

log = logging.getLogger(__name__)

FOLD_FORMAT = "serflow-fold-metrics/1"


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
    reduced: Mapping[str, Any] = field(default_factory=dict)  # what the corpus changes in the family's paper setting
    task: str = "categorical"  # or a dimensional task: vad (multi-task, CCC loss), valence, arousal, dominance (MSE)
    scale: tuple[float, float] | None = None  # the corpus's dimensional scale (IEMOCAP 1-5)

    def task_spec(self) -> Task:
        return make_task(self.task, self.classes, self.scale)

    text_source: str = "gold"
    label_merge: Mapping[str, str] = field(default_factory=dict)
    # how the folds file drew this protocol's splits (config folds: seed, validation share): :func:`fold_settings`
    fold_settings: Mapping[str, Any] = field(default_factory=dict)


# --- one fold -------------------------------------------------------------------------------------------


def train_fold(job: FoldJob, out: FoldOutputs, *, progress: bool | None = None) -> dict[str, Any]:
    """Train and score every seed of one fold; write the fold's outputs; return its metrics record.

    Holds the fold folder's lock while it runs; if another process held it and finished this very job meanwhile
    (same identity, outputs intact), its outputs are kept and returned without training again.
    """
    from serflow.models import get_spec

    spec = get_spec(split_run(job.model)[0])  # the architecture of a run such as cnn14@vad
    _check_stores(job.model, spec.features, job.stores)
    identity = job_identity(job, spec)
    return once(
        out.metrics.parent / LOCK_NAME,
        lambda: completed_fold(out, identity),
        lambda: _train_fold(job, spec, out, identity, progress),
        what=f"{job.model} {job.protocol} fold {job.fold} ({out.metrics.parent})",
    )


def job_identity(job: FoldJob, spec: ModelSpec) -> str:
    """A hash of everything that determines a fold job's outputs: settings, input files, store versions, code."""
    from serflow.provenance import code_hash

    payload = {
        "corpus": job.corpus,
        "model": job.model,
        "protocol": job.protocol,
        "fold": job.fold,
        "classes": list(job.classes),
        "task": job.task_spec().as_dict(),
        "train": job.train.result_params(),
        "family_config": dict(job.family_config),
        "text_source": job.text_source,
        "label_merge": dict(job.label_merge),
        "fold_settings": dict(job.fold_settings),
        "stores": {name: str(Path(path).name) for name, path in sorted(job.stores.items())},
        "manifest": hash_file(job.manifest),
        "folds": hash_file(job.folds),
        "code": code_hash(*fold_code(spec)),
    }
    return hashlib.sha256(canonical_json(payload, "job").encode()).hexdigest()


def completed_fold(out: FoldOutputs, identity: str) -> dict[str, Any] | None:
    """The fold's metrics record if its outputs are complete, intact and were made for ``identity``; else None."""
    try:
        record = json.loads(out.metrics.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("job") != identity or not out.run.is_file() or fold_damage(out.metrics.parent, record):
        return None
    return record


def _train_fold(
    job: FoldJob, spec: ModelSpec, out: FoldOutputs, identity: str, progress: bool | None
) -> dict[str, Any]:
    from serflow.models.describe import parameter_summary
    from serflow.provenance import machine, provenance
    from serflow.train.data import build_fold_data, fold_assignment, redraw_validation
    from serflow.train.device import job_settings, resolve_runtime, seed_everything

    started = time.perf_counter()
    code = provenance(*fold_code(spec))
    configured, optim = family_settings(job.family_config)
    check_hparams(spec.name, spec.builder(), configured)
    runtime = resolve_runtime(job.train.device, job.train.amp, job.train.threads)
    feature_sets, arrays = _load_stores({name: job.stores[name] for name in spec.features}, job.train.threads)
    hparams, warnings = model_hparams(configured, {name: fs.dims for name, fs in feature_sets.items()})
    test_group, assignment = fold_assignment(pd.read_parquet(job.folds), job.protocol, job.fold)
    labels_by_utt = _labels_by_utt(job.manifest)
    if job.train.validation_fraction is not None:  # the family's own validation share (GBAN: 5 %)
        assignment = redraw_validation(assignment, labels_by_utt, job.train.validation_fraction, job.fold)
    leakage = split_leakage(_audio_paths(job.manifest), assignment)  # the same audio in two splits (any protocol)
    arrays, feature_scaling = _scale_features(job, arrays, assignment)  # before prepare(): once for every seed
    task = job.task_spec()
    targets = None if task.categorical else dimensional_targets(pd.read_parquet(job.manifest), task)
    n_outputs = len(task.outputs)
    with job_settings(runtime):
        seed_everything(job.train.seeds[0])
        preparer = spec.create(n_outputs, **hparams)
        preparer.check_stores({name: fs.meta.get("meta") or {} for name, fs in feature_sets.items()})
        data = build_fold_data(
            preparer,
            arrays,
            labels_by_utt,
            job.classes,
            protocol=job.protocol,
            fold=job.fold,
            test_group=test_group,
            assignment=assignment,
            targets=targets,
        )
        if not len(data.splits["test"]):
            raise ValueError(
                f"fold {job.fold} ({test_group}): no test utterances left after dropping; nothing to score"
            )
        # What the model fits on the training split before training (a vocabulary): sizes go into its
        # hyperparameters (recorded in the checkpoints, so they rebuild), the rest is set by init_fold per seed.
        fit_samples = fitting_samples(preparer, data)
        fold_hparams = _json_ready(preparer.fold_hparams(fit_samples))
        load_s = time.perf_counter() - started
        built = {**hparams, **fold_hparams}
        seeds = [
            _run_seed(job, spec, built, optim, runtime, data, seed, out, progress, code, fit_samples)
            for seed in job.train.seeds
        ]
        model = seeds[0]["model"]
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
        "fold_hparams": fold_hparams,
        "reduced": dict(job.reduced),
        "fixed": dict(spec.fixed),
        "optim": optim.as_dict(),
        "family": spec.family,
        "parameters": parameter_summary(model),
        "model_settings": model_settings(model),
        "fold_fit": seeds[0]["fold_fit"],
        "feature_scaling": feature_scaling,
        "oov": _oov_by_split(model, data),
        "leakage": leakage,
        "speaker_independent": SPEAKER_INDEPENDENT.get(job.protocol),
        "job": identity,
        "code": {"serflow": code["serflow"], "code_hash": code["code_hash"]},
        "inputs": fold_inputs(job),
    }
    warnings += label_warnings(job, context["inputs"]["manifest"])
    record = _fold_record(job, data, [s["record"] for s in seeds], context, warnings)
    _write_fold_outputs(out, record, seeds, task, data.splits["test"])
    elapsed = time.perf_counter() - started
    run_info = {
        "elapsed_s": elapsed,
        "load_s": load_s,
        "seed_s": {str(s["record"]["seed"]): s["seconds"] for s in seeds},
        "runtime": {**runtime.describe(), "machine": machine()},
        "git": code["git"],
        "pid": os.getpid(),
    }
    write_json(run_info, out.run)
    shown = ", ".join(f"{k.upper()} {record[k]:.4f}" for k in ("ua", "wa", "ccc") if k in record)
    log.info("fold %d (%s) done in %.1f s: %s", job.fold, test_group, elapsed, shown)
    return record


def _load_stores(
    paths: Mapping[str, str | os.PathLike[str]], threads: int
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Open and load every store; a damaged one is set aside (rebuilt by the next run) and the job fails naming it."""
    from serflow.shards.reader import FeatureSet, set_aside_damaged
    from serflow.shards.writer import ShardIntegrityError
    from serflow.train.data import store_arrays

    feature_sets, arrays = {}, {}
    for name, path in paths.items():
        try:
            feature_sets[name] = FeatureSet(path)
            arrays[name] = store_arrays(feature_sets[name], threads)
        except ShardIntegrityError as exc:
            raise ShardIntegrityError(
                f"feature store {name!r} is damaged: {exc}; {set_aside_damaged(path, exc)}"
            ) from exc
    return feature_sets, arrays


def _check_stores(model: str, features: Sequence[str], stores: Mapping[str, Any]) -> None:
    missing = [f for f in features if f not in stores]
    if missing:
        raise ValueError(f"model {model!r} reads stores {list(features)}; no folder given for {missing}")


def _audio_paths(manifest: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    if "audio_path" not in pq.read_schema(manifest).names:  # a hand-made manifest: nothing to check (checked 0)
        return {}
    table = pd.read_parquet(manifest, columns=["utt_id", "audio_path"])
    return dict(zip(table["utt_id"].astype(str), table["audio_path"].astype(str), strict=True))


def _scale_features(
    job: FoldJob, arrays: Mapping[str, Mapping[str, np.ndarray]], assignment: Mapping[str, Sequence[str]]
) -> tuple[dict[str, Mapping[str, np.ndarray]], dict[str, Any]]:
    """The stores with ``train.feature_scaling`` applied for this fold, and its record (:mod:`.standardise`)."""
    from serflow.train.standardise import scale_fold_stores

    mode = job.train.feature_scaling
    speakers = _speakers_by_utt(job.manifest, assignment) if mode == "speaker" else None
    return scale_fold_stores(arrays, assignment, mode, speakers)


def _speakers_by_utt(manifest: Path, assignment: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The manifest's speaker of each utterance; every utterance of the fold that the manifest holds must have one."""
    import pyarrow.parquet as pq

    if "speaker" not in pq.read_schema(manifest).names:
        raise ValueError(f"train.feature_scaling: speaker needs a 'speaker' column in {manifest}")
    table = pd.read_parquet(manifest, columns=["utt_id", "speaker"])
    fold = {u for ids in assignment.values() for u in ids}
    unknown = sorted(set(table.loc[table["speaker"].isna(), "utt_id"].astype(str)) & fold)
    if unknown:
        raise ValueError(
            f"train.feature_scaling: speaker: {len(unknown)} utterance(s) of the fold have no speaker in {manifest} "
            f"(e.g. {unknown[0]})"
        )
    known = table["speaker"].notna()
    return dict(zip(table.loc[known, "utt_id"].astype(str), table.loc[known, "speaker"].astype(str), strict=True))


def _labels_by_utt(manifest: Path) -> dict[str, str | None]:
    table = pd.read_parquet(manifest, columns=["utt_id", "label"])
    return {u: (None if pd.isna(lab) else str(lab)) for u, lab in zip(table["utt_id"], table["label"], strict=True)}


# --- what the fold was drawn from (recorded as ``inputs``, docs/results.md) -----------------------------------

VALIDATION_SPLITS = {  # how the folds file drew each protocol's validation split
    "loso_session": "stratified",  # a seeded, class-stratified share of the training sessions
    "loso_speaker": "partner_or_stratified",  # the test speaker's session partner (two in the session), else as above
    "random_split": "random_split",  # one seeded per-class shuffle cut into train / valid / test shares
}


def fold_settings(folds_config: Mapping[str, Any] | None, protocol: str) -> dict[str, Any]:
    """The settings the folds file drew ``protocol``'s splits with (the config's ``folds`` section, as the ``folds``
    rule passes it): the seed, the validation share and how the validation split is made. ``FoldJob.fold_settings``.
    """
    from serflow.corpora.settings import random_split_settings

    config = dict(folds_config or {})
    split = VALIDATION_SPLITS.get(protocol)
    if protocol == "random_split":
        shares = random_split_settings(config)
        return {
            "seed": shares["seed"],
            "train_fraction": shares["train"],
            "validation_fraction": shares["valid"],
            "validation_split": split,
        }
    return {
        "seed": config.get("seed"),
        "validation_fraction": config.get("validation_fraction"),
        "validation_split": split,
    }


def manifest_labels(manifest: Path) -> dict[str, Any]:
    """The classes and the raw-label merge the manifest was built with (its Parquet metadata, written by
    :func:`serflow.corpora.manifest.to_table`); ``None`` each for a manifest that records none (made by hand)."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(manifest).metadata or {}
    return {key: _json_meta(meta.get(f"serflow.{key}".encode())) for key in ("labels", "merge")}


def _json_meta(value: bytes | None) -> Any:
    return None if value is None else json.loads(value.decode("utf-8"))


def fold_inputs(job: FoldJob) -> dict[str, Any]:
    """The fold's ``inputs``: the manifest and the folds file (path and sha256; the manifest's label merge, the folds'
    seed and validation share). A family's ``train.validation_fraction`` redraws the validation split in the fold job
    (:func:`serflow.train.data.redraw_validation`): that share is then the one recorded."""
    folds = {"path": str(job.folds), "sha256": hash_file(job.folds), **dict(job.fold_settings)}
    if job.train.validation_fraction is not None:
        folds.update(validation_fraction=job.train.validation_fraction, validation_split="redrawn")
    manifest = {"path": str(job.manifest), "sha256": hash_file(job.manifest), **manifest_labels(job.manifest)}
    return {"manifest": manifest, "folds": folds}


def label_warnings(job: FoldJob, manifest: Mapping[str, Any]) -> list[str]:
    """A warning when the manifest's recorded classes or merge differ from the job's: its labels are the manifest's."""
    configured = {"labels": list(job.classes), "merge": dict(job.label_merge)}
    return [
        f"the manifest's label {key} {manifest[key]} differs from the configured {configured[key]}: the labels "
        f"trained and scored are the manifest's (rebuild it)"
        for key in ("labels", "merge")
        if manifest.get(key) is not None and manifest[key] != configured[key]
    ]


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
    code: Mapping[str, Any],
    fit_samples: Sequence[dict[str, np.ndarray]],
) -> dict[str, Any]:
    """Train one seed, score the test split once with the selected weights, save the checkpoint."""
    from serflow.train.checkpoint import save_checkpoint
    from serflow.train.loop import fit, predict, scores

    started = time.perf_counter()
    splits, task = data.splits, job.task_spec()
    n_classes = len(task.outputs)
    fold_fit: dict[str, Any] = {}

    def make_model() -> Any:  # called by fit() after seeding: the seed's initial weights, then the fold's fit
        model = spec.create(n_classes, **hparams)
        fold_fit.update(model.init_fold(fit_samples))
        return model

    model, fitted = fit(
        make_model,
        splits["train"],
        splits["valid"],
        task,
        settings=job.train,
        optim=optim,
        runtime=runtime,
        seed=seed,
        progress=sys.stderr.isatty() if progress is None else progress,
        desc=f"{job.model} fold {job.fold} seed {seed}",
    )
    logits = predict(model, splits["test"].samples, job.train.batch_size, runtime, job.train.max_batch_length)
    test = scores(logits, splits["test"].y, task, fitted.target_scale)
    if fitted.target_scale is not None:  # predictions in the corpus's units, as scored
        logits = fitted.target_scale.decode(logits)
    record = {
        "seed": seed,
        "best_epoch": fitted.best_epoch,
        "epochs_run": fitted.epochs_run,
        "stopped_early": fitted.stopped_early,
        "valid": {**summary_scores(fitted.valid, task), "loss": fitted.valid["loss"], "n": fitted.valid["n"]},
        "test": test,
    }
    meta = {
        "model": job.model,
        "family": spec.family,
        "n_classes": n_classes,
        "labels": list(task.outputs),
        "task": task.as_dict(),
        "hparams": hparams,
        "fixed": dict(spec.fixed),
        "optim": optim.as_dict(),
        "train": job.train.result_params(),
        # a regression's outputs are standardised targets: prediction = output * std + mean (docs/results.md)
        "target_scale": fitted.target_scale.as_dict() if fitted.target_scale else None,
        "corpus": job.corpus,
        "protocol": job.protocol,
        "fold": job.fold,
        "code": {"serflow": code["serflow"], "code_hash": code["code_hash"], "git": code["git"]},
        **record,
    }
    save_checkpoint(out.checkpoints, f"seed{seed}", fitted.state, meta)
    if callable(getattr(model, "representations", None)):  # MultiModal-ER: the report's t-SNE figures
        path = out.checkpoints / f"seed{seed}.representations.safetensors"
        save_representations(path, model, splits["test"], job, runtime)
    return {
        "record": record,
        "history": fitted.history_rows(),
        "logits": logits,
        "seconds": time.perf_counter() - started,
        "model": model,
        "fold_fit": _json_ready(fold_fit),
    }


def save_representations(path: Path, model: Any, test: Split, job: FoldJob, runtime: Runtime) -> None:
    """The test split's pooled vectors (``model.representations``: speech / text / fused, eval mode) of the selected
    weights, as float32 tensors ``[N, d]`` with the utterance ids and labels in the metadata (same bytes each run)."""
    import torch
    from safetensors.torch import save_file

    from serflow.io import atomic_path
    from serflow.train.loop import _to_device

    model.eval()
    parts: dict[str, list[Any]] = {}
    with torch.inference_mode():
        for start in range(0, len(test.samples), job.train.batch_size):
            batch = _to_device(model.collate(list(test.samples[start : start + job.train.batch_size])), runtime.device)
            for name, value in model.representations(batch).items():
                parts.setdefault(name, []).append(value.float().cpu())
    tensors = {name: torch.cat(values).contiguous() for name, values in parts.items()}
    labels = [job.classes[int(i)] for i in np.asarray(test.y).reshape(-1)] if job.task_spec().categorical else []
    metadata = {"utt_ids": json.dumps(list(test.ids)), "labels": json.dumps(labels)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def fitting_samples(model: Any, data: FoldData) -> list[dict[str, np.ndarray]]:
    """The prepared samples a model fits its fold-level state on: the training split, or the splits the model
    names in ``vocabulary_splits`` (MultiModal-ER's report built its vocabulary from all of them: a leak kept only
    as a setting)."""
    splits = getattr(model, "vocabulary_splits", ("train",))
    return [sample for name in splits for sample in data.splits[name].samples]


def model_settings(model: Any) -> dict[str, Any]:
    """What a model reports about itself (``settings()`` or ``describe()``): resolved paper/code choices, the
    pretrained weights it loaded, its width... recorded in every fold and result."""
    for name in ("settings", "describe"):
        method = getattr(model, name, None)
        if callable(method):
            return _json_ready(method())
    return {}


def _oov_by_split(model: Any, data: FoldData) -> dict[str, Any]:
    """Per split, the share of words outside the model's vocabulary (models with a vocabulary only)."""
    oov = getattr(model, "oov_stats", None)
    if not callable(oov):
        return {}
    return {name: _json_ready(oov(split.samples)) for name, split in data.splits.items() if len(split)}


def _json_ready(value: Any) -> Any:
    """Plain JSON types (NumPy scalars and arrays, tuples, paths made into Python numbers, lists, strings)."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def fold_line(corpus: str, run: str, record: Mapping[str, Any], seconds: float) -> str:
    """A finished fold in one line: ``demo bert+asr loso_session fold 2 (Session2): UA 0.612 WA 0.640, 1 seed, 41 s``
    (a dimensional run: its mean CCC)."""
    keys = ("ua", "wa") if "ua" in record else ("ccc",)
    scores = " ".join(f"{key.upper()} {record[key]:.3f}" for key in keys)
    seeds = len(record.get("seeds") or ())
    group = f" ({record['test_group']})" if record.get("test_group") else ""
    where = f"{record['protocol']} fold {record['fold']}{group}"
    return f"{corpus} {run} {where}: {scores}, {seeds} seed{'s' if seeds != 1 else ''}, {seconds:.0f} s"


def _fold_record(
    job: FoldJob, data: FoldData, seeds: list[dict[str, Any]], context: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    """The fold's ``metrics.json``: per-seed scores, their mean and std, the summed confusion (categorical), the
    account of the utterances."""
    task = job.task_spec()
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
        "task": task.as_dict(),
        "n": len(data.splits["test"]),
        "seeds": seeds,
        "utterances": data.summary(),
        "train": job.train.result_params(),
        **context,
        "warnings": list(warnings),
    }
    if task.categorical:
        where = f"{job.protocol} fold {job.fold} ({data.test_group}) test"
        absent = absent_class_warning(where, seeds[0]["test"])
        valid_absent = _absent_in_validation(job, data.splits["valid"])
        record["confusion"] = np.sum([s["test"]["confusion"] for s in seeds], axis=0).tolist()
        record["absent_classes"] = seeds[0]["test"]["absent_classes"]
        record["warnings"] += [w for w in (absent, valid_absent) if w]
    for key in score_keys(task):
        record[key], record[f"{key}_std"] = mean_std([summary_scores(s["test"], task)[key] for s in seeds])
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
    out: FoldOutputs, record: dict[str, Any], seeds: list[dict[str, Any]], task: Task, test: Split
) -> None:
    """History and predictions, then ``metrics.json`` last, with the sha256 of every other output the job wrote."""
    history = pd.DataFrame([row for s in seeds for row in s["history"]])
    write_text(history.to_csv(sep="\t", index=False, lineterminator="\n"), out.history)
    write_parquet(_predictions_table(seeds, task, test.ids, test.y), out.predictions)
    fold_dir = out.metrics.parent
    written = [out.history, out.predictions, *sorted(out.checkpoints.iterdir())]
    record["files"] = {p.relative_to(fold_dir).as_posix(): hash_file(p) for p in written if p.is_file()}
    write_json(record, out.metrics)


def _predictions_table(seeds: list[dict[str, Any]], task: Task, utt_ids: list[str], y: np.ndarray) -> pa.Table:
    """One row per (seed, test utterance): for the categorical task the true and predicted class and the softmax
    probabilities (``p_<class>``); for a regression the true and predicted value of each dimension
    (``true_<dim>``, ``pred_<dim>``)."""
    n = len(utt_ids)
    arrays: dict[str, pa.Array] = {
        "utt_id": pa.array([u for _ in seeds for u in utt_ids], pa.string()),
        "seed": pa.array([s["record"]["seed"] for s in seeds for _ in range(n)], pa.int32()),
    }
    outputs = np.concatenate([s["logits"] for s in seeds]).astype(np.float32) if seeds else np.zeros((0, 0))
    if task.categorical:
        classes = task.outputs
        truth = np.tile(y, len(seeds))
        arrays["label"] = pa.array([classes[i] for i in truth], pa.string())
        arrays["prediction"] = pa.array([classes[i] for i in outputs.argmax(axis=1)], pa.string())
        p = _softmax(outputs).astype(np.float32)
        arrays.update({f"p_{c}": pa.array(p[:, i], pa.float32()) for i, c in enumerate(classes)})
    else:
        truth = np.tile(y, (len(seeds), 1))
        for i, dim in enumerate(task.outputs):
            arrays[f"true_{dim}"] = pa.array(truth[:, i], pa.float32())
            arrays[f"pred_{dim}"] = pa.array(outputs[:, i], pa.float32())
    return pa.table(arrays)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
