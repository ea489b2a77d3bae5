"""Features: audio loading at the pipeline's rate, the per-paper frame-feature extractors, text features, and the
jobs that write them into the versioned store (``jobs``).

Every name loads its module on first access (``from serflow.features import get_extractor``): the extractors pull
in torch, librosa and, for ``mfcc39``, openSMILE, and a job imports only what it runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serflow.features.acoustic import EXTRACTORS, get_extractor
    from serflow.features.acoustic.base import Extractor, FeatureError
    from serflow.features.audio import load_audio

_LAZY = {
    "EXTRACTORS": "acoustic",
    "get_extractor": "acoustic",
    "Extractor": "acoustic.base",
    "FeatureError": "acoustic.base",
    "load_audio": "audio",
}
__all__ = [
    "EXTRACTORS",
    "Extractor",
    "FeatureError",
    "get_extractor",
    "load_audio",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
