"""Packing short utterances into one Whisper window, and splitting the window's words back to them.

Whisper's encoder always runs on a 30 s window, so a 2 s utterance costs as much encoder time as 30 s of
speech: on CPU (tiny.en, int8, one thread) 0.86 s of the 1.18 s one short utterance takes. Here several
utterances of one speaker are laid end to end with ``gap_s`` of silence between them in one window of at most
``max_window_s``, decoded once with word timestamps, and each word goes back to the utterance whose span contains
its midpoint (a word whose midpoint is in a gap goes to the nearer utterance). What cannot be split with confidence
is flagged, and the caller transcribes those utterances alone.

What packing changes, honestly: Whisper's decoder is autoregressive over the whole window, so the text of the k-th
utterance of a window is decoded after, and conditioned on, the text of utterances 0..k-1 (a word choice made for
one utterance tends to be repeated in the next: on the TESS demo's carrier phrase, "Shame the words back." for
each of a word's seven emotions where alone each gave "Save the word back."). ``condition_on_previous_text=False``
(:meth:`~serflow.asr.backends.WhisperBackend.decode_window`) stops only the carry-over between Whisper's decoding
passes, not this. No initial prompt is given, packed or not.

This module is pure Python (no numpy, no model): the workflow imports it when it builds the rule's params, and
the splitting is tested on hand-made word lists. Running the backend over windows is
:mod:`serflow.asr.packed_run`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

WHISPER_WINDOW_S = 30.0  # the encoder's fixed input: a window must fit in it, or Whisper decodes it in pieces
# The slack of the split, as a fraction of the gap: a word lying wholly in a gap farther than this from both
# neighbours (in the middle half of it), or overlapping the other neighbour by more than this, cannot be given to
# either with confidence (its timestamps are off by more than Whisper's usual alignment error, or it is a
# hallucination in the silence).
AMBIGUOUS_GAP_FRACTION = 0.25


@dataclass(frozen=True)
class PackingSettings:
    """``asr.packing`` of the config (config/schema.yaml documents each key; defaults here equal the schema's)."""

    enabled: bool = True
    max_window_s: float = 28.0
    gap_s: float = 1.0
    max_utterance_s: float = 15.0

    def __post_init__(self) -> None:
        if not 0.0 < self.max_window_s <= WHISPER_WINDOW_S:
            raise ValueError(f"asr.packing.max_window_s must be in (0, {WHISPER_WINDOW_S}], not {self.max_window_s}")
        # (one longer than max_window_s is allowed: it only means no utterance that fits is left alone)
        if not 0.0 < self.max_utterance_s <= WHISPER_WINDOW_S:
            raise ValueError(
                f"asr.packing.max_utterance_s must be in (0, {WHISPER_WINDOW_S}], not {self.max_utterance_s}"
            )
        if self.gap_s < 0.0:
            raise ValueError(f"asr.packing.gap_s must be >= 0, not {self.gap_s}")

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> PackingSettings:
        """The settings from the config's ``packing`` mapping; absent keys (a corpus override may give only some)
        take the defaults. ``None`` means packing off."""
        if value is None:
            return cls(enabled=False)
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"asr.packing has no key {unknown[0]!r} (keys: {', '.join(cls.__dataclass_fields__)})")
        return cls(**{k: v for k, v in value.items() if v is not None})

    def as_params(self) -> dict[str, Any]:
        """What the output depends on, for the rule's params and the output's metadata: the window sizes only when
        packing is on, so that editing them while it is off reruns nothing."""
        if not self.enabled:
            return {"enabled": False}
        return {k: float(v) if k != "enabled" else v for k, v in asdict(self).items()}


def packing_params(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """``asr.packing`` (as configured, possibly partial) resolved and normalised: the transcription rule's param."""
    return PackingSettings.from_config(value).as_params()


def plan_windows(
    durations: Sequence[float], settings: PackingSettings, groups: Sequence[Hashable] | None = None
) -> list[tuple[int, ...]]:
    """Group utterances (by position, in the given order) into windows: consecutive utterances of one group while
    the window's length ``sum(durations) + gap_s * (n - 1)`` stays within ``max_window_s``.

    An utterance longer than ``max_utterance_s`` gets a window of its own (it gains little from packing and would
    crowd out the others). ``groups`` (e.g. the speaker of each utterance): a window never spans two, so a
    packed utterance's text never depends on another group's audio. Every position is in exactly one window,
    windows are in order and contiguous, so the plan depends only on its arguments.
    """
    windows: list[tuple[int, ...]] = []
    current: list[int] = []
    length = 0.0
    for index, duration in enumerate(durations):
        alone = not settings.enabled or duration > settings.max_utterance_s
        if current and (alone or (groups is not None and groups[index] != groups[current[-1]])):
            windows.append(tuple(current))
            current, length = [], 0.0
        if alone:
            windows.append((index,))
            continue
        grown = length + (settings.gap_s if current else 0.0) + duration
        if current and grown > settings.max_window_s:
            windows.append(tuple(current))
            current, grown = [], duration
        current.append(index)
        length = grown
    if current:
        windows.append(tuple(current))
    return windows


def layout(durations: Sequence[float], gap_s: float) -> list[tuple[float, float]]:
    """Each utterance's ``(start, end)`` in a window where they follow one another with ``gap_s`` between them."""
    spans = []
    start = 0.0
    for duration in durations:
        spans.append((start, start + duration))
        start += duration + gap_s
    return spans


@dataclass(frozen=True)
class Assignment:
    """Where each word of a window went.

    ``owner[i]``: the utterance (position in the window) word ``i`` belongs to. ``ambiguous``: for each word whose
    owner is uncertain, the word and every utterance it could belong to; the caller transcribes those alone.
    """

    owner: tuple[int, ...]
    ambiguous: tuple[tuple[int, tuple[int, ...]], ...]

    def words_of(self, utterance: int) -> list[int]:
        """The word indices given to ``utterance``, in window order."""
        return [i for i, k in enumerate(self.owner) if k == utterance]

    def empty(self, n_utterances: int) -> list[int]:
        """Utterances that received no word (silence, or speech Whisper skipped in the window)."""
        owned = set(self.owner)
        return [k for k in range(n_utterances) if k not in owned]

    def unsure(self) -> set[int]:
        """Every utterance touched by an ambiguous word."""
        return {k for _, candidates in self.ambiguous for k in candidates}


def assign_words(words: Sequence[tuple[float, float]], spans: Sequence[tuple[float, float]]) -> Assignment:
    """Give each word ``(start, end)`` (window time) to the utterance whose span contains its midpoint.

    A midpoint in a gap goes to the nearer neighbour (ties to the earlier); one after the last span to the last
    utterance. The slack below is a quarter of the gap concerned. A word is ambiguous when

    * it lies wholly in a gap with its midpoint in the middle half of it, farther than the slack from both
      neighbours; or wholly past the last span by more than the slack (padding, where Whisper hallucinates);
    * it overlaps an utterance other than its owner by more than the slack: its timestamps put it in both.

    A word overlapping its neighbour by less than the slack is not ambiguous: Whisper stretches a sentence's last
    word into the silence after it (often by most of a 1 s gap) and pulls a first word's start early, so the
    midpoint rule, not the word's reach, is the evidence there.
    """
    if not spans:
        raise ValueError("assign_words needs at least one utterance span")
    gaps = [b[0] - a[1] for a, b in pairwise(spans)]
    # past the last span there is no neighbour: a quarter of the narrowest gap is the slack there
    trailing = AMBIGUOUS_GAP_FRACTION * max(min(gaps, default=0.0), 0.0)
    owner: list[int] = []
    ambiguous: list[tuple[int, tuple[int, ...]]] = []
    for i, (start, end) in enumerate(words):
        k, unsure = _owner(0.5 * (start + end), spans, trailing)
        overlaps = {j: min(end, b) - max(start, a) for j, (a, b) in enumerate(spans)}
        touched = [j for j, overlap in overlaps.items() if overlap > 0]
        if touched:  # the midpoint's verdict in a gap only counts for a word that lies wholly in the gap
            unsure = ()
        reached = tuple(j for j in touched if j != k and overlaps[j] > AMBIGUOUS_GAP_FRACTION * gaps[min(j, k)])
        owner.append(k)
        if unsure or reached:
            ambiguous.append((i, tuple(sorted({k, *unsure, *reached}))))
    return Assignment(tuple(owner), tuple(ambiguous))


def _owner(mid: float, spans: Sequence[tuple[float, float]], trailing: float) -> tuple[int, tuple[int, ...]]:
    """The utterance a midpoint goes to, and the candidates when it lies far from every span."""
    last = len(spans) - 1
    if mid > spans[last][1]:
        return last, ((last,) if mid - spans[last][1] > trailing else ())
    for k, (start, end) in enumerate(spans):
        if mid <= end:
            if mid >= start or k == 0:
                return k, ()
            left, right = mid - spans[k - 1][1], start - mid  # in the gap between k - 1 and k
            nearest = k - 1 if left <= right else k
            slack = AMBIGUOUS_GAP_FRACTION * (left + right)
            return nearest, ((k - 1, k) if min(left, right) > slack else ())
    raise AssertionError("unreachable: mid is past the last span or within one")
