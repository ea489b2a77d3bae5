"""``logmel64``: CNN14's 64-band log-mel (PANNs' 16 kHz front end)."""

from __future__ import annotations

import numpy as np
import torch

from serflow.features.acoustic.mel import MelExtractor


class LogMel64(MelExtractor):
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
