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
  see :func:`project`). Their *definition* is librosa's
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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serflow.features.acoustic.base import Extractor

# One module per extractor, imported by name when it is used: a job imports only its own extractor, and a store's
# version covers only that extractor's code (serflow.provenance).
EXTRACTOR_MODULES: dict[str, str] = {
    "mfcc39": "serflow.features.acoustic.mfcc39",
    "gban52": "serflow.features.acoustic.gban52",
    "logmel64": "serflow.features.acoustic.logmel64",
    "mfcc120": "serflow.features.acoustic.mfcc120",
    "waveform": "serflow.features.acoustic.waveform",
}
_LAZY = {
    "Extractor": "base",
    "FeatureError": "base",
    "Mfcc39": "mfcc39",
    "MFCC39_CONFIG": "mfcc39",
    "LogMel64": "logmel64",
    "Gban52": "gban52",
    "Mfcc120": "mfcc120",
    "Waveform": "waveform",
}
__all__ = ["EXTRACTORS", "EXTRACTOR_MODULES", *_LAZY, "extractor_class", "get_extractor"]


def extractor_class(name: str) -> type[Extractor]:
    """The class of the extractor registered as ``name`` (its module is imported now)."""
    try:
        module = EXTRACTOR_MODULES[name]
    except KeyError:
        raise ValueError(f"unknown feature extractor {name!r}; known: {', '.join(sorted(EXTRACTOR_MODULES))}") from None
    classes = [c for c in vars(importlib.import_module(module)).values() if getattr(c, "name", None) == name]
    return classes[0]


def get_extractor(name: str, **params: Any) -> Extractor:
    """The extractor registered as ``name``, built with ``params`` over its defaults.

    Unknown names raise ``ValueError`` listing the known ones; unknown params raise ``TypeError``.
    """
    return extractor_class(name)(**params)


def __getattr__(name: str) -> Any:
    if name == "EXTRACTORS":  # every extractor class by name (imports all of them)
        return {n: extractor_class(n) for n in EXTRACTOR_MODULES}
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
