"""Audio checks and acoustic features for the monophone aligner (Kaldi's ``train_mono.sh`` front end).

Features: 13 MFCCs (kaldi-native-fbank with Kaldi's defaults, 25 ms Povey window, 10 ms shift, 23 mel
bins, but C0 rather than log energy, as in most recipes' ``conf/mfcc.conf``) with dither, per-speaker
cepstral mean normalisation, then deltas and delta-deltas (window 2), 39 dimensions in all.

Two choices differ from a plain ``compute-mfcc-feats`` call, both for the output's sake:

* ``snip_edges=False``: frame ``t`` is centred at ``t * 10 ms + 5 ms``, so the boundary between frames
  ``t - 1`` and ``t`` lies at exactly ``t * 10 ms`` and times need no half-window correction.
* Dither is added here from a generator seeded by the utterance id (Kaldi's dither of 1.0 on the
  16-bit scale), not by the library, whose generator is not seedable; the features, and so the
  alignments, are then the same bytes on every run.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import soundfile as sf
import soxr

from serflow.corpora.audio import AudioError, probe

SAMPLE_RATE = 16000
FRAME_SHIFT = 0.01  # seconds
MIN_DURATION = 0.1  # seconds; shorter utterances are not aligned
SILENT_DBFS = -60.0  # an utterance whose loudest 25 ms is quieter than this is treated as silent
NUM_CEPS = 13
_FRAME = 400  # 25 ms at 16 kHz
_HOP = 160


class AudioProblem(Exception):
    """The audio cannot be aligned; the message is the reason reported in the Failure."""


@dataclass(frozen=True)
class StaticFeatures:
    """13 static MFCCs of one utterance (before normalisation) and its duration in seconds."""

    mfcc: np.ndarray  # (frames, 13) float32
    duration: float
    energy_db: np.ndarray  # (frames,) level of each 10 ms frame in dBFS


def utterance_seed(seed: int, utt_id: str) -> np.random.Generator:
    """A generator that depends on the run seed and the utterance only (not on order or process)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(utt_id.encode("utf-8"))])


def load_audio(path: Path | str) -> np.ndarray:
    """Mono float32 samples at 16 kHz; :class:`AudioProblem` when the file is missing, truncated or unreadable."""
    try:
        info = probe(path)
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except AudioError as exc:
        raise AudioProblem(str(exc)) from exc
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioProblem(f"audio file unreadable ({exc})") from exc
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    if mono.size == 0 or info.duration <= 0:
        raise AudioProblem("audio file holds no samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def loudest_frame_dbfs(samples: np.ndarray) -> float:
    """RMS level of the loudest 25 ms frame (10 ms hop), in dB relative to full scale."""
    if samples.size < _FRAME:
        frames = samples[None, :]
    else:
        frames = np.lib.stride_tricks.sliding_window_view(samples, _FRAME)[::_HOP]
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1)).max()
    return float(20.0 * np.log10(max(rms, 1e-10)))


def check_audio(samples: np.ndarray) -> None:
    """Raise :class:`AudioProblem` for audio too short or too quiet to align."""
    duration = samples.size / SAMPLE_RATE
    if duration < MIN_DURATION:
        raise AudioProblem(f"utterance too short ({duration:.3f} s < {MIN_DURATION} s)")
    level = loudest_frame_dbfs(samples)
    if level < SILENT_DBFS:
        raise AudioProblem(f"silent or near-silent audio (loudest 25 ms at {level:.1f} dBFS < {SILENT_DBFS:.0f} dBFS)")


def _mfcc_options() -> knf.MfccOptions:
    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0  # added by us, seeded (see the module docstring)
    opts.frame_opts.snip_edges = False
    opts.use_energy = False
    opts.num_ceps = NUM_CEPS
    return opts


def static_mfcc(samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """13 MFCCs per 10 ms frame, with dither of one 16-bit quantisation step."""
    dithered = samples + rng.standard_normal(samples.size).astype(np.float32) / 32768.0
    extractor = knf.OnlineMfcc(_mfcc_options())
    extractor.accept_waveform(SAMPLE_RATE, dithered)
    extractor.input_finished()
    n = extractor.num_frames_ready
    out = np.empty((n, NUM_CEPS), dtype=np.float32)
    for i in range(n):  # the binding exposes frames one at a time
        out[i] = extractor.get_frame(i)
    return out


def extract(path: Path | str, utt_id: str, seed: int) -> StaticFeatures:
    """Load, check and featurise one utterance; :class:`AudioProblem` with the reason when it cannot be used."""
    samples = load_audio(path)
    check_audio(samples)
    mfcc = static_mfcc(samples, utterance_seed(seed, utt_id))
    return StaticFeatures(mfcc, samples.size / SAMPLE_RATE, frame_energy_db(samples, mfcc.shape[0]))


def frame_energy_db(samples: np.ndarray, frames: int) -> np.ndarray:
    """Level of each 10 ms frame ``[t * 10 ms, (t + 1) * 10 ms)`` in dBFS (``frames`` values)."""
    padded = np.zeros(frames * _HOP, dtype=np.float64)
    n = min(samples.size, padded.size)
    padded[:n] = samples[:n]
    power = np.mean(np.square(padded.reshape(frames, _HOP)), axis=1)
    return (10.0 * np.log10(np.maximum(power, 1e-12))).astype(np.float32)


def quiet_mask(energy_db: np.ndarray, fraction: float = 0.25, min_range_db: float = 15.0) -> np.ndarray | None:
    """Frames at silence level: below ``floor + fraction * (speech - floor)``; ``None`` if no clear silence.

    Floor and speech levels are the utterance's 10th and 95th level percentiles, so the threshold
    follows the recording's own noise and loudness. With less than ``min_range_db`` between them the
    utterance has no clear pause to learn from, and no frame is called quiet.
    """
    if energy_db.size == 0:
        return None
    floor, speech = np.percentile(energy_db, [10, 95])
    if speech - floor < min_range_db:
        return None
    return energy_db < floor + fraction * (speech - floor)


def add_deltas(normalised: np.ndarray) -> np.ndarray:
    """Append deltas and delta-deltas (Kaldi's ``add-deltas``, window 2): (frames, 13) -> (frames, 39)."""
    opts = knf.DeltaOptions()
    opts.order = 2
    opts.window = 2
    return np.ascontiguousarray(knf.compute_deltas(opts, np.ascontiguousarray(normalised, dtype=np.float32)))
