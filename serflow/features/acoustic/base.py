"""The extractor interface every acoustic feature implements, and its errors (see the package docstring)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from importlib import metadata
from typing import Any, ClassVar

import numpy as np


class FeatureError(ValueError):
    """The signal cannot give features (too short, not 1-D, non-finite), or the features came out non-finite.

    ``index`` is the position of the offending signal in an :meth:`Extractor.extract_batch` call
    (``None`` for :meth:`Extractor.extract`), so the caller can name the utterance.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def package_version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:  # pragma: no cover - a broken install
        return "unknown"


class Extractor(ABC):
    """A named, versioned, fully parameterised map from a 16 kHz mono signal to ``[frames, dims]`` float32.

    ``name`` and ``version`` identify the definition (``version`` is bumped whenever the output bytes
    for the same input and params change); ``params`` holds every setting, defaults filled, so the
    feature store can record exactly what produced a file.
    """

    name: ClassVar[str]

    def __init__(self, params: dict[str, Any]) -> None:
        self._params = dict(params)

    @property
    def params(self) -> dict[str, Any]:
        """Every setting of this extractor, defaults included (a copy)."""
        return dict(self._params)

    @property
    def sample_rate(self) -> int:
        return int(self._params["sample_rate"])

    @property
    @abstractmethod
    def dims(self) -> int:
        """Feature dimension D of every frame."""

    @property
    @abstractmethod
    def min_samples(self) -> int:
        """The shortest signal this extractor accepts; shorter ones raise :class:`FeatureError`."""

    @abstractmethod
    def frame_count(self, n_samples: int) -> int:
        """Frames produced for a signal of ``n_samples`` samples (at least :attr:`min_samples`)."""

    @abstractmethod
    def frame_times(self, n_frames: int) -> np.ndarray:
        """Centre of each of the first ``n_frames`` frames, in seconds (float64)."""

    @property
    def backend(self) -> str:
        """The libraries whose arithmetic produces the output, with versions, for provenance records."""
        return f"numpy {np.__version__}"

    def extract(self, audio: np.ndarray) -> np.ndarray:
        """Features of one signal: ``[frames, dims]`` float32, C-contiguous."""
        try:
            return self.extract_batch([audio])[0]
        except FeatureError as exc:
            raise FeatureError(str(exc)) from None

    def extract_batch(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Features of several signals, in order; identical, byte for byte, to :meth:`extract` on each."""
        signals = [self._validated(a, i) for i, a in enumerate(audios)]
        if not signals:
            return []
        out = self._compute(signals)
        for i, feats in enumerate(out):
            if not np.isfinite(feats).all():
                raise FeatureError("features contain NaN or infinite values", index=i)
        return out

    @abstractmethod
    def _compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Features of validated float32 1-D signals, each at least :attr:`min_samples` long."""

    def _validated(self, audio: np.ndarray, index: int) -> np.ndarray:
        x = np.asarray(audio)
        if x.ndim != 1:
            raise FeatureError(f"expected a 1-D mono signal, got an array of shape {x.shape}", index)
        if not np.issubdtype(x.dtype, np.floating):
            raise FeatureError(f"expected float samples in [-1, 1], got dtype {x.dtype}", index)
        if x.size < self.min_samples:
            need = self.min_samples
            raise FeatureError(
                f"signal too short: {x.size} samples ({1000 * x.size / self.sample_rate:.1f} ms), "
                f"at least {need} ({1000 * need / self.sample_rate:.1f} ms) needed",
                index,
            )
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise FeatureError("signal contains NaN or infinite samples", index)
        return x

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


def whole_samples(seconds: float, sample_rate: int, what: str) -> int:
    samples = seconds * sample_rate
    if samples < 1 or abs(samples - round(samples)) > 1e-6:
        raise ValueError(f"{what}={seconds} is not a whole number of samples at {sample_rate} Hz")
    return round(samples)
