"""One worker's share of the corpus: its features, training graphs and alignments, kept between steps.

Why persistent workers: training graphs are Kaldi FSTs that cannot be sent between processes, and
features are costly to send forty times; so every worker extracts the features of its utterances
once, compiles their graphs once, and from then on receives only the model (a few hundred kB) and
returns only statistics (summed over its utterances). This is Kaldi's ``nj`` split, with processes
instead of jobs on disk.

Utterances are grouped in fixed *blocks* (chosen before workers are assigned), and statistics are
fixed-point integers summed per block, so the sums, and therefore the model, do not depend on how
many workers there are or which blocks each one holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import features as feat
from ._backend import kaldifst, khg
from .gmm import GmmModel, Scorer, accumulate, quantise
from .lang import SIL_ID, Lang
from .segments import trim_quiet_edges

ACOUSTIC_SCALE = 0.1
TRANSITION_SCALE = 1.0
SELF_LOOP_SCALE = 0.1


@dataclass(frozen=True)
class UttJob:
    """What a worker needs to know about one utterance (plain data, sent to the worker once)."""

    index: int  # position in the caller's item list
    utt_id: str
    speaker: str
    wav: str
    words: tuple[str, ...]


@dataclass(frozen=True)
class Extracted:
    """Outcome of feature extraction: a failure reason, or the frame count and the static-MFCC sum."""

    index: int
    reason: str = ""
    frames: int = 0
    duration: float = 0.0
    mfcc_sum: np.ndarray | None = None


@dataclass(frozen=True)
class StepStats:
    """Statistics of one E-step over a worker's utterances (fixed-point, see :mod:`.gmm`)."""

    gmm: np.ndarray  # int64 (components, 1 + 2D)
    transitions: np.ndarray  # int64 (num transition ids + 1,)
    loglike: int  # fixed-point total log-likelihood
    frames: int
    utterances: int
    failed: int  # realignments that failed this step


@dataclass(frozen=True)
class ModelPayload:
    """The model as sent to workers: GMMs as numpy arrays and the transition model."""

    gmm: GmmModel
    transitions: khg.TransitionModel
    silence_boost: float = 1.0


MIN_EDGE_FRAMES = 5  # the silence HMM's five states, none skippable
# How close to the noise floor a frame must be to be cut off a word's edge (see features.quiet_mask).
# Lower than the flat start's 0.25: cutting is final, and weak word-final consonants must survive it.
# On 300 known-boundary utterances 0.25 cut 5% of word ends by 40 ms or more; 0.15 by 11 ms or more.
TRIM_FRACTION = 0.15


def _quiet_ends(quiet: np.ndarray | None) -> tuple[int, int]:
    """Quiet frames before the first and after the last loud frame (0 when fewer than ``MIN_EDGE_FRAMES``)."""
    if quiet is None or quiet.all():
        return 0, 0
    loud = np.flatnonzero(~quiet)
    lead, trail = int(loud[0]), int(quiet.size - 1 - loud[-1])
    return (lead if lead >= MIN_EDGE_FRAMES else 0), (trail if trail >= MIN_EDGE_FRAMES else 0)


def _equal_path(graph: kaldifst.StdVectorFst, frames: int, rng: np.random.Generator) -> np.ndarray | None:
    """Transition ids of an equal alignment of ``frames`` frames to a random path through ``graph``."""
    if frames <= 0:
        return np.zeros(0, dtype=np.int64)
    ok, path = kaldifst.equal_align(graph, frames, int(rng.integers(1, 2**31 - 1)), 10)
    if not ok:
        return None
    ok, isyms, _, _ = kaldifst.get_linear_symbol_sequence(path)
    return np.asarray(isyms, dtype=np.int64) if ok else None


def _min_frames(prons: Sequence[Sequence[str]]) -> int:
    """Fewest frames a word can take: three per phone of its shortest variant (no state is skippable)."""
    return min(len(p) for p in prons) * 3


class ShardWorker:
    """Holds ``blocks`` of utterances; its methods are the steps of training and alignment."""

    def __init__(self, prons: dict[str, tuple[tuple[str, ...], ...]], blocks: list[list[UttJob]], seed: int) -> None:
        self.blocks = blocks
        self.seed = seed
        self.prons = prons
        self.lang = Lang(prons)
        # The compiler keeps C++ references to the transition model, tree and lexicon FST: all must
        # stay referenced from Python for as long as it lives.
        self.structure = structure = self.lang.new_transition_model()
        self.compiler = self.lang.graph_compiler(structure)
        n_tids = structure.num_transition_ids + 1
        ok, sil_pdfs = khg.get_pdfs_for_phones(structure, [SIL_ID])
        self.silence_pdfs: list[int] = list(sil_pdfs) if ok else []
        self.tid2pdf = np.full(n_tids, -1, dtype=np.int64)
        self.tid2pdf[1:] = np.asarray(structure.transition_id_to_pdf_array()[1:n_tids], dtype=np.int64)
        self.tid_final = np.array([False] + [structure.is_final(t) for t in range(1, n_tids)])
        self.tid2phone = np.array([0] + [structure.transition_id_to_phone(t) for t in range(1, n_tids)], dtype=np.int64)
        self.static: dict[int, np.ndarray] = {}
        self.feats: dict[int, np.ndarray] = {}
        self.graphs: dict[int, kaldifst.StdVectorFst] = {}
        self.ali: dict[int, np.ndarray | None] = {}
        self.energy: dict[int, np.ndarray] = {}  # frame levels in dBFS, for the edge correction
        self.jobs = {job.index: job for block in blocks for job in block}

    # -- features ---------------------------------------------------------------------------------

    def extract(self) -> list[Extracted]:
        """Load, check and featurise every utterance (static MFCCs, kept until CMN is known)."""
        out = []
        for index, job in self.jobs.items():
            try:
                static = feat.extract(job.wav, job.utt_id, self.seed)
            except feat.AudioProblem as exc:
                out.append(Extracted(index, reason=str(exc)))
                continue
            except Exception as exc:  # one odd file must not end the run: it is reported like the others
                out.append(Extracted(index, reason=f"audio could not be processed ({type(exc).__name__}: {exc})"))
                continue
            frames = static.mfcc.shape[0]
            need = sum(_min_frames(self.prons[w]) for w in job.words)
            if frames < need:
                out.append(
                    Extracted(index, reason=f"audio too short for its transcript ({frames} frames, {need} needed)")
                )
                continue
            self.static[index] = static.mfcc
            self.energy[index] = static.energy_db
            total = static.mfcc.sum(axis=0, dtype=np.float64)
            out.append(Extracted(index, frames=frames, duration=static.duration, mfcc_sum=total))
        return out

    def prepare(self, speaker_means: dict[str, np.ndarray]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Apply per-speaker CMN, add deltas, compile graphs; per-utterance feature sums for the flat start."""
        sums = []
        for index in sorted(self.static):
            job = self.jobs[index]
            normalised = self.static.pop(index) - speaker_means[job.speaker].astype(np.float32)
            x = feat.add_deltas(normalised)
            self.feats[index] = x
            self.graphs[index] = self.compiler.compile_graph_from_text([self.lang.word_ids[w] for w in job.words])
            x64 = x.astype(np.float64)
            sums.append((index, x64.sum(axis=0), (x64 * x64).sum(axis=0)))
        return sums

    # -- alignment --------------------------------------------------------------------------------

    def equal_align(self, vad: bool = True) -> int:
        """Flat-start alignment (``align-equal-compiled``); returns how many utterances got none.

        Kaldi spreads the frames evenly over a random path through the utterance's graph. With ``vad``
        the quiet frames at either end (at least :data:`MIN_EDGE_FRAMES` of them, see
        :func:`.features.quiet_mask`) are first given to silence and only the rest is spread over the
        graph: otherwise, whenever the random path skips the optional edge silence, leading and
        trailing pauses are taught to speech phones, and on small corpora silence in turn learnt
        whole vowels of some voices, errors that realignment did not undo (on 150 known-boundary
        utterances the 99th percentile word-boundary error fell from 312 to 29 ms).
        """
        silence_only = self.compiler.compile_graph_from_text([])
        failed = 0
        for index, graph in self.graphs.items():
            rng = feat.utterance_seed(self.seed, self.jobs[index].utt_id)
            frames = self.feats[index].shape[0]
            lead, trail = _quiet_ends(feat.quiet_mask(self.energy[index])) if vad else (0, 0)
            parts = [
                _equal_path(silence_only, lead, rng),
                _equal_path(graph, frames - lead - trail, rng),
                _equal_path(silence_only, trail, rng),
            ]
            if any(p is None for p in parts):  # too little left for the words: plain equal alignment
                parts = [_equal_path(graph, frames, rng)]
            tids = None if parts[0] is None else np.concatenate(parts)  # type: ignore[arg-type]
            self.ali[index] = tids
            failed += tids is None
        return failed

    def _align_one(
        self, index: int, am: khg.AmDiagGmm, tm: khg.TransitionModel, config: khg.AlignConfig
    ) -> np.ndarray | None:
        """Viterbi alignment of one utterance against its graph; ``None`` when the decoder finds no path."""
        graph = self.graphs[index].copy()
        khg.add_transition_probs(
            trans_model=tm, transition_scale=TRANSITION_SCALE, self_loop_scale=SELF_LOOP_SCALE, fst=graph
        )
        decodable = khg.DecodableAmDiagGmmScaled(am=am, tm=tm, feats=self.feats[index], scale=ACOUSTIC_SCALE)
        try:
            result = khg.align_utterance_wrapper(
                config=config,
                utt=self.jobs[index].utt_id,
                acoustic_scale=ACOUSTIC_SCALE,
                fst=graph,
                decodable=decodable,
                num_done=0,
                num_error=0,
                num_retried=0,
                tot_like=0.0,
                frame_count=0,
            )
        except RuntimeError:  # the wrapper raises on some decoder errors instead of counting them
            return None
        done, alignment = result[0], result[5]
        if done != 1 or len(alignment) != self.feats[index].shape[0]:
            return None
        return np.asarray(alignment, dtype=np.int64)

    def realign(self, model: ModelPayload, beam: float, retry_beam: float) -> int:
        """Viterbi realignment of every utterance (``gmm-align-compiled``); returns the number that failed."""
        am = model.gmm.to_am({p: model.silence_boost for p in self.silence_pdfs})
        config = khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=False)
        failed = 0
        for index in self.graphs:
            self.ali[index] = self._align_one(index, am, model.transitions, config)
            failed += self.ali[index] is None
        return failed

    # -- statistics -------------------------------------------------------------------------------

    def accumulate(self, model: ModelPayload, failed: int = 0) -> StepStats:
        """E-step over every aligned utterance, summed per block in fixed point (``gmm-acc-stats-ali``)."""
        scorer = Scorer.of(model.gmm)
        offsets = model.gmm.offsets()
        gmm_total = np.zeros((int(offsets[-1]), 1 + 2 * model.gmm.dim), dtype=np.int64)
        trans = np.zeros(self.tid2pdf.size, dtype=np.int64)
        ll_total, frames, utts = 0, 0, 0
        for block in self.blocks:
            aligned = [j.index for j in block if self.ali.get(j.index) is not None]
            if not aligned:
                continue
            tids = np.concatenate([self.ali[i] for i in aligned])  # type: ignore[misc]
            x = np.concatenate([self.feats[i] for i in aligned])
            stats, ll = accumulate(scorer, offsets, x, self.tid2pdf[tids])
            gmm_total += quantise(stats)
            ll_total += int(quantise(np.array([ll]))[0])
            trans += np.bincount(tids, minlength=trans.size)
            frames += tids.size
            utts += len(aligned)
        return StepStats(gmm_total, trans, ll_total, frames, utts, failed)

    def step(self, model: ModelPayload, realign: bool, beam: float, retry_beam: float) -> StepStats:
        """One training iteration's work: optional realignment, then statistics."""
        failed = self.realign(model, beam, retry_beam) if realign else 0
        return self.accumulate(model, failed)

    # -- output -----------------------------------------------------------------------------------

    def final(self, model: ModelPayload, beam: float, retry_beam: float, trim_edges: bool) -> list[tuple[int, Any]]:
        """Final alignment: per utterance, (phone id, first frame, end frame) rows or a failure reason."""
        am = model.gmm.to_am({p: model.silence_boost for p in self.silence_pdfs})
        config = khg.AlignConfig(beam=beam, retry_beam=retry_beam, careful=False)
        out: list[tuple[int, Any]] = []
        for index in self.graphs:
            tids = self._align_one(index, am, model.transitions, config)
            if tids is None:
                out.append((index, f"beam failure: no alignment within beam {beam:g} / retry beam {retry_beam:g}"))
                continue
            segments = self.phone_segments(tids)
            if trim_edges:
                segments = trim_quiet_edges(segments, feat.quiet_mask(self.energy[index], TRIM_FRACTION))
            out.append((index, segments))
        return out

    def phone_segments(self, tids: np.ndarray) -> np.ndarray:
        """(phones, 3) int array of phone id, first frame, end frame (exclusive), from transition ids.

        With ``reorder=False`` the last frame of every phone carries the transition into its final state.
        """
        ends = np.flatnonzero(self.tid_final[tids]) + 1
        starts = np.concatenate([[0], ends[:-1]])
        return np.stack([self.tid2phone[tids[ends - 1]], starts, ends], axis=1)
