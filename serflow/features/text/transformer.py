"""Contextual word and utterance embeddings from a Hugging Face encoder (BERT, RoBERTa, ...).

The aligned words of an utterance are joined with single spaces and tokenised once, with character
offsets; every subword token is mapped back to the word whose characters it covers, and a word's
vector is the mean of its tokens' last hidden states. Mapping through offsets (rather than
``is_split_into_words``) works for WordPiece and byte-level BPE alike, so the same code serves BERT and
RoBERTa. The utterance vector is the mean over the non-special tokens (the linguistic embedding of
MFCNN14).

Edge cases, defined rather than crashed on:

* a text longer than ``max_length`` tokens is truncated; words whose tokens were cut (fully or in
  part) are counted in :class:`EncodeReport` and logged. Every word keeps its row, so the matrix
  still lines up with the words table: a word with no token left gets a zero row;
* a word the tokenizer drops entirely (only characters it strips) also gets a zero row, counted;
* an utterance with no words gets a ``[0, H]`` word matrix and, as utterance vector, the mean of the
  special tokens of the encoded empty text (``[CLS] [SEP]`` / ``<s> </s>``), so it still has a
  finite, model-defined vector instead of a NaN.

Model choice is :func:`resolve_text_model`'s job: it substitutes the offline stand-ins used here
(MiniLM for ``bert-base-uncased``, a tiny random-init RoBERTa) and says so in its metadata.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from serflow.features.text.choice import MINILM_PACKAGE, TINY_ROBERTA_SEED, text_model_choice
from serflow.features.text.tiny_models import ensure_tiny_roberta

log = logging.getLogger(__name__)

TextKind = Literal["bert", "roberta"]


@dataclass
class EncodeReport:
    """What :meth:`TransformerEncoder.encode_words` could not encode in full, for the run's metadata."""

    max_length: int
    n_utterances: int = 0
    n_words: int = 0
    n_truncated_words: int = 0  # words with at least one token beyond max_length (zero row if all were)
    n_untokenised_words: int = 0  # words that produced no token at all (zero row)
    truncated: dict[str, int] = field(default_factory=dict)  # utt_id -> truncated words in it

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "n_utterances": self.n_utterances,
            "n_words": self.n_words,
            "n_truncated_words": self.n_truncated_words,
            "n_truncated_utterances": len(self.truncated),
            "n_untokenised_words": self.n_untokenised_words,
            "truncated": dict(self.truncated),
        }


@dataclass(frozen=True)
class _Batch:
    """One tokenised batch: its utterances and the token -> word map (-1: no word) for pooling."""

    utt_ids: list[str]
    n_words: list[int]
    inputs: dict[str, torch.Tensor]
    token_word: np.ndarray  # [B, T] global word index within the batch, -1 for specials/padding/spaces
    content: np.ndarray  # [B, T] bool: real, non-special tokens (the utterance mean's tokens)
    attention: np.ndarray  # [B, T] bool: real tokens, specials included (the empty text's fallback)


class TransformerEncoder:
    """A pretrained encoder that turns aligned words into per-word and per-utterance vectors.

    ``name_or_path``: a hub name (``bert-base-uncased``, ``roberta-base``) or a local folder, loaded
    with ``AutoTokenizer``/``AutoModel.from_pretrained``. ``device``: ``"auto"`` takes CUDA when
    present (in fp16 there, fp32 on CPU). ``max_length`` is capped by the tokenizer's own limit.
    """

    def __init__(
        self, name_or_path: str | os.PathLike[str], device: str = "auto", batch_size: int = 32, max_length: int = 512
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.name_or_path = str(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.name_or_path)
        if not self.tokenizer.is_fast:
            raise ValueError(f"{self.name_or_path}: a fast tokenizer is needed for character offsets")
        self.device = _pick_device(device)
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model = AutoModel.from_pretrained(self.name_or_path, dtype=self.dtype).to(self.device).eval()
        self.hidden_size = int(self.model.config.hidden_size)
        self.random_init = bool(getattr(self.model.config, "serflow_random_init", False))
        self.batch_size = batch_size
        self.max_length = min(max_length, int(self.tokenizer.model_max_length))
        if self.max_length < self.tokenizer.num_special_tokens_to_add() + 1:
            raise ValueError(f"max_length {max_length} leaves no room for a token beside the special tokens")
        self.last_report: EncodeReport | None = None

    def encode_words(self, utterances: Sequence[tuple[str, Sequence[str]]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``utt_id -> (word_vectors [n_words, H], utterance_vector [H])``, float32, in input order.

        Utterances are batched by length (less padding; the results do not depend on the batching).
        Truncation and untokenisable words are counted in ``self.last_report``.
        """
        ids = [utt_id for utt_id, _ in utterances]
        if any(isinstance(words, str) for _, words in utterances):
            raise TypeError("each utterance needs a list of words, not a string")
        if len(set(ids)) != len(ids):
            raise ValueError("an utterance id occurs twice in the input")
        report = EncodeReport(max_length=self.max_length, n_utterances=len(ids))
        results: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for batch in self._batches(utterances, report):
            results.update(self._run(batch))
        self.last_report = report
        if report.n_truncated_words:
            log.warning(
                "%s: %d words in %d utterances lie beyond max_length=%d tokens (truncated; zero rows where "
                "no token was left)",
                self.name_or_path,
                report.n_truncated_words,
                len(report.truncated),
                self.max_length,
            )
        return {utt_id: results[utt_id] for utt_id in ids}

    def _batches(self, utterances: Sequence[tuple[str, Sequence[str]]], report: EncodeReport) -> Iterator[_Batch]:
        joined = [_join_words(list(words)) for _, words in utterances]
        order = sorted(range(len(utterances)), key=lambda i: (len(joined[i].text), i))
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            yield self._tokenise([utterances[i][0] for i in chosen], [joined[i] for i in chosen], report)

    def _tokenise(self, utt_ids: list[str], joined: list[_Joined], report: EncodeReport) -> _Batch:
        enc = self.tokenizer(
            [j.text for j in joined],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").numpy()
        special = enc.pop("special_tokens_mask").numpy().astype(bool)
        attention = enc["attention_mask"].numpy().astype(bool)
        content = attention & ~special
        token_word = np.full(content.shape, -1, dtype=np.int64)
        base = 0
        for row, (utt_id, j) in enumerate(zip(utt_ids, joined, strict=True)):
            local = _token_words(offsets[row], content[row], j)
            token_word[row] = np.where(local >= 0, local + base, -1)
            _account(report, utt_id, j, local, _cut_char(enc.encodings[row]))
            base += len(j.starts)
        names = set(self.tokenizer.model_input_names)
        inputs = {k: v.to(self.device) for k, v in enc.items() if k in names}
        return _Batch(utt_ids, [len(j.starts) for j in joined], inputs, token_word, content, attention)

    @torch.inference_mode()
    def _run(self, batch: _Batch) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        hidden = self.model(**batch.inputs).last_hidden_state.float()  # pool in fp32 even after fp16
        words = _pool_words(hidden, torch.from_numpy(batch.token_word).to(hidden.device), sum(batch.n_words))
        content = torch.from_numpy(batch.content).to(hidden.device)
        utt = _pool_utterances(hidden, content, torch.from_numpy(batch.attention).to(hidden.device))
        words_np, utt_np = words.cpu().numpy(), utt.cpu().numpy()
        bounds = np.cumsum([0, *batch.n_words])
        return {
            utt_id: (words_np[bounds[i] : bounds[i + 1]].copy(), utt_np[i].copy())
            for i, utt_id in enumerate(batch.utt_ids)
        }


@dataclass(frozen=True)
class _Joined:
    """The words joined with single spaces, and each word's character span ``[start, end)`` in it."""

    text: str
    starts: np.ndarray
    ends: np.ndarray


def _join_words(words: list[str]) -> _Joined:
    lengths = np.array([len(w) for w in words], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]]).astype(np.int64) if words else lengths
    return _Joined(" ".join(words), starts, starts + lengths)


def _token_words(offsets: np.ndarray, content: np.ndarray, joined: _Joined) -> np.ndarray:
    """Word index of every token of one sequence (-1 for specials, padding and pure-space tokens).

    A token belongs to the word holding its *last* character: byte-level BPE tokens may start on the
    space before a word (``Ġword`` without offset trimming), but they always end inside it.
    """
    n_words = len(joined.starts)
    if n_words == 0:
        return np.full(len(offsets), -1, dtype=np.int64)
    starts, ends = offsets[:, 0], offsets[:, 1]
    last = ends - 1
    word = np.clip(np.searchsorted(joined.starts, last, side="right") - 1, 0, n_words - 1)
    inside = content & (ends > starts) & (last >= joined.starts[word]) & (last < joined.ends[word])
    return np.where(inside, word, -1)


def _cut_char(encoding: Any) -> int | None:
    """First character not encoded because of truncation (None when nothing was cut)."""
    cut: int | None = None
    for over in getattr(encoding, "overflowing", None) or ():
        for (start, end), is_special in zip(over.offsets, over.special_tokens_mask, strict=True):
            if not is_special and end > start:
                cut = start if cut is None else min(cut, start)
    return cut


def _account(report: EncodeReport, utt_id: str, joined: _Joined, token_word: np.ndarray, cut: int | None) -> None:
    """Count truncated words (their span reaches past the cut) and words that got no token at all."""
    n_words = len(joined.starts)
    report.n_words += n_words
    truncated = np.zeros(n_words, dtype=bool) if cut is None else joined.ends > cut
    has_token = np.zeros(n_words, dtype=bool)
    has_token[token_word[token_word >= 0]] = True
    if truncated.any():
        report.truncated[utt_id] = int(truncated.sum())
        report.n_truncated_words += int(truncated.sum())
    report.n_untokenised_words += int((~has_token & ~truncated).sum())


def _pool_words(hidden: torch.Tensor, token_word: torch.Tensor, n_words: int) -> torch.Tensor:
    """Mean of each word's token states by one scatter-add over the flattened batch."""
    flat = hidden.reshape(-1, hidden.shape[-1])
    index = token_word.reshape(-1)
    keep = index >= 0
    sums = torch.zeros(n_words, hidden.shape[-1], dtype=hidden.dtype, device=hidden.device)
    sums.index_add_(0, index[keep], flat[keep])
    counts = torch.bincount(index[keep], minlength=n_words).clamp(min=1).to(hidden.dtype)
    return sums / counts[:, None]


def _pool_utterances(hidden: torch.Tensor, content: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Mean over content tokens; a sequence without any (the empty text) falls back to its specials."""
    empty = ~content.any(dim=1, keepdim=True)
    weights = torch.where(empty, attention, content).to(hidden.dtype)
    return (hidden * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)


def utterance_words(words_df: pd.DataFrame, utt_ids: Iterable[str] | None = None) -> list[tuple[str, list[str]]]:
    """The alignment's ``words`` table as ``[(utt_id, [word, ...])]`` in ``word_index`` order.

    ``utt_ids`` adds utterances without aligned words (they get an empty list, hence the defined
    empty-text vectors) so that every utterance of the manifest gets a text feature.
    """
    table = words_df.sort_values(["utt_id", "word_index"], kind="stable")
    grouped: dict[str, list[str]] = {utt_id: [] for utt_id in utt_ids or ()}
    for utt_id, word in zip(
        table["utt_id"].to_numpy(dtype=object).tolist(), table["word"].to_numpy(dtype=object).tolist(), strict=True
    ):
        grouped.setdefault(utt_id, []).append(word)
    return sorted(grouped.items())


def _pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------------- model choice
def resolve_text_model(
    kind: TextKind,
    name: str,
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    allow_stand_ins: bool = True,
) -> tuple[str, dict[str, Any]]:
    """``(name_or_path, meta)`` of the model to load for a configured ``kind``/``name``/``path``.

    Order: an explicit ``path`` (a folder, or a hub name to force the hub) always wins. Otherwise,
    with ``allow_stand_ins``, the offline stand-ins: ``bert`` + ``bert-base-uncased`` becomes the
    packaged all-MiniLM-L6-v2 when that package is installed; ``roberta`` becomes a tiny random-init
    RoBERTa built into ``cache_dir``. ``sentence-transformers/all-MiniLM-L6-v2`` itself always resolves
    to the packaged copy. Otherwise ``name`` itself, for a machine with hub access.
    ``meta`` = ``{"model", "requested", "random_init"}``: what really runs, what config asked for, and
    whether its features are untrained noise; it goes into the feature metadata so results are never
    reported under the wrong model's name.
    """
    choice = text_model_choice(kind, name, None if path is None else str(path), allow_stand_ins=allow_stand_ins)
    meta = {"model": choice.label, "requested": name, "random_init": choice.random_init}
    if choice.source == "minilm":
        minilm = _minilm_dir()
        if minilm is not None:
            return str(minilm), meta
        choice = text_model_choice(kind, name, None, allow_stand_ins=False)  # package present but broken
        meta = {"model": choice.label, "requested": name, "random_init": False}
    if choice.source == "tiny":
        if cache_dir is None:
            raise ValueError("a cache_dir is needed to build the tiny RoBERTa stand-in (or give a model path)")
        folder = ensure_tiny_roberta(Path(cache_dir) / f"tiny-roberta-seed{TINY_ROBERTA_SEED}", TINY_ROBERTA_SEED)
        return str(folder), meta
    return choice.path or name, meta


def _minilm_dir() -> Path | None:
    """The packaged all-MiniLM-L6-v2 folder, or None when the package is not installed."""
    if importlib.util.find_spec(MINILM_PACKAGE) is None:
        return None
    folder = Path(str(importlib.resources.files(MINILM_PACKAGE).joinpath("model")))
    return folder if (folder / "config.json").is_file() else None
