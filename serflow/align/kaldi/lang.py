"""The phone set, HMM topology and lexicon transducer of the monophone aligner.

Phones are word-position dependent, as in Kaldi's ``prepare_lang.sh``: every ARPAbet phone comes in
four versions, ``_B`` (word-begin), ``_I`` (inside), ``_E`` (end) and ``_S`` (a one-phone word), which
share one acoustic model (``monophone_context_dependency_shared``). Why: the alignment is a sequence
of transition ids, and with position marks the word boundaries can be read from it directly,
whichever pronunciation variant the decoder picked; without them they would have to be re-derived by
parsing the phone string against the variants.

Topology (Kaldi's defaults): three emitting states left to right for speech phones; five for
silence, the middle three fully connected, so that long pauses are modelled well.

Silence is optional between words and at both edges, with probability ``sil_prob`` (Kaldi's 0.5),
built into the lexicon FST the way ``make_lexicon_fst.py`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from serflow.align.lexicon import PHONES

from ._backend import kaldifst, khg

SILENCE = "SIL"
POSITIONS = ("B", "I", "E", "S")
NONSIL_STATES = 3
SIL_STATES = 5


def _phone_names() -> tuple[str, ...]:
    """Index = phone id; 0 is epsilon, 1 silence, then ``AA_B AA_I AA_E AA_S AE_B ...``."""
    return ("<eps>", SILENCE, *(f"{p}_{pos}" for p in PHONES for pos in POSITIONS))


PHONE_NAMES: tuple[str, ...] = _phone_names()
PHONE_IDS: dict[str, int] = {name: i for i, name in enumerate(PHONE_NAMES)}
SIL_ID = PHONE_IDS[SILENCE]


def _nonsil_entry(phones: Sequence[int]) -> str:
    states = "".join(
        f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>\n"
        for s in range(NONSIL_STATES)
    )
    ids = " ".join(map(str, phones))
    return (
        f"<TopologyEntry>\n<ForPhones> {ids} </ForPhones>\n{states}<State> {NONSIL_STATES} </State>\n</TopologyEntry>\n"
    )


def _sil_entry(phone: int) -> str:
    """Kaldi's silence topology: enter at state 0, middle states fully connected, leave from the last."""
    n = SIL_STATES
    p = 1.0 / (n - 1)
    lines = ["<State> 0 <PdfClass> 0 " + "".join(f"<Transition> {k} {p} " for k in range(n - 1)) + "</State>"]
    for s in range(1, n - 1):
        lines.append(
            f"<State> {s} <PdfClass> {s} " + "".join(f"<Transition> {k} {p} " for k in range(1, n)) + "</State>"
        )
    lines.append(f"<State> {n - 1} <PdfClass> {n - 1} <Transition> {n - 1} 0.75 <Transition> {n} 0.25 </State>")
    lines.append(f"<State> {n} </State>")
    body = "\n".join(lines)
    return f"<TopologyEntry>\n<ForPhones> {phone} </ForPhones>\n{body}\n</TopologyEntry>\n"


def topology_text() -> str:
    """The HMM topology in Kaldi's text format."""
    nonsil = [i for i in range(2, len(PHONE_NAMES))]
    return f"<Topology>\n{_nonsil_entry(nonsil)}{_sil_entry(SIL_ID)}</Topology>\n"


def position_phones(base: Sequence[str]) -> list[int]:
    """Word-position phone ids of one pronunciation: ``[K, AE, T]`` -> ``[K_B, AE_I, T_E]``."""
    if len(base) == 1:
        return [PHONE_IDS[f"{base[0]}_S"]]
    marks = ["B", *["I"] * (len(base) - 2), "E"]
    return [PHONE_IDS[f"{p}_{m}"] for p, m in zip(base, marks, strict=True)]


@dataclass(frozen=True)
class PhoneTables:
    """Per phone id: base phone name, whether it begins or ends a word (arrays for vectorised lookups)."""

    base: tuple[str, ...]
    begins_word: np.ndarray
    ends_word: np.ndarray


def phone_tables() -> PhoneTables:
    base = tuple(name.split("_")[0] for name in PHONE_NAMES)
    begins = np.array([name.endswith(("_B", "_S")) for name in PHONE_NAMES])
    ends = np.array([name.endswith(("_E", "_S")) for name in PHONE_NAMES])
    return PhoneTables(base, begins, ends)


class Lang:
    """Topology, tree and transition model, plus the lexicon FST of one corpus vocabulary.

    Built in every worker process from plain data (the vocabulary), since the Kaldi objects holding
    FSTs cannot be sent between processes.
    """

    def __init__(self, prons: Mapping[str, Sequence[Sequence[str]]], sil_prob: float = 0.5) -> None:
        self.words: tuple[str, ...] = tuple(sorted(prons))
        self.word_ids = {w: i + 1 for i, w in enumerate(self.words)}  # 0 is epsilon
        self.prons = {w: tuple(tuple(p) for p in prons[w]) for w in self.words}
        self.sil_prob = sil_prob
        self.topo = khg.HmmTopology()
        self.topo.read(topology_text())
        classes = [[SIL_ID]] + [[PHONE_IDS[f"{p}_{pos}"] for pos in POSITIONS] for p in PHONES]
        self.tree = khg.monophone_context_dependency_shared(classes, self.topo.get_phone_to_num_pdf_classes())

    def new_transition_model(self) -> khg.TransitionModel:
        return khg.TransitionModel(ctx_dep=self.tree, hmm_topo=self.topo)

    @property
    def num_pdfs(self) -> int:
        return int(self.tree.num_pdfs)

    @cached_property
    def lexicon_fst(self) -> kaldifst.StdVectorFst:
        """L.fst with optional silence: phones in, words out, arc-sorted on output labels."""
        return build_lexicon_fst(self.prons, self.word_ids, self.sil_prob)

    def graph_compiler(self, transition_model: khg.TransitionModel) -> khg.TrainingGraphCompiler:
        """Compiles per-utterance graphs without transition probabilities (added at each alignment).

        ``reorder=False`` keeps each frame's transition id on the state that emitted it, so a phone
        ends exactly on a frame whose transition is final; with reordering that no longer holds.
        """
        opts = khg.TrainingGraphCompilerOptions(transition_scale=0.0, self_loop_scale=0.0, reorder=False)
        return khg.TrainingGraphCompiler(
            trans_model=transition_model, ctx_dep=self.tree, lex_fst=self.lexicon_fst, disambig_syms=[], opts=opts
        )


def build_lexicon_fst(
    prons: Mapping[str, Sequence[Sequence[str]]], word_ids: Mapping[str, int], sil_prob: float
) -> kaldifst.StdVectorFst:
    """The lexicon transducer, with optional silence at the start and after every word.

    States: ``start`` -(SIL or nothing)-> ``loop`` (final); each pronunciation is a chain from
    ``loop`` whose last phone returns to ``loop`` directly or through ``sil`` (which emits SIL).
    """
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    fst = kaldifst.StdVectorFst()
    start, loop, sil = fst.add_state(), fst.add_state(), fst.add_state()
    fst.start = start
    fst.set_final(state=loop, weight=0.0)
    fst.add_arc(state=start, arc=kaldifst.StdArc(0, 0, no_sil_cost, loop))
    fst.add_arc(state=start, arc=kaldifst.StdArc(SIL_ID, 0, sil_cost, loop))
    fst.add_arc(state=sil, arc=kaldifst.StdArc(SIL_ID, 0, 0.0, loop))
    for word in sorted(prons):
        for pron in prons[word]:
            _add_pronunciation(fst, loop, sil, word_ids[word], position_phones(pron), (no_sil_cost, sil_cost))
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def _add_pronunciation(
    fst: kaldifst.StdVectorFst, loop: int, sil: int, word_id: int, phones: list[int], costs: tuple[float, float]
) -> None:
    state = loop
    for i, phone in enumerate(phones[:-1]):
        nxt = fst.add_state()
        fst.add_arc(state=state, arc=kaldifst.StdArc(phone, word_id if i == 0 else 0, 0.0, nxt))
        state = nxt
    out = word_id if len(phones) == 1 else 0
    fst.add_arc(state=state, arc=kaldifst.StdArc(phones[-1], out, costs[0], loop))
    fst.add_arc(state=state, arc=kaldifst.StdArc(phones[-1], out, costs[1], sil))
