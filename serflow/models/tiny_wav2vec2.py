"""A tiny, randomly initialised wav2vec 2.0, built locally and deterministically, as an offline stand-in.

No wav2vec 2.0 weights can be had offline here, yet WavFusion's audio path (the convolutional feature
encoder, the feature projection, the positional convolution and the transformer layers, loaded through
``Wav2Vec2Model.from_pretrained``) must run in tests and in the offline demo exactly as it would on
``facebook/wav2vec2-base``. So we build a 4-layer, 32-wide wav2vec 2.0 whose feature encoder has the base
model's kernels and strides (receptive field 400 samples, hop 320 samples = 20 ms at 16 kHz, so frame
counts are the real ones), save it with ``save_pretrained`` and load it back through the very same
``from_pretrained`` path a real checkpoint takes. Two layouts: ``stable_layer_norm=False`` is base's
(group norm in the first convolution, post-LN transformer layers) and ``True`` is that of the large
LV-60 / XLS-R checkpoints (layer norm in every convolution, pre-LN layers with a final layer norm).

Its outputs are meaningless: the ``config.json`` carries ``"serflow_random_init": true`` (the marker of
:mod:`serflow.features.text.tiny_models`), so nothing downstream can mistake it for a trained model. The
same seed and layout give the same bytes, so a cached copy can be rebuilt at will.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from serflow.features.text.tiny_models import (
    RANDOM_INIT_MARKER,
    SEED_KEY,
    is_random_init,
    make_shareable,
    move_into_place,
)

LAYOUT_KEY = "serflow_stable_layer_norm"
TINY_SEED = 0
SAMPLE_RATE = 16000
_REQUIRED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
# wav2vec2-base's feature encoder geometry (7 convolutions, 400-sample receptive field, 320-sample hop)
_CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
_CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)

__all__ = [
    "RANDOM_INIT_MARKER",
    "TINY_SEED",
    "build_tiny_wav2vec2",
    "ensure_tiny_wav2vec2",
    "is_random_init",
    "tiny_config",
    "tiny_folder_name",
]


def tiny_config(seed: int = TINY_SEED, *, stable_layer_norm: bool = False) -> Any:
    """The tiny model's ``Wav2Vec2Config`` (marked random-init); built in code, so the meta device needs no file."""
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(32,) * len(_CONV_KERNEL),
        conv_kernel=_CONV_KERNEL,
        conv_stride=_CONV_STRIDE,
        conv_bias=stable_layer_norm,  # as in the real checkpoints: base has no conv bias, large-lv60 has
        feat_extract_norm="layer" if stable_layer_norm else "group",
        do_stable_layer_norm=stable_layer_norm,
        num_conv_pos_embeddings=16,  # even, like base's 128, so the "same" padding trims one frame
        num_conv_pos_embedding_groups=4,
        vocab_size=32,
    )
    setattr(config, RANDOM_INIT_MARKER, True)
    setattr(config, SEED_KEY, seed)
    setattr(config, LAYOUT_KEY, stable_layer_norm)
    return config


def tiny_folder_name(seed: int = TINY_SEED, *, stable_layer_norm: bool = False) -> str:
    """The cache sub-folder of a tiny model: one per seed and layout."""
    return f"tiny-wav2vec2-{'stable' if stable_layer_norm else 'base'}-seed{seed}"


def build_tiny_wav2vec2(
    out_dir: str | os.PathLike[str], seed: int = TINY_SEED, *, stable_layer_norm: bool = False
) -> Path:
    """Build the tiny random-init wav2vec 2.0 into ``out_dir`` and return it; same seed and layout, same bytes.

    Written to a temporary sibling and moved into place whole, so a killed build or two concurrent jobs never
    leave a half-written folder. An existing ``out_dir`` is replaced only if it is empty or an earlier tiny
    model: anything else raises rather than being deleted.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not is_random_init(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a serflow tiny model; refusing to overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        _save(tmp, seed, stable_layer_norm)
        make_shareable(tmp)
        move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_tiny_wav2vec2(
    out_dir: str | os.PathLike[str], seed: int = TINY_SEED, *, stable_layer_norm: bool = False
) -> Path:
    """``out_dir`` holding the tiny model for ``seed`` and the layout: reused when complete, (re)built otherwise."""
    out_dir = Path(out_dir)
    if _is_complete(out_dir):
        config = _read_config(out_dir)
        if config.get(SEED_KEY) == seed and config.get(LAYOUT_KEY) == stable_layer_norm:
            return out_dir
    return build_tiny_wav2vec2(out_dir, seed, stable_layer_norm=stable_layer_norm)


def _read_config(folder: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES) and is_random_init(folder)


def _save(folder: Path, seed: int, stable_layer_norm: bool) -> None:
    """Initialise the model under ``seed`` (without disturbing the caller's RNG) and save it with its
    feature-extractor settings (per-utterance normalisation, as the real checkpoints ask for)."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2Model(tiny_config(seed, stable_layer_norm=stable_layer_norm))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=SAMPLE_RATE,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=stable_layer_norm,
    ).save_pretrained(folder)
