"""The interface every model implements (names, features and variants are in :mod:`serflow.models.registry`).

A model reads stored features (``features/{corpus}/{feature}/{version}/``) by *store name*: ``mfcc39``,
``gban52``, ``logmel64``, ``mfcc120``, ``waveform`` (frames), ``glove``, ``bert``, ``roberta`` (one row
per aligned word), ``bert_utt``, ``roberta_utt`` (one mean-pooled row per utterance) and ``spans_mfcc39``
(one row per phone: ``word_index, frame_start, frame_end``, ``frame_end`` exclusive, phones in order and
grouped by word, every word of the utterance with at least one phone, indices exact in float32).
The words of ``glove``/``bert``/``roberta`` and of ``spans_*`` come from the same alignment table, so
row ``i`` of ``glove[utt]`` and word ``i`` of ``spans_mfcc39[utt]`` are the same word.

The trainer (``serflow.train``) is shared by every model: it loads the stores named by
:attr:`serflow.models.registry.ModelSpec.features`, calls :meth:`SerModel.prepare` once per utterance, batches with
:meth:`SerModel.collate`, moves the tensors to the device and calls ``forward``. So a model only says
what it reads and how its batch is laid out.
"""

from __future__ import annotations

from collections.abc import Mapping

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
