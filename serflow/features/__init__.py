"""Acoustic features: loading audio at the pipeline's rate and the per-paper frame-feature extractors.

``load_audio`` is imported eagerly (it is light); the extractors pull in torch, librosa and, for
``mfcc39``, openSMILE, so they load on first access: ``from serflow.features import get_extractor``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serflow.features.audio import load_audio

if TYPE_CHECKING:
    from serflow.features.acoustic import (
        EXTRACTORS,
        Extractor,
        FeatureError,
        Gban52,
        LogMel64,
        Mfcc39,
        Mfcc120,
        Waveform,
        get_extractor,
    )

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "FeatureError",
    "Gban52",
    "LogMel64",
    "Mfcc39",
    "Mfcc120",
    "Waveform",
    "get_extractor",
    "load_audio",
]

_LAZY = frozenset(__all__) - {"load_audio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from serflow.features import acoustic

        return getattr(acoustic, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
