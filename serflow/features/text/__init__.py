"""Text features for the aligned words: GloVe vectors and contextual transformer embeddings.

GloVe needs only NumPy; the transformer encoder pulls in torch and transformers, so every name loads
on first access (``from serflow.features.text import TransformerEncoder``) and importing this package
stays cheap for the jobs that never touch a language model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serflow.features.text.glove import (
        OOV_POLICIES,
        GloveFormatError,
        GloveVectors,
        OovPolicy,
        glove_features,
    )
    from serflow.features.text.tiny_models import build_tiny_roberta, ensure_tiny_roberta, is_random_init
    from serflow.features.text.transformer import (
        EncodeReport,
        TransformerEncoder,
        resolve_text_model,
        utterance_words,
    )

_LAZY = {
    "OOV_POLICIES": "glove",
    "GloveFormatError": "glove",
    "GloveVectors": "glove",
    "OovPolicy": "glove",
    "glove_features": "glove",
    "build_tiny_roberta": "tiny_models",
    "ensure_tiny_roberta": "tiny_models",
    "is_random_init": "tiny_models",
    "EncodeReport": "transformer",
    "TransformerEncoder": "transformer",
    "resolve_text_model": "transformer",
    "utterance_words": "transformer",
}
__all__ = [
    "OOV_POLICIES",
    "EncodeReport",
    "GloveFormatError",
    "GloveVectors",
    "OovPolicy",
    "TransformerEncoder",
    "build_tiny_roberta",
    "ensure_tiny_roberta",
    "glove_features",
    "is_random_init",
    "resolve_text_model",
    "utterance_words",
]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
