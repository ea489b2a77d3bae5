"""Models of the reproduced papers; importing this package registers each under its name.

See :mod:`serflow.models.base` for the interface and :func:`get_spec` to look one up by name.
"""

from serflow.models import wise  # noqa: F401  (registers wise and its ablations)
from serflow.models.base import MODELS, ModelSpec, SerModel, get_spec, register

__all__ = ["MODELS", "ModelSpec", "SerModel", "get_spec", "register"]
