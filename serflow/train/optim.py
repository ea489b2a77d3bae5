"""Optimisers and learning-rate schedules of the seed papers, built from a family's ``optim`` settings.

:func:`build_optimizer` gives Adam (torch's; or, with ``bias_correction: false``, the original BERT optimiser's
update without bias correction, :class:`AdamNoBiasCorrection`) or SGD with (Nesterov) momentum, over the model's
parameter groups when it has ``parameter_groups()`` and ``encoder_lr`` is set. :class:`Schedule` steps the
learning rate per optimizer step (Keras decay, linear warm-up and decay) or per epoch on the validation loss
(reduce on plateau). See :class:`serflow.train.config.OptimSettings` for the settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from serflow.train.config import OptimSettings


class AdamNoBiasCorrection(torch.optim.Optimizer):
    """Adam without bias correction, the update of BERT's original optimiser (weight decay added to the gradient,
    as torch's Adam does): ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``p -= lr m / (sqrt(v) + eps)``."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if not group["weight_decay"] else p.grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                    state["v"] = torch.zeros_like(p)
                state["m"].mul_(b1).add_(grad, alpha=1 - b1)
                state["v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
                p.addcdiv_(state["m"], state["v"].sqrt().add_(group["eps"]), value=-group["lr"])
        return loss


def parameter_groups(model: nn.Module, optim: OptimSettings) -> list[dict[str, Any]]:
    """The model's trainable parameters, with a pretrained encoder at ``encoder_lr`` where both exist."""
    groups = getattr(model, "parameter_groups", None)
    if optim.encoder_lr is None or groups is None:
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    named = groups()
    unknown = sorted(set(named) - {"encoder", "new"})
    if unknown:
        raise ValueError(f"{type(model).__name__}.parameter_groups() returned {unknown}; expected encoder and new")
    return [
        {"params": list(named.get("encoder", [])), "lr": optim.encoder_lr},
        {"params": list(named.get("new", []))},
    ]


def build_optimizer(model: nn.Module, optim: OptimSettings) -> torch.optim.Optimizer:
    groups = parameter_groups(model, optim)
    if optim.name == "sgd":
        return torch.optim.SGD(
            groups, lr=optim.lr, momentum=optim.momentum, nesterov=optim.nesterov, weight_decay=optim.weight_decay
        )
    if not optim.bias_correction:
        return AdamNoBiasCorrection(groups, optim.lr, optim.betas, optim.eps, optim.weight_decay)
    return torch.optim.Adam(groups, lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay)


def keras_decay(lr_decay: float) -> Callable[[int], float]:
    """The lr multiplier after ``step`` optimizer steps: ``1 / (1 + lr_decay * step)``."""
    return lambda step: 1.0 / (1.0 + lr_decay * step)


def linear_warmup(warmup: int, total: int | None) -> Callable[[int], float]:
    """0 -> 1 over ``warmup`` steps, then linear to 0 at ``total`` (constant 1 when ``total`` is None)."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return step / warmup
        if total is None:
            return 1.0
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


class Schedule:
    """The learning-rate schedule of one run: :meth:`after_step` per optimizer step, :meth:`after_epoch` per epoch."""

    def __init__(self, optimizer: torch.optim.Optimizer, optim: OptimSettings) -> None:
        self.optimizer, self.kind = optimizer, optim.schedule
        self._step: torch.optim.lr_scheduler.LRScheduler | None = None
        self._plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        if optim.schedule == "keras_decay":
            self._step = torch.optim.lr_scheduler.LambdaLR(optimizer, keras_decay(optim.lr_decay))
        elif optim.schedule == "linear_warmup":
            self._step = torch.optim.lr_scheduler.LambdaLR(
                optimizer, linear_warmup(optim.warmup_steps, optim.total_steps)
            )
        elif optim.schedule == "plateau":
            self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="min", factor=optim.plateau_factor, patience=optim.plateau_patience
            )

    def after_step(self) -> None:
        if self._step is not None:
            self._step.step()

    def after_epoch(self, val_loss: float) -> None:
        if self._plateau is not None:
            self._plateau.step(val_loss)

    @property
    def lr(self) -> float:
        """The learning rate of the last parameter group (the new layers' where there are two)."""
        return float(self.optimizer.param_groups[-1]["lr"])
