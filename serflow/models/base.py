"""The interface every model implements, and the registry that maps model names to it.

A model reads stored features (``features/{corpus}/{feature}/{version}/``) by *store name*: ``mfcc39``,
``gban52``, ``logmel64``, ``mfcc120``, ``waveform`` (frames), ``glove``, ``bert``, ``roberta`` (one row
per aligned word), ``bert_utt``, ``roberta_utt`` (one mean-pooled row per utterance) and ``spans_mfcc39``
(one row per phone: ``word_index, frame_start, frame_end``, ``frame_end`` exclusive, phones in order and
grouped by word, every word of the utterance with at least one phone, indices exact in float32).
The words of ``glove``/``bert``/``roberta`` and of ``spans_*`` come from the same alignment table, so
row ``i`` of ``glove[utt]`` and word ``i`` of ``spans_mfcc39[utt]`` are the same word.

The trainer (``serflow.train``) is shared by every model: it loads the stores named by
:attr:`ModelSpec.features`, calls :meth:`SerModel.prepare` once per utterance, batches with
:meth:`SerModel.collate`, moves the tensors to the device and calls ``forward``. So a model only says
what it reads and how its batch is laid out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

Sample = Mapping[str, np.ndarray]  # store name -> that utterance's [rows, dims] float32 array


class SerModel(nn.Module):
    """Base class: an ``nn.Module`` mapping a collated batch to class logits ``[B, n_classes]``."""

    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Per-utterance preprocessing run once when the data is loaded (e.g. the paper's truncation).

        Returns the arrays to keep and counts of what was changed (``{"words_truncated": 3}``); the trainer
        sums the counts over the corpus and reports them in the results. Default: unchanged, no counts.
        """
        return dict(sample), {}

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """A batch (CPU tensors) from prepared samples; ``forward`` receives it on the model's device."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ModelSpec:
    """A named, selectable model: how to build it and which stored features it reads.

    ``build(n_classes, **hparams)`` returns the module; ``fixed`` are the variant's own settings (e.g. an
    ablation flag), merged over the configured hyperparameters, so a variant is a name, not a copy.
    ``family`` groups variants sharing one configuration section (``wise_audio`` -> ``wise``).
    """

    name: str
    build: Callable[..., SerModel]
    features: tuple[str, ...]
    family: str
    description: str
    paper: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def create(self, n_classes: int, **hparams: Any) -> SerModel:
        return self.build(n_classes, **{**hparams, **self.fixed})


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The registered model called ``name``; an unknown name is an error listing the known ones."""
    from serflow import models  # noqa: F401  (importing the package registers every model)

    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
