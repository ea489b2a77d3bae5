"""``waveform``: WavFusion's input, the 16 kHz signal itself."""

from __future__ import annotations

import numpy as np

from serflow.features.acoustic.base import Extractor


class Waveform(Extractor):
    """WavFusion's input: the 16 kHz float signal itself, as ``[samples, 1]``.

    WavFusion fine-tunes wav2vec 2.0, which reads raw 16 kHz audio; storing it through the same
    interface lets the store, the folds and the loaders treat it like any other feature.
    """

    name = "waveform"

    def __init__(self, *, sample_rate: int = 16000) -> None:
        super().__init__({"sample_rate": sample_rate})

    @property
    def dims(self) -> int:
        return 1

    @property
    def min_samples(self) -> int:
        return 1

    def frame_count(self, n_samples: int) -> int:
        return n_samples

    def frame_times(self, n_frames: int) -> np.ndarray:
        return np.arange(n_frames) / self.sample_rate

    def _compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        return [x.reshape(-1, 1).copy() for x in signals]
