"""``mfcc120``: MultiModal-ER's MFCC-40 + delta + delta-delta."""

from __future__ import annotations

import math

import librosa
import numpy as np
import torch

from serflow.features.acoustic.base import FeatureError
from serflow.features.acoustic.mel import CepstralExtractor, delta_kernel, deltas, project


class Mfcc120(CepstralExtractor):
    """MultiModal-ER's speech features: 40 MFCC + delta + delta-delta = 120, librosa's definition.

    The MultiModal-ER report (TESS) uses ``librosa.feature.mfcc(n_mfcc=40)`` with deltas and
    delta-deltas. librosa's defaults (n_fft 2048, hop 512, 128 mels) were set for 22.05 kHz music;
    at 16 kHz speech they give 128 ms windows and 32 ms hops. Chosen here, and the same for every
    corpus: 25 ms Hann window (n_fft 400), 10 ms hop, 40 mel bands 0-8000 Hz, so 40 MFCCs are a full
    orthonormal DCT of the 40 dB bands. Everything else is librosa's default: centred frames with zero
    padding, power mel spectrum, ``power_to_db`` with ``top_db=80`` (clipping each utterance at 80 dB
    below its own maximum), DCT-II ortho, no lifter, ``delta(width=9)`` and ``delta(order=2)``.
    Reference: ``m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=40, n_fft=400, hop_length=160,
    n_mels=40)``; ``np.vstack([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)]).T``.

    The report's silence trimming is the parameter ``trim_db`` (default None: no trimming):
    ``librosa.effects.trim(y, top_db=trim_db)`` with its defaults (RMS frames of 2048 samples, hop 512,
    relative to the utterance's loudest frame) runs on each signal before the features, exactly as the
    report's code does. A trimmed store is not on the audio's timeline (``frame_count``/``frame_times``
    then count from the first kept sample; don't build word spans on it), and an utterance too short once
    trimmed is refused with that reason. The MultiModal-ER family reads a store with the report's
    parameterisation (``models.mmer.stores.mfcc120``: librosa's defaults n_fft 2048, hop 512, 128 mels,
    ``trim_db: 25``), another version beside this default one. The cut/pad to 200 frames belongs to the
    model's input stage (:mod:`serflow.models.mmer`).
    """

    name = "mfcc120"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 400,
        win_length: int = 400,
        hop_length: int = 160,
        window: str = "hann",
        pad_mode: str = "constant",
        n_mels: int = 40,
        fmin: float = 0.0,
        fmax: float = 8000.0,
        amin: float = 1e-10,
        top_db: float | None = 80.0,
        n_mfcc: int = 40,
        delta_width: int = 9,
        trim_db: float | None = None,
    ) -> None:
        if trim_db is not None and not trim_db > 0:
            raise ValueError(f"trim_db must be > 0 dB (or None: no trimming), got {trim_db}")
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
                "top_db": top_db,
                "n_mfcc": n_mfcc,
                "delta_width": delta_width,
                "trim_db": trim_db,
            }
        )
        self._kernels = (delta_kernel(delta_width, 1), delta_kernel(delta_width, 2))

    @property
    def dims(self) -> int:
        return 3 * int(self._params["n_mfcc"])

    def _validated(self, audio: np.ndarray, index: int) -> np.ndarray:
        x = super()._validated(audio, index)
        if self._params["trim_db"] is None:
            return x
        trimmed = trim_silence(x, float(self._params["trim_db"]))
        if trimmed.size < self.min_samples:
            need = self.min_samples
            raise FeatureError(
                f"signal too short after trimming silence at {self._params['trim_db']} dB: {trimmed.size} of "
                f"{x.size} samples kept ({1000 * trimmed.size / self.sample_rate:.1f} ms), at least {need} "
                f"({1000 * need / self.sample_rate:.1f} ms) needed",
                index,
            )
        return np.ascontiguousarray(trimmed, dtype=np.float32)

    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        logmel = self._db(mel)
        top_db = self._params["top_db"]
        if top_db is not None:  # per item, over its own frames only
            valid = torch.arange(mel.shape[1])[None, :] < torch.as_tensor(frames)[:, None]
            peak = logmel.masked_fill(~valid[:, :, None], -math.inf).amax(dim=(1, 2))
            logmel = torch.maximum(logmel, (peak - float(top_db))[:, None, None])
        mfcc = project(logmel, self._dct_t, frames)
        first, second = self._kernels
        return torch.cat([mfcc, deltas(mfcc, frames, first), deltas(mfcc, frames, second)], dim=2)


def trim_silence(signal: np.ndarray, top_db: float) -> np.ndarray:
    """``librosa.effects.trim(signal, top_db=top_db)[0]`` (frame_length 2048, hop 512, reference: the loudest
    frame): the signal without its leading and trailing parts quieter than ``top_db`` below the peak. An
    all-silent signal gives an empty array."""
    return librosa.effects.trim(signal, top_db=top_db)[0]
