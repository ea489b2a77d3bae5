"""WavFusion (Li, Luo, Xia, arXiv 2412.05558, 2024): wav2vec 2.0 with gated cross-modal attention to text.

Only a machine-written summary of the paper is available (``shared/seeds/004_*``: no equations, sizes or
hyperparameters) and no public code exists, so this is a documented *reconstruction*: what the summary states
is followed, and every point it leaves open is a setting whose default is justified below. The paper's
video branch has no input here (audio + text only). The equation labels ``(R1)``-``(R9)`` are this
reconstruction's, not the paper's (its numbering is unknown).

Data flow and shapes (``B`` utterances, ``S`` = most samples in the batch, ``T`` = most frames, ``N`` = most
words; ``H`` = the encoder's hidden size, 768 for ``wav2vec2-base``, 32 for the offline stand-in; ``L`` =
its layers, 12 for base; ``k`` = ``shallow_layers``)::

    waveform [S_u, 1] per utterance, 16 kHz -> normalised per utterance (prepare)      (R1)
      -> zero-padded [B, S] -> CNN feature encoder, group norm over valid frames      (R1) -> [B, 512, T]
      -> feature projection, positional conv, (post-LN: layer norm), dropout         (R2) -> A_0 [B, T, H]
      -> transformer layers 1..k, padded frames masked as keys ("shallow")           (R3) -> A_k [B, T, H]
    roberta [N_u, D] per utterance (frozen RoBERTa word vectors) -> zero-padded [B, N, D]
      -> packed BiGRU (D -> H/2 per direction) -> self-attention + residual + LN     (R4) -> X_t [B, N, H]
    gated cross-modal attention: queries LN(A_k), keys/values X_t (padded words masked)
      C = CrossAttn(LN(A_k), X_t, X_t)                                               (R5) -> C [B, T, H]
      g = sigmoid(gate); A' = A_k + g * C                                            (R6) -> A' [B, T, H]
      -> transformer layers k+1..L ("deep"), (pre-LN: final layer norm)              (R7) -> A_L [B, T, H]
      -> mean over each utterance's valid frames -> Dropout, Linear H -> 256, ReLU, Dropout, Linear -> outputs
                                                                                     (R8) -> [B, n_outputs]
    training loss: L = L_task + lambda * L_mar                                       (R9)

``L_task`` (cross-entropy, or the dimensional task's loss) is the trainer's ``criterion``; :meth:`training_loss`
adds the margin loss ``L_mar`` of "multimodal homogeneous feature discrepancy learning" (:func:`margin_loss`).

Reconstruction choices (the seed is silent; each is a setting)
--------------------------------------------------------------
* **Text path: stored features, not a RoBERTa inside the model.** The reference note says the text encoder
  is a *frozen* RoBERTa followed by a GRU and self-attention. A frozen encoder computes the same vectors in
  every epoch, fold and seed, so they are computed once per corpus (the ``roberta`` store: the mean of each
  word's sub-token states of the last layer) and the model holds only the trainable GRU + self-attention.
  Same function, none of the cost (no RoBERTa forward per step, no second 125M-parameter model on the GPU).
  Word-level rather than sub-token rows: cross-attention needs no alignment, and word rows are what every
  text model of this project reads. The GRU is bidirectional, ``text_hidden / 2`` units per direction so its
  output has the audio's width ``H`` (``text_hidden`` defaults to ``H``); self-attention uses ``text_heads``
  heads (default: the encoder's), as a residual sub-layer with post-layer-norm (R4).
* **Where the text enters (``shallow_layers``, default ``L - 3``: 9 of base's 12).** The summary says shallow
  layers encode audio alone and deep layers combine the modalities; the reference note reports 9 shallow /
  3 deep as the paper's best split. We insert one gated cross-modal attention block between layer ``k`` and
  layer ``k + 1`` and keep the deep layers' own self-attention (the reference note's wording, "self-attention
  replaced by gated cross-modal attention in the last 3 layers", is a second reading; inserting keeps every
  pretrained weight in use and makes the gate-at-zero model exactly the audio-only model).
* **Queries, keys, values (R5).** Audio queries (the primary modality), text keys and values: every audio
  frame gathers the words relevant to it, and the sequence keeps the audio's length and frame rate, so the
  deep layers run unchanged. Queries are layer-normalised (a pre-LN sub-layer, safe in both the post-LN base
  and the pre-LN large encoders); ``fusion_heads`` defaults to the encoder's head count (12 for base).
* **The gate (R6), ``gate``.** "A learnable gating parameter uses sigmoid activation to weigh contributions
  from cross-modal attention outputs", and the fusion is called dynamic and adaptive; the summary's failure
  mode "gating parameters converge to constant values" only makes sense for a gate that can vary with its
  input. Default ``"conditioned"``: ``g = sigmoid(W_g [A_k; C] + b_g)`` per frame and channel (the gate sees
  both the audio and the attended text, so it weighs one against the other). ``"vector"`` (one learnable
  logit per channel) and ``"scalar"`` (one logit) are the literal "learnable gating parameter" readings.
  ``gate_bias`` initialises the logit (bias), default 0 (g = 0.5). ``gate_mix``: ``"residual"`` (default)
  ``A' = A_k + g * C``: the audio stream is kept whole and the gate decides how much attended text is added;
  ``"convex"``: ``A' = (1 - g) * A_k + g * C``. Both give ``A' = A_k`` at ``g = 0``. ``wavfusion_nogate`` is
  plain cross-attention with the same residual, ``A' = A_k + C``.
* **The margin loss (R9), its direction and pairs.** The summary states the constraint twice, in opposite
  directions: "enforces that cosine similarity between same-emotion, different-modality samples is smaller
  than same-emotion, same-modality samples" (with "a distance margin alpha ... the distance between positive
  samples is smaller than the distance between negative samples"), and, as the "core assumption", that the
  same emotion across modalities should be *more* similar. We take the first as the default
  (``margin_positive="same_modality"``): it is the one stated as the loss, it matches the method's name
  (feature *discrepancy* between modalities of the same emotion; "emphasizing same-emotion but
  different-modality differences") and the positive/negative wording. ``"cross_modal"`` flips the inequality
  (the reference note's reading). Embeddings: per utterance, the audio embedding ``a_i`` is the mean of the
  *shallow* output ``A_k`` over its valid frames (the audio before any text enters; after fusion it would no
  longer be one modality) and the text embedding ``t_i`` the mean of ``X_t`` over its words; both are
  ``H``-wide. Pairs are formed within the batch among the ``2B`` embeddings ``{a_i} U {t_i}`` with the
  batch's labels: for an anchor ``e``, positives are the other embeddings of the same emotion in the same
  modality, negatives the same-emotion embeddings of the other modality (its own utterance's included), and
  ``L_mar`` is the mean, over every (anchor, positive, negative) triplet of the batch, of
  ``max(0, alpha - cos(e, pos) + cos(e, neg))``; 0 if the batch has no triplet. ``margin_alpha`` = 0.2
  (unknown in the paper; cosine margins of 0.1-0.5 are usual), ``margin_weight`` lambda = 1 (the seed's
  best on IEMOCAP). The margin term is used with class targets only (integer labels); for the dimensional
  task there is no "same emotion" and only the task loss is used.
* **Pooling and head (R8).** Mean over each utterance's valid frames (as Hugging Face's wav2vec 2.0
  sequence classifier does), then Dropout ``head_dropout`` 0.1, Linear ``H -> head_hidden`` (256, that
  classifier's ``classifier_proj_size``), ReLU, Dropout, Linear to the outputs.
* **Input normalisation (R1).** wav2vec 2.0 checkpoints expect each utterance normalised to zero mean and
  unit variance (their feature extractor's ``do_normalize``); :meth:`prepare` does it (``normalize=True``),
  on the utterance's own samples, so padding cannot change it.
* **Dropout, LayerDrop, SpecAugment.** The encoder's own dropouts are its config's (base: 0.1). LayerDrop
  (``layerdrop``, default 0; Hugging Face fine-tuning uses 0.1) and SpecAugment time masking
  (``spec_augment``, default off; it draws from NumPy's global generator) are settings; neither is in the
  summary. The fusion block, the text encoder and the head use ``fusion_dropout`` / ``text_dropout`` /
  ``head_dropout`` (0.1 each, the encoder's own rate).

Padding (why the output of an utterance does not depend on its batch)
---------------------------------------------------------------------
wav2vec2-base's feature encoder normalises its first convolution's output with a GroupNorm of one group per
channel, i.e. over *time*: zero-padding a waveform changes the mean and variance, hence every frame (the
reason Hugging Face's base feature extractor returns no attention mask and base is usually run unpadded).
:meth:`WavFusion.conv_features` replaces that one GroupNorm with the same normalisation computed over each
utterance's valid frames only (masked mean and biased variance, then the layer's own affine weights): exact,
batched, and its cost is two masked reductions over ``[B, 512, S/5]`` (negligible beside the convolutions),
where running the encoder per utterance or per length bucket would cost a loop and many small kernels.
Every other operation is padding-safe: the convolutions are unpadded, so a valid frame only sees valid
samples (frame count ``floor((S - 400) / 320) + 1`` for base); layer-norm feature encoders
(``feat_extract_norm="layer"``, the large checkpoints) normalise per frame; padded frames are zeroed before
the positional convolution (exactly what its own zero padding would give at the end of an unpadded
utterance); self- and cross-attention mask padded frames and words as keys; the text GRU runs packed;
pooling is over valid frames. The tests check invariance for both layouts (post-LN/group norm and
pre-LN/layer norm) and for padded text.

A waveform shorter than the feature encoder's receptive field (400 samples = 25 ms for base) gives no
frame: :meth:`prepare` pads it with zeros (silence after normalisation) to the receptive field and counts it
(``utterances_padded``), or, with ``short_audio="refuse"``, refuses it. An utterance with no words cannot
be attended to: the fusion variants refuse it (ValueError; the trainer drops and counts it).

The audio encoder (``model``, ``path``, ``cache_dir``)
------------------------------------------------------
As for the ``roberta`` features: ``model`` is the requested checkpoint's name (``facebook/wav2vec2-base``);
``path`` (a local folder, or a hub name to use the hub) is what is loaded, with
``Wav2Vec2Model.from_pretrained``. With ``path: null`` (offline) a tiny random-init wav2vec 2.0 with base's
layout (:mod:`serflow.models.tiny_wav2vec2`) is built once into ``cache_dir`` and loaded through the same
``from_pretrained`` path. ``random_init`` and :attr:`WavFusion.encoder_meta` say what was loaded; a folder
whose ``config.json`` carries ``serflow_random_init: true`` is reported as random-init, so no result of the
stand-in can pass for wav2vec 2.0's. :meth:`init_fold` returns that record for the fold's results. Under
``torch.device("meta")`` (the workflow's parse-time check) the encoder is built from its config only: the
tiny config is built in code, a ``path``'s ``config.json`` is read; no weights, no file written.

Training at scale (model side; the optimiser, loss and batching are the trainer's)
----------------------------------------------------------------------------------
``freeze_feature_encoder`` (default True: the CNN is run without gradients, as in wav2vec 2.0 fine-tuning),
``freeze_shallow`` (default False; True trains only the fusion, the deep layers, the text encoder and the
head, the reference note's "those layers are fine-tuned"), ``gradient_checkpointing`` (default False; the
encoder's layers recompute their activations in the backward pass). :meth:`parameter_groups` separates the
pretrained encoder's trainable parameters from the new layers' (separate learning rates: wav2vec 2.0 is
usually fine-tuned at 1e-5 to 5e-5, new layers at 1e-4 to 1e-3). :meth:`sample_length` is the padded cost
of an utterance (samples), for :mod:`serflow.train.buckets`. ``max_seconds`` (default None) truncates
longer utterances (counted as ``utterances_truncated``) to bound memory.

Variants (``VARIANTS``; one class, flags fixed by the name)
-----------------------------------------------------------
``wavfusion``
    Audio + text, gated cross-modal attention, CE + lambda * margin loss.
``wavfusion_nogate``
    Plain cross-modal attention (``A' = A_k + C``), margin loss kept (the gate ablation).
``wavfusion_nomargin``
    Gated fusion, task loss only (lambda = 0).
``wavfusion_audio``
    wav2vec 2.0 alone with the same pooling and head (the unimodal baseline); reads only ``waveform``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import WAVFUSION, features_of, variants_of

PAPER = WAVFUSION.paper
DEFAULT_MODEL = "facebook/wav2vec2-base"
GATES = ("conditioned", "vector", "scalar")
GATE_MIXES = ("residual", "convex")
MARGIN_POSITIVES = ("same_modality", "cross_modal")
SHORT_AUDIO = ("pad", "refuse")
NORMALIZE_EPS = 1e-7  # wav2vec 2.0's feature extractor: (x - mean) / sqrt(var + 1e-7)
SAMPLE_RATE = 16000


VARIANTS = variants_of(WAVFUSION)  # name -> (description, {"text", "gated", "margin"}); the catalogue registers them
FEATURES = features_of(WAVFUSION)


class WavFusion(SerModel):
    """WavFusion and its ablations; see the module docstring for the data flow, shapes and choices."""

    def __init__(
        self,
        n_outputs: int,
        *,
        text: bool = True,
        gated: bool = True,
        margin: bool = True,
        audio_dim: int = 1,
        text_dim: int = 768,
        model: str = DEFAULT_MODEL,
        path: str | None = None,
        cache_dir: str = "models/audio-encoders",
        shallow_layers: int | None = None,
        fusion_heads: int | None = None,
        gate: str = "conditioned",
        gate_mix: str = "residual",
        gate_bias: float = 0.0,
        fusion_dropout: float = 0.1,
        text_hidden: int | None = None,
        text_heads: int | None = None,
        text_dropout: float = 0.1,
        head_hidden: int = 256,
        head_dropout: float = 0.1,
        margin_weight: float = 1.0,
        margin_alpha: float = 0.2,
        margin_positive: str = "same_modality",
        freeze_feature_encoder: bool = True,
        freeze_shallow: bool = False,
        gradient_checkpointing: bool = False,
        layerdrop: float = 0.0,
        spec_augment: bool = False,
        normalize: bool = True,
        short_audio: str = "pad",
        max_seconds: float | None = None,
    ) -> None:
        super().__init__()
        _check_choice("gate", gate, GATES)
        _check_choice("gate_mix", gate_mix, GATE_MIXES)
        _check_choice("margin_positive", margin_positive, MARGIN_POSITIVES)
        _check_choice("short_audio", short_audio, SHORT_AUDIO)
        if audio_dim != 1:
            raise ValueError(f"WavFusion reads the raw waveform (audio_dim 1), got audio_dim={audio_dim}")
        if not text and (gated or margin):
            raise ValueError("the gate and the margin loss need the text (set gated=False, margin=False)")
        if not 0.0 <= layerdrop < 1.0:
            raise ValueError(f"layerdrop must be in [0, 1), got {layerdrop}")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive or null, got {max_seconds}")
        self.n_outputs = n_outputs
        self.use_text, self.gated, self.use_margin = text, gated, margin
        self.text_dim = text_dim
        self.gate_form, self.gate_mix = gate, gate_mix
        self.margin_weight, self.margin_alpha, self.margin_positive = margin_weight, margin_alpha, margin_positive
        self.layerdrop, self.spec_augment = layerdrop, spec_augment
        self.normalize, self.short_audio = normalize, short_audio
        self.max_samples = None if max_seconds is None else round(max_seconds * SAMPLE_RATE)
        self.features: tuple[str, ...] = ("waveform", "roberta") if text else ("waveform",)

        self.wav2vec2, self.encoder_meta = load_audio_encoder(model, path, cache_dir)
        self.random_init = bool(self.encoder_meta["random_init"])
        config = self.wav2vec2.config
        hidden, n_layers = config.hidden_size, config.num_hidden_layers
        self.stable_layer_norm = bool(config.do_stable_layer_norm)
        self.group_norm = config.feat_extract_norm == "group"
        self.receptive_field = receptive_field(config.conv_kernel, config.conv_stride)
        self.shallow_layers = n_layers - 3 if shallow_layers is None else shallow_layers
        if not 0 <= self.shallow_layers <= n_layers:
            raise ValueError(f"shallow_layers must be in [0, {n_layers}] for this encoder, got {shallow_layers}")
        self.freeze_feature, self.freeze_shallow = freeze_feature_encoder, freeze_shallow
        self._freeze_encoder_parts(spec_augment)
        if gradient_checkpointing:
            enable = getattr(self.wav2vec2, "activation_checkpointing_enable", None)
            if enable is not None:
                enable({"use_reentrant": False})
            else:  # transformers < 5
                self.wav2vec2.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

        if text:
            text_hidden = hidden if text_hidden is None else text_hidden
            if text_hidden % 2:
                raise ValueError(f"text_hidden must be even (a bidirectional GRU), got {text_hidden}")
            if margin and text_hidden != hidden:
                raise ValueError(
                    f"the margin loss compares audio and text embeddings by cosine: text_hidden ({text_hidden}) must "
                    f"equal the encoder's hidden size ({hidden})"
                )
            heads = config.num_attention_heads
            self.text_gru = nn.GRU(text_dim, text_hidden // 2, batch_first=True, bidirectional=True)  # (R4)
            self.text_attention = nn.MultiheadAttention(
                text_hidden, text_heads or heads, dropout=text_dropout, batch_first=True
            )
            self.text_dropout = nn.Dropout(text_dropout)
            self.text_norm = nn.LayerNorm(text_hidden)
            self.fusion_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
            self.cross_attention = nn.MultiheadAttention(  # (R5)
                hidden,
                fusion_heads or heads,
                dropout=fusion_dropout,
                kdim=text_hidden,
                vdim=text_hidden,
                batch_first=True,
            )
            self.fusion_dropout = nn.Dropout(fusion_dropout)
            if gated:  # (R6)
                if gate == "conditioned":
                    self.gate = nn.Linear(2 * hidden, hidden)
                    nn.init.constant_(self.gate.bias, gate_bias)
                else:
                    self.gate_logit = nn.Parameter(torch.full((hidden if gate == "vector" else 1,), float(gate_bias)))
        self.head = nn.Sequential(  # (R8)
            nn.Dropout(head_dropout),
            nn.Linear(hidden, head_hidden),
            nn.ReLU(),
            nn.Dropout(head_dropout),
            nn.Linear(head_hidden, n_outputs),
        )

    def _freeze_encoder_parts(self, spec_augment: bool) -> None:
        w2v = self.wav2vec2
        if getattr(w2v, "masked_spec_embed", None) is not None:
            w2v.masked_spec_embed.requires_grad_(spec_augment)  # used only by SpecAugment
        if self.freeze_feature:
            w2v.freeze_feature_encoder()
        if self.freeze_shallow:
            for module in self._shallow_modules():
                module.requires_grad_(False)

    def _shallow_modules(self) -> list[nn.Module]:
        """The encoder's parts before the fusion (feature encoder excluded)."""
        encoder = self.wav2vec2.encoder
        parts = [self.wav2vec2.feature_projection, encoder.pos_conv_embed, *encoder.layers[: self.shallow_layers]]
        return parts if self.stable_layer_norm else [*parts, encoder.layer_norm]  # post-LN: the input norm

    # ------------------------------------------------------------------ trainer hooks
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters: ``"encoder"`` (the pretrained wav2vec 2.0) and ``"new"`` (text encoder,
        fusion, head), for separate learning rates. Frozen parameters are in neither."""
        encoder_ids = {id(p) for p in self.wav2vec2.parameters()}
        trainable = [p for p in self.parameters() if p.requires_grad]
        return {
            "encoder": [p for p in trainable if id(p) in encoder_ids],
            "new": [p for p in trainable if id(p) not in encoder_ids],
        }

    def init_fold(self, train: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
        """Nothing is fitted to the data; returns the audio encoder's record (``random_init`` included)."""
        return {"audio_encoder": dict(self.encoder_meta)}

    def sample_length(self, sample: dict[str, np.ndarray]) -> int:
        """The padded cost of a prepared utterance in a batch: its number of samples."""
        return len(sample["waveform"])

    # ------------------------------------------------------------------ data
    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check one utterance, normalise and (if needed) pad or truncate its waveform.

        Expects ``waveform`` ``[S, 1]`` (16 kHz) and, for the fusion variants, ``roberta`` ``[N, text_dim]``.
        Returns ``waveform`` ``[S', 1]`` float32 (normalised per utterance when ``normalize``) and ``roberta``
        unchanged, with the counts ``utterances_padded`` (shorter than the receptive field, zero-padded to it)
        and ``utterances_truncated`` (longer than ``max_seconds``). ValueError (the trainer drops the utterance
        with the message): no samples, non-finite values, wrong shapes, a short waveform with
        ``short_audio="refuse"``, or no words.
        """
        missing = [name for name in self.features if name not in sample]
        if missing:
            raise KeyError(f"sample lacks {missing}; this WavFusion variant reads {list(self.features)}")
        wave = np.asarray(sample["waveform"], dtype=np.float32)
        if wave.ndim != 2 or wave.shape[1] != 1 or wave.shape[0] == 0:
            raise ValueError(f"waveform has shape {wave.shape}; expected [samples >= 1, 1]")
        if not np.isfinite(wave).all():
            raise ValueError("waveform holds non-finite values")
        wave = wave[:, 0]
        counts = {"utterances_padded": 0, "utterances_truncated": 0}
        if self.max_samples is not None and len(wave) > self.max_samples:
            wave = wave[: self.max_samples]
            counts["utterances_truncated"] = 1
        if self.normalize:  # (R1)
            wave = ((wave - wave.mean()) / np.sqrt(wave.var() + NORMALIZE_EPS)).astype(np.float32)
        if len(wave) < self.receptive_field:
            if self.short_audio == "refuse":
                raise ValueError(
                    f"waveform has {len(wave)} samples, fewer than the feature encoder's receptive field "
                    f"({self.receptive_field}): no frame"
                )
            wave = np.pad(wave, (0, self.receptive_field - len(wave)))
            counts["utterances_padded"] = 1
        out = {"waveform": wave[:, None]}
        if self.use_text:
            words = np.asarray(sample["roberta"], dtype=np.float32)
            if words.ndim != 2 or words.shape[1] != self.text_dim:
                raise ValueError(f"roberta has shape {words.shape}; expected [words, {self.text_dim}]")
            if words.shape[0] == 0:
                raise ValueError("no words: the text has nothing to attend to (roberta has 0 rows)")
            if not np.isfinite(words).all():
                raise ValueError("roberta holds non-finite values")
            out["roberta"] = words
        return out, counts

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """``waveform [B, S]`` (zero-padded) and ``n_samples [B]``; text: ``text [B, N, D]``, ``n_words [B]``."""
        batch = {
            "waveform": pad_sequence([torch.from_numpy(s["waveform"][:, 0]) for s in samples], batch_first=True),
            "n_samples": torch.tensor([len(s["waveform"]) for s in samples], dtype=torch.int64),
        }
        if self.use_text:
            batch["text"] = pad_sequence([torch.from_numpy(s["roberta"]) for s in samples], batch_first=True)
            batch["n_words"] = torch.tensor([len(s["roberta"]) for s in samples], dtype=torch.int64)
        return batch

    # ------------------------------------------------------------------ model
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(batch, embeddings=False)[0]

    def training_loss(
        self,
        batch: dict[str, torch.Tensor],
        target: torch.Tensor,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``L_task + lambda * L_mar`` (R9); the margin term only with class targets (integer labels)."""
        use_margin = self.use_margin and self.margin_weight != 0 and not target.is_floating_point()
        outputs, audio, text = self.encode(batch, embeddings=use_margin)
        loss = criterion(outputs, target)
        if use_margin:
            assert audio is not None and text is not None
            loss = loss + self.margin_weight * margin_loss(audio, text, target, self.margin_alpha, self.margin_positive)
        return loss, outputs

    def encode(
        self, batch: dict[str, torch.Tensor], embeddings: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``(outputs [B, n_outputs], a [B, H], t [B, H])``; the margin loss's embeddings ``a``/``t`` (pooled
        shallow audio, pooled text) only with ``embeddings`` and text, else None."""
        layers = self.wav2vec2.encoder.layers
        frozen = torch.no_grad() if self.freeze_shallow else contextlib.nullcontext()
        with frozen:
            frames, n_frames = self.audio_frames(batch["waveform"], batch["n_samples"])
            frame_mask = torch.arange(frames.shape[1], device=frames.device)[None, :] < n_frames[:, None]
            hidden = self.encoder_input(frames, frame_mask)
            attention_mask = self.attention_mask(hidden, frame_mask)
            hidden = self.run_layers(hidden, layers[: self.shallow_layers], attention_mask)  # (R3)
        audio_emb = text_emb = None
        if self.use_text:
            n_words = batch["n_words"]
            word_mask = torch.arange(batch["text"].shape[1], device=n_words.device)[None, :] < n_words[:, None]
            words = self.encode_text(batch["text"], n_words, word_mask)
            if embeddings:
                audio_emb, text_emb = masked_mean(hidden, frame_mask), masked_mean(words, word_mask)
            hidden = self.fuse(hidden, words, word_mask)
        hidden = self.run_layers(hidden, layers[self.shallow_layers :], attention_mask)  # (R7)
        if self.stable_layer_norm:
            hidden = self.wav2vec2.encoder.layer_norm(hidden)
        return self.head(masked_mean(hidden, frame_mask)), audio_emb, text_emb  # (R8)

    def audio_frames(self, waveform: torch.Tensor, n_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``waveform [B, S]`` -> projected frames ``[B, T, H]`` and frames per utterance ``[B]`` (R1-R2)."""
        frozen = torch.no_grad() if self.freeze_feature else contextlib.nullcontext()
        with frozen:
            features = self.conv_features(waveform, n_samples)  # [B, C, T]
        n_frames = self.wav2vec2._get_feat_extract_output_lengths(n_samples).to(torch.long)
        hidden, _ = self.wav2vec2.feature_projection(features.transpose(1, 2))
        return hidden, n_frames

    def conv_features(self, waveform: torch.Tensor, n_samples: torch.Tensor) -> torch.Tensor:
        """The CNN feature encoder on a padded batch, ``[B, S] -> [B, C, T]``; a group-norm encoder's first
        normalisation is over each utterance's valid frames (module docstring, "Padding")."""
        conv_layers = self.wav2vec2.feature_extractor.conv_layers
        x = waveform[:, None]
        if self.group_norm:
            first = conv_layers[0]
            x = first.conv(x)
            valid = _conv_length(n_samples, first.conv.kernel_size[0], first.conv.stride[0])
            x = first.activation(masked_group_norm(x, valid, first.layer_norm))
            conv_layers = conv_layers[1:]
        for layer in conv_layers:
            x = layer(x)
        return x

    def encoder_input(self, frames: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """SpecAugment (optional), padded frames zeroed, positional convolution, (post-LN) layer norm, dropout."""
        if self.spec_augment and self.training:
            frames = self.wav2vec2._mask_hidden_states(frames.clone(), attention_mask=frame_mask)
        encoder = self.wav2vec2.encoder
        hidden = frames * frame_mask[..., None].to(frames.dtype)
        hidden = hidden + encoder.pos_conv_embed(hidden)  # (R2)
        if not self.stable_layer_norm:
            hidden = encoder.layer_norm(hidden)
        return encoder.dropout(hidden)

    def attention_mask(self, hidden: torch.Tensor, frame_mask: torch.Tensor) -> Any:
        """The encoder's attention mask for its configured attention implementation (padded frames as keys)."""
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.wav2vec2.config, inputs_embeds=hidden, attention_mask=frame_mask)

    def run_layers(self, hidden: torch.Tensor, layers: Sequence[nn.Module], attention_mask: Any) -> torch.Tensor:
        """The encoder layers in order, each skipped with probability ``layerdrop`` in training."""
        for layer in layers:
            if self.training and self.layerdrop > 0 and torch.rand(()) < self.layerdrop:
                continue
            hidden = layer(hidden, attention_mask=attention_mask)
        return hidden

    def encode_text(self, text: torch.Tensor, n_words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """``text [B, N, D]`` -> ``X_t [B, N, Ht]`` (R4): packed BiGRU, masked self-attention, residual, LN; 0 at
        padding."""
        packed = pack_padded_sequence(text, n_words.cpu(), batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.text_gru(packed)[0], batch_first=True, total_length=text.shape[1])
        attended, _ = self.text_attention(states, states, states, key_padding_mask=~word_mask, need_weights=False)
        words = self.text_norm(states + self.text_dropout(attended))
        return words * word_mask[..., None].to(words.dtype)

    def fuse(self, audio: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
        """Gated cross-modal attention: ``A_k [B, T, H]``, ``X_t [B, N, Ht]`` -> ``A' [B, T, H]`` (R5-R6)."""
        attended, _ = self.cross_attention(
            self.fusion_norm(audio), words, words, key_padding_mask=~word_mask, need_weights=False
        )  # (R5) C
        attended = self.fusion_dropout(attended)
        if not self.gated:
            return audio + attended  # nogate: A' = A_k + C
        g = self.gate_values(audio, attended)
        if self.gate_mix == "convex":
            return audio + g * (attended - audio)  # (R6) A' = (1 - g) A_k + g C
        return audio + g * attended  # (R6) A' = A_k + g C

    def gate_values(self, audio: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """``g`` (R6): ``[B, T, H]`` (conditioned), ``[H]`` (vector) or ``[1]`` (scalar), in (0, 1)."""
        if self.gate_form == "conditioned":
            return torch.sigmoid(self.gate(torch.cat([audio, attended], dim=-1)))
        return torch.sigmoid(self.gate_logit)


# ---------------------------------------------------------------------- pieces
def margin_loss(
    audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, alpha: float, positive: str = "same_modality"
) -> torch.Tensor:
    """``L_mar`` (R9): the mean over the batch's (anchor, positive, negative) triplets of
    ``max(0, alpha - cos(anchor, positive) + cos(anchor, negative))``; 0 without triplets.

    ``audio``, ``text`` ``[B, H]``, ``labels`` ``[B]`` (class indices). Among the ``2B`` embeddings, with
    ``positive="same_modality"`` a positive is another embedding of the same emotion and modality and a negative
    an embedding of the same emotion in the other modality; ``"cross_modal"`` swaps the two roles. All triplets
    at once: ``[2B, 2B, 2B]`` floats, 67 MB at ``B = 128`` (cap the batch size for larger batches).
    """
    _check_choice("margin_positive", positive, MARGIN_POSITIVES)
    n = labels.shape[0]
    emb = F.normalize(torch.cat([audio, text]).float(), dim=-1)  # [2B, H]
    cos = emb @ emb.T  # [2B, 2B]
    modality = torch.arange(2, device=labels.device).repeat_interleave(n)
    emotion = labels.repeat(2)
    same_emotion = emotion[:, None] == emotion[None, :]
    same_modality = modality[:, None] == modality[None, :]
    others = ~torch.eye(2 * n, dtype=torch.bool, device=labels.device)
    pos, neg = same_emotion & same_modality & others, same_emotion & ~same_modality
    if positive == "cross_modal":
        pos, neg = neg, pos
    triplets = pos[:, :, None] & neg[:, None, :]  # [anchor, positive, negative]
    hinge = (alpha - cos[:, :, None] + cos[:, None, :]).clamp_min(0)
    return (hinge * triplets).sum() / triplets.sum().clamp_min(1)


def masked_group_norm(x: torch.Tensor, lengths: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """A one-group-per-channel GroupNorm of ``x [B, C, T]`` over each row's first ``lengths`` frames only
    (biased variance, the module's eps and affine weights); float32, as GroupNorm runs under autocast."""
    if norm.num_groups != norm.num_channels:
        raise ValueError("masked_group_norm implements wav2vec 2.0's one-group-per-channel GroupNorm only")
    x = x.float()
    valid = (torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)[:, None, :]
    count = lengths.to(x.dtype)[:, None, None]
    mean = (x * valid).sum(-1, keepdim=True) / count
    var = (((x - mean) * valid) ** 2).sum(-1, keepdim=True) / count
    out = (x - mean) * torch.rsqrt(var + norm.eps)
    if norm.affine:
        out = out * norm.weight[:, None] + norm.bias[:, None]
    return out


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x [B, L, D]`` over the positions where ``mask [B, L]`` is True: ``[B, D]``, in float32 (a sum
    over ~1,500 frames is not safe in half precision)."""
    weights = mask.to(torch.float32)[..., None]
    return (x.float() * weights).sum(1) / weights.sum(1).clamp_min(1)


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Samples one output frame of the convolution stack sees (400 for wav2vec 2.0's)."""
    field, hop = 1, 1
    for k, s in zip(kernels, strides, strict=True):
        field += (k - 1) * hop
        hop *= s
    return field


def _conv_length(lengths: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    return torch.div(lengths - kernel, stride, rounding_mode="floor") + 1


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def load_audio_encoder(model: str, path: str | None, cache_dir: str) -> tuple[Any, dict[str, Any]]:
    """The ``Wav2Vec2Model`` for ``model``/``path`` (module docstring) and its record
    ``{"model", "requested", "source", "path", "random_init"}``. Under the meta device: from the config only."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from serflow.models import tiny_wav2vec2 as tiny

    on_meta = torch.get_default_device().type == "meta"
    if path is None:
        folder = Path(cache_dir) / tiny.tiny_folder_name(tiny.TINY_SEED)
        if on_meta:
            encoder = Wav2Vec2Model(tiny.tiny_config(tiny.TINY_SEED))
        else:
            encoder = Wav2Vec2Model.from_pretrained(tiny.ensure_tiny_wav2vec2(folder, tiny.TINY_SEED))
        label = f"random-init wav2vec 2.0 (test stand-in, not {model})"
        meta = {"model": label, "requested": model, "source": "tiny", "path": str(folder), "random_init": True}
        return encoder, meta
    encoder = Wav2Vec2Model(Wav2Vec2Config.from_pretrained(path)) if on_meta else Wav2Vec2Model.from_pretrained(path)
    random_init = bool(getattr(encoder.config, tiny.RANDOM_INIT_MARKER, False))
    label = f"{path} (random-init)" if random_init else str(path)
    return encoder, {
        "model": label,
        "requested": model,
        "source": "path",
        "path": str(path),
        "random_init": random_init,
    }


# ---------------------------------------------------------------------- builder
_HPARAMS = frozenset(inspect.signature(WavFusion.__init__).parameters) - {"self", "n_outputs"}


def build(n_outputs: int, **hparams: Any) -> WavFusion:
    """A :class:`WavFusion`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown WavFusion hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return WavFusion(n_outputs, **hparams)
