"""``mfcc39``: WISE's MFCC-39 through openSMILE with the project's ``mfcc39.conf``."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from serflow.features.acoustic.base import Extractor, package_version, whole_samples

MFCC39_CONFIG = Path(__file__).resolve().parent / "opensmile" / "mfcc39.conf"
CODE_RESOURCES = ("opensmile/mfcc39.conf",)  # part of this extractor's code identity (serflow.provenance)


class Mfcc39(Extractor):
    """WISE's frame features: 13 HTK-style MFCC (c0..c12) + delta + acceleration, 25 ms / 15 ms, via openSMILE.

    WISE (Shen et al., Interspeech 2020) extracts 39-dimensional MFCCs with openSMILE over "frames of
    25ms window with 40% overlap", i.e. one every 15 ms; it names no other setting, so the rest follows
    HTK's MFCC_0_D_A convention that openSMILE's HTK-compatible components implement. The pipeline is
    ``opensmile/mfcc39.conf`` (framing without padding, pre-emphasis 0.97 within each frame, Hamming,
    FFT magnitude, 26 HTK mel bands, DCT with lifter 22, delta regression over +-2 frames twice).
    Every param below is passed to that file as a ``\\cm``
    option, so changing a param changes the pipeline the file describes; the file's own defaults equal
    these defaults.

    Column order: ``c0..c12``, then their deltas, then accelerations. openSMILE emits HTK's order
    (``c1..c12, c0``); the columns are rotated so that column ``k`` of each block is ``c_k``.

    openSMILE receives 16-bit samples (the ``opensmile`` package scales by 32768 and truncates), so the
    signal is clipped to [-1, 32767/32768] first: a sample at +1.0 would otherwise wrap to -32768.
    openSMILE's first-order deltas replicate the edge frames (HTK); its accelerations do so at the start
    but not over the last ``delta_window`` frames, which come from its end-of-input flush.
    """

    name = "mfcc39"
    feature_level = "mfcc39"

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        frame_size_s: float = 0.025,
        frame_step_s: float = 0.015,
        preemphasis: float = 0.97,
        n_bands: int = 26,
        fmin: float = 0.0,
        fmax: float = 8000.0,
        n_ceps: int = 13,
        lifter: float = 22.0,
        delta_window: int = 2,
    ) -> None:
        super().__init__(
            {
                "sample_rate": sample_rate,
                "frame_size_s": frame_size_s,
                "frame_step_s": frame_step_s,
                "preemphasis": preemphasis,
                "n_bands": n_bands,
                "fmin": fmin,
                "fmax": fmax,
                "n_ceps": n_ceps,
                "lifter": lifter,
                "delta_window": delta_window,
            }
        )
        self._size = whole_samples(frame_size_s, sample_rate, "frame_size_s")
        self._step = whole_samples(frame_step_s, sample_rate, "frame_step_s")
        if not 2 <= n_ceps <= n_bands:
            raise ValueError(f"n_ceps must be between 2 and n_bands ({n_bands}), got {n_ceps}")
        if delta_window < 1:
            raise ValueError(f"delta_window must be >= 1, got {delta_window}")
        n = n_ceps  # openSMILE order within a block is c1..c{n-1}, c0
        block = np.r_[n - 1, 0 : n - 1]
        self._columns = np.concatenate([block, block + n, block + 2 * n])

    @property
    def dims(self) -> int:
        return 3 * int(self._params["n_ceps"])

    @property
    def min_samples(self) -> int:
        return self._size

    def frame_count(self, n_samples: int) -> int:
        return 0 if n_samples < self._size else (n_samples - self._size) // self._step + 1

    def frame_times(self, n_frames: int) -> np.ndarray:
        return (np.arange(n_frames) * self._step + self._size / 2) / self.sample_rate

    @property
    def backend(self) -> str:
        return f"opensmile {package_version('opensmile')}"

    @property
    def options(self) -> dict[str, Any]:
        """The ``\\cm`` options handed to ``mfcc39.conf``."""
        p = self._params
        return {
            "frameSize": p["frame_size_s"],
            "frameStep": p["frame_step_s"],
            "preemphasis": p["preemphasis"],
            "nBands": p["n_bands"],
            "lofreq": p["fmin"],
            "hifreq": p["fmax"],
            "lastMfcc": p["n_ceps"] - 1,
            "cepLifter": p["lifter"],
            "deltaWin": p["delta_window"],
        }

    @cached_property
    def smile(self) -> Any:
        """The configured ``opensmile.Smile`` (built on first use: importing opensmile takes a while)."""
        import opensmile

        return opensmile.Smile(
            feature_set=str(MFCC39_CONFIG),
            feature_level=self.feature_level,
            options=self.options,
            sampling_rate=self.sample_rate,
        )

    def _compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        # One openSMILE run per signal: the engine has no batch mode. ``Smile.__call__`` is
        # ``process_signal`` without building a DataFrame (same engine, same numbers).
        smile = self.smile
        top = np.float32(32767 / 32768)
        out = []
        for x in signals:
            feats = smile(np.clip(x, -1.0, top), self.sample_rate)[0]  # [dims, frames], openSMILE order
            out.append(np.ascontiguousarray(feats[self._columns].T, dtype=np.float32))
        return out
