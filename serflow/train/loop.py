"""The training loop every model shares: seeded, early-stopped, and selected on the validation split only.

Per seed: seed every generator, build the model, then for at most ``epochs`` epochs shuffle the training
utterances (a generator of the seed's own), train with the family's optimiser and learning-rate schedule
(:mod:`serflow.train.optim`; optional gradient clipping) on the task loss (cross-entropy, class-weighted with
``class_weights: balanced``) plus whatever the model adds (``training_loss``, e.g. WavFusion's margin loss), and
score the validation split. The weights of the epoch with the best validation score (``selection``: UA, WA or
loss; ties: the other of score and loss, then the earlier epoch) are kept; training stops after ``patience``
epochs without a better one. The test split is not touched here at all: the caller scores it once, with the
selected weights, so the test fold can never influence which epoch is kept.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from serflow.train.config import OptimSettings, TrainSettings
from serflow.train.data import Split
from serflow.train.device import Runtime, seed_everything
from serflow.train.metrics import classification_metrics, confusion_matrix
from serflow.train.optim import Schedule, build_optimizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    """One line of the training curves (``history.tsv``)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_wa: float
    val_ua: float
    lr: float


@dataclass
class FitResult:
    """What one seed's training produced; ``state`` holds the selected (best-validation) weights on CPU."""

    seed: int
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[EpochRecord]
    valid: dict[str, Any]
    state: dict[str, torch.Tensor] = field(repr=False)

    def history_rows(self) -> list[dict[str, Any]]:
        return [{"seed": self.seed, **asdict(r), "best": r.epoch == self.best_epoch} for r in self.history]


class Selector:
    """Model selection and early stopping on validation scores: ``selection`` (UA by default, or WA) first, then
    lower loss; or (``selection="loss"``) lower loss first, then UA."""

    def __init__(self, patience: int | None, selection: str = "ua") -> None:
        self.patience = patience
        self.selection = selection
        self.best_epoch = 0
        self.best: tuple[float, float] = (-math.inf, -math.inf)  # larger is better

    def update(self, epoch: int, val_ua: float, val_loss: float, val_wa: float | None = None) -> bool:
        """Record an epoch's scores; True when it is the new best (strictly better, so ties keep the earlier)."""
        if self.selection == "loss":
            score = (-val_loss, val_ua)
        else:
            score = (val_wa if self.selection == "wa" and val_wa is not None else val_ua, -val_loss)
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            return True
        return False

    def should_stop(self, epoch: int) -> bool:
        return self.patience is not None and epoch - self.best_epoch >= self.patience


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Balanced class weights, ``n / (classes * count)`` (scikit-learn's ``balanced``), over the classes present
    in ``y``; a class absent from the training split gets weight 1 (it contributes no term anyway)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def fit(
    make_model: Callable[[], nn.Module],
    train: Split,
    valid: Split,
    classes: Sequence[str],
    *,
    settings: TrainSettings,
    optim: OptimSettings,
    runtime: Runtime,
    seed: int,
    progress: bool = False,
    desc: str = "",
) -> tuple[nn.Module, FitResult]:
    """Train one seed; returns the model holding the selected weights, and the record of the run."""
    if not len(train):
        raise ValueError("no training utterances left (all dropped?): nothing to train on")
    if not len(valid):
        raise ValueError("no validation utterances: model selection needs the validation split")
    seed_everything(seed)
    model = make_model().to(runtime.device)
    optimizer = build_optimizer(model, optim)
    schedule = Schedule(optimizer, optim)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.uses_scaler)
    order = torch.Generator().manual_seed(seed)
    weight = None
    if settings.class_weights == "balanced":
        weight = torch.from_numpy(class_weights(train.y, len(classes))).to(runtime.device)
    criterion = functools.partial(_cross_entropy_loss, weight=weight)
    selector, history, best_state, stopped = (
        Selector(settings.patience, settings.selection),
        [],
        _cpu_state(model),
        False,
    )
    for epoch in _epochs(settings.epochs, progress, desc):
        loss = _train_epoch(
            model, train, settings.batch_size, optimizer, schedule, scaler, optim, runtime, order, criterion
        )
        logits = predict(model, valid.samples, settings.batch_size, runtime)
        record = _epoch_record(epoch, loss, logits, valid.y, classes, schedule.lr)
        history.append(record)
        schedule.after_epoch(record.val_loss)
        if selector.update(epoch, record.val_ua, record.val_loss, record.val_wa):
            best_state = _cpu_state(model)
        log.info(
            "%s epoch %d: train loss %.4f, val loss %.4f, val WA %.4f, val UA %.4f%s",
            desc, epoch, record.train_loss, record.val_loss, record.val_wa, record.val_ua,
            " (best)" if selector.best_epoch == epoch else "",
        )  # fmt: skip
        if selector.should_stop(epoch):
            stopped = epoch < settings.epochs
            break
    model.load_state_dict(best_state)
    best = history[selector.best_epoch - 1]
    valid_metrics = scores(predict(model, valid.samples, settings.batch_size, runtime), valid.y, classes)
    result = FitResult(seed, best.epoch, len(history), stopped, history, valid_metrics, best_state)
    return model, result


def predict(
    model: nn.Module, samples: Sequence[dict[str, np.ndarray]], batch_size: int, runtime: Runtime
) -> np.ndarray:
    """float32 logits ``[N, n_classes]`` in the order of ``samples`` (eval mode, no gradients)."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = _to_device(model.collate(list(samples[start : start + batch_size])), runtime.device)
            with _autocast(runtime):
                out.append(model(batch).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def scores(logits: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Classification metrics (see :mod:`serflow.train.metrics`) plus the mean cross-entropy loss."""
    metrics = _metrics(logits, y, classes)
    metrics["loss"] = _cross_entropy(logits, y)
    return metrics


# --- internals ------------------------------------------------------------------------------------------


def _epochs(epochs: int, progress: bool, desc: str) -> Iterator[int]:
    """Epoch numbers from 1; a progress bar when the job runs in a terminal."""
    if not progress:
        yield from range(1, epochs + 1)
        return
    from tqdm.auto import tqdm

    yield from tqdm(range(1, epochs + 1), desc=desc or "epochs", unit="epoch", leave=False)


def _train_epoch(
    model: nn.Module,
    train: Split,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    scaler: torch.amp.GradScaler,
    optim: OptimSettings,
    runtime: Runtime,
    order: torch.Generator,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> float:
    """One pass over the shuffled training utterances; returns the mean training loss."""
    model.train()
    y = torch.from_numpy(train.y)
    permutation = torch.randperm(len(train), generator=order).tolist()
    total = 0.0
    for start in range(0, len(permutation), batch_size):
        idx = permutation[start : start + batch_size]
        batch = _to_device(model.collate([train.samples[i] for i in idx]), runtime.device)
        target = y[idx].to(runtime.device)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(runtime):
            loss, _ = model.training_loss(batch, target, criterion)
        scaler.scale(loss).backward()
        if optim.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.after_step()
        total += float(loss.detach()) * len(idx)
    return total / len(permutation)


def _epoch_record(
    epoch: int, train_loss: float, logits: np.ndarray, y: np.ndarray, classes: Sequence[str], lr: float
) -> EpochRecord:
    m = scores(logits, y, classes)
    return EpochRecord(epoch, train_loss, m["loss"], m["wa"], m["ua"], float(lr))


def _metrics(logits: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    return classification_metrics(confusion_matrix(y, logits.argmax(axis=1), len(classes)), classes)


def _cross_entropy_loss(outputs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """The categorical task's loss (in float32 also under autocast), class-weighted where ``weight`` is given."""
    return F.cross_entropy(outputs.float(), target, weight=weight)


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    return float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y)))


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


def _autocast(runtime: Runtime) -> contextlib.AbstractContextManager[Any]:
    if runtime.amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=runtime.device.type, dtype=runtime.amp_dtype)
