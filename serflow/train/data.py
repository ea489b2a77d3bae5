"""One fold's data: the model's feature stores intersected with the fold's utterances, prepared once.

An utterance of the fold is *dropped* (kept out of training and scoring, with the reason recorded and
counted in the results, never silently) when a store the model reads lacks it, when its label is not one
of the configured classes, or when the model's ``prepare()`` refuses it by raising ``ValueError`` (the
message is the reason). Any other exception from ``prepare()`` is a bug and propagates.

Every sample is prepared once per job and reused by all seeds; ``prepare()`` must therefore not depend on
the seed. The counts it reports (e.g. ``{"words_truncated": 3}``) are summed per split.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from serflow.shards import FeatureSet

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}

StoreArrays = Mapping[str, np.ndarray]  # utt_id -> [rows, dims] float32


@dataclass
class Split:
    """The usable utterances of one split, in utt_id order, with their targets (class indices, or the dimensions'
    values for a regression task) and prepared arrays."""

    ids: list[str] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    samples: list[dict[str, np.ndarray]] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        """int64 ``[N]`` class indices, or float32 ``[N, D]`` dimension values."""
        if self.labels and isinstance(self.labels[0], np.ndarray):
            return np.stack(self.labels).astype(np.float32)
        return np.asarray(self.labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Dropped:
    utt_id: str
    split: str
    reason: str


@dataclass
class FoldData:
    """Everything one fold job trains and scores on, and the account of what it left out."""

    protocol: str
    fold: int
    test_group: str
    splits: dict[str, Split]
    dropped: list[Dropped]
    counts: dict[str, dict[str, int]]  # split -> summed prepare() counts

    def summary(self) -> dict[str, Any]:
        """JSON-ready account: utterances used and dropped per split, reasons, prepare() counts."""
        return {
            "used": {name: len(split) for name, split in self.splits.items()},
            "dropped": {name: sum(d.split == name for d in self.dropped) for name in SPLITS},
            "dropped_by_reason": dict(sorted(Counter(d.reason for d in self.dropped).items())),
            "dropped_utterances": [{"utt_id": d.utt_id, "split": d.split, "reason": d.reason} for d in self.dropped],
            "prepare_counts": {name: dict(sorted(c.items())) for name, c in self.counts.items()},
        }


def fold_assignment(folds: pd.DataFrame, protocol: str, fold: int) -> tuple[str, dict[str, list[str]]]:
    """The fold's test group and its utterance ids per split (sorted), from the long folds table."""
    rows = folds[(folds["protocol"] == protocol) & (folds["fold"] == fold)]
    if rows.empty:
        have = sorted(folds.loc[folds["protocol"] == protocol, "fold"].unique().tolist())
        raise ValueError(f"the folds table has no fold {fold} of protocol {protocol!r} (it has {have or 'none'})")
    groups = rows["test_group"].unique().tolist()
    if len(groups) != 1:
        raise ValueError(f"fold {fold} of {protocol} has several test groups: {groups}")
    split = rows["split"].map(lambda s: SPLIT_ALIASES.get(s, s))
    unknown = sorted(set(split) - set(SPLITS))
    if unknown:
        raise ValueError(f"fold {fold} of {protocol}: unknown split names {unknown}; expected {SPLITS}")
    assignment = {name: sorted(rows.loc[split == name, "utt_id"].tolist()) for name in SPLITS}
    return str(groups[0]), assignment


def redraw_validation(
    assignment: Mapping[str, Sequence[str]], labels_by_utt: Mapping[str, str | None], fraction: float, fold: int
) -> dict[str, list[str]]:
    """The fold with its validation split drawn again: a class-stratified ``fraction`` of its training and
    validation utterances together (a family whose paper holds out another share, e.g. GBAN's 5 %); the test split
    is untouched, so the test fold still never takes part in model selection. Deterministic per fold and fraction.
    """
    from serflow.corpora.folds import stratified_pick

    pool = sorted([*assignment.get("train", ()), *assignment.get("valid", ())])
    table = pd.DataFrame({"utt_id": pool, "label": [labels_by_utt.get(u) for u in pool]})
    usable = table["label"].notna().to_numpy()
    rng = np.random.default_rng([fold, round(fraction * 1_000_000)])
    picked = set(table["utt_id"].to_numpy()[stratified_pick(table, usable, fraction, rng)])
    return {
        "train": [u for u in pool if u not in picked],
        "valid": [u for u in pool if u in picked],
        "test": list(assignment.get("test", ())),
    }


def store_arrays(store: FeatureSet, threads: int | None = None) -> dict[str, np.ndarray]:
    """Every utterance of a store as a view into one array read in a single pass (no per-utterance reads)."""
    data, offsets, ids = store.load_all(threads=threads)
    return {utt_id: data[offsets[i] : offsets[i + 1]] for i, utt_id in enumerate(ids)}


def open_stores(paths: Mapping[str, str | os.PathLike[str]]) -> dict[str, FeatureSet]:
    """The finished stores by name (``manifest.json`` and shard hashes are checked by FeatureSet)."""
    return {name: FeatureSet(path) for name, path in paths.items()}


def build_fold_data(
    model: Any,
    stores: Mapping[str, StoreArrays],
    labels_by_utt: Mapping[str, str | None],
    classes: Sequence[str],
    *,
    protocol: str,
    fold: int,
    test_group: str,
    assignment: Mapping[str, Sequence[str]],
    targets: Mapping[str, np.ndarray | str] | None = None,
) -> FoldData:
    """Prepare every utterance of the fold with ``model.prepare``; drop the unusable ones with reasons.

    The targets are the class indices of ``labels_by_utt`` over ``classes``, or, for a regression task, ``targets``:
    per utterance its values, or the reason it has none (:func:`serflow.train.tasks.dimensional_targets`); only
    utterances with a label in the classes take part either way (the folds are made of them).
    """
    index = {label: i for i, label in enumerate(classes)}
    splits = {name: Split() for name in SPLITS}
    counts: dict[str, Counter[str]] = {name: Counter() for name in SPLITS}
    dropped: list[Dropped] = []
    for name in SPLITS:
        for utt_id in assignment.get(name, ()):
            reason = _label_problem(utt_id, labels_by_utt, index) or _missing_stores(utt_id, stores)
            target: Any = None
            if reason is None and targets is not None:
                value = targets.get(utt_id, "not in the manifest")
                reason, target = (value, None) if isinstance(value, str) else (None, value)
            elif reason is None:
                target = index[labels_by_utt[utt_id]]  # type: ignore[index]
            if reason is None:
                reason = _prepare_into(model, utt_id, target, stores, splits[name], counts[name])
            if reason is not None:
                dropped.append(Dropped(utt_id, name, reason))
    for d in dropped:
        log.warning("dropped %s (%s): %s", d.utt_id, d.split, d.reason)
    return FoldData(protocol, fold, test_group, splits, dropped, {k: dict(v) for k, v in counts.items()})


def _label_problem(utt_id: str, labels_by_utt: Mapping[str, str | None], index: Mapping[str, int]) -> str | None:
    if utt_id not in labels_by_utt:
        return "not in the manifest"
    label = labels_by_utt[utt_id]
    if label is None or (isinstance(label, float) and np.isnan(label)):
        return "no label in the manifest"
    if label not in index:
        return f"label {label!r} is not one of the classes {list(index)}"
    return None


def _missing_stores(utt_id: str, stores: Mapping[str, StoreArrays]) -> str | None:
    missing = [name for name, arrays in stores.items() if utt_id not in arrays]
    if not missing:
        return None
    names = ", ".join(repr(m) for m in missing)
    return f"not in feature store {names}" if len(missing) == 1 else f"not in feature stores {names}"


def _prepare_into(
    model: Any, utt_id: str, label: Any, stores: Mapping[str, StoreArrays], split: Split, counts: Counter[str]
) -> str | None:
    """Run ``prepare()`` on one utterance and keep the result; a ``ValueError`` is a refusal (its reason)."""
    sample = {name: arrays[utt_id] for name, arrays in stores.items()}
    try:
        arrays, changed = model.prepare(sample)
    except ValueError as exc:
        return f"refused by prepare(): {exc}"
    for key, value in changed.items():
        counts[key] += int(value)
    split.ids.append(utt_id)
    split.labels.append(label)
    split.samples.append(arrays)
    return None
