"""Training settings from the config, and how a model's hyperparameters are assembled.

Two config sections drive training (schema: ``config/schema.yaml``):

- ``train:`` is about *how* every model is trained and evaluated (protocol, seeds, epochs, early stopping,
  batch size, device). A corpus may override any of it (``corpora.<name>.train``), merged key by key over
  the global section, so the demo can train fast without touching the settings of a real corpus.
- ``models:`` holds one section per model *family* (``wise`` for ``wise`` and its ablations): the
  family's hyperparameters, passed to the model's builder, plus its ``optim:`` settings. Keeping them per
  family is what lets a changed WISE hyperparameter rerun only the WISE jobs.

Feature dims are never configured: :func:`dim_hparams` measures them from the stores the model reads
and passes them as ``audio_dim`` / ``text_dim``, so a model works unchanged on GloVe-300 or on the
offline GloVe-50, on MFCC-39 or on another frame feature of the same role.

Nothing here imports torch, so the workflow can use it when it is parsed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

# Which hyperparameter a store's dims are passed as. Span tables describe structure, not features.
AUDIO_STORES = frozenset({"mfcc39", "gban52", "logmel64", "mfcc120", "waveform"})
TEXT_STORES = frozenset({"glove", "bert", "roberta", "bert_utt", "roberta_utt"})
TOKEN_STORES = frozenset({"word_ids", "bert_tokens"})  # integer ids (vocabularies are the models' business)
STRUCTURE_PREFIX = "spans_"
ROLE_HPARAM = {"audio": "audio_dim", "text": "text_dim"}

# train: keys that change how a job runs but not what it computes; they must not trigger a rerun. `threads` is not
# one of them: the CPU thread count changes the floating-point reduction order of torch's kernels, so the same
# fold trained with 1 and 2 threads gives different bytes. The job uses exactly `train.threads` (whatever
# `--cores` the run was given), records it, and a change reruns the training.
# `protocols` names further runs (one result file each); each fold job records the one protocol it ran under.
RUN_ONLY_KEYS = ("models", "tasks", "mem_mb", "runtime", "protocols", "text_sources")
CLASS_WEIGHTS = ("none", "balanced")
SELECTIONS = ("ua", "wa", "loss")
TRAIN_SCRIPT = "train.py"  # workflow_scripts/: the train job's entry point, part of its code identity


def metrics_path(results: str | Path) -> str:
    """Where the compact numbers of ``results/{corpus}_{model}.json`` go: ``results/metrics/{corpus}_{model}.json``
    (``compact_metrics`` in :mod:`serflow.train.run`; DVC's metrics file)."""
    path = Path(results)
    return (path.parent / "metrics" / path.name).as_posix()


def fold_code(spec: Any) -> tuple[list[str], list[str], dict[str, Any]]:
    """What a fold job's code identity is computed from (:func:`serflow.provenance.code_hash` arguments): the
    train script and what it imports, the model's own module, and the model's registry entry as data."""
    return [spec.module], [TRAIN_SCRIPT], spec.catalogue_entry()


OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "keras_decay", "linear_warmup", "plateau")


@dataclass(frozen=True)
class OptimSettings:
    """A family's optimiser and learning-rate schedule (``models.<family>.optim``), each the paper's where it says.

    ``name``: ``adam`` (L2 ``weight_decay`` added to the gradient as torch's Adam does, not AdamW; ``betas``,
    ``eps``; ``bias_correction: false`` is the original BERT optimiser, which the CNN14 paper's BERT used) or
    ``sgd`` (``momentum``, ``nesterov``). ``schedule``:

    - ``constant``;
    - ``keras_decay``: ``lr / (1 + lr_decay * step)``, ``step`` counting optimizer steps (Keras's legacy
      ``decay``, which the WISE paper's "decay rate" refers to);
    - ``linear_warmup``: linear from 0 to ``lr`` over ``warmup_steps``, then linear to 0 at ``total_steps``
      (constant after the warm-up when ``total_steps`` is null);
    - ``plateau``: ``lr *= plateau_factor`` after ``plateau_patience`` epochs without a lower validation loss
      (PyTorch's ReduceLROnPlateau, as the MultiModal-ER code).

    ``grad_clip`` clips the global gradient norm. ``encoder_lr`` gives a model's pretrained encoder its own
    learning rate (models with ``parameter_groups()``, e.g. WavFusion's wav2vec 2.0); null: ``lr`` for all.
    """

    name: str = "adam"
    lr: float = 1.0e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1.0e-8
    bias_correction: bool = True
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    lr_decay: float = 0.0
    warmup_steps: int = 0
    total_steps: int | None = None
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    grad_clip: float | None = None  # max global gradient norm; None = no clipping
    encoder_lr: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr_decay and self.schedule != "keras_decay":
            raise ValueError("optim.lr_decay is the keras_decay schedule's: set schedule: keras_decay with it")
        if self.nesterov and (self.name != "sgd" or self.momentum <= 0):
            raise ValueError("optim.nesterov needs name: sgd and a momentum > 0")
        if self.schedule == "linear_warmup" and self.total_steps is not None and self.total_steps <= self.warmup_steps:
            raise ValueError("optim.total_steps must be larger than optim.warmup_steps")

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> OptimSettings:
        section = dict(section or {})
        unknown = sorted(set(section) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ValueError(f"unknown optim settings {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        if "betas" in section:
            section["betas"] = tuple(section["betas"])
        if section.get("lr_decay") and "schedule" not in section:  # the WISE config's short form
            section["schedule"] = "keras_decay"
        return cls(**section)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["betas"] = list(self.betas)
        return values


TARGET_SCALINGS = ("standardise", "none")
FEATURE_SCALINGS = ("none", "global", "speaker")  # frame-level acoustic stores: serflow/train/standardise.py


@dataclass(frozen=True)
class TrainSettings:
    """The merged ``train:`` section for one corpus (defaults match ``config/schema.yaml``)."""

    protocol: str = "loso_session"
    seeds: tuple[int, ...] = (0,)
    epochs: int = 50
    patience: int | None = 10  # epochs without a better validation UA before stopping; None = never
    batch_size: int = 32
    device: str = "auto"  # auto = CUDA when present, else CPU
    amp: bool = True  # mixed precision, on CUDA only
    threads: int = 1  # CPU threads of the computation (changes the bytes; see RUN_ONLY_KEYS)
    mem_mb: int = 8000
    runtime: int = 240
    models: tuple[str, ...] = field(default_factory=tuple)
    tasks: tuple[str, ...] = ("categorical",)  # which runs a model gets: categorical, vad, valence, arousal, dominance
    class_weights: str = "none"  # none | balanced: each class weighted n / (classes * count) in the training loss
    selection: str = "ua"  # the validation score that picks the kept epoch and stops early: ua | wa | loss
    validation_fraction: float | None = None  # redraw a fold's validation split as this share of its training part
    target_scaling: str = "standardise"  # regression targets: standardise (train split's mean / std) | none
    # every protocol the model is trained and evaluated under, where set (replaces `protocol`, which becomes its
    # first: the one whose results keep the plain name results/{corpus}_{run}.json; the others' carry ~{protocol})
    protocols: tuple[str, ...] = ()
    # length bucketing for raw-audio models (a model's sample_length(): WavFusion's waveform samples): at most this
    # many padded samples per batch, batch_size utterances at most; None = batch_size utterances per batch
    max_batch_length: int | None = None
    # standardise frame-level acoustic stores per dimension: none | global (training split's statistics) | speaker
    # (each speaker's own; serflow/train/standardise.py says where a test speaker's come from)
    feature_scaling: str = "none"
    # the transcripts a model that reads text is run on: the corpus's own text_source (results/{corpus}_{run}.json)
    # and each other one listed here (results/{corpus}_{run}+{source}.json); () = the corpus's own alone
    text_sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.protocols:
            if len(set(self.protocols)) != len(self.protocols):
                raise ValueError(f"train.protocols has duplicates: {list(self.protocols)}")
            object.__setattr__(self, "protocol", self.protocols[0])
        if not self.seeds:
            raise ValueError("train.seeds is empty: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"train.seeds has duplicates: {list(self.seeds)}")
        if self.epochs < 1 or self.batch_size < 1 or self.threads < 1:
            raise ValueError("train.epochs, train.batch_size and train.threads must be at least 1")
        if self.patience is not None and self.patience < 1:
            raise ValueError("train.patience must be at least 1 (or null: no early stopping)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"train.device must be auto, cpu or cuda, got {self.device!r}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(f"train.class_weights must be one of {CLASS_WEIGHTS}, got {self.class_weights!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"train.selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.target_scaling not in TARGET_SCALINGS:
            raise ValueError(f"train.target_scaling must be one of {TARGET_SCALINGS}, got {self.target_scaling!r}")
        if self.feature_scaling not in FEATURE_SCALINGS:
            raise ValueError(f"train.feature_scaling must be one of {FEATURE_SCALINGS}, got {self.feature_scaling!r}")
        unknown_sources = sorted(set(self.text_sources) - {"gold", "asr"})
        if unknown_sources or len(set(self.text_sources)) != len(self.text_sources):
            raise ValueError(f"train.text_sources must list gold and / or asr once each, got {list(self.text_sources)}")
        if self.max_batch_length is not None and self.max_batch_length < 1:
            raise ValueError(f"train.max_batch_length must be at least 1 (or null), got {self.max_batch_length}")
        if self.validation_fraction is not None and not 0 < self.validation_fraction < 1:
            raise ValueError(f"train.validation_fraction must be in (0, 1), got {self.validation_fraction}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TrainSettings:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown train settings {unknown}; known: {sorted(known)}")
        values = dict(section)
        for key in ("seeds", "models", "tasks", "protocols", "text_sources"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    def all_protocols(self) -> tuple[str, ...]:
        """The protocols this model runs under: ``protocols``, or the one ``protocol``; the first is the main one."""
        return self.protocols or (self.protocol,)

    def for_protocol(self, protocol: str) -> TrainSettings:
        """The settings of one run under ``protocol`` (a fold job's: it records the protocol it ran under)."""
        if protocol not in self.all_protocols():
            raise ValueError(f"protocol {protocol!r} is not one of this model's {list(self.all_protocols())}")
        return replace(self, protocol=protocol, protocols=())

    def result_params(self) -> dict[str, Any]:
        """The settings that change what training computes: the workflow's rerun trigger, and what the
        checkpoints and results record. A null ``max_batch_length`` (fixed-size batches) and ``feature_scaling:
        none`` are left out, so the results of models trained before these settings existed keep their identity."""
        params = {k: v for k, v in self.as_dict().items() if k not in RUN_ONLY_KEYS}
        if params["max_batch_length"] is None:
            del params["max_batch_length"]
        if params["feature_scaling"] == "none":
            del params["feature_scaling"]
        return params


SECTION_KEYS = ("optim", "train", "stores")  # a family's sub-sections, merged key by key over models.<family>


def family_section(config: Mapping[str, Any], corpus: str, family: str) -> dict[str, Any]:
    """A family's config section on one corpus: ``models.<family>`` with ``corpora.<corpus>.families.<family>``
    merged over it (its hyperparameters and ``optim`` key by key, its ``train`` key by key): the demo's smaller
    setting of a paper-size model lives in the corpus's section, while ``models.<family>`` keeps the paper's."""
    base = dict((config.get("models") or {}).get(family) or {})
    override = dict(((config["corpora"][corpus].get("families") or {}).get(family)) or {})
    merged = {**base, **override}
    for key in SECTION_KEYS:
        if key in base or key in override:
            merged[key] = {**(base.get(key) or {}), **(override.get(key) or {})}
    return merged


def reduced_settings(config: Mapping[str, Any], corpus: str, family: str) -> dict[str, Any]:
    """The hyperparameters and optimiser settings a corpus changes for a family (``{}``: the paper's): recorded in
    every result, and the summary marks such rows as a reduced setting."""
    override = ((config["corpora"][corpus].get("families") or {}).get(family)) or {}
    return {k: v for k, v in override.items() if k != "train"}  # stores included: another front end is reduced


def merge_train_config(config: Mapping[str, Any], corpus: str, family: str | None = None) -> dict[str, Any]:
    """The ``train`` settings of ``corpus`` (and, given one, of a model ``family`` on it), merged key by key:

    ``train`` (every model, every corpus) < ``models.<family>.train`` (the family's paper: its epochs, batch size,
    class weights, validation share) < ``corpora.<corpus>.train`` (this corpus, e.g. the demo's short runs) <
    ``corpora.<corpus>.families.<family>.train`` (this family on this corpus).
    """
    merged = dict(config.get("train") or {})
    spec = config["corpora"][corpus]
    if family is not None:
        merged.update(((config.get("models") or {}).get(family) or {}).get("train") or {})
    merged.update(spec.get("train") or {})
    if family is not None:
        merged.update((((spec.get("families") or {}).get(family)) or {}).get("train") or {})
    return merged


def family_settings(section: Mapping[str, Any] | None) -> tuple[dict[str, Any], OptimSettings]:
    """A family's section of ``models:`` split into the builder's hyperparameters and the ``optim:`` settings
    (an absent section means the builder's defaults and :class:`OptimSettings`' defaults); its ``train:``
    settings are :func:`merge_train_config`'s."""
    hparams = dict(section or {})
    hparams.pop("train", None)
    hparams.pop("stores", None)  # the family's own store parameters: the workflow's business (other store versions)
    optim = OptimSettings.from_config(hparams.pop("optim", None))
    return hparams, optim


def store_role(store: str) -> str | None:
    """``audio`` or ``text`` for a feature store, None for a structure table (``spans_*``) or token ids."""
    if store.startswith(STRUCTURE_PREFIX) or store in TOKEN_STORES:
        return None
    if store in AUDIO_STORES:
        return "audio"
    if store in TEXT_STORES:
        return "text"
    raise ValueError(
        f"feature store {store!r} has no role for its dims; known: {sorted(AUDIO_STORES | TEXT_STORES)} and "
        f"{STRUCTURE_PREFIX}* (add it to serflow/train/config.py)"
    )


def dim_hparams(dims: Mapping[str, int]) -> dict[str, int]:
    """``{"audio_dim": ..., "text_dim": ...}`` from the dims of the stores a model reads.

    A model reading two stores of one role would make ``<role>_dim`` ambiguous, so that is an error
    rather than a silent pick (no model of the reproduced papers does).
    """
    out: dict[str, int] = {}
    source: dict[str, str] = {}
    for store, d in dims.items():
        role = store_role(store)
        if role is None:
            continue
        key = ROLE_HPARAM[role]
        if key in out:
            raise ValueError(f"stores {source[key]!r} and {store!r} both give {key}: a model may read one {role} store")
        out[key], source[key] = int(d), store
    return out


def model_hparams(configured: Mapping[str, Any], dims: Mapping[str, int]) -> tuple[dict[str, Any], list[str]]:
    """Configured hyperparameters with the measured dims set over them, and warnings for any overridden."""
    measured = dim_hparams(dims)
    warnings = [
        f"configured {key}={configured[key]} replaced by the stores' {value}"
        for key, value in measured.items()
        if key in configured and configured[key] != value
    ]
    return {**configured, **measured}, warnings


def accepted_hparams(build: Callable[..., Any]) -> set[str] | None:
    """The keyword arguments ``build`` accepts (after ``n_classes``), or None if it takes ``**kwargs``."""
    params = list(inspect.signature(build).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_hparams(model: str, build: Callable[..., Any], names: Iterable[str]) -> None:
    """Refuse configured hyperparameters the model's builder does not take (a typo would else be a
    TypeError hours later, in the training job); silent when the builder takes ``**kwargs``."""
    accepted = accepted_hparams(build)
    if accepted is None:
        return
    unknown = sorted(set(names) - accepted)
    if unknown:
        raise ValueError(f"model {model!r} takes no hyperparameter {unknown}; it takes: {', '.join(sorted(accepted))}")
