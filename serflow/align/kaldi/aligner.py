"""``align_corpus``: train a monophone model on the corpus itself, then align every utterance with it.

Flow: normalise transcripts and look up pronunciations (here) -> split utterances into fixed blocks and
the blocks among workers -> features (workers) -> per-speaker means (here) -> CMN, deltas, graphs
(workers) -> flat-start training (:mod:`.train`) -> final alignment (workers) -> words and phones (here).

Every item ends as exactly one :class:`UttAlignment` or :class:`Failure`, in the order of the input.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np

from serflow.align.lexicon import Lexicon, default_lexicon
from serflow.align.text import normalise_transcript
from serflow.align.types import AlignItem, AlignResult, Failure, Oov, UttAlignment

from ._backend import check_versions
from .lang import Lang
from .pool import WorkerArgs, WorkerPool
from .segments import to_alignment
from .train import TrainConfig, train
from .worker import Extracted, UttJob

log = logging.getLogger(__name__)

BACKEND = "kaldi"
BLOCK_BYTES = 5_000_000  # ~2.6 min of 16-bit 16 kHz audio per statistics block


def _plan(
    items: Sequence[AlignItem], lexicon: Lexicon
) -> tuple[list[UttJob], dict[int, Failure], list[Oov], dict[str, tuple[tuple[str, ...], ...]]]:
    """Normalise and look up every item: jobs for the alignable ones, failures for the rest."""
    jobs: list[UttJob] = []
    failures: dict[int, Failure] = {}
    oovs: list[Oov] = []
    prons: dict[str, tuple[tuple[str, ...], ...]] = {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item.utt_id in seen:
            failures[index] = Failure(item.utt_id, "duplicate utterance id")
            continue
        seen.add(item.utt_id)
        words = normalise_transcript(item.text)
        if not words:
            failures[index] = Failure(item.utt_id, "transcript has no alignable word")
            continue
        entries, utt_oovs = lexicon.lookup(item.utt_id, words)
        oovs.extend(utt_oovs)
        missing = [w for w, e in entries.items() if not e.pronounceable]
        if missing:
            names = ", ".join(repr(w) for w in missing)
            failures[index] = Failure(item.utt_id, f"no pronunciation for {names} (not in CMUdict, G2P failed)")
            continue
        prons.update({w: e.prons for w, e in entries.items()})
        jobs.append(UttJob(index, item.utt_id, item.speaker, str(item.wav), tuple(words)))
    return jobs, failures, oovs, prons


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def make_blocks(jobs: Sequence[UttJob], block_bytes: int = BLOCK_BYTES) -> list[list[UttJob]]:
    """Consecutive utterances of one speaker, up to ``block_bytes`` of audio each; independent of ``jobs``."""
    blocks: list[list[UttJob]] = []
    size = 0
    for job in sorted(jobs, key=lambda j: (j.speaker, j.index)):
        n = _file_size(job.wav)
        if not blocks or blocks[-1][-1].speaker != job.speaker or size + n > block_bytes:
            blocks.append([])
            size = 0
        blocks[-1].append(job)
        size += n
    return blocks


def assign_blocks(blocks: list[list[UttJob]], workers: int) -> list[list[list[UttJob]]]:
    """Largest blocks first, each to the least-loaded worker (balanced work, deterministic)."""
    sizes = [sum(_file_size(j.wav) for j in b) for b in blocks]
    order = sorted(range(len(blocks)), key=lambda b: (-sizes[b], b))
    shares: list[list[list[UttJob]]] = [[] for _ in range(min(workers, len(blocks)))]
    load = [0] * len(shares)
    for b in order:
        w = min(range(len(shares)), key=lambda k: (load[k], k))
        shares[w].append(blocks[b])
        load[w] += sizes[b]
    return [sorted(share, key=lambda blk: blk[0].index) for share in shares]


def _speaker_means(extracted: list[Extracted], jobs: dict[int, UttJob]) -> dict[str, np.ndarray]:
    """Per-speaker mean of the static MFCCs (CMN), summed in item order so the bytes never vary."""
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = defaultdict(int)
    for e in extracted:
        if e.reason or e.mfcc_sum is None:
            continue
        speaker = jobs[e.index].speaker
        sums[speaker] = sums.get(speaker, 0) + e.mfcc_sum
        counts[speaker] += e.frames
    return {s: sums[s] / counts[s] for s in sums}


def _global_mean_var(parts: list[list[tuple[int, np.ndarray, np.ndarray]]], frames: int) -> tuple[np.ndarray, ...]:
    """Mean and variance of all features (the flat start's single Gaussian), summed in item order."""
    rows = sorted((row for part in parts for row in part), key=lambda r: r[0])
    mean = np.sum([r[1] for r in rows], axis=0) / frames
    var = np.sum([r[2] for r in rows], axis=0) / frames - mean * mean
    return mean, np.maximum(var, 1e-3)


def _shards(
    plan_jobs: list[UttJob], prons: dict[str, tuple[tuple[str, ...], ...]], jobs: int, seed: int
) -> list[WorkerArgs]:
    """Each worker's arguments: the pronunciations of its words, its blocks of utterances, the seed."""
    shards: list[WorkerArgs] = []
    for share in assign_blocks(make_blocks(plan_jobs), jobs):
        words = {w for block in share for job in block for w in job.words}
        shards.append(({w: prons[w] for w in sorted(words)}, share, seed))
    return shards


def align_corpus(
    items: list[AlignItem], jobs: int = 1, seed: int = 0, progress: bool = False, config: TrainConfig | None = None
) -> AlignResult:
    """Train a flat-start monophone GMM-HMM on ``items`` and align them (backend ``"kaldi"``).

    ``jobs`` worker processes share feature extraction, alignment and statistics; the result does not
    depend on it, nor on anything but the inputs and ``seed``. ``details`` holds the training facts
    (iterations, Gaussians, log-likelihood per frame, utterances and frames used) and, under
    ``timing``, the seconds each stage took (the one part that differs between runs). ``progress``
    logs each stage and iteration at INFO level.
    """
    t0 = time.perf_counter()
    cfg = config or TrainConfig()
    details: dict[str, object] = {"versions": check_versions(), "jobs": jobs, "seed": seed, "config": asdict(cfg)}
    plan_jobs, failures, oovs, prons = _plan(items, default_lexicon())
    outcomes: dict[int, UttAlignment | Failure] = dict(failures)
    timing: dict[str, float] = {}
    if plan_jobs:
        run = _Run(plan_jobs, cfg, seed, log.info if progress else log.debug)
        outcomes.update(run.execute(_shards(plan_jobs, prons, max(1, jobs), seed)))
        details.update(run.details)
        timing.update(run.timing)
    timing["total_s"] = time.perf_counter() - t0
    details["timing"] = {k: round(v, 3) for k, v in timing.items()}
    result = AlignResult(oovs=oovs, backend=BACKEND, details=details)
    for index in range(len(items)):
        outcome = outcomes[index]
        if isinstance(outcome, UttAlignment):
            result.alignments.append(outcome)
        else:
            result.failures.append(outcome)
    details["aligned"], details["failed"] = len(result.alignments), len(result.failures)
    return result


class _Run:
    """One training and alignment run over the alignable utterances, stage by stage."""

    def __init__(self, plan_jobs: list[UttJob], cfg: TrainConfig, seed: int, say: Callable[..., None]) -> None:
        self.jobs = {j.index: j for j in plan_jobs}
        self.cfg, self.seed, self.say = cfg, seed, say
        self.outcomes: dict[int, UttAlignment | Failure] = {}
        self.details: dict[str, object] = {}
        self.timing: dict[str, float] = {}
        self.durations: dict[int, float] = {}

    def execute(self, shards: list[WorkerArgs]) -> dict[int, UttAlignment | Failure]:
        t = time.perf_counter()
        with WorkerPool(shards, processes=len(shards) > 1) as pool:
            self.say("kaldi aligner: %d utterances, %d worker(s)", len(self.jobs), len(shards))
            mean_var = self._features(pool)
            self.timing["features_s"] = time.perf_counter() - t
            if mean_var is None:
                return self.outcomes
            lang = Lang({})  # topology and tree only: the transition model's structure
            tm = lang.new_transition_model()
            payload, report = train(pool, *mean_var, tm, lang.num_pdfs, self.seed, self.cfg, self.say)
            self.timing["train_s"] = report.seconds
            t = time.perf_counter()
            finals = pool.call("final", payload, self.cfg.beam, self.cfg.retry_beam, self.cfg.trim_edges)
            self.timing["align_s"] = time.perf_counter() - t
        self._collect(finals)
        self.details.update(
            iterations=report.iterations,
            gaussians=report.gaussians,
            loglike_per_frame=report.loglike_per_frame[-1] if report.loglike_per_frame else None,
            loglike_trajectory=report.loglike_per_frame,
            train_utterances=report.utterances,
            train_frames=report.frames,
            audio_seconds=round(sum(self.durations.values()), 3),
            equal_align_failed=report.equal_align_failed,
            realign_failed=report.realign_failed,
            workers=len(shards),
        )
        return self.outcomes

    def _features(self, pool: WorkerPool) -> tuple[np.ndarray, ...] | None:
        """Features, CMN, deltas and graphs; the global mean and variance, or ``None`` if nothing is usable."""
        extracted = sorted((e for part in pool.call("extract") for e in part), key=lambda e: e.index)
        for e in extracted:
            if e.reason:
                self.outcomes[e.index] = Failure(self.jobs[e.index].utt_id, e.reason)
            else:
                self.durations[e.index] = e.duration
        self.say("features: %d usable, %d failed", len(self.durations), len(self.outcomes))
        if not self.durations:
            return None
        sums = pool.call("prepare", _speaker_means(extracted, self.jobs))
        return _global_mean_var(sums, sum(e.frames for e in extracted if not e.reason))

    def _collect(self, finals: list[list[tuple[int, object]]]) -> None:
        for index, value in (row for part in finals for row in part):
            job = self.jobs[index]
            if isinstance(value, str):
                self.outcomes[index] = Failure(job.utt_id, value)
            else:
                self.outcomes[index] = to_alignment(job.utt_id, job.words, value, self.durations[index])  # type: ignore[arg-type]
