"""The mel features' shared machinery: per-item padding, batched ``torch.stft``, mel projection, DCT, deltas."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar

import librosa
import numpy as np
import torch

from serflow.features.acoustic.base import Extractor


def dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Rows 0..n_out-1 of the orthonormal DCT-II on ``n_in`` points (scipy's ``dct(type=2, norm="ortho")``)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def delta_kernel(width: int, order: int) -> np.ndarray:
    """Taps of the ``order``-th derivative of a degree-``order`` least-squares polynomial over ``width`` frames.

    This is the Savitzky-Golay filter ``librosa.feature.delta`` applies (``polyorder=order``,
    ``deriv=order``). With the polynomial's degree equal to the derivative's order the derivative is
    the same everywhere in the window, which is what makes librosa's ``mode="interp"`` edges simple: the
    first and last ``width // 2`` outputs equal the nearest full-window output.
    """
    pos = np.arange(width, dtype=np.float64) - width // 2
    coef = np.linalg.pinv(np.vander(pos, order + 1, increasing=True))  # [order+1, width]
    return math.factorial(order) * coef[order]


def deltas(x: torch.Tensor, frames: np.ndarray, kernel: np.ndarray) -> torch.Tensor:
    """Savitzky-Golay deltas along time of ``x`` ``[B, T, C]``; item ``b`` has ``frames[b]`` valid frames.

    The full-window outputs are a sum of shifted slices (one per tap, fixed order, so every item gets
    the same float operations whatever the batch); the edges then copy the nearest full-window output
    of the item itself, found with a per-item clamped index.
    """
    width = len(kernel)
    half = width // 2
    n_full = x.shape[1] - width + 1
    full = torch.zeros((x.shape[0], n_full, x.shape[2]), dtype=x.dtype)
    for j, tap in enumerate(kernel.tolist()):
        if tap != 0.0:
            full += tap * x[:, j : j + n_full]
    t = torch.arange(x.shape[1])[None, :] - half
    last = torch.as_tensor(frames - width)[:, None]
    index = torch.minimum(t.clamp(min=0), last)  # [B, T]
    return torch.gather(full, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def project(x: torch.Tensor, matrix: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
    """``x[b, :frames[b]] @ matrix`` for each item; rows past an item's frames are left at zero.

    One matrix product per item, on a fresh copy of its rows, rather than one for the whole batch:
    BLAS picks its kernel (and so its rounding) by the operands' shape *and* memory alignment, so a
    frame's values would otherwise depend on the batch it came in (measured with MKL: products over
    1-11 rows differ from the same rows inside a larger product, and a 9-row product differs with the
    rows' offset in memory). A fresh tensor is 64-byte aligned, so the batch path makes exactly the
    call the single path makes. The FFT, the element-wise operations and the tap sums of
    :func:`deltas` give the same value per element whatever the batch, and stay batched.
    """
    out = x.new_zeros((x.shape[0], x.shape[1], matrix.shape[1]))
    for b, n in enumerate(frames.tolist()):
        out[b, :n] = torch.matmul(x[b, :n].clone(), matrix)
    return out


class MelExtractor(Extractor):
    """Shared part of the mel features: per-item padding, batched STFT, power, mel projection.

    Subclasses turn the mel power ``[B, T, n_mels]`` into their features with :meth:`_from_mel`.
    """

    batch_samples: ClassVar[int] = 1 << 18  # padded samples per STFT call (~16 s of audio): cache-sized chunks
    delta_width: int | None = None  # set by extractors with deltas: they need this many frames

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        p = self._params
        n_fft, win_length = int(p["n_fft"]), int(p["win_length"])
        if not 0 < win_length <= n_fft:
            raise ValueError(f"win_length must be in 1..n_fft ({n_fft}), got {win_length}")
        if p["pad_mode"] not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', got {p['pad_mode']!r}")
        window = librosa.filters.get_window(p["window"], win_length, fftbins=True)
        left = (n_fft - win_length) // 2  # centred in the FFT frame, as librosa does
        window = np.pad(window, (left, n_fft - win_length - left))
        self._window = torch.from_numpy(window.astype(np.float32))
        mel = librosa.filters.mel(
            sr=self.sample_rate, n_fft=n_fft, n_mels=int(p["n_mels"]), fmin=p["fmin"], fmax=p["fmax"]
        )
        self._mel_t = torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32))  # [freq, n_mels]

    @property
    def hop(self) -> int:
        return int(self._params["hop_length"])

    @property
    def min_samples(self) -> int:
        need = int(self._params["win_length"])  # one window of real signal
        if self._params["pad_mode"] == "reflect":  # reflecting needs more samples than the padding
            need = max(need, int(self._params["n_fft"]) // 2 + 1)
        if self.delta_width is not None:  # and enough frames for one full delta window
            need = max(need, (self.delta_width - 1) * self.hop)
        return need

    def frame_count(self, n_samples: int) -> int:
        return 1 + n_samples // self.hop

    def frame_times(self, n_frames: int) -> np.ndarray:
        return np.arange(n_frames) * self.hop / self.sample_rate

    @property
    def backend(self) -> str:
        return f"torch {torch.__version__}, librosa {librosa.__version__} mel matrix"

    def _compute(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        # Longest first, in chunks of similar length: little padding, bounded memory. The order does
        # not change any item's numbers (see the module docstring).
        order = sorted(range(len(signals)), key=lambda i: -signals[i].size)
        out: list[np.ndarray] = [np.empty((0, 0), np.float32)] * len(signals)
        pad = int(self._params["n_fft"]) // 2
        start = 0
        while start < len(order):
            longest = signals[order[start]].size + 2 * pad
            count = max(1, min(len(order) - start, self.batch_samples // longest))
            chunk = order[start : start + count]
            feats, frames = self._batch([signals[i] for i in chunk])
            for b, i in enumerate(chunk):
                out[i] = np.ascontiguousarray(feats[b, : frames[b]].numpy())
            start += count
        return out

    @torch.inference_mode()
    def _batch(self, signals: list[np.ndarray]) -> tuple[torch.Tensor, np.ndarray]:
        n_fft, hop = int(self._params["n_fft"]), self.hop
        pad = n_fft // 2
        lengths = np.array([x.size for x in signals])
        frames = 1 + lengths // hop
        buf = np.zeros((len(signals), lengths.max() + 2 * pad), dtype=np.float32)
        reflect = self._params["pad_mode"] == "reflect"
        for b, x in enumerate(signals):  # zero padding is what the buffer already holds
            buf[b, pad : pad + x.size] = x
            if reflect:  # np.pad(x, pad, mode="reflect"), written in place
                buf[b, :pad] = x[pad:0:-1]
                buf[b, pad + x.size : x.size + 2 * pad] = x[-2 : -pad - 2 : -1]
        spec = torch.stft(
            torch.from_numpy(buf),
            n_fft=n_fft,
            hop_length=hop,
            window=self._window,
            center=False,
            return_complex=True,
        )  # [B, freq, T]
        # |X|^2 as two correctly rounded element-wise passes (no fused multiply-add, whose use can vary
        # between vector body and tail), laid out [B, T, freq]: torch.stft's result is that buffer, transposed.
        squares = torch.view_as_real(spec.transpose(1, 2)).square_()  # [B, T, freq, 2]; spec is not needed again
        mel = squares.new_zeros((len(signals), squares.shape[1], self._mel_t.shape[1]))
        for b, n in enumerate(frames.tolist()):
            power = squares[b, :n, :, 0] + squares[b, :n, :, 1]  # a fresh tensor: see project
            mel[b, :n] = torch.matmul(power, self._mel_t)
        return self._from_mel(mel, frames), frames

    def _db(self, mel: torch.Tensor) -> torch.Tensor:
        """``librosa.power_to_db(mel, ref=1.0, amin=amin, top_db=None)``, overwriting ``mel``."""
        return mel.clamp_(min=float(self._params["amin"])).log10_().mul_(10.0)  # in place: mel is a temporary

    @abstractmethod
    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        """Features ``[B, T, dims]`` from mel power ``[B, T, n_mels]``; frames past ``frames[b]`` are ignored."""


class CepstralExtractor(MelExtractor):
    """Mel extractors that add MFCCs (an orthonormal DCT of the dB mel bands) and their deltas."""

    def __init__(self, params: dict[str, Any]) -> None:
        n_mfcc, n_mels, width = int(params["n_mfcc"]), int(params["n_mels"]), int(params["delta_width"])
        check_delta_width(width)
        if not 1 <= n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must be in 1..n_mels ({n_mels}), got {n_mfcc}")
        self.delta_width = width
        super().__init__(params)
        self._dct_t = torch.from_numpy(np.ascontiguousarray(dct_matrix(n_mfcc, n_mels).T, dtype=np.float32))


def check_delta_width(width: int) -> None:
    if width < 3 or width % 2 == 0:
        raise ValueError(f"delta_width must be odd and >= 3 (librosa's rule), got {width}")
