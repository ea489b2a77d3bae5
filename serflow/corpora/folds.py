"""Speaker-independent cross-validation folds.

``loso_session``: one fold per session; test = that session; validation = a seeded, label-stratified
fraction of the training sessions' utterances (model selection never sees the test fold).
``loso_speaker``: one fold per speaker; test = that speaker; validation = the other speaker of the
same session when the session has exactly two (the MFCNN14 protocol), else a stratified fraction.

Only utterances with a label in the configured classes take part. Output is long format, one row per
(protocol, fold, utterance): columns ``protocol, fold, test_group, utt_id, split``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

PROTOCOLS = ("loso_session", "loso_speaker")
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
    manifest: pd.DataFrame, protocols: Iterable[str] = PROTOCOLS, seed: int = 0, validation_fraction: float = 0.1
) -> pd.DataFrame:
    """All folds of the requested protocols; deterministic for a given manifest and seed."""
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
    """Utterances per protocol, fold, split and class: the table to eyeball before training."""
    joined = folds.merge(manifest[["utt_id", "label"]], on="utt_id", how="left")
    return (
        joined.groupby(["protocol", "fold", "test_group", "split", "label"], observed=True)
        .size()
        .unstack("label", fill_value=0)
        .reset_index()
    )


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
