"""Flat-start monophone training in the manner of Kaldi's ``steps/train_mono.sh``.

The schedule: equal alignment, then ``num_iters`` rounds of statistics and re-estimation; Viterbi
realignment on the rounds in ``realign_iters``; Gaussians grown by an equal increment each round for
the first ``max_iter_inc`` rounds, from one per pdf toward ``total_gauss``. Kaldi's values, except:

* the beams, 40 / 400 instead of 6-10 / 40, since narrower beams left most utterances of a small
  corpus unaligned in the first rounds (see the alignment reference note);
* the equal alignment gives quiet utterance ends to silence first (``vad_flat_start``, see
  :meth:`.worker.ShardWorker.equal_align`);
* after the final alignment, quiet frames at word edges go back to silence (``trim_edges``, see
  :func:`.segments.trim_quiet_edges`), the answer to phones running into pauses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._backend import khg
from .gmm import GmmModel, dequantise, init_model, mix_up, update
from .pool import WorkerPool
from .worker import ModelPayload, StepStats

log = logging.getLogger(__name__)

KALDI_REALIGN_ITERS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 29, 32, 35, 38)


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; defaults are ``train_mono.sh``'s but for the beams (see the module docstring)."""

    num_iters: int = 40
    max_iter_inc: int = 30
    total_gauss: int = 1000
    realign_iters: tuple[int, ...] = KALDI_REALIGN_ITERS
    beam: float = 40.0
    retry_beam: float = 400.0
    power: float = 0.25
    perturb: float = 0.01
    min_count: float = 20.0
    first_min_occupancy: float = 3.0
    min_occupancy: float = 10.0
    boost_silence: float = 1.0
    vad_flat_start: bool = True  # quiet ends go to silence in the equal alignment (see ShardWorker.equal_align)
    trim_edges: bool = True  # quiet frames at word edges go back to silence (see segments.trim_quiet_edges)


@dataclass
class TrainReport:
    """Facts about a training run, for the result's ``details``."""

    iterations: int = 0
    gaussians: int = 0
    loglike_per_frame: list[float] = field(default_factory=list)
    frames: int = 0
    utterances: int = 0
    equal_align_failed: int = 0
    realign_failed: list[int] = field(default_factory=list)
    seconds: float = 0.0


def _sum_stats(parts: list[StepStats]) -> StepStats:
    """Exact sums of the workers' fixed-point statistics (the order does not matter)."""
    return StepStats(
        gmm=np.sum([p.gmm for p in parts], axis=0),
        transitions=np.sum([p.transitions for p in parts], axis=0),
        loglike=sum(p.loglike for p in parts),
        frames=sum(p.frames for p in parts),
        utterances=sum(p.utterances for p in parts),
        failed=sum(p.failed for p in parts),
    )


def _reestimate(
    model: GmmModel,
    tm: khg.TransitionModel,
    stats: StepStats,
    min_occupancy: float,
    target_gauss: int,
    rng: np.random.Generator,
    cfg: TrainConfig,
) -> GmmModel:
    """``gmm-est``: transition probabilities, GMMs, then mixing up to ``target_gauss``."""
    tm.mle_update(stats.transitions.astype(np.float64), khg.MleTransitionUpdateConfig())
    new, occs = update(model, dequantise(stats.gmm), min_occupancy=min_occupancy)
    return mix_up(new, occs, target_gauss, rng, perturb=cfg.perturb, power=cfg.power, min_count=cfg.min_count)


def train(
    pool: WorkerPool,
    init_mean: np.ndarray,
    init_var: np.ndarray,
    tm: khg.TransitionModel,
    num_pdfs: int,
    seed: int,
    cfg: TrainConfig,
    say: Callable[..., None] = log.debug,
) -> tuple[ModelPayload, TrainReport]:
    """Train a monophone model on the workers' utterances; returns it with a report (``say`` logs progress)."""
    t0 = time.perf_counter()
    report = TrainReport()
    report.equal_align_failed = sum(pool.call("equal_align", cfg.vad_flat_start))
    model = init_model(num_pdfs, init_mean, init_var)
    num_gauss = model.num_gauss
    inc_gauss = max(0, (cfg.total_gauss - num_gauss) // max(cfg.max_iter_inc, 1))
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x6D6978])  # the mixing-up stream
    stats = _sum_stats(pool.call("accumulate", ModelPayload(model, tm, cfg.boost_silence)))
    _note(report, stats, 0, say)
    model = _reestimate(model, tm, stats, cfg.first_min_occupancy, num_gauss, rng, cfg)
    for it in range(1, cfg.num_iters):
        realign = it in cfg.realign_iters
        parts = pool.call("step", ModelPayload(model, tm, cfg.boost_silence), realign, cfg.beam, cfg.retry_beam)
        stats = _sum_stats(parts)
        if realign:
            report.realign_failed.append(stats.failed)
        _note(report, stats, it, say)
        model = _reestimate(model, tm, stats, cfg.min_occupancy, num_gauss, rng, cfg)
        if it <= cfg.max_iter_inc:
            num_gauss += inc_gauss
    report.iterations = cfg.num_iters
    report.gaussians = model.num_gauss
    report.seconds = time.perf_counter() - t0
    return ModelPayload(model, tm, cfg.boost_silence), report


def _note(report: TrainReport, stats: StepStats, it: int, say: Callable[..., None]) -> None:
    per_frame = float(dequantise(np.array([stats.loglike]))[0]) / max(stats.frames, 1)
    report.loglike_per_frame.append(round(per_frame, 4))
    report.frames, report.utterances = stats.frames, stats.utterances
    say(
        "iteration %d: %d utterances, %d frames, log-likelihood per frame %.3f",
        it,
        stats.utterances,
        stats.frames,
        per_frame,
    )
