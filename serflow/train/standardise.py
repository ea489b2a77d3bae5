"""Optional standardisation of frame-level acoustic features, per fold (``train.feature_scaling``).

None of the reproduced papers says it standardises its frame features, so the default is ``none``: the stores'
values as they are. The other settings standardise each feature dimension, ``(x - mean) / std``, of every
frame-level acoustic store a model reads (:data:`SCALED_STORES`: ``mfcc39``, ``gban52``, ``logmel64``,
``mfcc120``). The ``waveform`` store is left alone (WavFusion normalises each raw signal as wav2vec 2.0's feature
extractor does), and so are text, token and span stores.

- ``global``: one mean and std per store and dimension, over all frames of the fold's *training-split* utterances
  only, applied to the training, validation and test utterances alike. Validation and test audio take no part.
- ``speaker``: each speaker normalised with their own statistics, as speaker normalisation usually is in speech
  emotion recognition. A speaker with utterances in the training split gets the statistics of those training
  utterances, applied to all of that speaker's utterances of the fold. A speaker with none there (under
  ``loso_session`` the test session's speakers; under ``loso_speaker`` the test speaker and the validation partner)
  gets the statistics of their own utterances of the split they are in: a test speaker is normalised with the
  statistics of their own test audio. That is transductive (the test audio, as a whole, is seen before its
  utterances are scored) but it uses no label: only frames go into the statistics, never a label or a target, and
  the validation and test speakers' statistics are computed per split, never across splits. Every result says which
  split each speaker's statistics came from (``fitted_on``) and whether any came from outside the training split
  (``transductive``); under ``random_split`` every speaker has training utterances, so nothing is.

The std is the population std (ddof 0) over the frames; a dimension whose std is below :data:`STD_FLOOR` (a
constant one) is only centred (divided by 1), so it becomes zeros, never NaN; such dimensions are counted. The
statistics are computed in float64 over the concatenated frames (vectorised, in row blocks), the scaled frames are
new float32 arrays for the fold's utterances only; the loaded stores are not changed. Computed once per fold job,
before ``prepare()``, so every seed sees the same frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from serflow.train.config import AUDIO_STORES, FEATURE_SCALINGS

SCALED_STORES = AUDIO_STORES - {"waveform"}
STD_FLOOR = 1.0e-8
BLOCK_ROWS = 1 << 16  # rows per block of the variance pass (bounds its float64 temporary)
SPLIT_ORDER = ("train", "valid", "test")

StoreArrays = Mapping[str, np.ndarray]
Group = tuple[str, str]  # (speaker, or "" for global; the split the statistics come from)


@dataclass(frozen=True)
class Moments:
    """One group's statistics: per-dimension ``mean`` and the divisor ``scale`` (the std, 1 where below the floor)."""

    mean: np.ndarray
    scale: np.ndarray
    utterances: int
    frames: int
    constant_dims: int

    def apply(self, frames: np.ndarray) -> np.ndarray:
        return ((frames - self.mean) / self.scale).astype(frames.dtype, copy=False)


def fit_moments(arrays: Sequence[np.ndarray]) -> Moments:
    """Mean and std per dimension over all rows of ``arrays`` (float64; two passes, the second in row blocks)."""
    frames = np.concatenate(arrays, axis=0) if len(arrays) != 1 else arrays[0]
    if not len(frames):
        raise ValueError("no frames to compute feature statistics from")
    mean = frames.sum(axis=0, dtype=np.float64) / len(frames)
    squares = np.zeros_like(mean)
    for start in range(0, len(frames), BLOCK_ROWS):
        block = frames[start : start + BLOCK_ROWS] - mean
        squares += np.einsum("ij,ij->j", block, block)
    std = np.sqrt(squares / len(frames))
    constant = std < STD_FLOOR
    return Moments(mean, np.where(constant, 1.0, std), len(arrays), len(frames), int(constant.sum()))


def scaled_stores(names: Sequence[str]) -> list[str]:
    """The stores of ``names`` that feature scaling applies to, sorted."""
    return sorted(name for name in names if name in SCALED_STORES)


def fit_groups(
    assignment: Mapping[str, Sequence[str]], mode: str, speakers: Mapping[str, str] | None = None
) -> tuple[dict[str, Group], dict[Group, list[str]]]:
    """Which group's statistics scale each utterance of the fold, and the utterances each group is fitted on.

    ``global``: one group, fitted on the training split. ``speaker``: a speaker's training utterances where they have
    any, else their own utterances of the split they are in (``speakers``: utt_id -> speaker, from the manifest;
    an utterance without one is left to the fold's own checks, which drop it as not in the manifest).
    """
    if mode == "global":
        group: Group = ("", "train")
        members = {utt: group for name in SPLIT_ORDER for utt in assignment.get(name, ())}
        return members, {group: list(assignment.get("train", ()))}
    if speakers is None:
        raise ValueError("train.feature_scaling: speaker needs the manifest's speakers")
    trained = {speakers[u] for u in assignment.get("train", ()) if u in speakers}
    members, fitted = {}, {}
    for name in SPLIT_ORDER:
        for utt in assignment.get(name, ()):
            if utt not in speakers:
                continue
            source = "train" if speakers[utt] in trained else name
            members[utt] = (speakers[utt], source)
            if source == name:
                fitted.setdefault(members[utt], []).append(utt)
    return members, fitted


def scale_store(
    arrays: StoreArrays, members: Mapping[str, Group], fitted: Mapping[Group, Sequence[str]]
) -> tuple[dict[str, np.ndarray], dict[Group, Moments]]:
    """The fold's utterances of one store, scaled with their group's statistics (those absent from it stay absent)."""
    moments: dict[Group, Moments] = {}
    for group in sorted({members[u] for u in members if u in arrays}):
        present = [arrays[u] for u in fitted.get(group, ()) if u in arrays]
        if not present:
            who = f"speaker {group[0]!r}" if group[0] else "the fold"
            raise ValueError(f"feature scaling: no {group[1]} utterance of {who} in the store to fit statistics on")
        moments[group] = fit_moments(present)
    scaled = {utt: moments[group].apply(arrays[utt]) for utt, group in members.items() if utt in arrays}
    return scaled, moments


def scale_fold_stores(
    stores: Mapping[str, StoreArrays],
    assignment: Mapping[str, Sequence[str]],
    mode: str,
    speakers: Mapping[str, str] | None = None,
) -> tuple[dict[str, StoreArrays], dict[str, Any]]:
    """The stores with every frame-level acoustic one scaled for this fold, and the record of what was done.

    ``none`` returns the stores as given (the very same arrays). Otherwise a scaled store holds the fold's
    utterances only, as new arrays; every other store is passed through untouched.
    """
    if mode not in FEATURE_SCALINGS:
        raise ValueError(f"train.feature_scaling must be one of {FEATURE_SCALINGS}, got {mode!r}")
    if mode == "none":
        return dict(stores), {"mode": "none"}
    members, fitted = fit_groups(assignment, mode, speakers)
    out: dict[str, StoreArrays] = dict(stores)
    summary: dict[str, Any] = {}
    groups: set[Group] = set()
    for name in scaled_stores(list(stores)):
        out[name], moments = scale_store(stores[name], members, fitted)
        summary[name] = _store_summary(moments)
        groups |= set(moments)
    return out, _record(mode, summary, groups)


def _store_summary(moments: Mapping[Group, Moments]) -> dict[str, int]:
    values = list(moments.values())
    return {
        "groups": len(values),
        "utterances": sum(m.utterances for m in values),
        "frames": sum(m.frames for m in values),
        "constant_dims": sum(m.constant_dims for m in values),
    }


def _record(mode: str, stores: dict[str, dict[str, int]], groups: set[Group]) -> dict[str, Any]:
    """What the fold records (``feature_scaling`` in ``metrics.json``; ``docs/results.md``)."""
    if mode == "global":
        return {"mode": mode, "fitted_on": "train", "stores": stores, "std_floor": STD_FLOOR}
    splits: dict[str, list[str]] = {}
    for speaker, split in groups:
        splits.setdefault(speaker, []).append(split)
    fitted_on = {s: "+".join(sorted(v, key=SPLIT_ORDER.index)) for s, v in sorted(splits.items())}
    return {
        "mode": mode,
        "fitted_on": fitted_on,  # speaker -> the split their statistics came from (valid+test: one set per split)
        "transductive": any(split != "train" for _, split in groups),
        "stores": stores,
        "std_floor": STD_FLOOR,
    }
