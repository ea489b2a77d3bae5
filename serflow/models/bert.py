"""The fine-tuned BERT text baseline of Triantafyllopoulos et al. (the ``BERT`` rows of their Tables 1 and 3).

Paper: "Multistage linguistic conditioning of convolutional layers for speech emotion recognition"
(Triantafyllopoulos, Reichel, Liu, Huber, Eyben, Schuller; Frontiers in Computer Science 5:1072479, 2023),
section 4.2: ``bert-base-uncased`` from Hugging Face "with a final linear layer", fine-tuned, at most 128 tokens.

Data flow and shapes (``B`` utterances, ``L`` = most tokens in the batch, ``H`` = the encoder's hidden size,
768 for bert-base, 384 for the offline all-MiniLM-L6-v2)::

    bert_tokens [L_u, 1] per utterance: WordPiece ids [CLS] ... [SEP] (float32 in the store)
      -> prepare: int64 ids, cut to max_tokens ([CLS] + the first max_tokens - 2 + the final [SEP])
    collate: input_ids [B, L] (padded with the model's pad id), attention_mask [B, L] (1 = real token)
    encoder (BERT architecture, every layer fine-tuned)        -> last hidden states [B, L, H]
    pooling "cls": the pooler, tanh(W h_[CLS] + b)             -> [B, H]
            "mean": mean of the hidden states of the real tokens (attention mask) -> [B, H]
    dropout (the encoder's hidden_dropout_prob, 0.1) -> Linear H -> n_outputs   (logits or values)

Training settings are the trainer's (``models.bert`` config section); the paper's: Adam with betas 0.9 / 0.999,
epsilon 1e-6, weight decay 0.0 and no bias correction, learning rate 2e-5 with a linear schedule of 1000 total
and 100 warm-up steps, batch size 32, 4 epochs with early stopping on a validation UAR (CCC) decrease; weighted
cross-entropy, or the mean CCC loss for the A/V/D multi-task model.

Resolved ambiguities
--------------------
* **Pooling.** "bert-base-uncased distributed by Huggingface with a final linear layer" is Hugging Face's
  ``BertForSequenceClassification``: the pooler output (the [CLS] state through BERT's pre-trained dense + tanh
  layer), dropout with the encoder's ``hidden_dropout_prob``, then one linear layer, initialised N(0, 0.02)
  (``initializer_range``). That is the default, ``pooling="cls"``. ``pooling="mean"`` averages the last
  hidden states of all real tokens, [CLS] and [SEP] included (how all-MiniLM-L6-v2 was trained; the
  encoder is then built without its pooler). A checkpoint without pooler weights gets a freshly initialised
  pooler with ``"cls"``: recorded as ``pooler_random_init`` in :meth:`BertText.describe`.
* **Which model runs.** ``model`` (a hub name) and ``path`` (a local folder, which wins) are resolved by
  :func:`serflow.features.text.transformer.resolve_text_model`, the same resolution that builds the text
  stores: offline, ``bert-base-uncased`` becomes the packaged sentence-transformers all-MiniLM-L6-v2 (a
  ``BertModel`` with the bert-base-uncased vocabulary, 6 layers, 384-d), and :attr:`BertText.loaded` says so
  (``model`` = what really runs, ``requested``, ``random_init``). The ``bert_tokens`` store must come from
  that model's tokenizer; :meth:`BertText.prepare` refuses ids outside its vocabulary.
* **Truncation.** The store holds at most 128 tokens (the paper's limit, [CLS] and [SEP] included). With a
  smaller ``max_tokens`` the text is cut as the tokenizer would have cut it (the final [SEP] kept); counted as
  ``utterances_truncated`` / ``tokens_truncated``.
* **Freezing** (``freeze``, default False: the paper fine-tunes). With ``freeze=True`` only the head trains;
  the encoder stays in evaluation mode (no dropout inside it) and runs without gradients.
* **Loading.** ``AutoModel.from_pretrained`` from the resolved folder or name, in float32; with
  ``HF_HUB_OFFLINE=1`` a hub name must already be cached. Built on the meta device (the workflow's parse-time
  check) the encoder comes from the configuration alone and no weight file is read; if even the configuration
  is unavailable there (a hub name not cached on the parsing machine), bert-base's default configuration
  stands in for that check.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import BERT, features_of, variants_of

log = logging.getLogger(__name__)

PAPER = BERT.paper
POOLINGS = ("cls", "mean")
COUNT_KEYS = ("utterances_truncated", "tokens_truncated")


class BertText(SerModel):
    """A BERT-architecture encoder fine-tuned with a linear head; see the module docstring."""

    def __init__(
        self,
        n_outputs: int,
        *,
        model: str = "bert-base-uncased",
        path: str | os.PathLike[str] | None = None,
        max_tokens: int = 128,
        pooling: str = "cls",
        dropout: float | None = None,
        freeze: bool = False,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, BertConfig

        from serflow.features.text.transformer import resolve_text_model

        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        if dropout is not None and not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1) or None, got {dropout}")
        self.n_outputs, self.pooling, self.freeze, self.max_tokens = n_outputs, pooling, freeze, max_tokens
        self.features: tuple[str, ...] = ("bert_tokens",)
        source, meta = resolve_text_model("bert", model, path)
        self.source = source
        on_meta = torch.empty(0).device.type == "meta"
        info: dict[str, Any] = {"missing_keys": set()}
        if on_meta:  # the workflow's parse-time check: configuration only, no weights
            try:
                config = AutoConfig.from_pretrained(source)
            except OSError:
                config = BertConfig()
            self.encoder = AutoModel.from_config(config, add_pooling_layer=pooling == "cls")
        else:
            self.encoder, info = AutoModel.from_pretrained(
                source, dtype=torch.float32, add_pooling_layer=pooling == "cls", output_loading_info=True
            )
        config = self.encoder.config
        if not 2 <= max_tokens <= int(config.max_position_embeddings):
            raise ValueError(f"max_tokens must be in 2..{config.max_position_embeddings}, got {max_tokens}")
        newly = sorted(info.get("missing_keys", ()))
        self.loaded: dict[str, Any] = {
            **meta,
            "name_or_path": source,
            "random_init": bool(meta.get("random_init") or getattr(config, "serflow_random_init", False)),
            "pooler_random_init": pooling == "cls" and any(k.startswith("pooler.") for k in newly),
            "newly_initialised": newly,
        }
        if newly and not on_meta:
            log.warning("%s: weights not in the checkpoint, initialised at random: %s", source, newly)
        self.vocab_size = int(config.vocab_size)
        self.pad_id = int(config.pad_token_id or 0)
        hidden = int(config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob if dropout is None else dropout)
        self.head = nn.Linear(hidden, n_outputs)
        nn.init.normal_(self.head.weight, mean=0.0, std=float(getattr(config, "initializer_range", 0.02)))
        nn.init.zeros_(self.head.bias)
        if freeze:
            self.encoder.requires_grad_(False)
            self.encoder.eval()

    @property
    def label(self) -> str:
        """What really runs (e.g. the MiniLM stand-in for bert-base-uncased)."""
        return str(self.loaded["model"])

    @property
    def random_init(self) -> bool:
        return bool(self.loaded["random_init"])

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> dict[str, Any]:
        """What was loaded and built, for the results: JSON-able."""
        return {
            **self.loaded,
            "pooling": self.pooling,
            "freeze": self.freeze,
            "max_tokens": self.max_tokens,
            "hidden_size": int(self.encoder.config.hidden_size),
            "n_parameters": self.n_parameters,
        }

    def train(self, mode: bool = True) -> BertText:
        super().train(mode)
        if self.freeze:
            self.encoder.eval()  # a frozen encoder is a fixed feature extractor: no dropout inside it
        return self

    # ------------------------------------------------------------------ data
    def check_stores(self, metas: Mapping[str, Mapping[str, Any]]) -> None:
        """The ``bert_tokens`` store must come from this model's tokenizer: the same model (what really runs, e.g.
        the MiniLM stand-in) and vocabulary size. Ids from another vocabulary would be valid numbers meaning other
        words, so this is refused before training rather than found by :meth:`prepare`'s range check (or not)."""
        made_by = (metas.get("bert_tokens") or {}).get("model") or {}
        if not made_by:
            return  # a store written before tokenizers were recorded: prepare's range check is all there is
        ours = {"model": self.label, "vocab_size": self.vocab_size}
        theirs = {"model": made_by.get("model"), "vocab_size": made_by.get("vocab_size")}
        if ours != theirs:
            raise ValueError(
                f"the bert_tokens store was tokenised by {theirs['model']} (vocabulary {theirs['vocab_size']}), "
                f"but this BERT model is {ours['model']} (vocabulary {ours['vocab_size']}): set features.bert to "
                "the same model and path as models.bert"
            )

    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check one utterance's token ids and cut them to ``max_tokens``; returns int64 ``bert_tokens [L']``.

        ValueError (the trainer drops the utterance) for a malformed array (not ``[L >= 2, 1]``, non-integer)
        or ids outside the model's vocabulary (a store tokenised for another model).
        """
        if "bert_tokens" not in sample:
            raise KeyError(f"sample lacks ['bert_tokens']; the BERT model reads {list(self.features)}")
        raw = np.asarray(sample["bert_tokens"])
        if raw.ndim == 2 and raw.shape[1] == 1:
            raw = raw[:, 0]
        if raw.ndim != 1 or len(raw) < 2:
            raise ValueError(f"bert_tokens has shape {np.shape(sample['bert_tokens'])}; expected [tokens >= 2, 1]")
        if not np.all(np.isfinite(raw)) or not np.array_equal(raw, np.round(raw)):
            raise ValueError("bert_tokens holds non-integer values")
        ids = raw.astype(np.int64)
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(
                f"bert_tokens holds ids in [{ids.min()}, {ids.max()}], outside the vocabulary of {self.label} "
                f"({self.vocab_size}): tokenised for another model?"
            )
        counts = dict.fromkeys(COUNT_KEYS, 0)
        if len(ids) > self.max_tokens:
            counts["utterances_truncated"], counts["tokens_truncated"] = 1, len(ids) - self.max_tokens
            ids = np.concatenate([ids[: self.max_tokens - 1], ids[-1:]])  # [CLS] ... + the final [SEP]
        return {"bert_tokens": ids}, counts

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """``input_ids [B, L]`` padded with the pad id, ``attention_mask [B, L]`` (1 = real token)."""
        lengths = [len(s["bert_tokens"]) for s in samples]
        ids = np.full((len(samples), max(lengths)), self.pad_id, np.int64)
        mask = np.zeros_like(ids)
        for i, s in enumerate(samples):
            ids[i, : lengths[i]] = s["bert_tokens"]
            mask[i, : lengths[i]] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

    # ------------------------------------------------------------------ model
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.dropout(self.pooled(batch)))

    def pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The utterance vector ``[B, H]`` the head reads (``pooling``: the pooler's [CLS], or the token mean)."""
        mask = batch["attention_mask"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.encoder(input_ids=batch["input_ids"], attention_mask=mask)
        if self.pooling == "cls":
            return out.pooler_output
        hidden = out.last_hidden_state
        weights = mask[..., None].to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)


# ---------------------------------------------------------------------- registry
_HPARAMS = frozenset({"model", "path", "max_tokens", "pooling", "dropout", "freeze"})


def build(n_outputs: int, **hparams: Any) -> BertText:
    """A :class:`BertText`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown BERT hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return BertText(n_outputs, **hparams)


VARIANTS = variants_of(BERT)  # the catalogue registers it
FEATURES = features_of(BERT)
