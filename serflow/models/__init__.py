"""Models of the reproduced papers, selectable by name.

:mod:`serflow.models.registry` lists every model (name, the stores it reads, family, variant flags) without
importing torch; :mod:`serflow.models.base` is the interface each model implements; one file per model
(``wise.py``). ``SerModel`` is loaded on first access, so looking up names stays cheap.
"""

from typing import Any

from serflow.models.registry import MODELS, ModelSpec, get_spec, register

__all__ = ["MODELS", "ModelSpec", "SerModel", "get_spec", "register"]


def __getattr__(name: str) -> Any:
    if name == "SerModel":
        from serflow.models.base import SerModel

        return SerModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
