"""PyTorch access to feature stores: one item per utterance, several features side by side, padded batches.

Every feature set is checked up front for every requested utterance, so a missing feature fails when the
dataset is built rather than hours into training. Items copy their frames out of the memory map (the
map is read-only and a batch is padded into new memory anyway); padding is one ``pad_sequence`` call per
feature, with no Python loop over frames.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

from serflow.shards.reader import FeatureSet

RESERVED_KEYS = frozenset({"utt_id", "label", "lengths"})


class FeatureDataset(Dataset[dict[str, Any]]):
    """Items ``{"utt_id": str, <feature>: float32 [T, D] tensor, ..., "label": tensor}`` (label if given).

    ``labels`` is aligned with ``utt_ids`` (class indices, or rows of regression targets such as VAD) or a
    mapping from utterance id to label.
    """

    def __init__(
        self,
        feature_sets: Mapping[str, FeatureSet],
        utt_ids: Sequence[str],
        labels: Sequence[Any] | np.ndarray | Mapping[str, Any] | None = None,
    ) -> None:
        if not feature_sets:
            raise ValueError("FeatureDataset needs at least one feature set")
        clash = sorted(RESERVED_KEYS & set(feature_sets))
        if clash:
            raise ValueError(f"feature names {clash} are reserved for batch keys; rename the feature sets")
        self.feature_sets = dict(feature_sets)
        self.utt_ids = list(utt_ids)
        for name, fs in self.feature_sets.items():
            missing = [u for u in self.utt_ids if u not in fs]
            if missing:
                raise KeyError(f"feature {name!r} ({fs.path}) lacks {len(missing)} utterances, e.g. {missing[:3]}")
        self.labels = None if labels is None else _label_tensor(labels, self.utt_ids)

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        utt_id = self.utt_ids[i]
        item: dict[str, Any] = {"utt_id": utt_id}
        for name, fs in self.feature_sets.items():
            item[name] = torch.from_numpy(np.array(fs[utt_id]))  # copy out of the read-only map
        if self.labels is not None:
            item["label"] = self.labels[i]
        return item


def _label_tensor(labels: Sequence[Any] | np.ndarray | Mapping[str, Any], utt_ids: Sequence[str]) -> torch.Tensor:
    if isinstance(labels, Mapping):
        missing = [u for u in utt_ids if u not in labels]
        if missing:
            raise KeyError(f"no label for {len(missing)} utterances, e.g. {missing[:3]}")
        labels = [labels[u] for u in utt_ids]
    values = np.asarray(labels)
    if len(values) != len(utt_ids):
        raise ValueError(f"{len(values)} labels for {len(utt_ids)} utterances")
    if values.dtype.kind not in "biuf":
        raise TypeError(f"labels must be numbers (class indices or targets), got dtype {values.dtype}")
    return torch.from_numpy(values.astype(np.float32 if values.dtype.kind == "f" else np.int64))


def collate_padded(batch: Sequence[Mapping[str, Any]], padding_value: float = 0.0) -> dict[str, Any]:
    """Stack items from :class:`FeatureDataset` into a batch.

    Returns ``{"utt_id": [B] list, <feature>: [B, T_max, D] float32 zero-padded, "lengths": {<feature>: [B]
    int64}, "label": [B, ...]}`` (label if the items have one). Each feature is padded to its own
    ``T_max``: features of one utterance may differ in frame rate.
    """
    if not batch:
        raise ValueError("cannot collate an empty batch")
    names = [k for k in batch[0] if k not in RESERVED_KEYS]
    out: dict[str, Any] = {"utt_id": [item["utt_id"] for item in batch], "lengths": {}}
    for name in names:
        tensors = [item[name] for item in batch]
        out[name] = pad_sequence(tensors, batch_first=True, padding_value=padding_value)
        out["lengths"][name] = torch.tensor([t.shape[0] for t in tensors], dtype=torch.int64)
    if "label" in batch[0]:
        out["label"] = torch.stack([item["label"] for item in batch])
    return out
