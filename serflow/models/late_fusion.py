"""The late-fusion baseline of the CNN14 paper (LF): the average of two models' outputs. It has no parameters and
trains nothing: the workflow's ``late_fusion`` rule averages the fused models' test predictions fold by fold
(:mod:`serflow.train.late_fusion`). :class:`LateFusion` is the same computation as a module, so that ``serflow
models describe lf`` and anything that builds models by name see what it is.
"""

from __future__ import annotations

from typing import Any

import torch

from serflow.models.base import SerModel


class LateFusion(SerModel):
    """``forward({"outputs": [M, B, K]})`` -> the mean over the M models' outputs, ``[B, K]``."""

    def __init__(self, n_outputs: int) -> None:
        super().__init__()
        self.n_outputs = n_outputs

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return batch["outputs"].mean(dim=0)

    def settings(self) -> dict[str, Any]:
        return {"fusion": "mean of the component models' outputs", "trainable": False}


def build(n_outputs: int, **hparams: Any) -> LateFusion:
    if hparams:
        raise TypeError(f"late fusion has no hyperparameters, got {sorted(hparams)}")
    return LateFusion(n_outputs)
