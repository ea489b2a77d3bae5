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

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

Sample = Mapping[str, np.ndarray]  # store name -> that utterance's [rows, dims] float32 array


class SerModel(nn.Module):
    """Base class: an ``nn.Module`` mapping a collated batch to outputs ``[B, n_outputs]``: class logits for
    the categorical task, predicted values (one per emotion dimension) for the dimensional one."""

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

    def check_stores(self, metas: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse stores this model cannot read correctly (ValueError naming the store and both sides), from
        each store's ``manifest.json`` ``meta`` (``{store: meta}``); e.g. token ids made by another model's
        tokenizer. Called once per fold before any utterance is prepared. Default: nothing to check."""

    # --- hooks for models whose size or initial weights depend on the training split ------------------------

    def fold_hparams(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Hyperparameters that depend on the training split of a fold, e.g. ``{"vocab_size": 2113}``.

        Called once per fold on the instance that ran :meth:`prepare`, with the *prepared* training samples
        only (never validation or test: that would leak). The values must be small and JSON-able: they are
        passed to the builder of every seed's model and recorded in its checkpoint, so the checkpoint can be
        rebuilt. Default: none.
        """
        return {}

    def init_fold(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Set data-dependent buffers and initial weights from the prepared training samples (vocabulary
        lookup, rows initialised from GloVe), after construction and seeding, before training.

        Returns JSON-able statistics recorded in the fold's results (e.g. an OOV rate). Default: nothing.
        """
        return {}

    def training_loss(
        self,
        batch: dict[str, torch.Tensor],
        target: torch.Tensor,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, outputs)`` of one training batch. ``criterion`` is the trainer's task loss (class-weighted
        cross-entropy, MSE, CCC). Models with an auxiliary loss (WavFusion's margin loss) override this and
        add it; the default is the task loss alone."""
        outputs = self(batch)
        return criterion(outputs, target), outputs
