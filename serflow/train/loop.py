"""The training loop every model shares: seeded, early-stopped, and selected on the validation split only.

Per seed: seed every generator, build the model, then for at most ``epochs`` epochs shuffle the training
utterances (a generator of the seed's own), train with Adam + Keras-style lr decay (+ optional gradient
clipping), and score the validation split. The weights of the epoch with the best validation UA (ties:
lower validation loss, then the earlier epoch) are kept; training stops after ``patience`` epochs without
a better one. The test split is not touched here at all: the caller scores it once, with the selected
weights, so the test fold can never influence which epoch is kept.
"""

from __future__ import annotations

import contextlib
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
    """Model selection and early stopping on validation scores (UA first, then lower loss)."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best_epoch = 0
        self.best: tuple[float, float] = (-math.inf, -math.inf)  # (UA, -loss): larger is better

    def update(self, epoch: int, val_ua: float, val_loss: float) -> bool:
        """Record an epoch's scores; True when it is the new best (strictly better, so ties keep the earlier)."""
        score = (val_ua, -val_loss)
        if score > self.best:
            self.best, self.best_epoch = score, epoch
            return True
        return False

    def should_stop(self, epoch: int) -> bool:
        return self.patience is not None and epoch - self.best_epoch >= self.patience


def keras_decay(lr_decay: float) -> Callable[[int], float]:
    """The lr multiplier after ``step`` optimizer steps: ``1 / (1 + lr_decay * step)``."""
    return lambda step: 1.0 / (1.0 + lr_decay * step)


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
    optimizer = torch.optim.Adam(model.parameters(), lr=optim.lr, weight_decay=optim.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, keras_decay(optim.lr_decay))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.uses_scaler)
    order = torch.Generator().manual_seed(seed)
    selector, history, best_state, stopped = Selector(settings.patience), [], _cpu_state(model), False
    for epoch in _epochs(settings.epochs, progress, desc):
        loss = _train_epoch(model, train, settings.batch_size, optimizer, schedule, scaler, optim, runtime, order)
        logits = predict(model, valid.samples, settings.batch_size, runtime)
        record = _epoch_record(epoch, loss, logits, valid.y, classes, schedule.get_last_lr()[0])
        history.append(record)
        if selector.update(epoch, record.val_ua, record.val_loss):
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
    schedule: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    optim: OptimSettings,
    runtime: Runtime,
    order: torch.Generator,
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
            logits = model(batch)
        loss = F.cross_entropy(logits.float(), target)
        scaler.scale(loss).backward()
        if optim.grad_clip is not None:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        total += float(loss.detach()) * len(idx)
    return total / len(permutation)


def _epoch_record(
    epoch: int, train_loss: float, logits: np.ndarray, y: np.ndarray, classes: Sequence[str], lr: float
) -> EpochRecord:
    m = scores(logits, y, classes)
    return EpochRecord(epoch, train_loss, m["loss"], m["wa"], m["ua"], float(lr))


def _metrics(logits: np.ndarray, y: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    return classification_metrics(confusion_matrix(y, logits.argmax(axis=1), len(classes)), classes)


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
