"""CNN14, SFCNN14 and MFCNN14 (Triantafyllopoulos et al.): PANNs' CNN14 on log-Mel, optionally conditioned on BERT.

Paper: "Multistage linguistic conditioning of convolutional layers for speech emotion recognition"
(Triantafyllopoulos, Reichel, Liu, Huber, Eyben, Schuller; Frontiers in Computer Science 5:1072479, 2023;
arXiv 2110.06650). CNN14 is Kong et al.'s PANNs network ("PANNs: Large-Scale Pretrained Audio Neural Networks
for Audio Pattern Recognition", 2020); its layer sizes, initialisation, dropout and checkpoint layout are those
of the PANNs reference code (``audioset_tagging_cnn``, ``pytorch/models.py``, ``Cnn14``). One class, three
variants chosen by the ``conditioning`` flag.

Data flow and shapes (``B`` utterances, ``T`` = the batch's frames rounded up to a multiple of 32, ``F`` = 64
Mel bins, ``C_k`` = 64, 128, 256, 512, 1024, 2048 channels times ``width``, ``E`` = the text embedding size,
768 for bert-base, 384 for the offline all-MiniLM-L6-v2)::

    logmel64 [T_u, 64] per utterance (dB)      -> prepare: shorter than min_frames -> padded with -100 dB
    collate: mel [B, T, 64] (zeros past each utterance), n_frames [B], text = bert_utt rows [B, E]
    x [B, 1, T, 64] -> bn0: BatchNorm over the 64 Mel bins (part of PANNs' CNN14)
    block k = 1..6, input X [B, C_{k-1}, T_k, F_k]:
      H1 = ReLU(BN(CONV3x3(X)))                                    eq. 1   [B, C_k, T_k, F_k]
      H2 = ReLU(BN(CONV3x3(H1)))                                   eq. 2
      H3 = Pool2x2(H2)   (block 6: 1x1, i.e. none)                 eq. 3   [B, C_k, T_k / 2, F_k / 2]
      Y  = H3 + PROJ_k(E_L),  PROJ_k(E_L) = W_k E_L + b_k         eqs. 4-5: one bias per feature map [B, C_k, 1, 1]
           (mfcnn14: every block; sfcnn14: block 6 only; cnn14: none)
      dropout 0.2                                                  (PANNs: after every block)
    [B, C_6, T / 32, 2] -> mean over frequency [B, C_6, T / 32] -> max over time + mean over time [B, C_6]
    -> dropout 0.5 -> fc1 C_6 -> C_6 + ReLU -> dropout 0.5 -> head C_6 -> n_outputs     (logits or values)

Sizes: at ``width=1`` the convolutions, batch norms and fc1 hold 79,673,792 parameters (PANNs' 80,753,615 less
its 527-way AudioSet head); MFCNN14's six projections add ``E * 4032 + 4032`` (3,100,608 for E = 768),
SFCNN14's one ``E * 2048 + 2048`` (1,574,912). ``width`` scales every channel count (``round(C * width)``,
fc1 included) for a CPU-sized model; :attr:`Cnn14.width` and :attr:`Cnn14.n_parameters` report what was built.

Training settings are the trainer's (``models.cnn14`` config section): the paper trains all three with SGD,
Nesterov momentum 0.9, learning rate 0.01, batch size 64, 60 epochs, selecting the best validation epoch,
5 runs; weighted cross-entropy (categories), MSE (one dimension) or the mean CCC loss (A/V/D multi-task).

Resolved ambiguities
--------------------
* **Pooling in the block** (``pool``). Eq. 3 says MaxPool; PANNs' CNN14 uses 2x2 *average* pooling. The paper
  is the specification, so the default is ``"max"``, for CNN14 as well (its Figure 1: "the same architecture
  was used for the baseline CNN14, but without the fusion"); ``pool="avg"`` is PANNs' network, the natural
  choice with AudioSet weights, which were trained with it.
* **Where the bias sits relative to PANNs' post-block dropout** (``bias_after_dropout``). The paper's block
  (eqs. 1-4) ends with ``Y = H3 + PROJ(E_L)`` and knows no dropout; PANNs applies dropout 0.2 to each block's
  output. Default: the bias is part of the block output (eq. 4) and the dropout follows it, ``dropout(H3 + P)``;
  ``bias_after_dropout=True`` gives ``dropout(H3) + P`` (the bias then reaches the next block undropped).
* **SFCNN14's fusion point.** "Immediately after the output of the last CNN14 convolution layer": block 6 pools
  1x1, so this is the same place as MFCNN14's sixth conditioning, i.e. SFCNN14 is MFCNN14 without blocks 1-5's
  projections (the module names agree: ``proj.6``). Since a per-channel constant ``c`` added before the final
  pooling (mean over frequency, then max + mean over time) leaves it as ``2c``, adding the projection before or
  after that pooling differs only by the learned scale.
* **"12 convolution layers and 2 linear ones".** fc1 (C_6 -> C_6) is kept and the AudioSet head is replaced by
  the task head, as in PANNs' fine-tuning template; dropout 0.5 before fc1 and before the head, as in PANNs.
* **Text embedding.** The model reads the stored utterance embedding ``bert_utt`` (the mean of BERT's last
  hidden states over the non-special tokens, computed once by the feature stage): BERT is frozen inside the
  fusion models (the paper "first pass[es] the text input through a pre-trained BERT model"; fine-tuning it
  inside would need the tokens, not the embedding). ``PROJ_k`` is a plain ``nn.Linear`` with PyTorch's default
  initialisation (the paper gives none); the other layers are initialised as in PANNs (Xavier-uniform
  weights, zero biases, batch norms at 1 / 0).
* **Front end.** The paper gives none. The ``logmel64`` store is exactly PANNs' ``Cnn14_16k`` front end
  (16 kHz, window 512, hop 160, 64 Mel bins 50-8000 Hz, ``10 log10(max(S, 1e-10))``). PANNs' training-time
  SpecAugment and mixup are not in the paper and not used.
* **Variable lengths.** PANNs trains on fixed 10 s clips; here utterances keep their length and a batch is
  zero-padded. Everything is masked so that **an utterance's output does not depend on the batch it is in**:
  the batch is padded to a multiple of 32 frames (so every pooling window lies wholly inside the padded
  length), every activation is set to zero past the utterance's valid length after each batch norm (bn0
  included) and after adding the bias, the valid length after a 2x2 pooling is ``ceil(L / 2)`` (a window
  holding one real frame and one zero is valid; its value is the same in any batch) and the final max and mean
  over time use only the valid steps. The zeros are what each convolution's own zero padding would give at
  the utterance's end, so an utterance alone (padded to its own multiple of 32) and the same utterance in any
  longer batch give the same output. In training the batch norms take their statistics over the valid
  positions only (so padding does not enter them either); in evaluation they use their running statistics.
* **Too-short utterances.** Five 2x2 poolings need 32 frames for one full output step (PANNs' pooling would
  give none below that). :meth:`Cnn14.prepare` pads an utterance shorter than ``min_frames`` (default 32) at
  its end with -100 dB, the log-Mel of digital silence (what the front end gives for zero-padded audio, PANNs'
  own padding of short clips), and counts ``utterances_padded`` / ``frames_padded``. ``max_frames`` (default
  None: whole utterances; the paper gives no limit) keeps the first frames and counts
  ``utterances_truncated`` / ``frames_truncated``. The frequency poolings round up (``ceil_mode``), which is
  PANNs' pooling for 64 bins and keeps any other Mel count working.
* **AudioSet pre-training** (``pretrained``; the paper does not say whether CNN14 started from AudioSet
  weights). ``None`` (default) trains from scratch. A path loads a PANNs checkpoint (e.g.
  ``Cnn14_16k_mAP=0.438.pth``) at construction: ``bn0``, the six blocks and fc1, by their PANNs names; the
  AudioSet head is not loaded. It is refused with a message naming the key when a shape differs (another
  width), when its front end is not the ``logmel64`` store's (STFT kernel of n_fft 512 and a Mel matrix equal
  to librosa's 64-band 50-8000 Hz one at 16 kHz; the 32 kHz ``Cnn14`` checkpoint has n_fft 1024), when it is
  corrupt, or when it is not a plain state dict. :attr:`Cnn14.pretrained_sha256` records the file's sha256
  ("from scratch" without one). Nothing is read on the meta device.
* **Memory format.** ``memory_format="channels_last"`` converts the convolution weights and the input to
  ``torch.channels_last``; the model also runs unchanged after ``model.to(memory_format=torch.channels_last)``.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from serflow.models.base import Sample, SerModel
from serflow.models.catalog import CNN14, features_of, variants_of

PAPER = CNN14.paper
CHANNELS = (64, 128, 256, 512, 1024, 2048)  # PANNs CNN14 blocks 1-6
POOLS = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 1))  # (time, frequency) pooling of each block
TIME_STRIDE = math.prod(p[0] for p in POOLS)  # 32: frames per final time step
CONDITIONING = {"none": (), "single": (6,), "multi": (1, 2, 3, 4, 5, 6)}  # which blocks get PROJ_k (eq. 4)
SILENCE_DB = -100.0  # 10 log10(1e-10): the logmel64 store's value for digital silence
COUNT_KEYS = ("utterances_padded", "frames_padded", "utterances_truncated", "frames_truncated")
FROM_SCRATCH = "from scratch"

# The logmel64 store's front end (serflow.features.acoustic LogMel64), which a checkpoint must share.
FRONT_END = {"sample_rate": 16000, "n_fft": 512, "n_mels": 64, "fmin": 50.0, "fmax": 8000.0}
STFT_KEY = "spectrogram_extractor.stft.conv_real.weight"
MEL_KEY = "logmel_extractor.melW"
IGNORED_PREFIXES = ("spectrogram_extractor.", "logmel_extractor.", "fc_audioset.")  # front end, AudioSet head


class MaskedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state-dict keys) whose training statistics can be
    restricted to the valid positions of a padded batch.

    ``mask`` (``[B, 1, T, 1]`` or broadcastable to the input without its channel axis; 1 = valid) is used in
    training only: the batch mean and (biased) variance are over the valid positions, the running variance is
    updated with the unbiased one, as ``nn.BatchNorm2d`` does. Statistics are computed in float32. Without a
    mask, or in evaluation, this is ``nn.BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if mask is None or not self.training:
            return super().forward(x)
        weight = mask.to(torch.float32).expand(x.shape[0], 1, *x.shape[2:])
        count = weight.sum()
        xf = x.float()
        mean = (xf * weight).sum((0, 2, 3)) / count
        var = ((xf - mean[None, :, None, None]).square() * weight).sum((0, 2, 3)) / count
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(unbiased, momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale + (self.bias if self.affine else 0.0)
        return x * scale.to(x.dtype)[None, :, None, None] + shift.to(x.dtype)[None, :, None, None]


class ConvBlock(nn.Module):
    """PANNs' ConvBlock: two 3x3 convolutions (no bias), each followed by batch norm and ReLU (eqs. 1-2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = MaskedBatchNorm2d(out_channels)
        self.bn2 = MaskedBatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``x [B, C_in, T, F]`` -> ``H2 [B, C_out, T, F]``, zero past each utterance's valid frames."""
        x = _masked(F.relu(self.bn1(self.conv1(x), mask)), mask)  # eq. 1
        return _masked(F.relu(self.bn2(self.conv2(x), mask)), mask)  # eq. 2


class Cnn14(SerModel):
    """CNN14 and its BERT-conditioned variants; see the module docstring for the equations, shapes and choices."""

    def __init__(
        self,
        n_outputs: int,
        *,
        conditioning: str = "none",
        audio_dim: int = 64,
        text_dim: int = 768,
        width: float = 1.0,
        pool: str = "max",
        bias_after_dropout: bool = False,
        block_dropout: float = 0.2,
        fc_dropout: float = 0.5,
        min_frames: int = TIME_STRIDE,
        max_frames: int | None = None,
        pretrained: str | os.PathLike[str] | None = None,
        memory_format: str = "contiguous",
    ) -> None:
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {sorted(CONDITIONING)}, got {conditioning!r}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' (eq. 3) or 'avg' (PANNs), got {pool!r}")
        if memory_format not in ("contiguous", "channels_last"):
            raise ValueError(f"memory_format must be 'contiguous' or 'channels_last', got {memory_format!r}")
        if not width > 0:
            raise ValueError(f"width must be positive, got {width}")
        if n_outputs < 1 or audio_dim < 1 or text_dim < 1:
            raise ValueError(f"n_outputs, audio_dim and text_dim must be >= 1: {n_outputs=}, {audio_dim=}, {text_dim=}")
        if min_frames < 1 or (max_frames is not None and max_frames < min_frames):
            raise ValueError(f"need 1 <= min_frames <= max_frames: {min_frames=}, {max_frames=}")
        for name, p in (("block_dropout", block_dropout), ("fc_dropout", fc_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.n_outputs, self.conditioning, self.width = n_outputs, conditioning, float(width)
        self.audio_dim, self.text_dim = audio_dim, text_dim
        self.pool, self.bias_after_dropout = pool, bias_after_dropout
        self.block_dropout, self.fc_dropout = block_dropout, fc_dropout
        self.min_frames, self.max_frames = min_frames, max_frames
        self.memory_format = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
        self.conditioned_blocks: tuple[int, ...] = CONDITIONING[conditioning]
        self.features: tuple[str, ...] = ("logmel64", "bert_utt") if self.conditioned_blocks else ("logmel64",)
        self.channels = tuple(max(1, round(c * width)) for c in CHANNELS)

        self.bn0 = MaskedBatchNorm2d(audio_dim)  # over the Mel bins, as in PANNs
        previous = 1
        for k, channels in enumerate(self.channels, start=1):
            self.add_module(f"conv_block{k}", ConvBlock(previous, channels))  # PANNs' names: checkpoint keys
            previous = channels
        self.proj = nn.ModuleDict(
            {str(k): nn.Linear(text_dim, self.channels[k - 1]) for k in self.conditioned_blocks}  # eq. 5
        )
        self.fc1 = nn.Linear(previous, previous)
        self.head = nn.Linear(previous, n_outputs)
        self._init_panns()
        self.pretrained_path: str | None = None
        self.pretrained_sha256 = FROM_SCRATCH
        if pretrained is not None:
            self.pretrained_path = str(pretrained)
            if not _on_meta(self.fc1.weight):  # the workflow's parse-time check reads no file
                self.pretrained_sha256 = self.load_panns(pretrained)
        if memory_format == "channels_last":
            self.to(memory_format=torch.channels_last)

    def _init_panns(self) -> None:
        """PANNs' ``init_layer`` / ``init_bn``: Xavier-uniform weights, zero biases, BN weight 1 and bias 0."""
        for module in [*self.blocks(), self.fc1, self.head]:
            for sub in module.modules():
                if isinstance(sub, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(sub.weight)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)
        for bn in (m for m in self.modules() if isinstance(m, nn.BatchNorm2d)):
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)

    def blocks(self) -> list[ConvBlock]:
        return [getattr(self, f"conv_block{k}") for k in range(1, len(CHANNELS) + 1)]

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> dict[str, Any]:
        """What was built, for the results: JSON-able."""
        return {
            "conditioning": self.conditioning,
            "width": self.width,
            "channels": list(self.channels),
            "n_parameters": self.n_parameters,
            "pool": self.pool,
            "pretrained": self.pretrained_path,
            "pretrained_sha256": self.pretrained_sha256,
        }

    # ------------------------------------------------------------------ data
    def prepare(self, sample: Sample) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        """Check one utterance; pad it to ``min_frames`` (-100 dB) or cut it to ``max_frames``; counts of both.

        Returns ``logmel64`` ``[T', audio_dim]`` float32 and, when conditioned, ``bert_utt`` ``[1, text_dim]``.
        ValueError (the trainer drops the utterance) for no frames, the wrong number of Mel bins or text dims,
        or non-finite values. Applying it twice changes nothing more.
        """
        missing = [name for name in self.features if name not in sample]
        if missing:
            raise KeyError(f"sample lacks {missing}; this CNN14 variant reads {list(self.features)}")
        mel = np.asarray(sample["logmel64"], dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] == 0 or mel.shape[1] != self.audio_dim:
            raise ValueError(f"logmel64 has shape {mel.shape}; expected [frames >= 1, {self.audio_dim}]")
        if not np.isfinite(mel).all():
            raise ValueError("logmel64 holds non-finite values")
        counts = dict.fromkeys(COUNT_KEYS, 0)
        if len(mel) < self.min_frames:
            counts["utterances_padded"], counts["frames_padded"] = 1, self.min_frames - len(mel)
            mel = np.concatenate([mel, np.full((self.min_frames - len(mel), mel.shape[1]), SILENCE_DB, np.float32)])
        if self.max_frames is not None and len(mel) > self.max_frames:
            counts["utterances_truncated"], counts["frames_truncated"] = 1, len(mel) - self.max_frames
            mel = mel[: self.max_frames]
        out = {"logmel64": np.ascontiguousarray(mel)}
        if self.conditioned_blocks:
            text = np.asarray(sample["bert_utt"], dtype=np.float32)
            if text.shape != (1, self.text_dim):
                raise ValueError(f"bert_utt has shape {text.shape}; expected [1, {self.text_dim}]")
            if not np.isfinite(text).all():
                raise ValueError("bert_utt holds non-finite values")
            out["bert_utt"] = text
        return out, counts

    def sample_length(self, sample: dict[str, np.ndarray]) -> int:
        """The padded cost of a prepared utterance in a batch, its frames (``train.max_batch_length``: batches of
        similar lengths, at most that many padded frames)."""
        return len(sample["logmel64"])

    def collate(self, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        """``mel [B, T, F]`` zero-padded to a multiple of 32 frames, ``n_frames [B]``, ``text [B, E]`` if used."""
        lengths = [len(s["logmel64"]) for s in samples]
        total = max(TIME_STRIDE, -(-max(lengths) // TIME_STRIDE) * TIME_STRIDE)
        mel = np.zeros((len(samples), total, self.audio_dim), np.float32)
        for i, s in enumerate(samples):
            mel[i, : lengths[i]] = s["logmel64"]
        batch = {"mel": torch.from_numpy(mel), "n_frames": torch.tensor(lengths, dtype=torch.long)}
        if self.conditioned_blocks:
            batch["text"] = torch.from_numpy(np.concatenate([s["bert_utt"] for s in samples]))
        return batch

    # ------------------------------------------------------------------ model
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self.embed(batch))

    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The input of the task head, ``[B, C_6]``: pooled feature maps -> dropout -> fc1 + ReLU -> dropout."""
        x = F.dropout(self.pooled(batch), self.fc_dropout, self.training)
        return F.dropout(F.relu(self.fc1(x)), self.fc_dropout, self.training)

    def pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean over frequency, then max + mean over each utterance's valid time steps: ``[B, C_6]``."""
        x, lengths = self.feature_maps(batch)
        x = x.mean(dim=3)  # [B, C, T]
        if lengths is None:
            return x.amax(dim=2) + x.mean(dim=2)
        valid = torch.arange(x.shape[2], device=x.device)[None, :] < lengths[:, None]  # [B, T]
        top = x.masked_fill(~valid[:, None, :], float("-inf")).amax(dim=2)
        return top + x.sum(dim=2) / lengths[:, None].to(x.dtype)  # padding is zero

    def feature_maps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Block 6's output ``[B, C_6, T / 32, F / 32]`` and the valid time steps per utterance (None: all)."""
        mel, n_frames = batch["mel"], batch["n_frames"]
        text = batch.get("text")
        lengths: torch.Tensor | None = n_frames
        if bool((n_frames >= mel.shape[1]).all()):
            lengths = None  # nothing padded: no masking needed
        x = mel[:, None].contiguous(memory_format=self.memory_format)  # [B, 1, T, F]
        mask = _time_mask(lengths, x)
        x = _masked(self.bn0(x.transpose(1, 3), mask).transpose(1, 3), mask)  # bn0 over the Mel bins
        for k in range(1, len(CHANNELS) + 1):
            x, lengths = self.stage(k, x, lengths, text)
        return x, lengths

    def stage(
        self, k: int, x: torch.Tensor, lengths: torch.Tensor | None, text: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Block ``k`` (1-6) with its conditioning and PANNs' dropout: eqs. 1-5 on ``x [B, C, T, F]``."""
        h = getattr(self, f"conv_block{k}")(x, _time_mask(lengths, x))  # H2, eqs. 1-2
        h = self.pool_block(h, POOLS[k - 1])  # H3, eq. 3
        if lengths is not None and POOLS[k - 1][0] > 1:
            lengths = torch.div(lengths + POOLS[k - 1][0] - 1, POOLS[k - 1][0], rounding_mode="floor")
        bias = None
        if str(k) in self.proj:
            if text is None:
                raise KeyError(f"batch lacks 'text' (bert_utt): {self.conditioning}-stage conditioning needs it")
            bias = self.proj[str(k)](text)[:, :, None, None].to(h.dtype)  # E_P = W E_L + b, eq. 5: [B, C, 1, 1]
        mask = _time_mask(lengths, h)
        if bias is not None and not self.bias_after_dropout:
            h = _masked(h + bias, mask)  # Y = H3 + PROJ(E_L), eq. 4
        h = F.dropout(h, self.block_dropout, self.training)
        if bias is not None and self.bias_after_dropout:
            h = _masked(h + bias, mask)
        return h, lengths

    def pool_block(self, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Eq. 3's pooling (``pool``: max as in the paper, avg as in PANNs); 1x1 is the identity."""
        if size == (1, 1):
            return h
        if self.pool == "max":
            return F.max_pool2d(h, size, ceil_mode=True)
        return F.avg_pool2d(h, size, ceil_mode=True)

    # ------------------------------------------------------------------ AudioSet weights
    def panns_keys(self) -> dict[str, tuple[int, ...]]:
        """The state-dict entries a PANNs CNN14 checkpoint provides (bn0, blocks, fc1) and their shapes here."""
        state = self.state_dict()
        return {k: tuple(v.shape) for k, v in state.items() if k.startswith(("bn0.", "conv_block", "fc1."))}

    def load_panns(self, path: str | os.PathLike[str]) -> str:
        """Load bn0, the six blocks and fc1 from a PANNs checkpoint; returns its sha256 (see module docstring)."""
        state, digest = read_panns_checkpoint(path)
        check_front_end(state, path)
        expected = self.panns_keys()
        unknown = sorted(k for k in state if k not in expected and not k.startswith(IGNORED_PREFIXES))
        if unknown:
            raise ValueError(
                f"{path}: keys a PANNs CNN14 checkpoint does not have: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''} (another PANNs architecture?)"
            )
        for key, shape in expected.items():
            if key not in state:
                if key.endswith("num_batches_tracked"):
                    continue
                raise ValueError(f"{path}: the checkpoint has no {key!r}: not a complete PANNs CNN14 state dict")
            if tuple(state[key].shape) != shape:
                raise ValueError(
                    f"{path}: {key!r} has shape {list(state[key].shape)} in the checkpoint but {list(shape)} in this "
                    f"model (width {self.width:g}, {self.audio_dim} Mel bins): the checkpoint is for another size"
                )
        loaded = {k: v for k, v in state.items() if k in expected}
        result = self.load_state_dict(loaded, strict=False)
        assert not result.unexpected_keys, result.unexpected_keys
        return digest


def read_panns_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, sha256)`` of a PANNs checkpoint (``{"model": state_dict, ...}`` or a bare state dict),
    loaded with ``weights_only=True``; ValueError for a corrupt file or one that is not a plain state dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained CNN14 checkpoint {path} does not exist")
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise ValueError(
                f"{path}: not a plain state dict: it pickles {found.group(1)} (only tensors and containers are loaded)"
            ) from None
        raise ValueError(f"{path}: cannot be read: corrupt, or not a file written by torch.save") from None
    except Exception as exc:  # zip errors, truncation, ...: torch raises several types
        raise ValueError(f"{path}: cannot be read: corrupt, or not a file written by torch.save ({exc})") from None
    state = obj.get("model", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not state:
        raise ValueError(f"{path}: not a plain state dict: holds a {type(state).__name__}, expected {{'model': dict}}")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: not a plain state dict: entry {key!r} is a {type(value).__name__}")
    return dict(state), digest.hexdigest()


def check_front_end(state: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint whose STFT / Mel front end is not the ``logmel64`` store's (:data:`FRONT_END`)."""
    n_fft, n_mels = FRONT_END["n_fft"], FRONT_END["n_mels"]
    bins = int(n_fft) // 2 + 1
    for key in (STFT_KEY, MEL_KEY):
        if key not in state:
            raise ValueError(f"{path}: the checkpoint has no {key!r}: its front end cannot be checked")
    stft = tuple(state[STFT_KEY].shape)
    if stft != (bins, 1, n_fft):
        raise ValueError(
            f"{path}: {STFT_KEY!r} has shape {list(stft)}, i.e. n_fft {stft[-1]}; the logmel64 store uses n_fft "
            f"{n_fft} (16 kHz; PANNs' Cnn14_16k checkpoint): another front end"
        )
    mel = state[MEL_KEY]
    if tuple(mel.shape) != (bins, n_mels):
        raise ValueError(
            f"{path}: {MEL_KEY!r} has shape {list(mel.shape)}; the logmel64 store's Mel matrix is [{bins}, {n_mels}]"
        )
    import librosa

    expected = librosa.filters.mel(
        sr=FRONT_END["sample_rate"], n_fft=n_fft, n_mels=n_mels, fmin=FRONT_END["fmin"], fmax=FRONT_END["fmax"]
    ).T
    if not np.allclose(mel.float().numpy(), expected, rtol=1e-3, atol=1e-5):
        raise ValueError(
            f"{path}: {MEL_KEY!r} is not the logmel64 store's Mel matrix (16 kHz, {n_mels} bands "
            f"{FRONT_END['fmin']:g}-{FRONT_END['fmax']:g} Hz): another front end"
        )


# ---------------------------------------------------------------------- helpers
def _on_meta(t: torch.Tensor) -> bool:
    return t.device.type == "meta"


def _time_mask(lengths: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """``[B, 1, T, 1]`` in ``x``'s dtype: 1 on each utterance's valid time steps of ``x [B, C, T, F]``."""
    if lengths is None:
        return None
    steps = torch.arange(x.shape[2], device=x.device)
    return (steps[None, :] < lengths[:, None]).to(x.dtype)[:, None, :, None]


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


# ---------------------------------------------------------------------- registry
_HPARAMS = frozenset(
    {
        "conditioning",
        "audio_dim",
        "text_dim",
        "width",
        "pool",
        "bias_after_dropout",
        "block_dropout",
        "fc_dropout",
        "min_frames",
        "max_frames",
        "pretrained",
        "memory_format",
    }
)


def build(n_outputs: int, **hparams: Any) -> Cnn14:
    """A :class:`Cnn14`; unknown hyperparameter names are a TypeError naming all of them."""
    unknown = sorted(set(hparams) - _HPARAMS)
    if unknown:
        raise TypeError(f"unknown CNN14 hyperparameters {unknown}; known: {sorted(_HPARAMS)}")
    return Cnn14(n_outputs, **hparams)


VARIANTS = variants_of(CNN14)  # name -> (description, {"conditioning": ...}); the catalogue registers them
FEATURES = features_of(CNN14)
