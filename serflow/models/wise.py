"""WISE (Shen et al., Interspeech 2020): word-level interaction LSTMs over hierarchical audio and GloVe words.

Paper: "WISE: Word-Level Interaction-Based Multimodal Fusion for Speech Emotion Recognition" (Shen, Lai,
Chen, Zhang, Zhang, Han, Song; Interspeech 2020). No public code exists (the authors' repository is empty);
every choice below is from the paper, with its ambiguities resolved as written here.

Data flow and shapes (``B`` utterances, ``N`` = most words in the batch, ``W`` / ``P`` / ``F`` = all words /
phones / kept frames of the batch; sizes are the paper's section 4.2 defaults)::

    mfcc39 [T, 39] per utterance, spans_mfcc39 [P, 3] (word_index, frame_start, frame_end)
      -> frames of every phone of the batch, one packed GRU(39 -> 50)      eq. 6   -> phone vectors [P, 50]
      -> phones of every word of the batch, one packed GRU(50 -> 100)      (3.2)   -> a_i           [W, 100]
      -> padded per utterance                                                     -> a             [B, N, 100]
    glove [N, D]                                                                  -> t             [B, N, D]
    interaction LSTMs, audio 100 / text 150, stepped over the N word positions     eqs. 3-5 -> h_a [B, N, 100],
                                                                                            h_t [B, N, 150]
    attention: u_i = w_a h_a_i + w_t h_t_i [B, N, 200]; e_i = tanh(u_i); alpha = softmax(e_i w_c) over real words;
               p_c = sum_i alpha_i u_i [B, 200]                                   eqs. 7-9
    FC: Linear 200 -> 200, ReLU, dropout 0.3, Linear 200 -> 100, ReLU, dropout 0.3, Linear 100 -> classes
                                                                                  eqs. 10-12 -> logits [B, K]

The loss (eq. 13, cross-entropy) and the optimiser are the trainer's: the paper uses Adam with learning rate
1e-3 and a learning-rate decay of 1e-3, L2 regularisation 1e-4 (weight decay) and 30% dropout (the dropout is
here, ``dropout=0.3``); those belong in the ``wise`` section of the training config.

Resolved ambiguities
--------------------
* **Equations 4-5 (the interaction matrix).** As printed, ``h_a_i = f_a(t_i, h~_a_{i-1})`` and
  ``h_t_i = f_t(a_i, h~_t_{i-1})`` feed the *text* embedding into the audio LSTM and vice versa, which
  contradicts the text around them (equations 1-2 define ``f_a`` on ``a_i`` and ``f_t`` on ``t_i``; "the
  input of an LSTM cell at the i-th time step consists of two parts: the information from the same modality
  that is retained from the previous time step and the fused information learned from the multimodal
  interaction"; the audio LSTM has 100 units over 100-d ``a_i``). We read 4-5 as a typo for
  ``h_a_i = f_a(a_i, h~_a_{i-1})`` and ``h_t_i = f_t(t_i, h~_t_{i-1})``: each LSTM reads its own modality,
  and the interaction-mapped vectors of eq. 3, ``h~_a = W_aa h_a + W_ta h_t`` and
  ``h~_t = W_at h_a + W_tt h_t``, take the place of the previous *hidden* state in the recurrence, exactly
  where equations 1-2 put ``h_{i-1}``. The cell states are not mixed (the paper only maps hidden states).
  The matrix is one parameter ``[[W_aa, W_ta], [W_at, W_tt]]`` of shape ``[100 + 150, 100 + 150]``
  (``W_ta`` is ``[100, 150]``: text into the audio space), no bias, initialised N(0, 0.05), shared by every
  time step. Consequences the tests check: with ``W_aa = I``, ``W_tt = I`` and the cross blocks zero this
  is two independent ordinary LSTMs (equations 1-2); with only the cross blocks zeroed the audio outputs do
  not depend on the text input and vice versa. The initial state is zero, so ``h~_0 = 0``.
* **"GRUs used for each level share the same parameters"** cannot mean one GRU for both levels (50 and
  100 hidden units, 39-d and 50-d inputs). We read it as: one GRU per level, shared by every phone (every
  word) of every utterance, rather than one GRU per position. So there are two GRUs: frames -> phone
  (39 -> 50) and phones -> word (50 -> 100); the last hidden state of each sequence is its vector (eq. 6).
* **Dropout placement.** Equations 10-11 put the dropout vectors on the *inputs* of the first two linear
  layers (``p_1 = relu(W_1 (r_1 * p_c))``), the prose after them ("the first two of which are followed by a
  ReLU layer and a dropout layer"). We follow the prose: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
* **Attention weights** ``w_a``, ``w_t`` are linear maps to the attention size (200) without bias, as printed;
  ``w_c`` is a 200-d vector. Padding positions get no weight (masked softmax).
* **Variable lengths.** The GRUs run on packed sequences (``pack_padded_sequence``), so each phone's and
  word's vector is its true last step. The interaction LSTMs are not ``nn.LSTM`` (each step mixes the two
  cells), so :meth:`Wise.interact` steps over the batch's ``N`` word positions itself, packed-style: the
  utterances sorted by length, step ``i`` computing only those with more than ``i`` words. Padding
  positions have zero hidden states and no attention weight; the last state is taken at the true last word.
* **Truncation** (section 4.2: at most 64 frames per phone, 14 phones per word, 128 words per utterance):
  :meth:`Wise.prepare` keeps the first 128 words, the first 14 phones of each kept word and the first 64
  frames of each kept phone, and counts what it dropped. A phone's frame range is first clipped to the
  frames that exist; a phone left with no frame (a range past the end, or an empty range from an aligner
  whose phone is shorter than one 15 ms step) gets the single nearest frame, so every phone and word has a
  vector.

Variants (the paper's tables; ``IM`` = interaction mechanism, ``HR`` = hierarchical representation,
``DMF`` = deep multimodal fusion network, i.e. attention + FC). One class, selected by ``fixed`` flags. The
paper names the ablations but does not describe them beyond a sentence each; our reading:

``wise``
    HR + IM + DMF, as above.
``wise_audio``
    Table 1 "Audio only" (the paper does not say what its unimodal rows ran; we take WISE's own audio
    branch): HR -> audio LSTM (100) -> attention over ``h_a`` alone (``u_i = w_a h_a_i``) -> FC. Reads only
    ``mfcc39`` and ``spans_mfcc39``.
``wise_text``
    Table 1 "Text only", likewise: GloVe -> text LSTM (150) -> attention over ``h_t`` -> FC. Reads only
    ``glove``.
``wise_im_dmf``
    Table 2 "IM+DMF", HR taken out. The audio LSTM still needs one vector per word and the paper does not
    say which; we use the plainest: ``a_i`` is the mean of the word's frames' MFCCs (39-d; the frames the
    full model would see, i.e. of the word's kept phones), with no network below the word level.
``wise_hr_dmf``
    Table 2 "HR+DMF", IM taken out: no interaction matrix, so two independent LSTMs (equations 1-2), then
    attention over the pairs and FC as in WISE.
``wise_im_hr``
    Table 2 "IM+HR", "a simplified version of WISE without the attention layer": the FC layers (unchanged
    apart from their input size) read the concatenated last hidden states ``[h_a_N; h_t_N]`` (250-d)
    instead of ``p_c``.
``wise_hr_minus``
    Table 2 "IM+DMF+HR-", "removes the phoneme level from the hierarchy": one packed GRU (39 -> 100) over
    all the (kept) frames of each word, whose last state is ``a_i``; the rest is WISE.

Hyperparameters of :func:`build` (the ``wise`` config section; defaults are the paper's): ``phone_hidden``
50, ``word_hidden`` 100, ``audio_lstm`` 100, ``text_lstm`` 150, ``attention`` 200, ``fc`` (200, 100),
``dropout`` 0.3, ``interaction_std`` 0.05, ``max_words`` 128, ``max_phones`` 14, ``max_frames`` 64,
``audio_dim`` 39 and ``text_dim`` 50. The module is built before it sees data, so the input sizes are
hyperparameters: the trainer passes ``audio_dim`` / ``text_dim`` from the feature stores' dims (50 for the
offline glove.6B.50d, 300 for the paper's GloVe); :meth:`Wise.prepare` rejects an utterance whose dims differ.
The architecture flags ``audio``, ``text``, ``hierarchy`` (``"phone"``, ``"frame"``, ``"mean"``),
``interaction`` and ``pooling`` (``"attention"``, ``"last"``) are set by the variant's name
(``ModelSpec.fixed`` overrides the config).

Batches (:meth:`Wise.collate`) carry flat index tensors, so ``forward`` has no Python loop over
utterances, words or phones: every phone of the batch is one sequence of one packed GRU call, every word
one sequence of the next. :func:`word_audio_loop` is the straightforward per-word / per-phone loop of
the same computation, kept as the reference for the tests and the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_sequence

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import WISE, variants_of

PAPER = WISE.paper
HIERARCHIES = ("phone", "frame", "mean")  # frames->phones->words (HR), frames->words (HR-), mean of frames (no HR)
COUNT_KEYS = ("words_truncated", "phones_truncated", "frames_truncated", "spans_clipped", "phones_widened")


class Wise(SerModel):
    """WISE and its ablations; see the module docstring for the equations, shapes and choices."""

    def __init__(
        self,
        n_classes: int,
        *,
        audio: bool = True,
        text: bool = True,
        hierarchy: str = "phone",
        interaction: bool = True,
        pooling: str = "attention",
        audio_dim: int = 39,
        text_dim: int = 50,
        phone_hidden: int = 50,
        word_hidden: int = 100,
        audio_lstm: int = 100,
        text_lstm: int = 150,
        attention: int = 200,
        fc: Sequence[int] = (200, 100),
        dropout: float = 0.3,
        interaction_std: float = 0.05,
        max_words: int = 128,
        max_phones: int = 14,
        max_frames: int = 64,
    ) -> None:
        super().__init__()
        if pooling not in ("attention", "last"):
            raise ValueError(f"pooling must be 'attention' or 'last', got {pooling!r}")
        if not (audio or text):
            raise ValueError("WISE needs at least one modality (audio=True or text=True)")
        if hierarchy not in HIERARCHIES:
            raise ValueError(f"hierarchy must be one of {HIERARCHIES}, got {hierarchy!r}")
        if interaction and not (audio and text):
            raise ValueError("the interaction matrix needs both modalities (set interaction=False)")
        if min(max_words, max_phones, max_frames) < 1:
            raise ValueError(f"truncation limits must be >= 1: {max_words=}, {max_phones=}, {max_frames=}")
        self.n_classes = n_classes
        self.use_audio, self.use_text = audio, text
        self.hierarchy, self.use_interaction, self.use_attention = hierarchy, interaction, pooling == "attention"
        self.audio_dim, self.text_dim = audio_dim, text_dim
        self.max_words, self.max_phones, self.max_frames = max_words, max_phones, max_frames
        self.features: tuple[str, ...] = (("mfcc39", "spans_mfcc39") if audio else ()) + (("glove",) if text else ())

        self.audio_hidden = audio_lstm if audio else 0
        self.text_hidden = text_lstm if text else 0
        if audio:
            if hierarchy == "phone":
                self.phone_gru = nn.GRU(audio_dim, phone_hidden, batch_first=True)  # eq. 6
                self.word_gru = nn.GRU(phone_hidden, word_hidden, batch_first=True)
                word_dim = word_hidden
            elif hierarchy == "frame":
                self.word_gru = nn.GRU(audio_dim, word_hidden, batch_first=True)  # HR-: frames -> word
                word_dim = word_hidden
            else:
                word_dim = audio_dim  # no HR: mean of the word's frames
            self.audio_cell = nn.LSTMCell(word_dim, audio_lstm)  # f_theta_a, eqs. 2 / 4
        if text:
            self.text_cell = nn.LSTMCell(text_dim, text_lstm)  # f_theta_t, eqs. 1 / 5
        if interaction:
            size = self.audio_hidden + self.text_hidden
            self.interaction = nn.Parameter(torch.empty(size, size))  # [[W_aa, W_ta], [W_at, W_tt]], eq. 3
            nn.init.normal_(self.interaction, mean=0.0, std=interaction_std)
        if self.use_attention:
            self.att_audio = nn.Linear(self.audio_hidden, attention, bias=False) if audio else None  # w_a
            self.att_text = nn.Linear(self.text_hidden, attention, bias=False) if text else None  # w_t
            self.att_context = nn.Linear(attention, 1, bias=False)  # w_c
            pooled = attention
        else:
            pooled = self.audio_hidden + self.text_hidden
        layers: list[nn.Module] = []
        for width in fc:  # eqs. 10-11
            layers += [nn.Linear(pooled, width), nn.ReLU(), nn.Dropout(dropout)]
            pooled = width
        layers.append(nn.Linear(pooled, n_classes))  # eq. 12 (softmax is in the loss)
        self.classifier = nn.Sequential(*layers)

    # ------------------------------------------------------------------ interaction matrix blocks (eq. 3)
    def interaction_blocks(self) -> dict[str, torch.Tensor]:
        """Views of ``W_aa [Ha, Ha]``, ``W_ta [Ha, Ht]``, ``W_at [Ht, Ha]``, ``W_tt [Ht, Ht]`` (writable in no_grad)."""
        ha, w = self.audio_hidden, self.interaction
        return {"W_aa": w[:ha, :ha], "W_ta": w[:ha, ha:], "W_at": w[ha:, :ha], "W_tt": w[ha:, ha:]}

    # ------------------------------------------------------------------ data
    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check one utterance and apply the paper's truncation (module docstring); counts of what changed.

        Returns ``mfcc39`` (unchanged), ``spans_mfcc39`` as int64 ``[P', 3]`` (kept phones, ranges clipped and
        capped) and ``glove`` ``[N', D]`` (kept words), and the counts ``words_truncated``, ``phones_truncated``
        (phones beyond 14 in a kept word), ``frames_truncated`` (frames beyond 64 in a kept phone),
        ``spans_clipped`` (kept phones whose range ran outside the frames) and ``phones_widened`` (kept phones
        with no frame, given the nearest one). ValueError for an utterance that cannot be used (the caller
        drops it with the message): no words, no frames, wrong dims, malformed spans, or ``glove`` and
        ``spans_mfcc39`` disagreeing on the number of words. Applying it twice changes nothing more.
        """
        missing = [name for name in self.features if name not in sample]
        if missing:
            raise KeyError(f"sample lacks {missing}; this WISE variant reads {list(self.features)}")
        out: dict[str, np.ndarray] = {}
        counts = dict.fromkeys(COUNT_KEYS if self.use_audio else COUNT_KEYS[:1], 0)
        n_words = None
        if self.use_text:
            glove = np.asarray(sample["glove"], dtype=np.float32)
            if glove.ndim != 2 or glove.shape[0] == 0 or glove.shape[1] != self.text_dim:
                raise ValueError(f"glove has shape {glove.shape}; expected [words >= 1, {self.text_dim}]")
            n_words = glove.shape[0]
        if self.use_audio:
            frames = np.asarray(sample["mfcc39"], dtype=np.float32)
            if frames.ndim != 2 or frames.shape[0] == 0 or frames.shape[1] != self.audio_dim:
                raise ValueError(f"mfcc39 has shape {frames.shape}; expected [frames >= 1, {self.audio_dim}]")
            spans = _check_spans(sample["spans_mfcc39"])
            spans_words = int(spans[-1, 0]) + 1
            if n_words is not None and spans_words != n_words:
                raise ValueError(
                    f"glove has shape {sample['glove'].shape} ({n_words} words) but spans_mfcc39 has shape "
                    f"{sample['spans_mfcc39'].shape} ({spans_words} words)"
                )
            n_words = spans_words
            out["mfcc39"] = frames
            out["spans_mfcc39"] = self._truncate_spans(spans, frames.shape[0], counts)
        assert n_words is not None
        counts["words_truncated"] = max(0, n_words - self.max_words)
        if self.use_text:
            out["glove"] = glove[: self.max_words]
        return out, counts

    def _truncate_spans(self, spans: np.ndarray, n_frames: int, counts: dict[str, int]) -> np.ndarray:
        spans = spans[spans[:, 0] < self.max_words]  # words beyond 128 (counted by the caller)
        word = spans[:, 0]
        first = np.searchsorted(word, word, side="left")  # row of the word's first phone
        keep = np.arange(len(spans)) - first < self.max_phones  # first 14 phones of each word
        counts["phones_truncated"] = int((~keep).sum())
        spans = spans[keep].copy()
        start, end = spans[:, 1], spans[:, 2]
        clipped = (start < 0) | (end > n_frames) | (start > n_frames)
        counts["spans_clipped"] = int(clipped.sum())
        np.clip(start, 0, n_frames, out=start)
        np.clip(end, 0, n_frames, out=end)
        empty = end <= start
        counts["phones_widened"] = int(empty.sum())
        start[empty] = np.minimum(start[empty], n_frames - 1)
        end[empty] = start[empty] + 1
        excess = np.maximum(end - start - self.max_frames, 0)  # first 64 frames of each phone
        counts["frames_truncated"] = int(excess.sum())
        end -= excess
        return spans

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """Flat index tensors for a batch of prepared samples (all CPU; no tensors per word or phone).

        Always: ``n_words [B]``. Text: ``text [B, N, D]`` (zero-padded GloVe). Audio: ``frames [F_all + 1, 39]``
        (the batch's mfcc39 concatenated, plus one zero row that every padding index points to) and
        ``utt_words [B, N]`` (row of each word in the batch's word vectors; padding -> ``W``); then, for
        ``hierarchy="phone"``: ``phone_frames [P, Lp]`` (row of ``frames`` of each frame of each phone),
        ``phone_len [P]``, ``word_phones [W, Lw]`` (index of each phone of each word; padding -> ``P``),
        ``word_len [W]``; for ``"frame"`` and ``"mean"``: ``word_frames [W, Lf]`` and ``word_len [W]`` (frames).
        """
        batch: dict[str, torch.Tensor] = {}
        if self.use_text:
            batch["text"] = pad_sequence([torch.from_numpy(s["glove"]) for s in samples], batch_first=True)
            n_words = np.array([len(s["glove"]) for s in samples], dtype=np.int64)
        if self.use_audio:
            frames = [s["mfcc39"] for s in samples]
            spans = [np.asarray(s["spans_mfcc39"], dtype=np.int64) for s in samples]
            n_frames = np.array([len(f) for f in frames], dtype=np.int64)
            n_phones = np.array([len(s) for s in spans], dtype=np.int64)
            n_words = np.array([int(s[-1, 0]) + 1 for s in spans], dtype=np.int64)
            all_spans = np.concatenate(spans)
            word = all_spans[:, 0] + np.repeat(_offsets(n_words), n_phones)  # batch-wide word index of each phone
            start = all_spans[:, 1] + np.repeat(_offsets(n_frames), n_phones)  # batch-wide frame rows
            length = all_spans[:, 2] - all_spans[:, 1]
            pad_frame = int(n_frames.sum())
            batch["frames"] = torch.from_numpy(np.concatenate([*frames, np.zeros((1, self.audio_dim), np.float32)]))
            n_all_words = int(n_words.sum())
            if self.hierarchy == "phone":
                batch["phone_frames"] = torch.from_numpy(_ranges(start, length, pad_frame))
                batch["phone_len"] = torch.from_numpy(length)
                phones_per_word = np.bincount(word, minlength=n_all_words)
                batch["word_phones"] = torch.from_numpy(
                    _ranges(_offsets(phones_per_word), phones_per_word, len(all_spans))
                )
                batch["word_len"] = torch.from_numpy(phones_per_word)
            else:  # a word's frames: its kept phones' frames, in order
                flat = _ranges_flat(start, length)
                frames_per_word = np.bincount(word, weights=length, minlength=n_all_words).astype(np.int64)
                pos = _ranges(_offsets(frames_per_word), frames_per_word, len(flat))
                batch["word_frames"] = torch.from_numpy(np.append(flat, pad_frame)[pos])
                batch["word_len"] = torch.from_numpy(frames_per_word)
            batch["utt_words"] = torch.from_numpy(_ranges(_offsets(n_words), n_words, n_all_words))
        batch["n_words"] = torch.from_numpy(n_words)
        return batch

    # ------------------------------------------------------------------ model
    def word_audio(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``a_i`` of every word of the batch, ``[W, word_dim]``: the hierarchy in two packed GRU calls."""
        frames = batch["frames"]
        if self.hierarchy == "phone":
            x = frames[batch["phone_frames"]]  # [P, Lp, 39]
            phones = _last_state(self.phone_gru, x, batch["phone_len"])  # eq. 6, h_iN_i: [P, 50]
            phones = torch.cat([phones, phones.new_zeros(1, phones.shape[1])])
            return _last_state(self.word_gru, phones[batch["word_phones"]], batch["word_len"])  # a_i: [W, 100]
        x = frames[batch["word_frames"]]  # [W, Lf, 39]
        if self.hierarchy == "frame":
            return _last_state(self.word_gru, x, batch["word_len"])  # HR-: [W, 100]
        return x.sum(1) / batch["word_len"].to(x.dtype)[:, None]  # no HR: padding rows are zero; [W, 39]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        audio = None
        if self.use_audio:
            a = self.word_audio(batch)
            audio = torch.cat([a, a.new_zeros(1, a.shape[1])])[batch["utt_words"]]  # [B, N, Da]
        return self.fuse(audio, batch.get("text"), batch["n_words"])

    def fuse(self, audio: torch.Tensor | None, text: torch.Tensor | None, n_words: torch.Tensor) -> torch.Tensor:
        """Word level onwards: ``audio [B, N, Da]``, ``text [B, N, Dt]`` (zero-padded) -> logits ``[B, K]``."""
        h_audio, h_text = self.interact(audio, text, n_words)
        n_steps = (audio if audio is not None else text).shape[1]
        mask = torch.arange(n_steps, device=n_words.device)[None, :] < n_words[:, None]  # [B, N]
        if self.use_attention:
            u = 0
            if h_audio is not None:
                u = u + self.att_audio(h_audio)
            if h_text is not None:
                u = u + self.att_text(h_text)  # u_i = w_a h_a_i + w_t h_t_i: [B, N, 200]
            score = self.att_context(torch.tanh(u)).squeeze(-1)  # e_i w_c, eq. 7
            alpha = torch.softmax(score.masked_fill(~mask, float("-inf")), dim=1)  # eq. 8
            pooled = (alpha.unsqueeze(-1) * u).sum(1)  # p_c, eq. 9: [B, 200]
        else:
            last = (n_words - 1).to(torch.long)
            rows = torch.arange(len(last), device=last.device)
            pooled = torch.cat([h[rows, last] for h in (h_audio, h_text) if h is not None], dim=1)  # [B, 250]
        return self.classifier(pooled)  # eqs. 10-12

    def interact(
        self, audio: torch.Tensor | None, text: torch.Tensor | None, n_words: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The word-level LSTMs (eqs. 1-5): hidden states ``h_a [B, N, Ha]``, ``h_t [B, N, Ht]`` (0 at padding).

        Each cell is ``nn.LSTMCell``'s equations on its own input and ``h~``. Computed as one joint step per
        word: with ``h = [h_a; h_t]`` and the cells' recurrent weights ``U = blockdiag(W_hh_a, W_hh_t)``, eqs.
        3-5 give gates ``= W_ih x_i + b + U W h_{i-1}``, so ``U W`` is formed once per call and a step is one
        matrix product plus the gate nonlinearities over both cells at once (gate columns interleaved as
        ``[i_a i_t | f_a f_t | g_a g_t | o_a o_t]``). The input projections of all steps are one product up
        front. Without interaction ``W = I`` (equations 1-2). As in a PackedSequence, the utterances are
        sorted by length and step ``i`` computes only those with more than ``i`` words.
        """
        cells: list[tuple[nn.LSTMCell, torch.Tensor]] = []
        if audio is not None:
            cells.append((self.audio_cell, audio))
        if text is not None:
            cells.append((self.text_cell, text))
        sizes = [cell.hidden_size for cell, _ in cells]
        total = sum(sizes)
        n_batch, n_steps = cells[0][1].shape[:2]
        order = torch.argsort(n_words, descending=True, stable=True)
        active = (n_words[order][None, :] > torch.arange(n_steps, device=n_words.device)[:, None]).sum(1).tolist()
        # [B, N, 4, H_k] per cell -> [B, N, 4 * (Ha + Ht)] in length order, both biases folded in
        proj = torch.cat(
            [F.linear(x, c.weight_ih, c.bias_ih + c.bias_hh).unflatten(-1, (4, c.hidden_size)) for c, x in cells], -1
        ).flatten(2)[order]
        blocks, offset = [], 0  # U^T as [Ha + Ht, 4, Ha + Ht]: row block k feeds only cell k's gate columns
        for cell, _ in cells:
            h_k = cell.hidden_size
            u_t = cell.weight_hh.T.unflatten(1, (4, h_k))  # [H_k, 4, H_k]
            blocks.append(F.pad(u_t, (offset, total - offset - h_k)))
            offset += h_k
        recurrent = torch.cat(blocks).flatten(1)  # [Ha + Ht, 4 * (Ha + Ht)]
        if self.use_interaction:
            recurrent = self.interaction.T @ recurrent  # h~ = W h (eq. 3), then U h~
        h = proj.new_zeros(n_batch, total)  # [h_a; h_t]
        c = proj.new_zeros(n_batch, total)  # [c_a; c_t]
        outputs = []
        for x_i, n in zip(proj.unbind(1), active, strict=True):  # unbind: one backward for all steps
            gates = torch.addmm(x_i[:n], h[:n], recurrent)  # eqs. 4 (audio) and 5 (text)
            in_gate, forget, cand, out_gate = gates.chunk(4, dim=1)
            c = torch.sigmoid(forget) * c[:n] + torch.sigmoid(in_gate) * torch.tanh(cand)
            h = torch.sigmoid(out_gate) * torch.tanh(c)
            outputs.append(F.pad(h, (0, 0, 0, n_batch - n)))
        states = torch.stack(outputs, dim=1)[torch.argsort(order)].split(sizes, dim=2)  # [B, N, H_k] each
        return (states[0] if audio is not None else None), (states[-1] if text is not None else None)


# ---------------------------------------------------------------------- helpers
def _offsets(lengths: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum: where each segment starts."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)


def _ranges(start: np.ndarray, length: np.ndarray, pad: int) -> np.ndarray:
    """``[k, max(length)]`` int64: row ``j`` is ``start[j], start[j] + 1, ...`` (``length[j]`` values), then ``pad``."""
    steps = np.arange(int(length.max()) if len(length) else 0, dtype=np.int64)
    out = start[:, None] + steps[None, :]
    out[steps[None, :] >= length[:, None]] = pad
    return out


def _ranges_flat(start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The ranges ``start[j] .. start[j] + length[j]`` concatenated (int64)."""
    return np.repeat(start - _offsets(length), length) + np.arange(int(length.sum()), dtype=np.int64)


def _last_state(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The GRU's hidden state after each sequence's true last step: ``x [S, L, D]`` -> ``[S, H]`` (packed)."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return gru(packed)[1][0]


def _check_spans(raw: np.ndarray) -> np.ndarray:
    spans = np.asarray(raw)
    if spans.ndim != 2 or spans.shape[1] != 3 or spans.shape[0] == 0:
        raise ValueError(f"spans_mfcc39 has shape {spans.shape}; expected [phones >= 1, 3]")
    if not np.all(np.isfinite(spans)) or not np.array_equal(spans, np.round(spans)):
        raise ValueError("spans_mfcc39 holds non-integer values")
    spans = spans.astype(np.int64)
    steps = np.diff(spans[:, 0])
    if spans[0, 0] != 0 or np.any((steps != 0) & (steps != 1)):
        raise ValueError("spans_mfcc39 word_index must start at 0 and rise by 0 or 1 (phones grouped by word)")
    if np.any(spans[:, 2] < spans[:, 1]):
        raise ValueError(f"spans_mfcc39 has {int((spans[:, 2] < spans[:, 1]).sum())} rows with frame_end < frame_start")
    return spans


def word_audio_loop(model: Wise, samples: list[dict[str, np.ndarray]], per_phone: bool = False) -> list[torch.Tensor]:
    """Reference: the same ``a_i`` as :meth:`Wise.word_audio`, by a plain Python loop over words (and phones).

    For each utterance and each word: the word's phones as one padded, packed GRU call (or, with
    ``per_phone``, one GRU call per phone), then the word GRU over its phone vectors. Returns one
    ``[N_u, word_dim]`` tensor per (prepared) sample. Slow by design: for tests and the benchmark.
    """
    out = []
    for sample in samples:
        frames = torch.from_numpy(sample["mfcc39"])
        words = []
        spans = sample["spans_mfcc39"]
        for w in range(int(spans[-1, 0]) + 1):
            rows = spans[spans[:, 0] == w]
            phone_frames = [frames[s:e] for _, s, e in rows]
            if model.hierarchy == "mean":
                words.append(torch.cat(phone_frames).mean(0))
                continue
            if model.hierarchy == "frame":
                words.append(model.word_gru(torch.cat(phone_frames)[None])[1][0, 0])
                continue
            if per_phone:
                phones = torch.stack([model.phone_gru(p[None])[1][0, 0] for p in phone_frames])
            else:
                lengths = torch.tensor([len(p) for p in phone_frames])
                phones = _last_state(model.phone_gru, pad_sequence(phone_frames, batch_first=True), lengths)
            words.append(model.word_gru(phones[None])[1][0, 0])
        out.append(torch.stack(words))
    return out


# ---------------------------------------------------------------------- registry
_HPARAMS = frozenset(
    {
        "audio",
        "text",
        "hierarchy",
        "interaction",
        "attention",
        "audio_dim",
        "text_dim",
        "phone_hidden",
        "word_hidden",
        "audio_lstm",
        "text_lstm",
        "pooling",
        "fc",
        "dropout",
        "interaction_std",
        "max_words",
        "max_phones",
        "max_frames",
    }
)


def build(n_classes: int, **hparams: Any) -> Wise:
    """A :class:`Wise`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown WISE hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return Wise(n_classes, **hparams)


VARIANTS = variants_of(WISE)  # name -> (description, flags); registered in serflow.models.registry
