"""Cross-validation folds: speaker-independent (leave one session or speaker out) and the MultiModal-ER random split.

``loso_session``: one fold per session; test = that session; validation = a seeded, label-stratified
fraction of the training sessions' utterances (model selection never sees the test fold).
``loso_speaker``: one fold per speaker; test = that speaker; validation = the other speaker of the
same session when the session has exactly two (the MFCNN14 protocol), else a stratified fraction. On TESS
(each actress her own session) that is: train on one actress, test on the other, validation a stratified
share of the training actress.
``random_split``: the MultiModal-ER report's protocol, one fold; every class is shuffled (seeded) and cut into
train / valid / test shares (70 / 15 / 15 % by default). Both speakers are in every split: it is *not*
speaker-independent, and ``fold_summary`` says so.

Only utterances with a label in the configured classes take part. Output is long format, one row per
(protocol, fold, utterance): columns ``protocol, fold, test_group, utt_id, split``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.corpora.settings import random_split_settings

PROTOCOLS = ("loso_session", "loso_speaker", "random_split")
SPEAKER_INDEPENDENT = {"loso_session": True, "loso_speaker": True, "random_split": False}
RANDOM_TEST_GROUP = "random"
FOLD_SCHEMA = pa.schema(
    [
        ("protocol", pa.string()),
        ("fold", pa.int32()),
        ("test_group", pa.string()),
        ("utt_id", pa.string()),
        ("split", pa.string()),
    ]
)


def make_folds(
    manifest: pd.DataFrame,
    protocols: Iterable[str] = ("loso_session", "loso_speaker"),
    seed: int = 0,
    validation_fraction: float = 0.1,
    random_split: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """All folds of the requested protocols; deterministic for a given manifest and seeds.

    ``random_split``: ``{train, valid, seed}`` of the ``random_split`` protocol (defaults 0.7, 0.15, 42; its own
    seed, not ``seed``, which draws the LOSO protocols' validation splits).
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    labelled = manifest.loc[manifest["label"].notna(), ["utt_id", "session", "speaker", "label"]]
    labelled = labelled.sort_values("utt_id", kind="stable").reset_index(drop=True)
    if labelled.empty:
        raise ValueError("no utterance has a label in the configured classes: nothing to make folds of")
    frames = []
    for protocol in protocols:
        if protocol == "loso_session":
            frames.append(_loso(labelled, "session", protocol, seed, validation_fraction))
        elif protocol == "loso_speaker":
            frames.append(_loso(labelled, "speaker", protocol, seed, validation_fraction))
        elif protocol == "random_split":
            frames.append(_random_split(labelled, random_split_settings({"random_split": random_split})))
        else:
            raise ValueError(f"unknown fold protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return pd.concat(frames, ignore_index=True)


def _loso(labelled: pd.DataFrame, group_col: str, protocol: str, seed: int, fraction: float) -> pd.DataFrame:
    groups = sorted(labelled[group_col].unique())
    if len(groups) < 2:
        raise ValueError(f"{protocol} needs at least two {group_col}s, the corpus has {groups}")
    parts = []
    for fold, group in enumerate(groups, start=1):
        split = np.full(len(labelled), "train", dtype=object)
        is_test = (labelled[group_col] == group).to_numpy()
        split[is_test] = "test"
        partner = _partner_speaker(labelled, group) if group_col == "speaker" else None
        if partner is not None:
            split[(labelled["speaker"] == partner).to_numpy()] = "valid"
        else:
            rng = np.random.default_rng([seed, PROTOCOLS.index(protocol), fold])
            split[stratified_pick(labelled, ~is_test, fraction, rng)] = "valid"
        test_group = f"Session{group}" if group_col == "session" else str(group)
        parts.append(
            pd.DataFrame(
                {
                    "protocol": protocol,
                    "fold": fold,
                    "test_group": test_group,
                    "utt_id": labelled["utt_id"],
                    "split": split,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def _random_split(labelled: pd.DataFrame, settings: Mapping[str, Any]) -> pd.DataFrame:
    """One fold: per class (in sorted order), the utterances in ``utt_id`` order, shuffled with the split's seed, then
    cut into round(train * n) train, round(valid * n) valid and the rest test."""
    split = np.full(len(labelled), "test", dtype=object)
    rng = np.random.default_rng([settings["seed"], PROTOCOLS.index("random_split")])
    for label in sorted(labelled["label"].unique()):
        members = rng.permutation(np.flatnonzero((labelled["label"] == label).to_numpy()))
        n_train = min(len(members), round(settings["train"] * len(members)))
        n_valid = min(len(members) - n_train, round(settings["valid"] * len(members)))
        split[members[:n_train]] = "train"
        split[members[n_train : n_train + n_valid]] = "valid"
    return pd.DataFrame(
        {
            "protocol": "random_split",
            "fold": 1,
            "test_group": RANDOM_TEST_GROUP,
            "utt_id": labelled["utt_id"],
            "split": split,
        }
    )


def _partner_speaker(labelled: pd.DataFrame, speaker: str) -> str | None:
    session = labelled.loc[labelled["speaker"] == speaker, "session"].iloc[0]
    speakers = sorted(labelled.loc[labelled["session"] == session, "speaker"].unique())
    if len(speakers) != 2:
        return None
    return speakers[1] if speakers[0] == speaker else speakers[0]


def stratified_pick(labelled: pd.DataFrame, pool: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Row positions of a per-class ``fraction`` of the pool (at least one per class with two or more)."""
    picked = []
    for label in sorted(labelled.loc[pool, "label"].unique()):
        candidates = np.flatnonzero(pool & (labelled["label"] == label).to_numpy())
        n = round(fraction * len(candidates))
        if n == 0 and len(candidates) >= 2:
            n = 1
        picked.append(rng.permutation(candidates)[:n])
    return np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)


def fold_table(folds: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(folds, schema=FOLD_SCHEMA, preserve_index=False)


def fold_summary(folds: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Utterances per protocol, fold, split and class: the table to eyeball before training. Its
    ``speaker_independent`` column is false for ``random_split`` (the same speakers in train and test)."""
    joined = folds.merge(manifest[["utt_id", "label"]], on="utt_id", how="left")
    summary = (
        joined.groupby(["protocol", "fold", "test_group", "split", "label"], observed=True)
        .size()
        .unstack("label", fill_value=0)
        .reset_index()
    )
    summary.columns.name = None
    summary.insert(3, "speaker_independent", summary["protocol"].map(SPEAKER_INDEPENDENT).astype(bool))
    return summary


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
