"""The catalogue of feature stores, and :class:`Plan`, the description of one store that a job builds.

Stores (``kind`` in :func:`kind_of`):

* ``acoustic`` (``mfcc39`` ``gban52`` ``logmel64`` ``mfcc120`` ``waveform``): frames per utterance, one job per
  shard of utterances;
* ``transformer`` (``bert``, ``roberta``): one row per aligned word, and their ``*_utt`` companion stores with one
  mean-pooled row per utterance (same version, written by the same jobs);
* ``glove``: one row per aligned word (one job; lookups are vectorised);
* ``word_ids``: one row per aligned word, the same rows as ``glove``: the word's id ``[N, 1]`` in the corpus-wide
  table of lower-cased word types (one job, table ``vocabulary``);
* ``bert_tokens``: per utterance the configured BERT's WordPiece ids ``[L, 1]``, ``[CLS] ... [SEP]`` (one job);
* ``spans_{acoustic}``: one row per phone, ``word_index, frame_start, frame_end`` over that acoustic store's frames
  (one job), plus the word and phone tables WISE's hierarchy needs.

The planner (:mod:`serflow.features.plan`, parse time) and the jobs (:mod:`serflow.features.jobs`) share this
module; it holds no planning logic, so changing the planner does not change any store's code identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from serflow.features.text.choice import TRANSFORMERS
from serflow.shards.version import feature_version

ACOUSTIC = ("mfcc39", "gban52", "logmel64", "mfcc120", "waveform")
SPANS_PREFIX = "spans_"
WORD_IDS = "word_ids"
BERT_TOKENS = "bert_tokens"
TOKEN_STORES = (WORD_IDS, BERT_TOKENS)  # integer ids as float32 [rows, 1]; each store is its own kind
UTT_SUFFIX = "_utt"


def feature_names(features_config: Mapping[str, Any]) -> list[str]:
    """Every store the ``features`` config section defines, in a stable order."""
    names = [a for a in ACOUSTIC if a in features_config["acoustic"]]
    names += ["glove", WORD_IDS] + [n for t in TRANSFORMERS for n in (t, t + UTT_SUFFIX)] + [BERT_TOKENS]
    names += [SPANS_PREFIX + a for a in features_config.get("spans", ["mfcc39"])]
    return names


def kind_of(feature: str) -> str:
    """``acoustic`` | ``glove`` | ``word_ids`` | ``bert_tokens`` | ``transformer`` | ``spans``, or an error listing
    the known stores."""
    if feature in ACOUSTIC:
        return "acoustic"
    if feature == "glove":
        return "glove"
    if feature in TOKEN_STORES:
        return feature
    if feature.removesuffix(UTT_SUFFIX) in TRANSFORMERS:
        return "transformer"
    if feature.startswith(SPANS_PREFIX) and feature.removeprefix(SPANS_PREFIX) in ACOUSTIC:
        return "spans"
    known = [*ACOUSTIC, "glove", *TRANSFORMERS, *(t + UTT_SUFFIX for t in TRANSFORMERS), *TOKEN_STORES]
    raise ValueError(f"unknown feature {feature!r}; known: {', '.join(known)}, spans_<acoustic>")


def is_sharded(feature: str) -> bool:
    """Whether the store is written by one job per shard (then finalized), or whole by one job."""
    return kind_of(feature) in ("acoustic", "transformer")


@dataclass(frozen=True)
class Plan:
    """The parse-time description of one store: enough to name it and, in the job, to build it.

    ``code`` is the hash of the code that writes the store (its job scripts, the serflow modules they run and,
    for an acoustic store, its extractor's module: :func:`serflow.features.plan.store_code`); it is part of the
    version, so changing that code names a new store folder.
    """

    corpus: str
    feature: str
    kind: str
    params: dict[str, Any]
    extractor: str
    code: str
    inputs: dict[str, str]
    version_of: str | None = None  # a companion store (bert_utt) shares the version of the one it is written with
    code_entries: tuple[str, ...] = ()  # what `code` was computed from (serflow.provenance.code_hash arguments)
    code_scripts: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return feature_version(self.version_of or self.feature, self.params, self.code, self.inputs)

    @property
    def directory(self) -> str:
        return f"features/{self.corpus}/{self.feature}/{self.version}"

    def spec(self) -> Any:
        """The :class:`~serflow.shards.FeatureSpec` that ``finalize`` checks the folder name against."""
        from serflow.shards.writer import FeatureSpec

        return FeatureSpec(
            self.feature, self.params, self.extractor, self.code, self.inputs, version_of=self.version_of
        )

    def provenance(self) -> dict[str, Any]:
        """What wrote this store, as recorded in its shard records and manifest: the code (files and hashes, git
        checkout) and the CPU (floating-point results can depend on its vector instructions)."""
        from serflow.provenance import machine, provenance

        return {"code": self.code, **provenance(self.code_entries, self.code_scripts), "machine": machine()}

    @classmethod
    def from_params(cls, values: Mapping[str, Any]) -> Plan:
        """A plan from its ``dataclasses.asdict`` form (how the workflow passes it to a job)."""
        return cls(
            **{**values, "code_entries": tuple(values["code_entries"]), "code_scripts": tuple(values["code_scripts"])}
        )
