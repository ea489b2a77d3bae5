"""Checks of the training config made when the workflow is parsed, before any job runs.

A misspelt model, family or hyperparameter would otherwise surface hours later, in a training job (or
never, if a default silently took its place). :func:`check_training_config` raises ``ValueError`` with the
config key and the valid choices; ``rules/train.smk`` turns it into a ``WorkflowError``. It imports the
model registry (no torch) and builds each configured model once on the meta device (torch, about 3 s):
only in the main ``snakemake`` process, not in each cluster job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serflow.train.config import TrainSettings, check_hparams, family_settings, merge_train_config, model_hparams

PLACEHOLDER_DIM = 8  # feature dims at parse time, before the stores exist
FIXED_DIMS = {"waveform": 1}  # stores whose width is known before they exist (the signal itself: one channel)


def corpus_settings(config: Mapping[str, Any], corpus: str, model: str | None = None) -> TrainSettings:
    """The merged, checked ``train`` settings of one corpus, or of one model on it (its family's settings merged
    in: :func:`~serflow.train.config.merge_train_config`); errors name the config keys."""
    family = None
    if model is not None:
        from serflow.models import get_spec

        family = get_spec(model).family
    try:
        return TrainSettings.from_config(merge_train_config(config, corpus, family))
    except (ValueError, TypeError) as exc:
        where = f"models.{family}.train, corpora.{corpus}.train and .families.{family}" if family else ""
        raise ValueError(f"train (with {where or f'corpora.{corpus}.train'} over it): {exc}") from None


def check_training_config(config: Mapping[str, Any], build_models: bool = True) -> dict[str, TrainSettings]:
    """Check ``train``, ``corpora.*.train`` and ``models``; returns the settings per corpus.

    ``build_models`` also builds every configured model on the meta device (imports torch, ~3 s): the
    workflow does it once, in its main process, not again in each cluster job.
    """
    from serflow.models import MODELS, get_spec

    settings = {corpus: corpus_settings(config, corpus) for corpus in config["corpora"]}
    protocols = config.get("folds", {}).get("protocols", [])
    for corpus, s in settings.items():
        for name in s.models:
            try:
                get_spec(name)
            except ValueError as exc:
                raise ValueError(f"train.models (corpus {corpus}): {exc}") from None
            for protocol in corpus_settings(config, corpus, name).all_protocols():
                if protocols and protocol not in protocols:
                    raise ValueError(
                        f"model {name} on corpus {corpus} is trained with protocol {protocol!r}, which is not one of "
                        f"folds.protocols {protocols}"
                    )
    families = sorted({spec.family for spec in MODELS.values()})
    models_config = config.get("models") or {}
    for family in models_config:
        if family not in families:
            raise ValueError(
                f"models.{family}: no registered model is of family {family!r}; known: {', '.join(families)}"
            )
    builds = {(name, len(config["corpora"][corpus]["labels"])) for corpus, s in settings.items() for name in s.models}
    for name, n_classes in sorted(builds) if build_models else ():
        spec = get_spec(name)
        dry_build(spec, n_classes, models_config.get(spec.family))
    return settings


def dry_build(spec: Any, n_classes: int, section: Mapping[str, Any] | None) -> None:
    """Build the model on the ``meta`` device (no memory, no compute) to catch bad hyperparameters now.

    Builders taking ``**kwargs`` cannot be checked by signature alone; building them is the only general
    check. The stores do not exist yet, so the feature dims the trainer will pass (``audio_dim``,
    ``text_dim``: :func:`~serflow.train.config.dim_hparams`) get a placeholder.
    """
    import torch

    try:
        configured, _ = family_settings(section)
        check_hparams(spec.name, spec.builder(), configured)
        hparams, _ = model_hparams(configured, {f: FIXED_DIMS.get(f, PLACEHOLDER_DIM) for f in spec.features})
        with torch.device("meta"):
            spec.create(n_classes, **hparams)
    except Exception as exc:  # torch raises RuntimeError for e.g. a negative size: one line, not a traceback
        raise ValueError(
            f"models.{spec.family}: model {spec.name!r} cannot be built from this section: {type(exc).__name__}: {exc}"
        ) from None
