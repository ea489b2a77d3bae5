"""Batches bounded by padded length: a batch holds at most ``max_total`` samples, padding included.

Raw-audio models (WavFusion's wav2vec 2.0) cost memory in proportion to the padded batch, ``len(batch) x``
its longest utterance, and IEMOCAP's utterances run from under a second to over 30 s. A fixed number of
utterances per batch either wastes most of a batch on padding or runs out of memory on the long ones. So:

1. the utterances are shuffled with a generator seeded by ``(seed, epoch)``;
2. the shuffled order is cut into windows of ``window`` utterances and each window is sorted by length
   (longest first): similar lengths meet, yet which utterances meet still changes every epoch;
3. each sorted window is packed greedily: an utterance joins the current batch while
   ``(len(batch) + 1) x longest <= max_total`` (and ``len(batch) < max_size`` if given), else it opens a new
   batch; an utterance longer than ``max_total`` on its own forms a batch of one and is reported;
4. the batches are shuffled (same generator), so an epoch does not run from long to short.

Every index appears in exactly one batch; the same ``(lengths, max_total, seed, epoch)`` gives the same
batches. Pure Python/NumPy: no torch. :func:`inference_batches` is the unshuffled form for scoring (sorted
globally, least padding); its caller puts the outputs back in the original order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_WINDOW = 256  # utterances sorted together: ~50-100 batches' worth at IEMOCAP's lengths


@dataclass(frozen=True)
class BatchPlan:
    """The batches (lists of indices into ``lengths``) and the indices that alone exceed the bound."""

    batches: list[list[int]]
    oversized: list[int] = field(default_factory=list)

    def padded_total(self, lengths: Sequence[int] | np.ndarray) -> int:
        """Samples the batches hold, padding included: the sum over batches of size x longest."""
        return padded_total(self.batches, lengths)


def length_batches(
    lengths: Sequence[int] | np.ndarray,
    max_total: int,
    *,
    seed: int,
    epoch: int,
    window: int = DEFAULT_WINDOW,
    max_size: int | None = None,
) -> BatchPlan:
    """The training batches of one epoch (module docstring); deterministic in ``(seed, epoch)``."""
    lengths = _check(lengths, max_total, window, max_size)
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    plan = _pack(order, lengths, max_total, window, max_size)
    shuffled = [plan.batches[i] for i in rng.permutation(len(plan.batches))]
    return BatchPlan(shuffled, plan.oversized)


def inference_batches(lengths: Sequence[int] | np.ndarray, max_total: int, *, max_size: int | None = None) -> BatchPlan:
    """Unshuffled batches for scoring: all utterances sorted by length (longest first), then packed."""
    lengths = _check(lengths, max_total, 1, max_size)
    return _pack(np.arange(len(lengths)), lengths, max_total, max(len(lengths), 1), max_size)


def padded_total(batches: Sequence[Sequence[int]], lengths: Sequence[int] | np.ndarray) -> int:
    """Samples held by ``batches`` when each is padded to its longest utterance."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return int(sum(len(b) * int(lengths[list(b)].max()) for b in batches if len(b)))


def _check(lengths: Sequence[int] | np.ndarray, max_total: int, window: int, max_size: int | None) -> np.ndarray:
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (len(lengths) and not np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError(f"lengths must be a 1-d sequence of integers, got shape {lengths.shape} {lengths.dtype}")
    lengths = lengths.astype(np.int64)
    if len(lengths) and lengths.min() < 0:
        raise ValueError("lengths must be >= 0")
    if max_total < 1 or window < 1 or (max_size is not None and max_size < 1):
        raise ValueError(f"max_total, window and max_size must be >= 1: {max_total=}, {window=}, {max_size=}")
    return lengths


def _pack(order: np.ndarray, lengths: np.ndarray, max_total: int, window: int, max_size: int | None) -> BatchPlan:
    """Sort each window of ``order`` by length (longest first, stable) and fill batches greedily."""
    batches: list[list[int]] = []
    oversized: list[int] = []
    limit = max_size or len(order)
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort(-lengths[chunk], kind="stable")]
        current: list[int] = []
        longest = 0
        for index in chunk.tolist():
            n = int(lengths[index])
            if n > max_total:  # alone above the bound: a batch of its own, reported
                oversized.append(index)
                batches.append([index])
                continue
            width = max(longest, n)  # sorted: the first utterance is the longest, but stay safe
            if current and ((len(current) + 1) * width > max_total or len(current) >= limit):
                batches.append(current)
                current, width = [], n
            current.append(index)
            longest = width
        if current:
            batches.append(current)
    return BatchPlan(batches, oversized)
