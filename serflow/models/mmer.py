"""MultiModal-ER (seed 003): BiLSTM + attention-pooling encoders of MFCCs and of Whisper transcripts, and their fusion.

Source: the "MultiModal-ER" report (TESS, Whisper-base ASR, speech / text / fusion pipelines; dated February
2026; ``shared/seeds/003_*``, cited here as S003) and its public code (``6736-shafi/MultiModal-ER`` @ ``ebe7e66``,
C003), which settles every detail the report leaves open (``shared/reference/seed-models.md`` section 3). The
report has no equations; its section numbers stand beside the lines that implement them.

Data flow and shapes (``B`` utterances; ``T`` = 200 frames and ``L`` = 20 words by default, or the batch's
longest with ``mask_padding``; ``H`` = 128)::

    speech  mfcc120 [T, 120] (MFCC-40 + delta + delta-delta)                          S003 A.2
            cut to 200 frames, zero-padded to T                                        S003 A.1
            -> BiLSTM(120 -> H per direction, 2 layers, dropout 0.3 between layers)    S003 A.3 -> [B, T, 2H]
            -> LayerNorm(2H)
            -> attention pooling: s_t = w_2 tanh(W_1 h_t + b_1) + b_2,                 S003 A.3
               alpha = softmax_t(s) (over all T frames: no mask, as C003), c = sum_t alpha_t h_t   -> [B, 2H]
    text    word_ids [N, 1] (corpus-wide word-type ids) -> vocabulary rows (PAD 0, UNK 1), cut to 20
            -> Embedding(V, 64, padding_idx 0)                                         S003 A.2 -> [B, L, 64]
            -> the same BiLSTM / LayerNorm / attention, PAD positions masked           S003 A.3 -> [B, 2H]
    unimodal head (``mmer_speech``, ``mmer_text``):
            Dropout(0.3), Linear(2H -> H), ReLU, Dropout(0.3), Linear(H -> K)          S003 A.5 -> [B, K]
    fusion (``mmer_fusion``; both encoders trained jointly, no dropout after them):
            cat(speech, text) [B, 4H] -> Linear(4H -> 2H), ReLU, LayerNorm(2H), Dropout  S003 A.4 -> fused [B, 2H]
            -> Linear(2H -> H), ReLU, Dropout, Linear(H -> K)                           S003 A.5 -> [B, K]

Parameter counts with the report's vocabulary (V = 363 including PAD and UNK) and K = 7 (Appendix A, S003 B.3):
718,600 (speech), 684,488 (text), 1,501,129 (fusion); PyTorch's two LSTM bias vectors are part of them. All
weights start from PyTorch's default initialisation, as in C003 (the embedding's PAD row is zero and gets no
gradient). :meth:`MultiModalER.representations` returns the pooled ``speech`` / ``text`` vectors and the
``fused`` one for the report's t-SNE figures (S003 C.4; call it in ``eval()`` mode).

Training (trainer settings, S003 B.1 and C003): plain cross-entropy; Adam, learning rate 1e-3, weight decay 1e-4
(L2 added to the gradient, torch's Adam); ReduceLROnPlateau on the validation *loss* (mode min, patience 5,
factor 0.5), stepped once per epoch; batch 32; 30 epochs, no early stopping; gradient-norm clip 1.0; the
checkpoint of the best validation *accuracy* is kept. Seed 42 and a single run in the report.

Resolved ambiguities and deviations
-----------------------------------
* **Speech padding.** C003 zero-pads every utterance to 200 frames, runs the BiLSTM over all 200 and pools
  over all of them (no mask; reference note 3.7 item 3), so a short utterance's output depends on its
  padding (but not on the batch: every utterance has the same 200 steps). That is the default, because the
  report's numbers came from it. ``mask_padding=True`` runs both BiLSTMs on the true lengths (packed
  sequences) and gives padded positions no attention weight: an utterance's output is then the same alone,
  in any batch or with any amount of padding. In that mode batches are padded only to their longest member.
* **Text padding.** C003 masks the PAD tokens in the text attention but runs the BiLSTM over the 20 padded
  positions (the PAD embedding is the zero vector, so the backward direction starts on zero inputs). Default:
  the same. ``mask_padding=True`` packs the text BiLSTM too.
* **Vocabulary.** C003 builds it from every transcript, validation and test included (a leak; note 3.7
  item 2), rows 2, 3, ... in order of decreasing frequency (ties: first occurrence). Default here:
  ``vocabulary="train"``, from the training split only; ``"all"`` is the report's way. The store holds
  normalised words (lower-cased, non-letters removed, split on whitespace, as C003) as corpus-wide integer ids,
  so the model only maps ids to rows: :meth:`MultiModalER.fold_hparams` returns ``vocab_size`` (word types +
  PAD + UNK) from the samples the trainer passes (the splits named by :attr:`MultiModalER.vocabulary_splits`),
  :meth:`MultiModalER.init_fold` fills the lookup buffers (sorted word ids and their rows; both in the state
  dict, so a checkpoint restores them). A word missing from the vocabulary maps to UNK (1). The vocabulary is
  built from the *prepared* (cut to 20 words) samples: a word seen only past the 20th word of training
  transcripts is UNK, like a word never seen (the model never reads past 20 words anyway).
  :meth:`MultiModalER.oov_stats` gives the OOV rate of any prepared samples (e.g. the test split).
* **Empty transcripts** (Whisper returns "" on silence). C003 would pad them to 20 PAD tokens, mask all 20 and
  take a softmax over nothing: NaN. Here :meth:`MultiModalER.prepare` replaces an empty transcript by a single
  UNK token and counts it (``empty_transcripts``). Refusing the utterance instead would drop it from the
  fusion model too and leave the speech, text and fusion models with different test sets, while the report
  compares them on the same utterances; an UNK token is what C003's tokeniser gives for any unknown word,
  i.e. "no usable word", which the model can learn like any other input.
* **Truncation** keeps the first 200 frames (the report's ``MAX_AUDIO_LEN``, 6.4 s at C003's 32 ms hop) and the
  first 20 words (``MAX_SEQ_LEN``), as C003's post-truncation, and counts what it cut.
* **Dropout placement** follows C003 exactly (note 3.3): the unimodal models apply dropout to the pooled
  vector before their head; the fusion model's encoders have no such dropout, its dropout sits after the
  fusion LayerNorm and inside the head.

Hyperparameters of :func:`build` (the ``mmer`` config section; defaults are the report's): ``audio_dim`` 120
(passed by the trainer from the store's dims), ``vocab_size`` 363 (set per fold by :meth:`fold_hparams`),
``embedding_dim`` 64, ``hidden`` 128 (per direction; the attention's and the head's hidden size, as C003),
``num_layers`` 2, ``dropout`` 0.3, ``max_frames`` 200, ``max_words`` 20, ``mask_padding`` False,
``vocabulary`` ``"train"`` (``"all"``: the report's). The flags ``speech`` and ``text`` are set by the variant's
name (:data:`VARIANTS`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import MMER, features_of, variants_of

PAPER = MMER.paper
SPEECH_STORE = "mfcc120"
TEXT_STORE = "word_ids"
PAD, UNK = 0, 1  # vocabulary rows, as C003
EMPTY = -1  # prepared id of the placeholder word of an empty transcript: never in a vocabulary, so UNK
VOCABULARY_SPLITS = {"train": ("train",), "all": ("train", "valid", "test")}
SPEECH_COUNTS = ("frames_truncated", "utterances_truncated", "utterances_padded")
TEXT_COUNTS = ("words_truncated", "transcripts_truncated", "empty_transcripts")

VARIANTS = variants_of(MMER)  # name -> (description, {"speech": ..., "text": ...}); the catalogue registers them
FEATURES = features_of(MMER)


class AttentiveBiLSTM(nn.Module):
    """One encoder (S003 A.3): BiLSTM -> LayerNorm -> additive attention pooling, ``[B, T, D]`` -> ``[B, 2H]``."""

    def __init__(self, input_dim: int, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            hidden,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,  # between the layers only, as C003
        )
        self.norm = nn.LayerNorm(2 * hidden)
        self.attention = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, *, pack: bool, mask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, T, D]`` (zero-padded), ``lengths [B]`` -> pooled ``[B, 2H]`` and attention weights ``[B, T]``.

        ``pack``: the BiLSTM runs on each utterance's true length (else over all ``T`` steps, padding
        included). ``mask``: padded positions get no attention weight (else every position is pooled).
        """
        if pack:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            h = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]
        else:
            h = self.lstm(x)[0]  # [B, T, 2H]
        h = self.norm(h)
        valid = torch.arange(x.shape[1], device=lengths.device)[None, :] < lengths[:, None] if mask else None
        return self.pool(h, valid)

    def pool(self, h: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention pooling of ``h [B, T, 2H]``; ``valid [B, T]`` (or None: no mask) -> ``[B, 2H]``, ``[B, T]``."""
        score = self.attention(h).squeeze(-1)  # s_t = w_2 tanh(W_1 h_t + b_1) + b_2: [B, T]
        if valid is not None:
            score = score.masked_fill(~valid, float("-inf"))
        alpha = torch.softmax(score, dim=1)  # over time
        return torch.einsum("bt,btd->bd", alpha, h), alpha  # c = sum_t alpha_t h_t


class MultiModalER(SerModel):
    """The report's speech-only, text-only and fusion models; see the module docstring."""

    def __init__(
        self,
        n_outputs: int,
        *,
        speech: bool = True,
        text: bool = True,
        audio_dim: int = 120,
        vocab_size: int = 363,
        embedding_dim: int = 64,
        hidden: int = 128,
        num_layers: int = 2,
        dropout: float = 0.3,
        max_frames: int = 200,
        max_words: int = 20,
        mask_padding: bool = False,
        vocabulary: str = "train",
    ) -> None:
        super().__init__()
        if not (speech or text):
            raise ValueError("MultiModal-ER needs at least one modality (speech=True or text=True)")
        if vocabulary not in VOCABULARY_SPLITS:
            raise ValueError(f"vocabulary must be one of {sorted(VOCABULARY_SPLITS)}, got {vocabulary!r}")
        if vocab_size < 2:
            raise ValueError(f"vocab_size counts PAD and UNK, so it is at least 2; got {vocab_size}")
        if min(max_frames, max_words) < 1:
            raise ValueError(f"truncation limits must be >= 1: {max_frames=}, {max_words=}")
        self.n_outputs = n_outputs
        self.use_speech, self.use_text = speech, text
        self.audio_dim, self.vocab_size = audio_dim, vocab_size
        self.max_frames, self.max_words = max_frames, max_words
        self.mask_padding = mask_padding
        self.vocabulary = vocabulary
        self.vocabulary_splits: tuple[str, ...] = VOCABULARY_SPLITS[vocabulary]  # what init_fold must be given
        self.features = ((SPEECH_STORE,) if speech else ()) + ((TEXT_STORE,) if text else ())
        width = 2 * hidden  # a BiLSTM's output
        if speech:
            self.speech_encoder = AttentiveBiLSTM(audio_dim, hidden, num_layers, dropout)
        if text:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD)
            self.text_encoder = AttentiveBiLSTM(embedding_dim, hidden, num_layers, dropout)
            # the vocabulary lookup: sorted word-type ids and the row of each (set by init_fold)
            self.register_buffer("vocab_ids", torch.zeros(vocab_size - 2, dtype=torch.long))
            self.register_buffer("vocab_rows", torch.zeros(vocab_size - 2, dtype=torch.long))
            self._vocab_ready = False
            self.register_load_state_dict_post_hook(_mark_vocab_ready)
        self.fused = speech and text
        if self.fused:
            self.fusion = nn.Sequential(  # S003 A.4: 4H -> 2H
                nn.Linear(2 * width, width), nn.ReLU(), nn.LayerNorm(width), nn.Dropout(dropout)
            )
            head: list[nn.Module] = []
        else:
            head = [nn.Dropout(dropout)]  # the unimodal models' dropout on the pooled vector
        self.classifier = nn.Sequential(  # S003 A.5
            *head, nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_outputs)
        )

    # ------------------------------------------------------------------ data
    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check and cut one utterance: ``mfcc120 [T, 120]`` -> its first 200 frames (float32);
        ``word_ids [N, 1]`` -> the first 20 ids as int64 ``[n]`` (an empty transcript -> one UNK placeholder).

        Counts: ``frames_truncated`` (frames cut), ``utterances_truncated`` (utterances cut),
        ``utterances_padded`` (utterances shorter than ``max_frames``, zero-padded to it in the report's mode,
        their padding masked with ``mask_padding``); ``words_truncated``, ``transcripts_truncated``,
        ``empty_transcripts``. Refuses (ValueError) an utterance with no frame or malformed arrays.
        """
        out: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        if self.use_speech:
            frames = np.asarray(sample[SPEECH_STORE])
            if frames.ndim != 2 or frames.shape[0] == 0 or frames.shape[1] != self.audio_dim:
                raise ValueError(f"{SPEECH_STORE} has shape {frames.shape}; expected [frames >= 1, {self.audio_dim}]")
            if not np.isfinite(frames).all():
                raise ValueError(f"{SPEECH_STORE} holds non-finite values")
            n = frames.shape[0]
            out[SPEECH_STORE] = np.array(frames[: self.max_frames], dtype=np.float32)
            counts["frames_truncated"] = max(0, n - self.max_frames)
            counts["utterances_truncated"] = int(n > self.max_frames)
            counts["utterances_padded"] = int(n < self.max_frames)
        if self.use_text:
            raw = np.asarray(sample[TEXT_STORE])
            if raw.size == 0:  # Whisper's "" on silence: one UNK (see the module docstring)
                ids = np.array([EMPTY], dtype=np.int64)
                counts["empty_transcripts"] = 1
            else:
                if raw.ndim != 2 or raw.shape[1] != 1:
                    raise ValueError(f"{TEXT_STORE} has shape {raw.shape}; expected [words, 1]")
                if not np.isfinite(raw).all() or not np.array_equal(raw, np.round(raw)) or (raw < 0).any():
                    raise ValueError(f"{TEXT_STORE} must hold non-negative integer word ids")
                ids = raw[:, 0].astype(np.int64)
                counts["empty_transcripts"] = 0
            out[TEXT_STORE] = ids[: self.max_words]
            counts["words_truncated"] = max(0, len(ids) - self.max_words)
            counts["transcripts_truncated"] = int(len(ids) > self.max_words)
        return out, counts

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """``frames [B, T, 120]`` (zeros after each utterance) and ``n_frames [B]``; ``words [B, L]`` (global
        word ids; 0 after each transcript, ignored) and ``n_words [B]``. ``T``/``L`` are ``max_frames`` /
        ``max_words`` (the report's fixed lengths), or the batch's longest with ``mask_padding``."""
        batch: dict[str, torch.Tensor] = {}
        if self.use_speech:
            lengths = np.array([len(s[SPEECH_STORE]) for s in samples], dtype=np.int64)
            frames = np.zeros((len(samples), self._steps(lengths, self.max_frames), self.audio_dim), np.float32)
            for row, s in enumerate(samples):
                frames[row, : len(s[SPEECH_STORE])] = s[SPEECH_STORE]
            batch["frames"], batch["n_frames"] = torch.from_numpy(frames), torch.from_numpy(lengths)
        if self.use_text:
            lengths = np.array([len(s[TEXT_STORE]) for s in samples], dtype=np.int64)
            words = np.zeros((len(samples), self._steps(lengths, self.max_words)), np.int64)
            for row, s in enumerate(samples):
                words[row, : len(s[TEXT_STORE])] = s[TEXT_STORE]
            batch["words"], batch["n_words"] = torch.from_numpy(words), torch.from_numpy(lengths)
        return batch

    def _steps(self, lengths: np.ndarray, fixed: int) -> int:
        return int(lengths.max()) if self.mask_padding else fixed

    # ------------------------------------------------------------------ vocabulary (per fold)
    def fold_hparams(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """``{"vocab_size": word types of the given prepared samples + PAD + UNK}`` (nothing for speech only).

        The trainer passes the samples of :attr:`vocabulary_splits` (the training split by default)."""
        if not self.use_text:
            return {}
        return {"vocab_size": 2 + len(_word_types(train)[0])}

    def init_fold(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Fill the lookup from the prepared samples of :attr:`vocabulary_splits`: rows 2, 3, ... in order of
        decreasing frequency (ties: first occurrence), as C003. Returns the vocabulary's statistics."""
        if not self.use_text:
            return {}
        types, counts, first = _word_types(train)
        if len(types) + 2 != self.vocab_size:
            raise ValueError(
                f"these samples have {len(types)} word types (+ PAD, UNK = {len(types) + 2}) but the model was "
                f"built with vocab_size={self.vocab_size}: build it with fold_hparams() of the same samples"
            )
        rank = np.empty(len(types), dtype=np.int64)
        rank[np.lexsort((first, -counts))] = np.arange(len(types))
        with torch.no_grad():
            self.vocab_ids.copy_(torch.from_numpy(types))  # np.unique: sorted
            self.vocab_rows.copy_(torch.from_numpy(rank + 2))
        self._vocab_ready = True
        ids = _all_ids(train)
        return {
            "vocabulary": self.vocabulary,
            "vocabulary_splits": list(self.vocabulary_splits),
            "vocab_size": self.vocab_size,
            "word_types": len(types),
            "tokens": int((ids != EMPTY).sum()),
            "empty_transcripts": int((ids == EMPTY).sum()),
        }

    def oov_stats(self, samples: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Tokens of the prepared samples (placeholders of empty transcripts excluded) missing from the
        vocabulary: ``{"tokens", "oov_tokens", "oov_rate"}`` (``{}`` for the speech-only model: no vocabulary)."""
        if not self.use_text:
            return {}
        if not self._vocab_ready:
            raise RuntimeError("the vocabulary lookup is not set: call init_fold() or load a state dict first")
        ids = _all_ids(samples)
        ids = ids[ids != EMPTY]
        oov = int((~np.isin(ids, self.vocab_ids.cpu().numpy())).sum())
        return {"tokens": len(ids), "oov_tokens": oov, "oov_rate": oov / len(ids) if len(ids) else 0.0}

    def word_rows(self, words: torch.Tensor, n_words: torch.Tensor) -> torch.Tensor:
        """Vocabulary rows of global word ids ``[B, L]``: the id's row, UNK if it has none, PAD after the end."""
        if not self._vocab_ready:
            raise RuntimeError("the vocabulary lookup is not set: call init_fold() or load a state dict first")
        if len(self.vocab_ids):
            pos = torch.searchsorted(self.vocab_ids, words).clamp_(max=len(self.vocab_ids) - 1)
            rows = torch.where(self.vocab_ids[pos] == words, self.vocab_rows[pos], UNK)
        else:
            rows = torch.full_like(words, UNK)
        valid = torch.arange(words.shape[1], device=words.device)[None, :] < n_words[:, None]
        return rows.masked_fill(~valid, PAD)

    # ------------------------------------------------------------------ model
    def representations(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Pooled vectors for the t-SNE figures: ``speech [B, 2H]``, ``text [B, 2H]``, ``fused [B, 2H]``
        (those the variant has; before the unimodal models' dropout)."""
        reps: dict[str, torch.Tensor] = {}
        if self.use_speech:
            reps["speech"], _ = self.speech_encoder(
                batch["frames"], batch["n_frames"], pack=self.mask_padding, mask=self.mask_padding
            )
        if self.use_text:
            embedded = self.embedding(self.word_rows(batch["words"], batch["n_words"]))  # [B, L, 64]
            reps["text"], _ = self.text_encoder(embedded, batch["n_words"], pack=self.mask_padding, mask=True)
        if self.fused:
            reps["fused"] = self.fusion(torch.cat([reps["speech"], reps["text"]], dim=1))  # S003 A.4
        return reps

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        reps = self.representations(batch)
        pooled = reps["fused"] if self.fused else reps["speech" if self.use_speech else "text"]
        return self.classifier(pooled)  # [B, n_outputs]


# ---------------------------------------------------------------------- helpers
def _mark_vocab_ready(module: nn.Module, incompatible_keys: Any) -> None:
    """A loaded state dict carries the lookup buffers."""
    module._vocab_ready = True


def _all_ids(samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.asarray(s[TEXT_STORE], dtype=np.int64) for s in samples] or [np.zeros(0, np.int64)])


def _word_types(samples: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted word-type ids of the prepared samples, their counts and first positions (placeholders excluded)."""
    ids = _all_ids(samples)
    ids = ids[ids != EMPTY]
    types, first, counts = np.unique(ids, return_index=True, return_counts=True)
    return types, counts, first


# ---------------------------------------------------------------------- registry
_HPARAMS = frozenset(
    {
        "speech",
        "text",
        "audio_dim",
        "vocab_size",
        "embedding_dim",
        "hidden",
        "num_layers",
        "dropout",
        "max_frames",
        "max_words",
        "mask_padding",
        "vocabulary",
    }
)


def build(n_outputs: int, **hparams: Any) -> MultiModalER:
    """A :class:`MultiModalER`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown MultiModal-ER hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return MultiModalER(n_outputs, **hparams)
