"""The data every alignment backend produces, independent of the backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AlignItem:
    """One utterance to align: its audio and the text to align it to (gold or ASR)."""

    utt_id: str
    speaker: str
    wav: Path
    text: str


@dataclass(frozen=True)
class Phone:
    phone: str  # ARPAbet with stress digits stripped (AA, AE, ...), as MFA's english_us_arpa model
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class Word:
    word: str  # the normalised word that was aligned (lower case)
    start: float
    end: float
    phones: tuple[Phone, ...]  # tile [start, end] exactly, at least one


@dataclass(frozen=True)
class UttAlignment:
    utt_id: str
    words: tuple[Word, ...]  # silences are not words


@dataclass(frozen=True)
class Failure:
    """An utterance that could not be aligned, with the reason (it is listed, never dropped silently)."""

    utt_id: str
    reason: str


@dataclass(frozen=True)
class Oov:
    """A word not in the pronouncing dictionary, and how it was handled (``g2p`` or ``unpronounceable``)."""

    utt_id: str
    word: str
    how: str
    pronunciation: str = ""


@dataclass
class AlignResult:
    alignments: list[UttAlignment] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    oovs: list[Oov] = field(default_factory=list)
    backend: str = ""
    details: dict[str, object] = field(default_factory=dict)  # backend facts for the run's metadata

    def merge(self, other: AlignResult) -> AlignResult:
        return AlignResult(
            self.alignments + other.alignments,
            self.failures + other.failures,
            self.oovs + other.oovs,
            self.backend or other.backend,
            {**self.details, **other.details},
        )
