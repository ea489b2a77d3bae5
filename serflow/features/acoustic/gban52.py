"""``gban52``: GBAN's 26 log-mel + 13 MFCC + 13 deltas."""

from __future__ import annotations

import numpy as np
import torch

from serflow.features.acoustic.mel import CepstralExtractor, delta_kernel, deltas, project


class Gban52(CepstralExtractor):
    """GBAN's frame features: 26 log-mel bands (dB, 0-6500 Hz) + 13 MFCC + 13 MFCC deltas = 52.

    GBAN (Liu et al., "Group Gated Fusion on Attention-based Bidirectional Alignment for Multimodal
    Emotion Recognition", Interspeech 2020): 16 kHz, 25 ms Hamming window, 10 ms hop, n_fft 512,
    26 log-mel bands up to 6.5 kHz, 13 MFCCs and their deltas. The paper leaves the log, the DCT and the
    delta rule open; chosen here, librosa's conventions throughout: power mel spectrum in dB
    (``power_to_db``, no ``top_db``), MFCC = first 13 orthonormal DCT-II coefficients of those 26 dB
    values (``librosa.feature.mfcc(S=logmel)``), deltas = ``librosa.feature.delta(mfcc, width=9)``.
    Centred frames with zero padding. Not cut to GBAN's 750 frames: the model does that.
    """

    name = "gban52"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hamming",
        pad_mode: str = "constant",
        n_mels: int = 26,
        fmin: float = 0.0,
        fmax: float = 6500.0,
        amin: float = 1e-10,
        n_mfcc: int = 13,
        delta_width: int = 9,
    ) -> None:
        super().__init__(
            {
                "sample_rate": sample_rate,
                "n_fft": n_fft,
                "win_length": win_length,
                "hop_length": hop_length,
                "window": window,
                "pad_mode": pad_mode,
                "n_mels": n_mels,
                "fmin": fmin,
                "fmax": fmax,
                "amin": amin,
                "n_mfcc": n_mfcc,
                "delta_width": delta_width,
            }
        )
        self._kernel = delta_kernel(delta_width, 1)

    @property
    def dims(self) -> int:
        return int(self._params["n_mels"]) + 2 * int(self._params["n_mfcc"])

    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        logmel = self._db(mel)
        mfcc = project(logmel, self._dct_t, frames)
        return torch.cat([logmel, mfcc, deltas(mfcc, frames, self._kernel)], dim=2)
