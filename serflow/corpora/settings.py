"""What one corpus's section of the config resolves to: its synthetic layout, its Whisper settings, its text source.

A corpus section may override the global ``asr`` section key by key (``corpora.<name>.asr``) and the global
``text_source`` (``corpora.<name>.text_source``), so two corpora can each be transcribed by their own Whisper and
aligned on their own text. Every stage that needs these (the workflow's input functions, the feature stores'
recipe, the DVC params, the CLI) resolves them here, from the raw YAML or from the config Snakemake validated (with
the schema's defaults filled in) alike: the defaults are spelt out below, and a test keeps them equal to the
schema's.

This module imports nothing heavy: it runs at every ``snakemake`` invocation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SYNTH_LAYOUTS = ("iemocap", "tess")
TEXT_SOURCES = ("gold", "asr")
TESS_DEFAULT_WORDS = 20
N_SESSIONS = 5  # IEMOCAP's, the synthetic IEMOCAP layout's default (serflow.corpora.synth.corpus)
# The global asr section's defaults (config/schema.yaml); backend and model are required there.
ASR_DEFAULTS: dict[str, Any] = {
    "model_path": None,
    "language": "en",
    "device": "auto",
    "compute_type": None,
    "beam_size": 5,
    "shards": 4,
    "threads": 1,
    "packing": {"enabled": True, "max_window_s": 28.0, "gap_s": 1.0, "max_utterance_s": 15.0},
}
# The settings that decide what text comes out (the others only decide where and how fast it is computed).
ASR_RESULT_KEYS = ("backend", "model", "model_path", "language", "compute_type", "beam_size")
RANDOM_SPLIT_DEFAULTS: dict[str, Any] = {"train": 0.7, "valid": 0.15, "seed": 42}


def synth_settings(name: str, spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The corpus's ``synth`` section with its layout's defaults filled in, or None for a corpus read from a copy.

    ``iemocap`` (the default layout): ``utterances``, ``seed``, ``preset``; ``tess``: ``layout``, ``words``, ``seed``,
    ``nested_copy``. The IEMOCAP layout's dict carries no ``layout`` key, so a corpus configured before layouts
    existed keeps its identity (its recipe hash and the synth job's params). Raises ``ValueError`` with one line
    naming the key when the section mixes the layouts' keys or its layout is not the corpus's ``format``.
    """
    synth = spec.get("synth")
    if not synth:
        return None
    where = f"corpora.{name}.synth"
    layout = synth.get("layout", "iemocap")
    if layout not in SYNTH_LAYOUTS:
        raise ValueError(f"config key {where}.layout = {layout!r}: must be one of {', '.join(SYNTH_LAYOUTS)}")
    if layout != spec.get("format"):
        raise ValueError(
            f"config key {where}.layout = {layout!r} but corpora.{name}.format = {spec.get('format')!r}: a synthetic "
            f"corpus is read by the reader of its layout, set both to the same"
        )
    own = {"iemocap": {"utterances", "preset", "sessions"}, "tess": {"words", "nested_copy"}}
    other = "tess" if layout == "iemocap" else "iemocap"
    stray = sorted(own[other] & set(synth))
    if stray:
        raise ValueError(
            f"config key {where}.{stray[0]} is for layout {other}, not {layout} (layout {layout} takes "
            f"{', '.join(sorted(own[layout]))} and seed)"
        )
    if "seed" not in synth:
        raise ValueError(f"config key {where}.seed is missing")
    if layout == "iemocap":
        if "utterances" not in synth:
            raise ValueError(f"config key {where}.utterances is missing (layout iemocap)")
        settings = {"utterances": synth["utterances"], "seed": synth["seed"], "preset": synth.get("preset", "moderate")}
        if synth.get("sessions", N_SESSIONS) != N_SESSIONS:  # IEMOCAP's 5 left out: earlier corpora keep their identity
            settings["sessions"] = synth["sessions"]
        return settings
    return {
        "layout": "tess",
        "words": synth.get("words", TESS_DEFAULT_WORDS),
        "seed": synth["seed"],
        "nested_copy": synth.get("nested_copy", True),
    }


def feature_shards(config: Mapping[str, Any], corpus: str) -> int:
    """Jobs per feature store of ``corpus``: ``corpora.<corpus>.feature_shards``, else ``features.shards``."""
    own = config["corpora"][corpus].get("feature_shards")
    return int(own if own is not None else config["features"].get("shards", 4))


def corpus_asr(config: Mapping[str, Any], corpus: str) -> dict[str, Any]:
    """The Whisper settings of one corpus: the global ``asr`` section with ``corpora.<corpus>.asr`` over it (key by
    key, and within ``packing`` too, so a corpus may change one packing key and keep the others)."""
    override = config["corpora"][corpus].get("asr") or {}
    packing = {
        **ASR_DEFAULTS["packing"],
        **(config["asr"].get("packing") or {}),
        **(override.get("packing") or {}),
    }
    return {**ASR_DEFAULTS, **config["asr"], **override, "packing": packing}


def asr_result_settings(asr: Mapping[str, Any]) -> dict[str, Any]:
    """Of a corpus's resolved Whisper settings (:func:`corpus_asr`), those that decide what text comes out: the
    :data:`ASR_RESULT_KEYS`, and ``packing`` when it is on (a packed utterance's text may depend on its neighbours in
    the window). Packing off adds nothing, so the text stores of unpacked transcripts keep the versions they had
    before packing existed."""
    from serflow.asr.packing import packing_params  # pure Python, no model: cheap at parse time

    result = {k: asr[k] for k in ASR_RESULT_KEYS}
    packing = packing_params(asr.get("packing"))
    if packing["enabled"]:
        result["packing"] = packing
    return result


def check_asr(settings: Mapping[str, Any], where: str = "asr") -> None:
    """Refuse a language other than English for an English-only model (``*.en``): it would decode English anyway."""
    model, language = str(settings["model"]), settings.get("language")
    if model.endswith(".en") and language not in (None, "en"):
        raise ValueError(
            f"config key {where}.language = {language!r}: {model} is an English-only model (it decodes English "
            f"whatever the language); use a multilingual model (base, small, ...) or language en"
        )


def asr_label(config: Mapping[str, Any], corpus: str) -> str:
    """``{backend}-{model}`` of the corpus's Whisper: the name of its ``data/{corpus}/asr/`` outputs."""
    asr = corpus_asr(config, corpus)
    return f"{asr['backend']}-{asr['model']}"


def corpus_text_source(config: Mapping[str, Any], corpus: str) -> str:
    """``gold`` or ``asr``: ``corpora.<corpus>.text_source``, else the global ``text_source`` (default gold)."""
    source = config["corpora"][corpus].get("text_source") or config.get("text_source") or "gold"
    if source not in TEXT_SOURCES:
        raise ValueError(f"text source of corpus {corpus} is {source!r}: must be gold or asr")
    return source


def random_split_settings(folds: Mapping[str, Any] | None) -> dict[str, Any]:
    """``folds.random_split`` with its defaults (train 0.7, valid 0.15, seed 42), checked: shares that leave a test
    share (train + valid < 1)."""
    settings = {**RANDOM_SPLIT_DEFAULTS, **((folds or {}).get("random_split") or {})}
    train, valid = float(settings["train"]), float(settings["valid"])
    if not (0 < train < 1 and 0 < valid < 1 and train + valid < 1):
        raise ValueError(
            f"config key folds.random_split: train ({train}) and valid ({valid}) must be shares in (0, 1) that leave "
            f"a test share (train + valid < 1)"
        )
    return {"train": train, "valid": valid, "seed": int(settings["seed"])}
