"""Checkpoints: weights as safetensors, and beside them a JSON of the config and metrics they came from.

``<stem>.safetensors`` holds only tensors (no code, so loading runs none: nothing is unpickled), and
``<stem>.json`` says how to rebuild the module (model name, ``n_classes``, the exact hyperparameters it
was created with) plus the seed, selected epoch, validation and test metrics, and the sha256 of the
weights file, which :func:`load_state` checks. Same weights, same bytes: the safetensors header carries
one fixed metadata entry, the JSON is written with sorted keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from serflow.io import atomic_path, write_json
from serflow.shards import hash_file

CHECKPOINT_FORMAT = "serflow-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted (wrong format, weights changed since they were written)."""


def save_checkpoint(
    directory: str | os.PathLike[str], stem: str, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> Path:
    """Write ``stem.safetensors`` and ``stem.json`` atomically into ``directory``; returns the JSON path.

    Tensors are cloned, so weights tied in the module (one storage, two names) are stored under each
    name, which safetensors requires and ``load_state_dict`` accepts.
    """
    directory = Path(directory)
    weights = directory / f"{stem}.safetensors"
    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    record = {**meta, "format": CHECKPOINT_FORMAT, "weights": {"file": weights.name, "sha256": hash_file(weights)}}
    path = directory / f"{stem}.json"
    write_json(record, path)
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    meta = json.loads(Path(path).read_text(encoding="utf-8"))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    return meta


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The weights (on CPU) and the metadata of the checkpoint whose JSON is ``path``; hash-checked."""
    path = Path(path)
    meta = read_meta(path)
    weights = path.with_name(meta["weights"]["file"])
    if hash_file(weights) != meta["weights"]["sha256"]:
        raise CheckpointError(f"{weights}: sha256 differs from {path.name}: the weights changed after training")
    return load_file(str(weights), device="cpu"), meta


def load_model(path: str | os.PathLike[str]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the registered model a checkpoint came from and load its weights (strictly), in eval mode."""
    from serflow.models import get_spec
    from serflow.train.tasks import split_run

    state, meta = load_state(path)
    # the weights come from the checkpoint: a pretrained file the model started from (CNN14's PANNs weights) is not
    # needed, nor read, again
    hparams = {**meta["hparams"], **({"pretrained": None} if "pretrained" in meta["hparams"] else {})}
    model = get_spec(split_run(meta["model"])[0]).create(meta["n_classes"], **hparams)
    model.load_state_dict(state, strict=True)
    return model.eval(), meta
