"""GBAN (Liu, Li, Meng, Interspeech 2020): CNN-BiLSTM encoders, bidirectional attention alignment, group gated fusion.

Paper: "Group Gated Fusion on Attention-based Bidirectional Alignment for Multimodal Emotion Recognition"
(Pengfei Liu, Kun Li, Helen Meng; Interspeech 2020), ``shared/seeds/001_88b4a6d98c26dbb5.txt``. Official code:
``ppfliu/emotion-recognition`` (TensorFlow 1.15 / Keras). The paper gives the equations and no sizes; the sizes
come from the code. File:line references below (``model.py:94-101``) are those of
``shared/reference/seed-models.md`` section 1, which compares the two line by line.

Data flow and shapes (``B`` utterances; ``T`` / ``M`` = most frames / words in the batch; ``D`` = GloVe size,
300 in the paper, 50 offline; ``H`` = 128 LSTM units per direction; defaults shown)::

    gban52 [T, 52] (the first 750 frames)                                             -> [B, T, 52]
      4 x {Conv1d(k 4, valid, ReLU) -> MaxPool1d(2)}, 12 / 20 / 28 / 36 channels  eq. 1  -> p [B, K, 36]
          (valid steps per utterance from its true length: 750 frames -> 747, 373, 370, 185, 182, 91, 88, K = 44)
      packed BiLSTM(36 -> 2 x 128)                                           eqs. 2-4   -> s [B, K, 256]
      h_s = s at the utterance's true last step                                          -> h_s [B, 256]
    word_ids [N] (corpus-wide word ids) -> embedding row (searchsorted in the fold's vocabulary buffer)
      Embedding(vocab_size + 2, D), initialised from GloVe, fine-tuned                    -> e [B, M, D]
      3 x {Conv1d(D -> 128, k 2 | 3 | 4, same, ReLU) -> MaxPool1d(2)}, concatenated   eq. 5  -> q [B, L, 384],
          L = M // 2 (a one-word text is padded to two words first)
      packed BiLSTM(384 -> 2 x 128)                                          eqs. 6-8   -> t [B, L, 256]
      h_t = t at the true last step                                                      -> h_t [B, 256]
    alignment, padded steps masked:
      a_{j,i} = tanh(s_i . t_j), alpha = softmax over speech steps i, s~_j = sum alpha s   eqs. 9-11
      a_s = mean of s~_j over the real text steps j ("text-aligned speech")               -> a_s [B, 256]
      b_{i,j} = tanh(t_j . s_i), beta = softmax over text steps j, t~_i = sum beta t      eqs. 12-14
      a_t = mean of t~_i over the real speech steps i ("speech-aligned text")             -> a_t [B, 256]
    group gated fusion (no biases), for each group (x, y) = (a_s, a_t) and (h_s, h_t):
      p = tanh(W_x x), p' = tanh(W_y y), z = sigmoid(W_z [x, y]); h = sum of z p + (1 - z) p'  eqs. 15-21 -> [B, 128]
    classifier: Linear(-> 128), ReLU, Dropout(0.5), Linear(128 -> n_outputs)          eqs. 22-23 -> [B, n_outputs]

The softmax of eq. 23 and the loss of eq. 24 (read as the usual cross-entropy; as printed, "-log prod sum y log
y~" is a typo) are the trainer's: ``forward`` returns logits (or, for the dimensional task, the predicted values).

Variants (one class, :data:`VARIANTS`; the flag ``fusion`` says what reaches the classifier)
---------------------------------------------------------------------------------------------
``gban``          ``ggf``: GGF over (a_s, a_t) and (h_s, h_t) (Table 2 "GGF", Table 3 "GBAN").
``gban_concat1``  ``concat1``: concat(a_s, a_t) (Table 2 "Concat-1", Table 3 "BiAtt-Concat"), 512-d.
``gban_tfl``      ``tfl``: tensor fusion (Zadeh et al.) of (a_s, a_t): the flattened outer product of the two
                  vectors, each with one constant appended, 257 x 257 = 66,049-d (Table 2 "TFL", "BiAtt-TFL").
``gban_gmu``      ``gmu``: gated multimodal unit (Arevalo et al.) on (a_s, a_t): one group of the GGF form.
``gban_concat2``  ``concat2``: concat(a_s, a_t, h_s, h_t), 1024-d (Table 2 "Concat-2").
``gban_speech``   ``h_s``: the speech encoder alone (Table 1 "h_s"); reads only ``gban52``.
``gban_text``     ``h_t``: the text encoder alone (Table 1 "h_t"); reads only ``glove`` and ``word_ids``.
``gban_as``       ``a_s``: the text-aligned speech vector alone (Table 1 "a_s"; both encoders).
``gban_at``       ``a_t``: the speech-aligned text vector alone (Table 1 "a_t"; both encoders).
Every variant ends in the same classifier (section 3.3: "using the same classification layer").

Paper or code: the ``follow`` switch
------------------------------------
``follow="paper"`` (default) or ``"code"`` sets the default of each setting below; each one can also be given
on its own, and an explicit value wins. :meth:`Gban.settings` returns the resolved values.

``attention``: ``"dot"`` (paper) or ``"additive"`` (code).
    Paper eqs. 9 and 12: ``tanh`` of the dot product, then softmax. The code uses Keras ``AdditiveAttention``
    (``model.py:32, 150-155``): score ``sum_d scale_d tanh(q_d + k_d)`` with a learned 256-vector ``scale``
    per direction (Glorot-uniform, no query/key projections), softmax, weighted sum, then
    ``GlobalAveragePooling1D``. Both forms are masked here under ``padding="masked"``.
    Direction (reference note section 1.3): ``Attention([audio_seq, text_seq])`` has speech queries over text
    values, K weighted text vectors, i.e. **a_t** (l.150-151); ``Attention([text_seq, audio_seq])`` gives
    **a_s** (l.154-155). So a_s = text steps attending over speech steps (eqs. 9-11), a_t the reverse.
``padding``: ``"masked"`` (paper default here) or ``"fixed"`` (code).
    The paper says only "shorter ones padded with zeros" (section 3.1) and calls h_s, h_t "the last hidden
    state". ``"masked"``: every utterance keeps its true length: the valid conv/pool steps are computed from
    its frame count, the BiLSTMs run packed, h_s / h_t are the outputs at the true last step, attention and
    average pooling ignore padded steps. An utterance's output does not depend on its batch. The code
    (``data.py:90-103``, ``model.py:101, 123``, note section 1.7 item 7) zero-post-pads every utterance to 750
    frames, runs the BiLSTM over all 44 steps unmasked and reads ``output[:, -1]``, so for a short utterance the
    forward half of h_s has run over hundreds of padded frames and the backward half has seen only the last
    (padding) step; text is pre-padded (Keras ``pad_sequences`` defaults, ``data.py:132-133``) to the longest
    training utterance ``maxlen`` (``preprocess.py:116-141``), longer test texts lose their first words, and
    the padding rows (embedding row 0) are trainable (no ``mask_zero``). ``"fixed"`` reproduces all of that:
    frames zero-padded to ``max_frames``, text pre-padded / pre-truncated to ``text_len`` (the longest
    training text, from :meth:`Gban.fold_hparams`), nothing masked, index -1 read, the PAD row trainable.
``tfl_constant``: ``1.0`` (paper) or ``0.0`` (code).
    The paper cites TFN (Zadeh et al.), which appends 1 to each vector so the product keeps the unimodal
    terms; ``tfl.py:36-37`` pads with 0, which leaves only the bimodal products.
``fusion_inputs``: ``"aligned"`` (paper) or ``"hidden"`` (code); TFL and GMU only.
    Table 2 lists TFL and GMU under "Input (a_s, a_t)"; the code feeds them (h_s, h_t) (``model.py:126-130``).
``fusion_dropout``: ``True`` (paper) or ``False`` (code).
    Section 3.2: dropout 0.5 "in the GGF layer and before the output softmax". We read "in the GGF layer" as
    dropout on the fusion layer's inputs (the code has exactly that, commented out, on a_t and a_s,
    ``model.py:152, 156``) and apply it to every representation entering the fusion (or, for one
    representation alone, entering the classifier). The code keeps only the dropout after Dense(128)
    (``model.py:164-167``), which both settings have.
``init``: ``"xavier_normal"`` (paper) or ``"keras"`` (code).
    Section 3.2: "all the network weights" Xavier-normal: here every weight matrix (convs, LSTM input and
    recurrent matrices, fusion, classifier, the additive ``scale`` vectors with fan 256 / 256); biases zero.
    ``"keras"``: the code's defaults (note section 1.3): Glorot-uniform kernels, orthogonal LSTM recurrent
    matrices, zero biases except the LSTM forget gate's 1 (``unit_forget_bias``; put in ``bias_ih``),
    Glorot-uniform ``scale``. The embedding rows come from GloVe either way (:meth:`Gban.init_fold`).

Also from the code, in both settings: GGF and GMU have no biases (``ggf.py:71-86``, ``gmu.py:55-58``); the
vocabulary and OOV rows (below); the classifier sizes. The code calls GGF as ``[a_t, a_s, h_t, h_s]``
(``model.py:158``), so its gates multiply the text branch; by ``z <-> 1 - z`` this is the same function family,
and :meth:`Gban.gate_values` reports the weight of each representation by name, so Fig. 2 reads the same.
Not reproduced (differences of the code we do not offer): TF 1.15's Keras LSTM uses a hard-sigmoid recurrent
activation by default (PyTorch: sigmoid); the code fits its Tokenizer on the training CSV before splitting off
the 5 % validation set, so validation words can be in its vocabulary (here the trainer gives
:meth:`Gban.fold_hparams` the training split only); by our reading of Keras' ``Tokenizer`` the OOV token takes
index 1 inside ``num_words``, so the code keeps one multi-seen word fewer than it counts; the L2 penalty
(``model.py:183-188``, probably inert, note section 1.7 item 4) is an optimiser setting, not the model's.

Vocabulary (from the code, ``preprocess.py:116-141``, ``model.py:60-83``; the paper says only "initialize the
embeddings with the pre-trained 300-dimensional GloVe vectors")
---------------------------------------------------------------------------------------------------------
Built per fold from the training split only (:meth:`Gban.fold_hparams` counts it, :meth:`Gban.init_fold` sets
it): a word type seen more than once in the training split gets its own row, initialised from its GloVe
vector; every other word (seen once, or only in validation / test) maps to the one OOV row; row 0 is PAD
(zero). A vocabulary word whose GloVe row is all zeros (not in GloVe under the glove store's ``oov: zero``
policy) is, as in the code, filled with one scalar drawn from U(-0.25, 0.25), and so is the OOV row (the
code draws such a scalar for every tokenizer word without a GloVe vector, its ``_UNK_`` token included).
Rows: 0 PAD, 1 OOV, ``2 + k`` the vocabulary's ``k``-th word id in increasing order. The buffer ``vocab_ids``
(sorted global ids, saved in the checkpoint) maps a global id to its row by ``searchsorted``. The table is
fine-tuned (``freeze_embeddings=True`` freezes it). :meth:`Gban.oov_stats` gives the OOV rate of any list of
prepared samples.

Resolved ambiguities
--------------------
* **Which "last hidden state".** h_s / h_t are the BiLSTM outputs at the last real step (the forward state
  after the whole sequence, the backward state after the last step alone), which is what the code's
  ``output[:, -1]`` means for an unpadded sequence (reference note section 1.3). So where h_s (h_t) is used
  alone (``gban_speech``, ``gban_text``; TFL / GMU on (h_s, h_t)), the backward direction contributes one step
  from a zero state and its recurrent matrix gets no gradient, as in the code.
* **"Multiple CNN layers and bidirectional LSTM layers"** (section 2.1, Fig. 1): the code's four conv/pool
  layers (speech), three parallel convs (text) and one BiLSTM per modality.
* **Eq. 22 has no bias**; the code's Dense(128) has one and Appendix A counts it (16,512): kept.
* **Too-short inputs.** Four valid convs of width 4 with pooling need 61 frames for one step:
  :meth:`Gban.prepare` zero-pads a shorter utterance to 61 frames and counts it (``utterances_padded``,
  ``frames_padded``). Text pooling needs two words: a one-word text is padded with one PAD word in
  :meth:`Gban.collate` (counted by ``prepare`` as ``texts_padded``). With ``padding="fixed"`` every input is
  padded to the fixed sizes anyway.
* **Keras "same" padding** for the even text kernels puts the extra zero on the right (k 2: 0 left, 1 right;
  k 4: 1 left, 2 right).

Hyperparameters of :func:`build` (the ``gban`` config section; defaults are the code's sizes)
-------------------------------------------------------------------------------------------
``follow`` ("paper"), the six settings above (None = from ``follow``), ``fusion`` (the variant flag, "ggf"),
``audio_dim`` 52 and ``text_dim`` 300 (the trainer passes the stores' dims: 50 for the offline glove.6B.50d),
``max_frames`` 750, ``conv_filters`` (12, 20, 28, 36), ``conv_kernel`` 4, ``text_filters`` 128,
``text_kernels`` (2, 3, 4), ``lstm_hidden`` 128, ``fusion_dim`` 128 (GGF / GMU output), ``dense`` 128,
``dropout`` 0.5, ``freeze_embeddings`` False, ``oov_scale`` 0.25 (the U(-a, a) of the OOV rows); and from the
training split (:meth:`Gban.fold_hparams`): ``vocab_size`` (words with their own row, 0 = none) and, for
``padding="fixed"``, ``text_len``.

Training settings (the trainer's, not implemented here): Adam, learning rate 1e-4 (paper); beta_1 0.9,
beta_2 0.9, gradient-norm clipping 5 (code, ``model.py:190``); batch 32, at most 100 epochs, early stopping on
validation accuracy with patience 5 and the best-validation checkpoint kept, ``class_weight="balanced"``,
validation = a stratified 5 % of the training sessions (code, ``main.py``, reference note section 1.4; the 5 % is
also the paper's footnote 1); L2 0.01 on the weights (paper section 3.2; in the code probably without effect).

Parameter counts: PyTorch's LSTM has two bias vectors (``bias_ih``, ``bias_hh``) per direction where Keras has
one, so each BiLSTM here has ``2 x 4 x H`` = 1,024 more parameters than Appendix A's (speech 169,984 vs
168,960; text 526,336 vs 525,312). :func:`parameter_counts` with ``keras=True`` subtracts them; everything else
matches the code one to one (convs 9,824; text convs 345,984 at D = 300; GGF 262,144; Dense 16,512; output
516 for 4 classes; additive attention 2 x 256).

Batches (:meth:`Gban.collate`) are padded tensors with lengths; ``forward`` has no Python loop over
utterances, frames or words. :func:`utterance_loop_forward` is the plain per-utterance computation (one
utterance at a time, no batch padding), kept as the reference for the tests and the benchmark.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import GBAN, features_of, gban_features, variants_of

PAPER = GBAN.paper
SPEECH, GLOVE, WORD_IDS = "gban52", "glove", "word_ids"
PAD_ROW, OOV_ROW, FIRST_WORD_ROW = 0, 1, 2
_NO_WORD = torch.iinfo(torch.int64).max  # fills the vocabulary buffer where no word is set: matches no id

# what reaches the classifier, per fusion flag (TFL and GMU: the pair is set by ``fusion_inputs``)
FUSIONS = ("ggf", "concat1", "tfl", "gmu", "concat2", "h_s", "h_t", "a_s", "a_t")
_FIXED_INPUTS = {
    "ggf": ("a_s", "a_t", "h_s", "h_t"),
    "concat1": ("a_s", "a_t"),
    "concat2": ("a_s", "a_t", "h_s", "h_t"),
    "h_s": ("h_s",),
    "h_t": ("h_t",),
    "a_s": ("a_s",),
    "a_t": ("a_t",),
}
FOLLOW: dict[str, dict[str, Any]] = {
    "paper": {
        "attention": "dot",
        "padding": "masked",
        "tfl_constant": 1.0,
        "fusion_inputs": "aligned",
        "fusion_dropout": True,
        "init": "xavier_normal",
    },
    "code": {
        "attention": "additive",
        "padding": "fixed",
        "tfl_constant": 0.0,
        "fusion_inputs": "hidden",
        "fusion_dropout": False,
        "init": "keras",
    },
}
_CHOICES = {
    "attention": ("dot", "additive"),
    "padding": ("masked", "fixed"),
    "fusion_inputs": ("aligned", "hidden"),
    "init": ("xavier_normal", "keras"),
}
SPEECH_COUNTS = ("frames_truncated", "utterances_truncated", "frames_padded", "utterances_padded")
TEXT_COUNTS = ("texts_padded",)


VARIANTS = variants_of(GBAN)  # name -> (description, {"fusion": ...}); the catalogue registers them
FEATURES = features_of(GBAN)


class GatedFusion(nn.Module):
    """Gated fusion of pairs ``(x, y)``, no biases: two groups are GGF (eqs. 15-21), one group is a GMU.

    Group ``g``: ``p = tanh(W_x x)``, ``p' = tanh(W_y y)``, ``z = sigmoid(W_z [x; y])``; the output is the sum
    over groups of ``z * p + (1 - z) * p'``. ``forward`` returns the output and each group's ``z``.
    """

    def __init__(self, pairs: Sequence[tuple[int, int]], out_dim: int) -> None:
        super().__init__()
        self.first = nn.ModuleList(nn.Linear(dx, out_dim, bias=False) for dx, _ in pairs)  # W_s^a, W_s^h
        self.second = nn.ModuleList(nn.Linear(dy, out_dim, bias=False) for _, dy in pairs)  # W_t^a, W_t^h
        self.gate = nn.ModuleList(nn.Linear(dx + dy, out_dim, bias=False) for dx, dy in pairs)  # W_z^p, W_z^q

    def forward(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out: torch.Tensor | None = None
        gates = []
        for g, (x, y) in enumerate(zip(inputs[0::2], inputs[1::2], strict=True)):
            p_x = torch.tanh(self.first[g](x))  # eqs. 15 / 18
            p_y = torch.tanh(self.second[g](y))  # eqs. 16 / 19
            z = torch.sigmoid(self.gate[g](torch.cat([x, y], dim=-1)))  # eqs. 17 / 20
            term = z * p_x + (1 - z) * p_y  # one group of eq. 21
            out = term if out is None else out + term
            gates.append(z)
        assert out is not None
        return out, gates


def tensor_fusion(x: torch.Tensor, y: torch.Tensor, constant: float) -> torch.Tensor:
    """TFL: ``vec([x; c] outer [y; c])``, ``[B, (dx + 1) * (dy + 1)]`` (``x``'s index outer, as the code's flatten)."""
    x1 = F.pad(x, (0, 1), value=constant)
    y1 = F.pad(y, (0, 1), value=constant)
    return (x1.unsqueeze(2) * y1.unsqueeze(1)).flatten(1)


def conv_steps(frames: Any, layers: int = 4, kernel: int = 4) -> Any:
    """Valid steps after ``layers`` x {valid conv of width ``kernel``, max-pool 2} (ints or integer tensors)."""
    for _ in range(layers):
        frames = (frames - kernel + 1) // 2
    return frames


def min_frames(layers: int = 4, kernel: int = 4) -> int:
    """The fewest frames that leave one step after the conv stack (61 for the defaults)."""
    need = 1
    for _ in range(layers):
        need = 2 * need + kernel - 1
    return need


class Gban(SerModel):
    """GBAN and its Table 1-2 variants; see the module docstring for the equations, shapes and settings."""

    def __init__(
        self,
        n_outputs: int,
        *,
        fusion: str = "ggf",
        follow: str = "paper",
        attention: str | None = None,
        padding: str | None = None,
        tfl_constant: float | None = None,
        fusion_inputs: str | None = None,
        fusion_dropout: bool | None = None,
        init: str | None = None,
        audio_dim: int = 52,
        text_dim: int = 300,
        vocab_size: int = 0,
        text_len: int | None = None,
        max_frames: int = 750,
        conv_filters: Sequence[int] = (12, 20, 28, 36),
        conv_kernel: int = 4,
        text_filters: int = 128,
        text_kernels: Sequence[int] = (2, 3, 4),
        lstm_hidden: int = 128,
        fusion_dim: int = 128,
        dense: int = 128,
        dropout: float = 0.5,
        freeze_embeddings: bool = False,
        oov_scale: float = 0.25,
    ) -> None:
        super().__init__()
        if follow not in FOLLOW:
            raise ValueError(f"follow must be one of {sorted(FOLLOW)}, got {follow!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        given = {
            "attention": attention,
            "padding": padding,
            "tfl_constant": tfl_constant,
            "fusion_inputs": fusion_inputs,
            "fusion_dropout": fusion_dropout,
            "init": init,
        }
        resolved = {k: FOLLOW[follow][k] if v is None else v for k, v in given.items()}
        for key, choices in _CHOICES.items():
            if resolved[key] not in choices:
                raise ValueError(f"{key} must be one of {choices}, got {resolved[key]!r}")
        self.n_outputs, self.fusion, self.follow = n_outputs, fusion, follow
        self.attention: str = resolved["attention"]
        self.padding: str = resolved["padding"]
        self.tfl_constant = float(resolved["tfl_constant"])
        self.fusion_inputs: str = resolved["fusion_inputs"]
        self.use_fusion_dropout = bool(resolved["fusion_dropout"])
        self.init: str = resolved["init"]
        if fusion in ("tfl", "gmu"):
            self.inputs: tuple[str, ...] = ("a_s", "a_t") if self.fusion_inputs == "aligned" else ("h_s", "h_t")
        else:
            self.inputs = _FIXED_INPUTS[fusion]
        self.use_speech = fusion != "h_t"
        self.use_text = fusion != "h_s"
        self.features: tuple[str, ...] = gban_features(fusion)
        self.audio_dim, self.text_dim, self.max_frames = audio_dim, text_dim, max_frames
        self.conv_kernel, self.n_convs = conv_kernel, len(conv_filters)
        self.min_frames = min_frames(len(conv_filters), conv_kernel)
        if max_frames < self.min_frames:
            raise ValueError(
                f"max_frames={max_frames} leaves no step after the conv stack (needs >= {self.min_frames})"
            )
        if vocab_size < 0:
            raise ValueError(f"vocab_size must be >= 0, got {vocab_size}")
        if text_len is not None and text_len < 2:
            raise ValueError(f"text_len must be >= 2 (the text pooling needs two words), got {text_len}")
        self.vocab_size, self.text_len = vocab_size, text_len
        self.freeze_embeddings, self.oov_scale, self.dropout = freeze_embeddings, oov_scale, dropout
        width = 2 * lstm_hidden  # every representation a_s, a_t, h_s, h_t
        if self.use_speech:  # eqs. 1-4
            channels = [audio_dim, *conv_filters]
            self.speech_convs = nn.ModuleList(nn.Conv1d(c_in, c_out, conv_kernel) for c_in, c_out in pairwise(channels))
            self.speech_lstm = nn.LSTM(channels[-1], lstm_hidden, batch_first=True, bidirectional=True)
        if self.use_text:  # eqs. 5-8
            self.embedding = nn.Embedding(
                vocab_size + FIRST_WORD_ROW, text_dim, padding_idx=PAD_ROW if self.padding == "masked" else None
            )
            self.embedding.weight.requires_grad_(not freeze_embeddings)
            self.text_convs = nn.ModuleList(nn.Conv1d(text_dim, text_filters, k) for k in text_kernels)
            self.text_pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in text_kernels]  # Keras "same"
            self.text_lstm = nn.LSTM(
                text_filters * len(text_kernels), lstm_hidden, batch_first=True, bidirectional=True
            )
            self.register_buffer("vocab_ids", torch.full((vocab_size,), _NO_WORD, dtype=torch.int64))
        self.scale_s = self.scale_t = None  # the additive attention's learned scale vectors (code)
        if self.attention == "additive":
            if "a_s" in self.inputs:
                self.scale_s = nn.Parameter(torch.empty(width))
            if "a_t" in self.inputs:
                self.scale_t = nn.Parameter(torch.empty(width))
        self.input_dropout = nn.Dropout(dropout) if self.use_fusion_dropout else nn.Identity()
        self.fusion_layer: GatedFusion | None = None
        if fusion == "ggf":
            self.fusion_layer = GatedFusion([(width, width), (width, width)], fusion_dim)
            fused = fusion_dim
        elif fusion == "gmu":
            self.fusion_layer = GatedFusion([(width, width)], fusion_dim)
            fused = fusion_dim
        elif fusion == "tfl":
            fused = (width + 1) ** 2
        else:
            fused = width * len(self.inputs)
        self.hidden = nn.Linear(fused, dense)  # eq. 22
        self.head_dropout = nn.Dropout(dropout)
        self.output = nn.Linear(dense, n_outputs)  # eq. 23 (softmax in the loss)
        self._init_weights()

    # ------------------------------------------------------------------ settings, initialisation
    def settings(self) -> dict[str, Any]:
        """The resolved settings (JSON-able), for the results: what this model computes beyond its sizes."""
        return {
            "follow": self.follow,
            "fusion": self.fusion,
            "inputs": list(self.inputs),
            "attention": self.attention,
            "padding": self.padding,
            "tfl_constant": self.tfl_constant,
            "fusion_inputs": self.fusion_inputs,
            "fusion_dropout": self.use_fusion_dropout,
            "init": self.init,
            "freeze_embeddings": self.freeze_embeddings,
            "vocab_size": self.vocab_size,
            "text_len": self.text_len,
        }

    @torch.no_grad()
    def _init_weights(self) -> None:
        keras = self.init == "keras"
        kernel = nn.init.xavier_uniform_ if keras else nn.init.xavier_normal_
        for module in self.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                kernel(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LSTM):
                hidden = module.hidden_size
                for name, param in module.named_parameters():
                    if name.startswith("weight_ih"):
                        kernel(param)
                    elif name.startswith("weight_hh"):
                        (nn.init.orthogonal_ if keras else kernel)(param)
                    else:
                        nn.init.zeros_(param)
                        if keras and name.startswith("bias_ih"):
                            param[hidden : 2 * hidden] = 1.0  # Keras unit_forget_bias (gate order i, f, g, o)
        for scale in (self.scale_s, self.scale_t):
            if scale is not None:  # a 1-d Keras weight: fan_in = fan_out = its length
                if keras:
                    bound = math.sqrt(6.0 / (2 * scale.numel()))
                    nn.init.uniform_(scale, -bound, bound)
                else:
                    nn.init.normal_(scale, 0.0, math.sqrt(2.0 / (2 * scale.numel())))
        if self.use_text:  # until init_fold sets the GloVe rows
            nn.init.uniform_(self.embedding.weight, -self.oov_scale, self.oov_scale)
            self.embedding.weight[PAD_ROW] = 0.0

    # ------------------------------------------------------------------ vocabulary (per fold)
    def _vocabulary(self, train: Sequence[dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """``(ids, first, stats)``: the sorted ids seen more than once, the flat index of each one's first
        occurrence (over the concatenated training words) and counts of the training split."""
        if not self.use_text:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), {}
        ids = np.concatenate([np.asarray(s[WORD_IDS], dtype=np.int64).reshape(-1) for s in train] or [np.zeros(0)])
        types, first, counts = np.unique(ids.astype(np.int64), return_index=True, return_counts=True)
        keep = counts > 1
        singles = int((~keep).sum())  # each a word seen once: an OOV token of the training split
        stats = {
            "train_words": len(ids),
            "train_word_types": len(types),
            "train_oov_words": singles,
            "train_oov_rate": singles / len(ids) if len(ids) else 0.0,
        }
        return types[keep], first[keep], stats

    def fold_hparams(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """``{"vocab_size": words seen more than once in the training split}``, plus ``text_len`` (its longest
        text, at least 2) when ``padding="fixed"``. Empty for the speech-only variant."""
        if not self.use_text:
            return {}
        out: dict[str, Any] = {"vocab_size": len(self._vocabulary(train)[0])}
        if self.padding == "fixed":
            out["text_len"] = max([2, *(len(s[WORD_IDS]) for s in train)])
        return out

    @torch.no_grad()
    def init_fold(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Set the vocabulary buffer and the embedding rows from the prepared training samples; their stats.

        The model must have been built with :meth:`fold_hparams` of the same samples (else ValueError). Rows:
        PAD zero; OOV one scalar from U(-oov_scale, oov_scale); each vocabulary word its GloVe vector (its first
        occurrence in the training split), or one such scalar if that vector is all zeros (not in GloVe).
        """
        if not self.use_text:
            return {}
        vocab, first, stats = self._vocabulary(train)
        if len(vocab) != self.vocab_size:
            raise ValueError(
                f"built with vocab_size={self.vocab_size} but the training split gives {len(vocab)}: build the "
                "model with fold_hparams() of the same training samples"
            )
        lengths = np.array([len(s[WORD_IDS]) for s in train], dtype=np.int64)
        utt = np.searchsorted(np.cumsum(lengths), first, side="right")  # sample holding each first occurrence
        row = first - (np.cumsum(lengths) - lengths)[utt]
        glove = [np.asarray(train[u][GLOVE][r], np.float32) for u, r in zip(utt.tolist(), row.tolist(), strict=True)]
        vectors = torch.from_numpy(np.stack(glove) if glove else np.zeros((0, self.text_dim), np.float32))
        draws = torch.empty(len(vocab) + 1).uniform_(-self.oov_scale, self.oov_scale)  # OOV row, then each word
        absent = (vectors == 0).all(dim=1)
        vectors[absent] = draws[1:][absent, None].expand(-1, self.text_dim)
        weight = self.embedding.weight
        self.vocab_ids.copy_(torch.from_numpy(vocab))
        weight[PAD_ROW] = 0.0
        weight[OOV_ROW] = draws[0]
        weight[FIRST_WORD_ROW:] = vectors.to(weight)
        return {
            "vocab_size": len(vocab),
            "embedding_rows": len(vocab) + FIRST_WORD_ROW,
            **stats,
            "vocab_not_in_glove": int(absent.sum()),
        }

    def word_rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embedding row of each global word id (any shape; ``-1`` = padding -> PAD, unknown -> OOV)."""
        vocab = torch.cat([self.vocab_ids, self.vocab_ids.new_full((1,), _NO_WORD)])  # never empty
        pos = torch.searchsorted(vocab, ids.contiguous()).clamp(max=len(vocab) - 1)
        rows = torch.where(vocab[pos] == ids, pos + FIRST_WORD_ROW, OOV_ROW)
        return torch.where(ids < 0, PAD_ROW, rows)

    @torch.no_grad()
    def oov_stats(self, samples: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """``{"words", "oov_words", "oov_rate"}`` of prepared samples under this model's vocabulary."""
        if not self.use_text:
            return {}
        ids = np.concatenate([np.asarray(s[WORD_IDS], dtype=np.int64).reshape(-1) for s in samples] or [np.zeros(0)])
        rows = self.word_rows(torch.from_numpy(ids.astype(np.int64)).to(self.vocab_ids.device))
        oov = int((rows == OOV_ROW).sum())
        return {"words": len(ids), "oov_words": oov, "oov_rate": oov / len(ids) if len(ids) else 0.0}

    # ------------------------------------------------------------------ data
    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check one utterance; keep the first ``max_frames`` frames, zero-pad one shorter than ``min_frames``.

        Reads ``gban52 [T, audio_dim]`` and/or ``glove [N, text_dim]`` with ``word_ids [N, 1]`` (integer ids in
        float32; ``[N]`` int is accepted too, so applying it twice changes nothing more). Returns ``gban52``
        float32 ``[min(max(T, 61), 750), 52]``, ``glove`` float32 ``[N, D]``, ``word_ids`` int64 ``[N]``, and
        the counts ``frames_truncated``, ``utterances_truncated``, ``frames_padded``, ``utterances_padded``
        (speech) and ``texts_padded`` (one-word texts, padded to two words in :meth:`collate`). ValueError
        (the trainer drops the utterance) for no frames or words, wrong dims, non-finite values, non-integer or
        negative ids, or ``glove`` and ``word_ids`` of different lengths; KeyError for a missing store.
        """
        missing = [name for name in self.features if name not in sample]
        if missing:
            raise KeyError(f"sample lacks {missing}; this GBAN variant reads {list(self.features)}")
        out: dict[str, np.ndarray] = {}
        counts: dict[str, int] = {}
        if self.use_speech:
            frames = np.asarray(sample[SPEECH], dtype=np.float32)
            if frames.ndim != 2 or frames.shape[0] == 0 or frames.shape[1] != self.audio_dim:
                raise ValueError(f"gban52 has shape {frames.shape}; expected [frames >= 1, {self.audio_dim}]")
            if not np.isfinite(frames).all():
                raise ValueError("gban52 holds non-finite values")
            cut = max(0, len(frames) - self.max_frames)
            frames = frames[: self.max_frames]
            short = max(0, self.min_frames - len(frames))
            if short:
                frames = np.concatenate([frames, np.zeros((short, self.audio_dim), np.float32)])
            out[SPEECH] = frames
            counts.update(
                frames_truncated=cut,
                utterances_truncated=int(cut > 0),
                frames_padded=short,
                utterances_padded=int(short > 0),
            )
        if self.use_text:
            glove = np.asarray(sample[GLOVE], dtype=np.float32)
            raw = np.asarray(sample[WORD_IDS])
            if glove.ndim != 2 or glove.shape[0] == 0 or glove.shape[1] != self.text_dim:
                raise ValueError(f"glove has shape {glove.shape}; expected [words >= 1, {self.text_dim}]")
            if raw.ndim not in (1, 2) or (raw.ndim == 2 and raw.shape[1] != 1) or len(raw) != len(glove):
                raise ValueError(f"word_ids has shape {raw.shape}; expected [{len(glove)}, 1] like glove {glove.shape}")
            if not np.isfinite(glove).all():
                raise ValueError("glove holds non-finite values")
            ids = raw.reshape(-1)
            if not (np.all(np.isfinite(ids)) and np.array_equal(ids, np.round(ids)) and np.all(ids >= 0)):
                raise ValueError("word_ids must hold non-negative integers")
            out[GLOVE] = glove
            out[WORD_IDS] = ids.astype(np.int64)
            counts["texts_padded"] = int(len(ids) == 1)
        return out, counts

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """A batch: ``frames [B, T, 52]`` (zero-padded at the end; ``T`` = ``max_frames`` when
        ``padding="fixed"``) and ``n_frames [B]``; ``word_ids [B, M]`` (global ids, ``-1`` = padding; end-padded
        to at least 2, or pre-padded / pre-truncated to ``text_len`` when ``padding="fixed"``) and
        ``n_words [B]`` (words in the batch row)."""
        batch: dict[str, torch.Tensor] = {}
        fixed = self.padding == "fixed"
        if self.use_speech:
            n_frames = np.array([len(s[SPEECH]) for s in samples], dtype=np.int64)
            width = self.max_frames if fixed else int(n_frames.max())
            frames = np.zeros((len(samples), width, self.audio_dim), np.float32)
            for b, s in enumerate(samples):
                frames[b, : len(s[SPEECH])] = s[SPEECH]
            batch["frames"], batch["n_frames"] = torch.from_numpy(frames), torch.from_numpy(n_frames)
        if self.use_text:
            if fixed and self.text_len is None:
                raise ValueError("padding='fixed' needs text_len (fold_hparams() of the training split gives it)")
            ids = [np.asarray(s[WORD_IDS], dtype=np.int64).reshape(-1) for s in samples]
            width = self.text_len if fixed else max([2, *(len(i) for i in ids)])
            assert width is not None
            words = np.full((len(samples), width), -1, dtype=np.int64)
            for b, i in enumerate(ids):
                if fixed:
                    kept = i[-width:]  # Keras pad_sequences: pre-truncation, pre-padding
                    words[b, width - len(kept) :] = kept
                else:
                    words[b, : len(i)] = i
            batch["word_ids"] = torch.from_numpy(words)
            batch["n_words"] = torch.from_numpy(np.minimum([len(i) for i in ids], width).astype(np.int64))
        return batch

    # ------------------------------------------------------------------ model
    def encode_speech(self, frames: torch.Tensor, n_frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``s [B, K, 256]`` (eqs. 1-4; zero at padded steps) and its step mask ``[B, K]``."""
        x = frames.transpose(1, 2)  # [B, 52, T]
        for conv in self.speech_convs:
            x = F.max_pool1d(torch.relu(conv(x)), 2)  # eq. 1: [B, C, T'] per layer
        x = x.transpose(1, 2)  # p: [B, K, 36]
        if self.padding == "fixed":
            return self.speech_lstm(x)[0], x.new_ones(x.shape[:2], dtype=torch.bool)
        steps = conv_steps(n_frames, self.n_convs, self.conv_kernel)
        return _packed_bilstm(self.speech_lstm, x, steps), _mask(steps, x.shape[1])

    def encode_text(self, word_ids: torch.Tensor, n_words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``t [B, L, 256]`` (eqs. 5-8; zero at padded steps) and its step mask ``[B, L]``."""
        e = self.embedding(self.word_rows(word_ids))  # [B, M, D]
        if self.padding == "masked":
            e = e * (word_ids >= 0).unsqueeze(-1).to(e.dtype)  # padding reads as the convs' zero padding
        q = self.text_cnn(e.transpose(1, 2)).transpose(1, 2)  # eq. 5: [B, L, 384]
        if self.padding == "fixed":
            return self.text_lstm(q)[0], q.new_ones(q.shape[:2], dtype=torch.bool)
        steps = n_words.clamp(min=2) // 2
        return _packed_bilstm(self.text_lstm, q, steps), _mask(steps, q.shape[1])

    def text_cnn(self, x: torch.Tensor) -> torch.Tensor:
        """The parallel text convs ("same": zero-padded, the extra zero on the right), ReLU, max-pool 2,
        concatenated: ``[B, D, M]`` -> ``[B, 384, M // 2]``."""
        return torch.cat(
            [
                F.max_pool1d(torch.relu(conv(F.pad(x, pad))), 2)
                for conv, pad in zip(self.text_convs, self.text_pads, strict=True)
            ],
            dim=1,
        )

    def attend(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        key: torch.Tensor,
        key_mask: torch.Tensor,
        scale: torch.Tensor | None,
    ) -> torch.Tensor:
        """Average-pooled alignment of ``key`` steps to each ``query`` step, ``[B, 256]``.

        ``query = t``, ``key = s``: eqs. 9-11, a_s. ``query = s``, ``key = t``: eqs. 12-14, a_t. Score
        ``tanh(q . k)`` (``attention="dot"``) or ``sum_d scale_d tanh(q_d + k_d)`` (``"additive"``).
        """
        if self.attention == "dot":
            score = torch.tanh(query @ key.transpose(1, 2))  # eqs. 9 / 12: [B, Tq, Tk]
        else:
            assert scale is not None
            score = torch.tanh(query.unsqueeze(2) + key.unsqueeze(1)) @ scale  # [B, Tq, Tk]
        weight = torch.softmax(score.masked_fill(~key_mask.unsqueeze(1), float("-inf")), dim=-1)  # eqs. 10 / 13
        aligned = weight @ key  # eqs. 11 / 14: s~_j, t~_i [B, Tq, 256]
        keep = query_mask.unsqueeze(-1).to(aligned.dtype)
        return (aligned * keep).sum(1) / keep.sum(1)  # average pooling over the real query steps

    def representations(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``h_s``, ``h_t``, ``a_s``, ``a_t`` (those this variant uses, each ``[B, 256]``)."""
        reps: dict[str, torch.Tensor] = {}
        if self.use_speech:
            s, s_mask = self.encode_speech(batch["frames"], batch["n_frames"])
            reps["h_s"] = _last(s, s_mask)
        if self.use_text:
            t, t_mask = self.encode_text(batch["word_ids"], batch["n_words"])
            reps["h_t"] = _last(t, t_mask)
        if "a_s" in self.inputs:
            reps["a_s"] = self.attend(t, t_mask, s, s_mask, self.scale_s)  # text-aligned speech, eqs. 9-11
        if "a_t" in self.inputs:
            reps["a_t"] = self.attend(s, s_mask, t, t_mask, self.scale_t)  # speech-aligned text, eqs. 12-14
        return reps

    def classify(self, reps: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fusion and classifier: ``(outputs [B, n_outputs], gates)``; gates: the weight of each representation
        (``[B, fusion_dim]``) for GGF and GMU, empty otherwise."""
        x = [self.input_dropout(reps[name]) for name in self.inputs]
        gates: dict[str, torch.Tensor] = {}
        if self.fusion_layer is not None:
            h, z = self.fusion_layer(x)  # eqs. 15-21 (GGF) or one group (GMU)
            for g, z_g in enumerate(z):
                gates[self.inputs[2 * g]], gates[self.inputs[2 * g + 1]] = z_g, 1 - z_g
        elif self.fusion == "tfl":
            h = tensor_fusion(x[0], x[1], self.tfl_constant)
        else:
            h = torch.cat(x, dim=-1)
        g = torch.relu(self.hidden(h))  # eq. 22
        return self.output(self.head_dropout(g)), gates  # eq. 23 (logits)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.representations(batch))[0]

    def gate_values(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The GGF (or GMU) gate weight of each representation, ``name -> [B, fusion_dim]`` (Fig. 2 averages
        them): ``a_s -> z_p``, ``a_t -> 1 - z_p``, ``h_s -> z_q``, ``h_t -> 1 - z_q``. Call in eval mode."""
        if self.fusion_layer is None:
            raise ValueError(f"fusion {self.fusion!r} has no gates (only 'ggf' and 'gmu' do)")
        return self.classify(self.representations(batch))[1]


# ---------------------------------------------------------------------- helpers
def _mask(steps: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=steps.device).unsqueeze(0) < steps.unsqueeze(1)


def _packed_bilstm(lstm: nn.LSTM, x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Outputs ``[B, W, 2H]`` of ``lstm`` over the first ``steps[b]`` steps of each row (zero beyond)."""
    packed = pack_padded_sequence(x, steps.cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]


def _last(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The output at each row's last real step (index -1 when nothing is masked)."""
    last = mask.sum(1) - 1
    return seq[torch.arange(len(seq), device=seq.device), last]


def lstm_bias_difference(lstm: nn.LSTM) -> int:
    """How many more parameters a PyTorch LSTM has than the Keras one: a second bias of ``4 H`` per direction."""
    return (2 if lstm.bidirectional else 1) * lstm.num_layers * 4 * lstm.hidden_size


def parameter_counts(model: Gban, keras: bool = False) -> dict[str, int]:
    """Parameters per part (absent parts omitted); ``keras=True`` counts each LSTM as Keras does (one bias)."""
    parts: dict[str, list[nn.Module | nn.Parameter | None]] = {
        "speech_convs": [getattr(model, "speech_convs", None)],
        "speech_lstm": [getattr(model, "speech_lstm", None)],
        "embedding": [getattr(model, "embedding", None)],
        "text_convs": [getattr(model, "text_convs", None)],
        "text_lstm": [getattr(model, "text_lstm", None)],
        "attention": [model.scale_s, model.scale_t],
        "fusion": [model.fusion_layer],
        "dense": [model.hidden],
        "output": [model.output],
    }
    counts: dict[str, int] = {}
    for name, items in parts.items():
        present = [item for item in items if item is not None]
        if not present:
            continue
        total = 0
        for item in present:
            if isinstance(item, nn.Parameter):
                total += item.numel()
                continue
            total += sum(p.numel() for p in item.parameters())
            if keras and isinstance(item, nn.LSTM):
                total -= lstm_bias_difference(item)
        counts[name] = total
    return counts


# ---------------------------------------------------------------------- reference: one utterance at a time
def _align_one(query: torch.Tensor, key: torch.Tensor, attention: str, scale: torch.Tensor | None) -> torch.Tensor:
    if attention == "dot":
        score = torch.tanh(query @ key.T)
    else:
        assert scale is not None
        score = (torch.tanh(query[:, None, :] + key[None, :, :]) * scale).sum(-1)
    return (torch.softmax(score, dim=-1) @ key).mean(0)


def utterance_loop_forward(model: Gban, samples: Sequence[dict[str, np.ndarray]]) -> torch.Tensor:
    """Reference: ``model``'s outputs ``[n, n_outputs]`` for prepared samples, one utterance at a time.

    What a straightforward port does: each utterance alone (batch of one, no masks, no packing), its frames
    through the convs and an ordinary BiLSTM call, its words looked up in a Python dict, the attention as
    plain softmaxes, then the model's fusion and classifier. With ``padding="fixed"`` each utterance is padded
    to the fixed sizes first, as the code does. Slow by design: for tests and the benchmark (eval mode).
    """
    fixed = model.padding == "fixed"
    lookup = {}
    if model.use_text:
        lookup = {int(g): k + FIRST_WORD_ROW for k, g in enumerate(model.vocab_ids.tolist())}
    out = []
    for sample in samples:
        reps: dict[str, torch.Tensor] = {}
        if model.use_speech:
            x = torch.from_numpy(np.asarray(sample[SPEECH], dtype=np.float32))
            if fixed:
                x = F.pad(x, (0, 0, 0, model.max_frames - len(x)))
            x = x.T.unsqueeze(0)  # [1, 52, T]
            for conv in model.speech_convs:
                x = F.max_pool1d(torch.relu(conv(x)), 2)
            s = model.speech_lstm(x.transpose(1, 2))[0][0]  # [K, 256]
            reps["h_s"] = s[-1]
        if model.use_text:
            ids = [int(i) for i in np.asarray(sample[WORD_IDS]).reshape(-1)]
            if fixed:
                assert model.text_len is not None
                ids = [-1] * (model.text_len - len(ids[-model.text_len :])) + ids[-model.text_len :]
            elif len(ids) == 1:
                ids.append(-1)
            rows = [PAD_ROW if i < 0 else lookup.get(i, OOV_ROW) for i in ids]
            e = model.embedding.weight[rows]  # [M, D]
            if not fixed:
                e = torch.stack([torch.zeros_like(v) if i < 0 else v for i, v in zip(ids, e, strict=True)])
            q = model.text_cnn(e.T.unsqueeze(0))
            t = model.text_lstm(q.transpose(1, 2))[0][0]  # [L, 256]
            reps["h_t"] = t[-1]
        if "a_s" in model.inputs:
            reps["a_s"] = _align_one(t, s, model.attention, model.scale_s)
        if "a_t" in model.inputs:
            reps["a_t"] = _align_one(s, t, model.attention, model.scale_t)
        out.append(model.classify({k: v.unsqueeze(0) for k, v in reps.items()})[0][0])
    return torch.stack(out)


# ---------------------------------------------------------------------- builder
_HPARAMS = frozenset(
    {
        "fusion",
        "follow",
        "attention",
        "padding",
        "tfl_constant",
        "fusion_inputs",
        "fusion_dropout",
        "init",
        "audio_dim",
        "text_dim",
        "vocab_size",
        "text_len",
        "max_frames",
        "conv_filters",
        "conv_kernel",
        "text_filters",
        "text_kernels",
        "lstm_hidden",
        "fusion_dim",
        "dense",
        "dropout",
        "freeze_embeddings",
        "oov_scale",
    }
)


def build(n_outputs: int, **hparams: Any) -> Gban:
    """A :class:`Gban`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown GBAN hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return Gban(n_outputs, **hparams)
