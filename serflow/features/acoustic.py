"""Frame-level acoustic features for the reproduced systems, each defined once and checked against a reference.

One extractor per input the models consume (all on 16 kHz mono float audio, see
:func:`serflow.features.audio.load_audio`):

==========  ====  ============================================================  =====================
name        dims  definition                                                    serves
==========  ====  ============================================================  =====================
mfcc39        39  openSMILE, HTK-style c0..c12 + delta + acceleration,          WISE (Shen et al.,
                  25 ms / 15 ms                                                  Interspeech 2020)
gban52        52  26 log-mel (dB, <= 6.5 kHz) + 13 MFCC + 13 deltas,             GBAN (Liu et al.)
                  25 ms Hamming / 10 ms, n_fft 512
logmel64      64  log-mel (dB), window 512 / hop 160, 50-8000 Hz                 CNN14 / MFCNN14 /
                                                                                 SFCNN14 (PANNs)
mfcc120      120  librosa MFCC-40 + delta + delta-delta, 25 ms Hann / 10 ms      MultiModal-ER (TESS)
waveform       1  the signal itself                                              WavFusion (wav2vec 2.0)
==========  ====  ============================================================  =====================

Why these implementations:

* ``mfcc39`` runs openSMILE (the toolkit WISE names) with the project's own config
  (``opensmile/mfcc39.conf``), because no MFCC set ships with the ``opensmile`` wheel.
* The three mel features are computed with ``torch.stft`` and a ``librosa.filters.mel`` matrix over a
  zero-padded batch of utterances, then trimmed per utterance: one FFT call and one element-wise chain
  for many utterances instead of librosa's call chain per file (the matrix products run per utterance,
  see :func:`_project`). Their *definition* is librosa's
  (``librosa.feature.melspectrogram`` / ``power_to_db`` / ``mfcc`` / ``delta``), and the tests hold them
  to it; librosa stays the reference, torch is only the fast path. (torchaudio is not usable with the
  pinned torch, hence the hand-built chain.)
* Every item's frames depend only on its own samples: each signal is padded on its own (reflect or
  zeros) before batching, the deltas' edges are per item, and no floating-point operation depends on
  the batch's shape, so ``extract_batch`` returns exactly the bytes ``extract`` returns for the same
  signal (the tests check this on mixed batches).

Frame conventions: the mel features use centred frames (librosa's ``center=True``), so an utterance of
``n`` samples has ``1 + n // hop`` frames and frame ``t`` is centred at ``t * hop`` samples; openSMILE
frames start at ``t * step`` and only whole frames are produced. :meth:`Extractor.frame_count` and
:meth:`Extractor.frame_times` give both, for aligning words with frames (WISE pools frames per word).

Too-short input: a signal shorter than :attr:`Extractor.min_samples` (one analysis window, and for the
delta features enough frames for the delta window) raises :class:`FeatureError` rather than returning an
empty or padded array, so an unusable utterance is reported, not silently stored. Non-finite input or
output also raises. Messages describe the problem only; the caller knows the utterance id.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

import librosa
import numpy as np
import torch

from serflow.features.plan import EXTRACTOR_VERSIONS

__all__ = [
    "EXTRACTORS",
    "MFCC39_CONFIG",
    "Extractor",
    "FeatureError",
    "Gban52",
    "LogMel64",
    "Mfcc39",
    "Mfcc120",
    "Waveform",
    "get_extractor",
]

MFCC39_CONFIG = Path(__file__).resolve().parent / "opensmile" / "mfcc39.conf"


class FeatureError(ValueError):
    """The signal cannot give features (too short, not 1-D, non-finite), or the features came out non-finite.

    ``index`` is the position of the offending signal in an :meth:`Extractor.extract_batch` call
    (``None`` for :meth:`Extractor.extract`), so the caller can name the utterance.
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def _version(package: str) -> str:
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
    version: ClassVar[str]

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


# --------------------------------------------------------------------------------------------------
# openSMILE: WISE


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
    version = EXTRACTOR_VERSIONS["mfcc39"]
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
        self._size = _whole_samples(frame_size_s, sample_rate, "frame_size_s")
        self._step = _whole_samples(frame_step_s, sample_rate, "frame_step_s")
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
        return f"opensmile {_version('opensmile')}"

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


def _whole_samples(seconds: float, sample_rate: int, what: str) -> int:
    samples = seconds * sample_rate
    if samples < 1 or abs(samples - round(samples)) > 1e-6:
        raise ValueError(f"{what}={seconds} is not a whole number of samples at {sample_rate} Hz")
    return round(samples)


# --------------------------------------------------------------------------------------------------
# torch.stft + librosa mel matrix: GBAN, CNN14, MultiModal-ER


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Rows 0..n_out-1 of the orthonormal DCT-II on ``n_in`` points (scipy's ``dct(type=2, norm="ortho")``)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis


def _delta_kernel(width: int, order: int) -> np.ndarray:
    """Taps of the ``order``-th derivative of a degree-``order`` least-squares polynomial over ``width`` frames.

    This is the Savitzky-Golay filter ``librosa.feature.delta`` applies (``polyorder=order``,
    ``deriv=order``). With the polynomial's degree equal to the derivative's order the derivative is
    the same everywhere in the window, which is what makes librosa's ``mode="interp"`` edges simple: the
    first and last ``width // 2`` outputs equal the nearest full-window output.
    """
    pos = np.arange(width, dtype=np.float64) - width // 2
    coef = np.linalg.pinv(np.vander(pos, order + 1, increasing=True))  # [order+1, width]
    return math.factorial(order) * coef[order]


def _deltas(x: torch.Tensor, frames: np.ndarray, kernel: np.ndarray) -> torch.Tensor:
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


def _project(x: torch.Tensor, matrix: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
    """``x[b, :frames[b]] @ matrix`` for each item; rows past an item's frames are left at zero.

    One matrix product per item, on a fresh copy of its rows, rather than one for the whole batch:
    BLAS picks its kernel (and so its rounding) by the operands' shape *and* memory alignment, so a
    frame's values would otherwise depend on the batch it came in (measured with MKL: products over
    1-11 rows differ from the same rows inside a larger product, and a 9-row product differs with the
    rows' offset in memory). A fresh tensor is 64-byte aligned, so the batch path makes exactly the
    call the single path makes. The FFT, the element-wise operations and the tap sums of
    :func:`_deltas` give the same value per element whatever the batch, and stay batched.
    """
    out = x.new_zeros((x.shape[0], x.shape[1], matrix.shape[1]))
    for b, n in enumerate(frames.tolist()):
        out[b, :n] = torch.matmul(x[b, :n].clone(), matrix)
    return out


class _MelExtractor(Extractor):
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
            power = squares[b, :n, :, 0] + squares[b, :n, :, 1]  # a fresh tensor: see _project
            mel[b, :n] = torch.matmul(power, self._mel_t)
        return self._from_mel(mel, frames), frames

    def _db(self, mel: torch.Tensor) -> torch.Tensor:
        """``librosa.power_to_db(mel, ref=1.0, amin=amin, top_db=None)``, overwriting ``mel``."""
        return mel.clamp_(min=float(self._params["amin"])).log10_().mul_(10.0)  # in place: mel is a temporary

    @abstractmethod
    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        """Features ``[B, T, dims]`` from mel power ``[B, T, n_mels]``; frames past ``frames[b]`` are ignored."""


class LogMel64(_MelExtractor):
    """CNN14's input: 64-band log-mel power in dB, window 512 / hop 160 at 16 kHz, 50-8000 Hz.

    Serves CNN14 and the MFCNN14 / SFCNN14 models of Triantafyllopoulos et al. ("Multistage linguistic
    conditioning of convolutional layers for speech emotion recognition"), which take CNN14 from PANNs.
    PANNs (Kong et al. 2020) feed CNN14 a log-mel spectrogram (32 kHz: window 1024, hop 320,
    50-14000 Hz); the MFCNN14 / SFCNN14 fusion models reuse it. At 16 kHz the same time resolution is
    window 512 (Hann), hop 160, up to Nyquist. As in PANNs' front end: centred frames with reflect
    padding, power spectrum, Slaney mel matrix, ``10 log10(max(S, 1e-10))`` with no ``top_db`` clipping.
    Reference: ``librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512,
    hop_length=160, pad_mode="reflect", n_mels=64, fmin=50, fmax=8000), top_db=None)``.
    """

    name = "logmel64"
    version = EXTRACTOR_VERSIONS["logmel64"]

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int = 512,
        hop_length: int = 160,
        window: str = "hann",
        pad_mode: str = "reflect",
        n_mels: int = 64,
        fmin: float = 50.0,
        fmax: float = 8000.0,
        amin: float = 1e-10,
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
            }
        )

    @property
    def dims(self) -> int:
        return int(self._params["n_mels"])

    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        return self._db(mel)


class _CepstralExtractor(_MelExtractor):
    """Mel extractors that add MFCCs (an orthonormal DCT of the dB mel bands) and their deltas."""

    def __init__(self, params: dict[str, Any]) -> None:
        n_mfcc, n_mels, width = int(params["n_mfcc"]), int(params["n_mels"]), int(params["delta_width"])
        _check_delta_width(width)
        if not 1 <= n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must be in 1..n_mels ({n_mels}), got {n_mfcc}")
        self.delta_width = width
        super().__init__(params)
        self._dct_t = torch.from_numpy(np.ascontiguousarray(_dct_matrix(n_mfcc, n_mels).T, dtype=np.float32))


class Gban52(_CepstralExtractor):
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
    version = EXTRACTOR_VERSIONS["gban52"]

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
        self._kernel = _delta_kernel(delta_width, 1)

    @property
    def dims(self) -> int:
        return int(self._params["n_mels"]) + 2 * int(self._params["n_mfcc"])

    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        logmel = self._db(mel)
        mfcc = _project(logmel, self._dct_t, frames)
        return torch.cat([logmel, mfcc, _deltas(mfcc, frames, self._kernel)], dim=2)


class Mfcc120(_CepstralExtractor):
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

    The report's other preprocessing, silence trimming (``librosa.effects.trim(top_db=25)``) and the
    pad/cut to 200 frames, belongs to the model's input stage, not to the stored features: they stay on
    the audio's own timeline (``frame_count``/``frame_times`` hold for every utterance).
    """

    name = "mfcc120"
    version = EXTRACTOR_VERSIONS["mfcc120"]

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
                "top_db": top_db,
                "n_mfcc": n_mfcc,
                "delta_width": delta_width,
            }
        )
        self._kernels = (_delta_kernel(delta_width, 1), _delta_kernel(delta_width, 2))

    @property
    def dims(self) -> int:
        return 3 * int(self._params["n_mfcc"])

    def _from_mel(self, mel: torch.Tensor, frames: np.ndarray) -> torch.Tensor:
        logmel = self._db(mel)
        top_db = self._params["top_db"]
        if top_db is not None:  # per item, over its own frames only
            valid = torch.arange(mel.shape[1])[None, :] < torch.as_tensor(frames)[:, None]
            peak = logmel.masked_fill(~valid[:, :, None], -math.inf).amax(dim=(1, 2))
            logmel = torch.maximum(logmel, (peak - float(top_db))[:, None, None])
        mfcc = _project(logmel, self._dct_t, frames)
        first, second = self._kernels
        return torch.cat([mfcc, _deltas(mfcc, frames, first), _deltas(mfcc, frames, second)], dim=2)


def _check_delta_width(width: int) -> None:
    if width < 3 or width % 2 == 0:
        raise ValueError(f"delta_width must be odd and >= 3 (librosa's rule), got {width}")


# --------------------------------------------------------------------------------------------------
# raw signal: WavFusion


class Waveform(Extractor):
    """WavFusion's input: the 16 kHz float signal itself, as ``[samples, 1]``.

    WavFusion fine-tunes wav2vec 2.0, which reads raw 16 kHz audio; storing it through the same
    interface lets the store, the folds and the loaders treat it like any other feature.
    """

    name = "waveform"
    version = EXTRACTOR_VERSIONS["waveform"]

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


# --------------------------------------------------------------------------------------------------
# registry

EXTRACTORS: dict[str, type[Extractor]] = {cls.name: cls for cls in (Mfcc39, Gban52, LogMel64, Mfcc120, Waveform)}


def get_extractor(name: str, **params: Any) -> Extractor:
    """The extractor registered as ``name``, built with ``params`` over its defaults.

    Unknown names raise ``ValueError`` listing the known ones; unknown params raise ``TypeError``.
    """
    try:
        cls = EXTRACTORS[name]
    except KeyError:
        raise ValueError(f"unknown feature extractor {name!r}; known: {', '.join(sorted(EXTRACTORS))}") from None
    return cls(**params)
