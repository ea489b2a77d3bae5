"""Late fusion (the CNN14 paper's LF): the average of two trained models' outputs per test utterance, nothing trained.

For the categorical task the two models' class probabilities are averaged and the class with the highest average is
the prediction; for a regression the predicted values are. The two models must have been run with the same
protocol, fold and seeds (seed ``s`` of the fusion averages seed ``s`` of each); the fold's outputs have the layout
and schema of a trained fold (``metrics.json`` with the hashes of the other outputs, ``predictions.parquet``, an
empty ``history.tsv``, ``run.json``, an empty ``checkpoints/``), so evaluation, summaries and reports treat it like
any model.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serflow.io import write_json, write_parquet, write_text
from serflow.shards.version import hash_file
from serflow.train.metrics import classification_metrics, confusion_matrix, mean_std
from serflow.train.run import FOLD_FORMAT, FoldOutputs
from serflow.train.tasks import Task, regression_metrics, score_keys, summary_scores


def fuse_fold(
    components: Mapping[str, Path],
    task: Task,
    out: FoldOutputs,
    *,
    model: str = "lf",
    code: Mapping[str, Any] | None = None,
    text_source: str | None = None,
) -> dict[str, Any]:
    """Average the outputs of ``components`` (name -> its fold folder) and write the fold's outputs. ``text_source``:
    the transcripts of the run (its text-reading component's; default: the first component's record)."""
    started = time.perf_counter()
    records = {
        name: json.loads((folder / "metrics.json").read_text(encoding="utf-8")) for name, folder in components.items()
    }
    first = next(iter(records.values()))
    for name, record in records.items():
        for key in ("corpus", "protocol", "fold", "labels"):
            if record[key] != first[key]:
                raise ValueError(f"late fusion: {name} differs from the other model in {key!r}: cannot average")
        if [s["seed"] for s in record["seeds"]] != [s["seed"] for s in first["seeds"]]:
            raise ValueError(f"late fusion: {name} was run with other seeds than the other model")
        if _input_hashes(record) != _input_hashes(first):
            raise ValueError(f"late fusion: {name} was trained on another manifest or folds file than the other model")
    tables = {name: pd.read_parquet(folder / "predictions.parquet") for name, folder in components.items()}
    fused, dropped = _average(tables, task)
    seeds = []
    for seed, rows in fused.groupby("seed", sort=True):
        metrics = _metrics(rows, task)
        seeds.append({"seed": int(seed), "best_epoch": 0, "epochs_run": 0, "stopped_early": False, "test": metrics})
    record: dict[str, Any] = {
        "format": FOLD_FORMAT,
        **{k: first[k] for k in ("corpus", "protocol", "fold", "test_group", "text_source", "labels", "label_merge")},
        **({"text_source": text_source} if text_source else {}),
        "model": model,
        "family": "late_fusion",
        "task": task.as_dict(),
        "n": int(fused["utt_id"].nunique()),
        "seeds": seeds,
        "components": {name: {"model": r["model"], "job": r.get("job")} for name, r in records.items()},
        "utterances": {
            "used": {"test": int(fused["utt_id"].nunique())},
            "dropped": {"test": len(dropped)},
            "dropped_by_reason": {"not scored by every fused model": len(dropped)} if dropped else {},
            "dropped_utterances": [
                {"utt_id": u, "split": "test", "reason": "not scored by every fused model"} for u in dropped
            ],
            "prepare_counts": {},
        },
        "features": {},
        "hparams": {},
        "fixed": {},
        "optim": {},
        "train": first["train"],
        "inputs": first.get("inputs"),  # the manifest and folds file every component was trained on (checked above)
        "code": dict(code or {}),
        "warnings": [],
    }
    if task.categorical:
        record["confusion"] = np.sum([s["test"]["confusion"] for s in seeds], axis=0).tolist()
        record["absent_classes"] = seeds[0]["test"]["absent_classes"]
    for key in score_keys(task):
        record[key], record[f"{key}_std"] = mean_std([summary_scores(s["test"], task)[key] for s in seeds])
    out.checkpoints.mkdir(parents=True, exist_ok=True)
    write_text("seed\tepoch\n", out.history)
    write_parquet(pa_table(fused), out.predictions)
    fold_dir = out.metrics.parent
    record["files"] = {p.relative_to(fold_dir).as_posix(): hash_file(p) for p in (out.history, out.predictions)}
    write_json(record, out.metrics)
    write_json({"elapsed_s": time.perf_counter() - started, "runtime": {"device": "none"}, "pid": os.getpid()}, out.run)
    return record


def _input_hashes(record: Mapping[str, Any]) -> dict[str, str | None]:
    inputs = record.get("inputs") or {}
    return {name: (inputs.get(name) or {}).get("sha256") for name in ("manifest", "folds")}


def _average(tables: Mapping[str, pd.DataFrame], task: Task) -> tuple[pd.DataFrame, list[str]]:
    """The rows every model scored, their outputs averaged; the utterances some model did not score."""
    value_columns = [f"p_{c}" for c in task.outputs] if task.categorical else [f"pred_{d}" for d in task.outputs]
    keys = ["utt_id", "seed"]
    frames = list(tables.values())
    common = frames[0][keys]
    for frame in frames[1:]:
        common = common.merge(frame[keys], on=keys)
    every = set().union(*(set(f["utt_id"]) for f in frames))
    dropped = sorted(every - set(common["utt_id"]))
    aligned = [common.merge(f, on=keys, how="left") for f in frames]
    fused = aligned[0].copy()
    fused[value_columns] = np.mean([a[value_columns].to_numpy() for a in aligned], axis=0)
    if task.categorical:
        fused["prediction"] = [task.outputs[i] for i in fused[value_columns].to_numpy().argmax(axis=1)]
    return fused.sort_values(keys, kind="stable").reset_index(drop=True), dropped


def _metrics(rows: pd.DataFrame, task: Task) -> dict[str, Any]:
    if task.categorical:
        index = {c: i for i, c in enumerate(task.outputs)}
        y = rows["label"].map(index).to_numpy()
        p = rows["prediction"].map(index).to_numpy()
        return classification_metrics(confusion_matrix(y, p, len(task.outputs)), task.outputs)
    pred = rows[[f"pred_{d}" for d in task.outputs]].to_numpy()
    true = rows[[f"true_{d}" for d in task.outputs]].to_numpy()
    return regression_metrics(pred, true, task.outputs)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def pa_table(frame: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def component_folds(components: Sequence[str], corpus: str, protocol: str, fold: int) -> dict[str, Path]:
    return {name: Path(f"models/{corpus}/{name}/{protocol}/fold{fold}") for name in components}
