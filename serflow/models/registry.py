"""The registry of model names: which stored features each reads, its family and its variant flags.

The workflow needs every model's name and the stores it reads while it parses the Snakefile
(``rules/train.smk``), on every ``snakemake`` call and again in every cluster job. Importing torch for that
would cost seconds each time, so, like the lazy auto-class tables of ``transformers``, this module holds
the catalogue without importing any model: a spec names its builder by import path
(``"serflow.models.wise:build"``), and the model's module (and torch) is imported when it is built.
The model interface itself is :class:`serflow.models.base.SerModel`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """A named, selectable model: how to build it and which stored features it reads.

    ``build(n_classes, **hparams)`` returns the module; it is a callable or its ``"module:function"`` import
    path. ``fixed`` are the variant's own settings (e.g. an ablation flag), merged over the configured
    hyperparameters, so a variant is a name, not a copy. ``family`` groups variants sharing one
    configuration section (``wise_audio`` -> ``wise``).
    """

    name: str
    build: Callable[..., Any] | str
    features: tuple[str, ...]
    family: str
    description: str
    paper: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    components: tuple[str, ...] = ()  # a late fusion of these models' outputs: built by the workflow, not trained

    def builder(self) -> Callable[..., Any]:
        if callable(self.build):
            return self.build
        module, _, attr = self.build.partition(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def module(self) -> str:
        """The module that defines the model (loaded when it is built)."""
        return self.build.partition(":")[0] if isinstance(self.build, str) else self.build.__module__

    def catalogue_entry(self) -> dict[str, Any]:
        """This spec as data: part of a training job's code identity instead of the whole registry (a catalogue,
        see serflow.provenance), so registering another model never reruns this one."""
        build = self.build if isinstance(self.build, str) else f"{self.module}:{self.build.__qualname__}"
        return {
            "name": self.name,
            "build": build,
            "features": list(self.features),
            "family": self.family,
            "fixed": dict(self.fixed),
            "components": list(self.components),
        }

    def create(self, n_classes: int, **hparams: Any) -> Any:
        """The model (a :class:`~serflow.models.base.SerModel`) for ``n_classes`` classes."""
        return self.builder()(n_classes, **{**hparams, **self.fixed})


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The registered model called ``name``; an unknown name is an error listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, MODELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown model {name!r}; {hint}known models: {', '.join(sorted(MODELS))}") from None


def reads_transcripts(name: str) -> bool:
    """Whether model ``name``'s numbers depend on the transcripts: it reads a store made from the aligned words
    (word vectors, tokens, WISE's word and phone spans: every store but the acoustic frames), or, for a late fusion,
    one of its components does. Such a model has a run per text source (``train.text_sources``)."""
    from serflow.features.stores import kind_of

    spec = get_spec(name)
    if spec.components:
        return any(reads_transcripts(component) for component in spec.components)
    return any(kind_of(store) != "acoustic" for store in spec.features)


# --------------------------------------------------------------------------------- the catalogue
# Every model of the seed papers (serflow/models/catalog.py: data only), registered by name.


def _register_catalogue() -> None:
    from serflow.models.catalog import FAMILIES

    for family in FAMILIES:
        for name, variant in family.variants.items():
            register(
                ModelSpec(
                    name=name,
                    build=family.build,
                    features=variant.features,
                    family=family.name,
                    description=variant.description,
                    paper=family.paper,
                    fixed=dict(variant.fixed),
                    components=variant.components,
                )
            )


_register_catalogue()
