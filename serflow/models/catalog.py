"""The catalogue of the seed papers' models: per family its paper and, per model name, what it is, the stores it
reads and its fixed variant flags. Data only (no torch): :mod:`serflow.models.registry` registers every entry,
each model module reads its own family's table from here, and a training job's code identity takes its model's
entry rather than this whole file (``serflow.provenance.CATALOGUES``), so adding a model reruns no other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One model name: a sentence on what it is, the stores it reads, its fixed flags, the paper's row it is."""

    description: str
    features: tuple[str, ...]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    paper_row: str = ""
    components: tuple[str, ...] = ()  # a late fusion: the models whose outputs it averages (it trains nothing)


@dataclass(frozen=True)
class Family:
    """A model family: one builder, one config section ``models.<name>``, several variants."""

    name: str
    build: str
    paper: str
    variants: Mapping[str, Variant]
    reference: tuple[str, ...] = ()  # the family's reference models for significance tests (a paper's baselines)


# --------------------------------------------------------------------------------- WISE (seed 000)

WISE_PAPER = "Shen et al., WISE: Word-Level Interaction-Based Multimodal Fusion for SER, Interspeech 2020"


def wise_flags(
    audio: bool = True,
    text: bool = True,
    hierarchy: str = "phone",
    interaction: bool = True,
    pooling: str = "attention",
) -> dict[str, Any]:
    return {"audio": audio, "text": text, "hierarchy": hierarchy, "interaction": interaction, "pooling": pooling}


def _wise(description: str, row: str, **flags: Any) -> Variant:
    fixed = wise_flags(**flags)
    features = (("mfcc39", "spans_mfcc39") if fixed["audio"] else ()) + (("glove",) if fixed["text"] else ())
    return Variant(description, features, fixed, row)


WISE = Family(
    "wise",
    "serflow.models.wise:build",
    WISE_PAPER,
    {
        "wise": _wise("WISE: hierarchical audio (HR) + interaction LSTMs (IM) + attention and FC (DMF)", "Table 1"),
        "wise_audio": _wise(
            "WISE audio only (Table 1): HR -> audio LSTM -> attention -> FC",
            "Table 1 audio",
            text=False,
            interaction=False,
        ),
        "wise_text": _wise(
            "WISE text only (Table 1): GloVe -> text LSTM -> attention -> FC",
            "Table 1 text",
            audio=False,
            interaction=False,
        ),
        "wise_im_dmf": _wise(
            "WISE IM+DMF (Table 2): no hierarchy, a word is the mean of its frames", "Table 2 IM+DMF", hierarchy="mean"
        ),
        "wise_hr_dmf": _wise(
            "WISE HR+DMF (Table 2): no interaction matrix, independent LSTMs", "Table 2 HR+DMF", interaction=False
        ),
        "wise_im_hr": _wise(
            "WISE IM+HR (Table 2): no attention layer, FC on the last hidden states", "Table 2 IM+HR", pooling="last"
        ),
        "wise_hr_minus": _wise(
            "WISE IM+DMF+HR- (Table 2): frames straight to words, no phone level",
            "Table 2 IM+DMF+HR-",
            hierarchy="frame",
        ),
    },
    reference=("wise_audio", "wise_text"),
)

# --------------------------------------------------------------------------------- GBAN (seed 001)

GBAN_PAPER = (
    "Liu, Li, Meng, Group Gated Fusion on Attention-based Bidirectional Alignment for Multimodal Emotion "
    "Recognition, Interspeech 2020"
)


def gban_features(fusion: str) -> tuple[str, ...]:
    """The stores a GBAN variant reads: speech frames, the words (GloVe vectors and word ids), or both."""
    return {"h_s": ("gban52",), "h_t": ("glove", "word_ids")}.get(fusion, ("gban52", "glove", "word_ids"))


def _gban(description: str, fusion: str, row: str) -> Variant:
    return Variant(description, gban_features(fusion), {"fusion": fusion}, row)


GBAN = Family(
    "gban",
    "serflow.models.gban:build",
    GBAN_PAPER,
    {
        "gban": _gban(
            "GBAN (Tables 2-3): CNN-BiLSTM encoders, bidirectional alignment, group gated fusion of (a_s, a_t), "
            "(h_s, h_t)",
            "ggf",
            "Table 2 GGF / Table 3 GBAN",
        ),
        "gban_concat1": _gban(
            "GBAN BiAtt-Concat (Concat-1, Tables 2-3): concat(a_s, a_t) -> classifier", "concat1", "Table 2 Concat-1"
        ),
        "gban_tfl": _gban(
            "GBAN BiAtt-TFL (Tables 2-3): tensor fusion of (a_s, a_t) -> classifier", "tfl", "Table 2 TFL"
        ),
        "gban_gmu": _gban(
            "GBAN BiAtt-GMU (Tables 2-3): gated multimodal unit on (a_s, a_t) -> classifier", "gmu", "Table 2 GMU"
        ),
        "gban_concat2": _gban(
            "GBAN Concat-2 (Table 2): concat(a_s, a_t, h_s, h_t) -> classifier", "concat2", "Table 2 Concat-2"
        ),
        "gban_speech": _gban("GBAN speech encoder alone (Table 1 h_s): CNN-BiLSTM -> classifier", "h_s", "Table 1 h_s"),
        "gban_text": _gban(
            "GBAN text encoder alone (Table 1 h_t): GloVe CNN-BiLSTM -> classifier", "h_t", "Table 1 h_t"
        ),
        "gban_as": _gban("GBAN text-aligned speech a_s alone (Table 1): eqs. 9-11 -> classifier", "a_s", "Table 1 a_s"),
        "gban_at": _gban(
            "GBAN speech-aligned text a_t alone (Table 1): eqs. 12-14 -> classifier", "a_t", "Table 1 a_t"
        ),
    },
    reference=("gban_speech", "gban_text"),
)

# --------------------------------------------------------------------------------- CNN14 family (seed 002)

CNN14_PAPER = (
    "Triantafyllopoulos et al., Multistage linguistic conditioning of convolutional layers for speech emotion "
    "recognition, Frontiers in Computer Science 2023"
)
CNN14 = Family(
    "cnn14",
    "serflow.models.cnn14:build",
    CNN14_PAPER,
    {
        "cnn14": Variant("CNN14 (PANNs) on log-Mel: the acoustic baseline", ("logmel64",), {"conditioning": "none"}),
        "sfcnn14": Variant(
            "SFCNN14: single-stage fusion, the projected BERT embedding added after the last conv block",
            ("logmel64", "bert_utt"),
            {"conditioning": "single"},
        ),
        "mfcnn14": Variant(
            "MFCNN14: multistage fusion, the projected BERT embedding a per-channel bias after every conv block",
            ("logmel64", "bert_utt"),
            {"conditioning": "multi"},
        ),
    },
    reference=("cnn14", "bert"),
)
LATE_FUSION = Family(
    "late_fusion",
    "serflow.models.late_fusion:build",
    CNN14_PAPER + " (late fusion baseline, Appendix Table 4)",
    {
        "lf": Variant(
            "LF: the average of cnn14's and bert's outputs per utterance (probabilities, or predicted values); "
            "trains nothing",
            (),
            components=("cnn14", "bert"),
            paper_row="LF",
        )
    },
    reference=("cnn14", "bert"),
)
BERT = Family(
    "bert",
    "serflow.models.bert:build",
    CNN14_PAPER + " (BERT baseline)",
    {"bert": Variant("BERT fine-tuned with a final linear layer: the text baseline", ("bert_tokens",))},
    reference=("cnn14", "bert"),
)

# --------------------------------------------------------------------------------- MultiModal-ER (seed 003)

MMER_PAPER = "MultiModal-ER report: Whisper ASR + BiLSTM/attention speech, text and fusion pipelines on TESS (2026)"
MMER = Family(
    "mmer",
    "serflow.models.mmer:build",
    MMER_PAPER,
    {
        "mmer_speech": Variant(
            "MultiModal-ER speech only: MFCC-120 -> BiLSTM -> LayerNorm -> attention pooling -> MLP",
            ("mfcc120",),
            {"speech": True, "text": False},
            "Speech-only",
        ),
        "mmer_text": Variant(
            "MultiModal-ER text only: ASR words -> trainable embeddings -> BiLSTM -> masked attention -> MLP",
            ("word_ids",),
            {"speech": False, "text": True},
            "Text-only",
        ),
        "mmer_fusion": Variant(
            "MultiModal-ER fusion: both encoders trained jointly, concatenated 512 -> 256 -> 128 -> classes",
            ("mfcc120", "word_ids"),
            {"speech": True, "text": True},
            "Multimodal fusion",
        ),
    },
    reference=("mmer_speech", "mmer_text"),
)

# --------------------------------------------------------------------------------- WavFusion (seed 004)

WAVFUSION_PAPER = "Li, Luo, Xia, WavFusion: Towards wav2vec 2.0 Multimodal Speech Emotion Recognition, arXiv 2412.05558"


def wavfusion_flags(text: bool = True, gated: bool = True, margin: bool = True) -> dict[str, Any]:
    return {"text": text, "gated": gated, "margin": margin}


def _wavfusion(description: str, **flags: bool) -> Variant:
    fixed = wavfusion_flags(**flags)
    return Variant(description, ("waveform", "roberta") if fixed["text"] else ("waveform",), fixed)


WAVFUSION = Family(
    "wavfusion",
    "serflow.models.wavfusion:build",
    WAVFUSION_PAPER,
    {
        "wavfusion": _wavfusion(
            "WavFusion: wav2vec 2.0 + gated cross-modal attention to RoBERTa words, CE + margin loss"
        ),
        "wavfusion_nogate": _wavfusion("WavFusion without the gate: plain cross-modal attention", gated=False),
        "wavfusion_nomargin": _wavfusion("WavFusion without the margin loss (lambda = 0)", margin=False),
        "wavfusion_audio": _wavfusion(
            "wav2vec 2.0 alone, mean-pooled, MLP head (WavFusion's unimodal baseline)",
            text=False,
            gated=False,
            margin=False,
        ),
    },
    reference=("wavfusion_audio",),
)

FAMILIES: tuple[Family, ...] = (WISE, GBAN, CNN14, BERT, LATE_FUSION, MMER, WAVFUSION)


def variants_of(family: Family) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{name: (description, fixed flags)}``: the form the model modules expose as ``VARIANTS``."""
    return {name: (v.description, dict(v.fixed)) for name, v in family.variants.items()}


def features_of(family: Family) -> dict[str, tuple[str, ...]]:
    """``{name: stores read}``: the form the model modules expose as ``FEATURES``."""
    return {name: v.features for name, v in family.variants.items()}
