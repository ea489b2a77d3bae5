"""The training loop every model shares: seeded, early-stopped, and selected on the validation split only.

Per seed: seed every generator, build the model, then for at most ``epochs`` epochs shuffle the training
utterances (a generator of the seed's own), train with the family's optimiser and learning-rate schedule
(:mod:`serflow.train.optim`; optional gradient clipping) on the task loss (cross-entropy, class-weighted with
``class_weights: balanced``) plus whatever the model adds (``training_loss``, e.g. WavFusion's margin loss), and
score the validation split. The weights of the epoch with the best validation score (``selection``: UA, WA or
loss; ties: the other of score and loss, then the earlier epoch) are kept; training stops after ``patience``
epochs without a better one. The test split is not touched here at all: the caller scores it once, with the
selected weights, so the test fold can never influence which epoch is kept.

Batches hold ``batch_size`` utterances, or, with ``max_batch_length`` (raw-audio models with a
``sample_length()``, i.e. WavFusion), at most that many padded samples (:mod:`serflow.train.buckets`: length
bucketing, seeded by ``(seed, epoch)``), so a batch's memory is bounded whatever the utterances' lengths.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from serflow.train.buckets import inference_batches, length_batches
from serflow.train.config import OptimSettings, TrainSettings
from serflow.train.data import Split
from serflow.train.device import Runtime, seed_everything
from serflow.train.metrics import classification_metrics, confusion_matrix
from serflow.train.optim import Schedule, build_optimizer
from serflow.train.tasks import Task, make_task, regression_metrics, summary_scores

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochRecord:
    """One line of the training curves (``history.tsv``): losses, the validation scores (``val_wa``, ``val_ua``,
    ``val_macro_f1`` for the categorical task; ``val_ccc`` and per dimension for a regression) and the lr."""

    epoch: int
    train_loss: float
    val_loss: float
    val: dict[str, float]
    lr: float

    def row(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            **{f"val_{k}": v for k, v in self.val.items()},
            "lr": self.lr,
        }


class TargetScale:
    """The affine map between a regression's targets and what the model is trained to output: ``(y - mean) / std``
    per dimension, from the training split only (``train.target_scaling: standardise``; the CNN14 paper does not
    say whether it normalised its targets). The head then starts near the targets' mean on their scale, whatever
    the corpus's scale. Outputs are mapped back (:meth:`decode`) before anything is scored or written, so every
    metric and prediction is in the corpus's units; the losses in ``history.tsv`` are on the standardised scale
    (what training minimises)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, np.float32)
        self.std = np.where(np.asarray(std, np.float32) > 0, np.asarray(std, np.float32), 1.0).astype(np.float32)

    @classmethod
    def fit(cls, y: np.ndarray) -> TargetScale:
        y = np.asarray(y, np.float64)
        return cls(y.mean(axis=0), y.std(axis=0))

    def encode(self, y: np.ndarray) -> np.ndarray:
        return ((np.asarray(y, np.float32) - self.mean) / self.std).astype(np.float32)

    def decode(self, outputs: np.ndarray) -> np.ndarray:
        return (np.asarray(outputs, np.float32) * self.std + self.mean).astype(np.float32)

    def as_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}


@dataclass
class FitResult:
    """What one seed's training produced; ``state`` holds the selected (best-validation) weights on CPU;
    ``target_scale`` the regression targets' scaling (None: the model outputs targets as they are)."""

    seed: int
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[EpochRecord]
    valid: dict[str, Any]
    state: dict[str, torch.Tensor] = field(repr=False)
    target_scale: TargetScale | None = None

    def history_rows(self) -> list[dict[str, Any]]:
        return [{"seed": self.seed, **r.row(), "best": r.epoch == self.best_epoch} for r in self.history]


class Selector:
    """Model selection and early stopping on validation scores: ``selection`` (UA by default, or WA; the mean CCC
    for a regression) first, then lower loss; or (``selection="loss"``) lower loss first, then that score."""

    def __init__(self, patience: int | None, selection: str = "ua") -> None:
        self.patience = patience
        self.selection = selection
        self.best_epoch = 0
        self.best: tuple[float, float] = (-math.inf, -math.inf)  # larger is better

    def update(self, epoch: int, val_score: float, val_loss: float, val_wa: float | None = None) -> bool:
        """Record an epoch's scores; True when it is the new best (strictly better, so ties keep the earlier).

        ``val_score`` is the validation UA (the mean CCC for a regression); ``val_wa`` is used with ``selection="wa"``.
        """
        if self.selection == "loss":
            score = (-val_loss, val_score)
        else:
            score = (val_wa if self.selection == "wa" and val_wa is not None else val_score, -val_loss)
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
    task: Task | Sequence[str],
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
    task = as_task(task)
    seed_everything(seed)
    model = make_model().to(runtime.device)
    check_batching(model, settings)
    optimizer = build_optimizer(model, optim)
    schedule = Schedule(optimizer, optim)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.uses_scaler)
    order = torch.Generator().manual_seed(seed)
    criterion = task_loss(task, train.y if settings.class_weights == "balanced" else None, runtime.device)
    scale = None if task.categorical or settings.target_scaling == "none" else TargetScale.fit(train.y)
    selector, history, best_state, stopped = (
        Selector(settings.patience, settings.selection),
        [],
        _cpu_state(model),
        False,
    )
    for epoch in _epochs(settings.epochs, progress, desc):
        batches = training_batches(model, train.samples, settings, order, seed, epoch)
        loss = _train_epoch(model, train, batches, optimizer, schedule, scaler, optim, runtime, criterion, scale)
        outputs = predict(model, valid.samples, settings.batch_size, runtime, settings.max_batch_length)
        record = _epoch_record(epoch, loss, outputs, valid.y, task, schedule.lr, scale)
        history.append(record)
        schedule.after_epoch(record.val_loss)
        main = record.val["ua"] if task.categorical else record.val["ccc"]
        if selector.update(epoch, main, record.val_loss, record.val.get("wa")):
            best_state = _cpu_state(model)
        shown = ", ".join(f"val {k} {v:.4f}" for k, v in record.val.items() if k in ("wa", "ua", "ccc"))
        log.info(
            "%s epoch %d: train loss %.4f, val loss %.4f, %s%s",
            desc, epoch, record.train_loss, record.val_loss, shown, " (best)" if selector.best_epoch == epoch else "",
        )  # fmt: skip
        if selector.should_stop(epoch):
            stopped = epoch < settings.epochs
            break
    model.load_state_dict(best_state)
    best = history[selector.best_epoch - 1]
    valid_outputs = predict(model, valid.samples, settings.batch_size, runtime, settings.max_batch_length)
    valid_metrics = scores(valid_outputs, valid.y, task, scale)
    result = FitResult(seed, best.epoch, len(history), stopped, history, valid_metrics, best_state, scale)
    return model, result


def predict(
    model: nn.Module,
    samples: Sequence[dict[str, np.ndarray]],
    batch_size: int,
    runtime: Runtime,
    max_batch_length: int | None = None,
) -> np.ndarray:
    """float32 outputs ``[N, n_outputs]`` (class logits, or predicted values) in the order of ``samples`` (eval mode,
    no gradients). With ``max_batch_length``: batches of similar lengths (sorted, bounded padded size), the
    outputs put back in the order of ``samples``."""
    model.eval()
    if max_batch_length is None:
        batches = [list(range(i, min(i + batch_size, len(samples)))) for i in range(0, len(samples), batch_size)]
    else:
        batches = inference_batches(_lengths(model, samples), max_batch_length, max_size=batch_size).batches
    out: list[torch.Tensor] = []
    with torch.inference_mode():
        for idx in batches:
            batch = _to_device(model.collate([samples[i] for i in idx]), runtime.device)
            with _autocast(runtime):
                out.append(model(batch).float().cpu())
    if not out:
        return np.zeros((0, 0), np.float32)
    outputs = torch.cat(out).numpy()
    order = np.concatenate([np.asarray(idx, dtype=np.int64) for idx in batches])
    restored = np.empty_like(outputs)
    restored[order] = outputs
    return restored


def check_batching(model: nn.Module, settings: TrainSettings) -> None:
    """``max_batch_length`` counts a model's own length unit (``sample_length()``): refuse it for a model without."""
    if settings.max_batch_length is not None and not hasattr(model, "sample_length"):
        raise ValueError(
            f"train.max_batch_length is set, but {type(model).__name__} has no sample_length() to measure utterances "
            "by: set it in the family's train section of a raw-audio model (models.wavfusion.train)"
        )


def training_batches(
    model: nn.Module,
    samples: Sequence[dict[str, np.ndarray]],
    settings: TrainSettings,
    order: torch.Generator,
    seed: int,
    epoch: int,
) -> list[list[int]]:
    """One epoch's batches (indices into ``samples``): ``batch_size`` utterances of a shuffled order, or, with
    ``max_batch_length``, length-bucketed batches of at most that many padded samples (and ``batch_size``
    utterances), deterministic in ``(seed, epoch)``."""
    if settings.max_batch_length is None:
        permutation = torch.randperm(len(samples), generator=order).tolist()
        return [permutation[i : i + settings.batch_size] for i in range(0, len(permutation), settings.batch_size)]
    plan = length_batches(
        _lengths(model, samples), settings.max_batch_length, seed=seed, epoch=epoch, max_size=settings.batch_size
    )
    if plan.oversized and epoch == 1:
        log.warning(
            "%d training utterance(s) longer than max_batch_length %d alone: each is a batch of one",
            len(plan.oversized), settings.max_batch_length,
        )  # fmt: skip
    return plan.batches


def _lengths(model: nn.Module, samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    measure = getattr(model, "sample_length", None)
    if measure is None:
        raise ValueError(f"{type(model).__name__} has no sample_length(): max_batch_length cannot bucket it")
    return np.fromiter((measure(s) for s in samples), dtype=np.int64, count=len(samples))


def as_task(task: Task | Sequence[str]) -> Task:
    """A :class:`Task`; a sequence of class names is the categorical task over them."""
    return task if isinstance(task, Task) else make_task("categorical", tuple(task))


def scores(
    outputs: np.ndarray, y: np.ndarray, task: Task | Sequence[str], scale: TargetScale | None = None
) -> dict[str, Any]:
    """The task's metrics plus its mean loss: classification metrics (:mod:`serflow.train.metrics`) and the
    cross-entropy, or per-dimension CCC / Pearson / MSE (:mod:`serflow.train.tasks`) of the outputs mapped back to
    the targets' scale (``scale``), and the task's loss where training computes it (standardised)."""
    task = as_task(task)
    if task.categorical:
        metrics = _metrics(outputs, y, task.outputs)
        metrics["loss"] = _cross_entropy(outputs, y)
        return metrics
    y = np.asarray(y, np.float32)
    metrics = regression_metrics(scale.decode(outputs) if scale else outputs, y, task.outputs)
    criterion = task_loss(task, None, torch.device("cpu"))
    metrics["loss"] = float(criterion(torch.from_numpy(outputs), torch.from_numpy(scale.encode(y) if scale else y)))
    return metrics


def task_loss(
    task: Task, weights_from: np.ndarray | None, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss of ``task``: cross-entropy (class-weighted by the labels ``weights_from`` when given), MSE, or
    ``1 - mean CCC`` over the dimensions (the CNN14 paper's multi-task loss, on the batch's statistics)."""
    if task.categorical:
        weight = None
        if weights_from is not None:
            weight = torch.from_numpy(class_weights(weights_from, len(task.outputs))).to(device)
        return functools.partial(_cross_entropy_loss, weight=weight)
    if task.loss == "mse":
        return lambda outputs, target: F.mse_loss(outputs.float(), target.float())
    return ccc_loss


def ccc_loss(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - mean over dimensions of CCC(outputs, target)`` (population moments; a small epsilon keeps a batch of
    constant values defined)."""
    x, y = outputs.float(), target.float()
    mx, my = x.mean(0), y.mean(0)
    vx, vy = x.var(0, unbiased=False), y.var(0, unbiased=False)
    cov = ((x - mx) * (y - my)).mean(0)
    return 1 - (2 * cov / (vx + vy + (mx - my) ** 2 + 1e-8)).mean()


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
    batches: Sequence[list[int]],
    optimizer: torch.optim.Optimizer,
    schedule: Schedule,
    scaler: torch.amp.GradScaler,
    optim: OptimSettings,
    runtime: Runtime,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scale: TargetScale | None = None,
) -> float:
    """One pass over the training utterances in ``batches``; returns the mean training loss."""
    model.train()
    y = torch.from_numpy(scale.encode(train.y) if scale else train.y)
    total = 0.0
    for idx in batches:
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
    return total / sum(len(idx) for idx in batches)


def _epoch_record(
    epoch: int, train_loss: float, outputs: np.ndarray, y: np.ndarray, task: Task, lr: float, scale: TargetScale | None
) -> EpochRecord:
    m = scores(outputs, y, task, scale)
    return EpochRecord(epoch, train_loss, m["loss"], summary_scores(m, task), float(lr))


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
