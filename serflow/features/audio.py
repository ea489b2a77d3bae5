"""Audio loading for feature extraction: one mono float32 signal at the pipeline's rate, and a record of how.

Every extractor in :mod:`serflow.features.acoustic` is defined on 16 kHz mono audio (the rate all four
papers' recipes assume). IEMOCAP is 16 kHz mono already, but other corpora (TESS is 24.4 kHz, user
recordings are often 44.1 kHz stereo) are not, so loading converts and *says so*: the feature store
records ``info`` next to the features, so a result can always be traced to "these features were
computed on a resampled down-mix", never silently.

Why soxr: it is fast and band-limited (the HQ preset keeps passband ripple and aliasing far below
what a 16-bit signal can show), and it is deterministic, so the converted samples -- and therefore the
features -- are the same bytes on every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from serflow.corpora.audio import AudioError

__all__ = ["RESAMPLER_QUALITY", "AudioError", "load_audio"]

RESAMPLER_QUALITY = "HQ"  # soxr's preset; changing it changes feature bytes


def load_audio(path: Path | str, sr: int = 16000) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``path`` as float32 mono at ``sr`` Hz; return ``(samples, info)``.

    Multi-channel files are down-mixed by averaging the channels (before resampling, which is then
    done once instead of per channel); files at another rate are resampled with soxr. ``info`` holds
    one key per conversion that was done, and is empty when the file was used as stored:
    ``{"downmixed_from": 2, "resampled_from": 44100}``.

    Raises :class:`~serflow.corpora.audio.AudioError` when the file is missing, unreadable or empty.
    """
    path = Path(path)
    if sr <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    try:
        data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    except FileNotFoundError as exc:
        raise AudioError("audio file missing") from exc
    except (RuntimeError, sf.LibsndfileError) as exc:
        if not path.exists():
            raise AudioError("audio file missing") from exc
        raise AudioError(f"audio file unreadable ({str(exc).strip().splitlines()[-1]})") from exc
    if data.shape[0] == 0:
        raise AudioError("audio file holds no samples")

    info: dict[str, Any] = {}
    channels = data.shape[1]
    if channels == 1:
        mono = data[:, 0]
    else:
        mono = data.mean(axis=1, dtype=np.float32)
        info["downmixed_from"] = channels
    if file_sr != sr:
        mono = soxr.resample(mono, file_sr, sr, quality=RESAMPLER_QUALITY)
        info["resampled_from"] = int(file_sr)
    return np.ascontiguousarray(mono, dtype=np.float32), info
