"""From frame-level phone segments to the backend-independent :class:`~serflow.align.types.UttAlignment`.

Word boundaries are read from the word-position marks of the phones (``_B``/``_S`` opens a word,
``_E``/``_S`` closes it; see :mod:`.lang`), so no word is ever split, merged or left without phones.
Times are frame indices times 10 ms (exact with ``snip_edges=False``, see :mod:`.features`), rounded
to the millisecond so that equal frame indices give equal floats, and the phones of a word tile it:
each phone ends where the next begins, the word spans first start to last end. Silences are not words.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from serflow.align.types import Failure, Phone, UttAlignment, Word

from .features import FRAME_SHIFT
from .lang import SIL_ID, phone_tables

_TABLES = phone_tables()


def _time(frame: int, duration: float) -> float:
    """Frame index to seconds, rounded to the millisecond, never past the end of the audio.

    The last frame may reach past the audio (``snip_edges=False`` pads it); its end is then the
    duration, rounded down so that it never exceeds it.
    """
    return min(round(frame * FRAME_SHIFT, 3), math.floor(duration * 1000.0) / 1000.0)


def to_alignment(utt_id: str, words: Sequence[str], segments: np.ndarray, duration: float) -> UttAlignment | Failure:
    """Group (phone id, first frame, end frame) rows into words; a Failure if they do not fit ``words``."""
    out: list[Word] = []
    current: list[Phone] = []
    for phone_id, start, end in segments.tolist():
        if phone_id == SIL_ID:
            if current:
                return Failure(utt_id, "internal error: silence inside a word")
            continue
        if _TABLES.begins_word[phone_id] != (not current):
            return Failure(utt_id, "internal error: word-position marks out of order")
        current.append(Phone(_TABLES.base[phone_id], _time(start, duration), _time(end, duration)))
        if _TABLES.ends_word[phone_id]:
            if len(out) >= len(words):
                return Failure(utt_id, "internal error: more words aligned than in the transcript")
            phones = tuple(current)
            out.append(Word(words[len(out)], phones[0].start, phones[-1].end, phones))
            current = []
    if current or len(out) != len(words):
        return Failure(utt_id, f"internal error: {len(out)} words aligned, {len(words)} in the transcript")
    return UttAlignment(utt_id, tuple(out))


def trim_quiet_edges(segments: np.ndarray, quiet: np.ndarray | None, min_run: int = 3, keep: int = 3) -> np.ndarray:
    """Give quiet frames at the outer edges of words back to silence.

    Why: a flat-start monophone model learns stop closures and weak frication as part of phones, and
    these models then happily absorb pauses: the first phone of a word starts in the preceding pause
    and, the weakness seen in the reference runs, the last phone runs into trailing silence. Here a
    run of at least ``min_run`` quiet frames (see :func:`.features.quiet_mask`) at the start of a
    word-initial phone, or at the end of a word-final one, is cut off the word and kept as silence,
    leaving the phone at least ``keep`` frames. Phone boundaries inside words are never moved, so the
    phones still tile their words. Nothing changes when ``quiet`` is ``None`` (no clear silence).
    """
    if quiet is None:
        return segments
    rows: list[tuple[int, int, int]] = []
    for phone_id, start, end in segments.tolist():
        lead = trail = 0
        if phone_id != SIL_ID:
            if _TABLES.begins_word[phone_id]:
                lead = _run_length(quiet[start:end])
                lead = max(0, min(lead, end - start - keep)) if lead >= min_run else 0
            if _TABLES.ends_word[phone_id]:
                trail = _run_length(quiet[start + lead : end][::-1])
                trail = max(0, min(trail, end - start - lead - keep)) if trail >= min_run else 0
        if lead > 0:
            rows.append((SIL_ID, start, start + lead))
        rows.append((phone_id, start + lead, end - trail))
        if trail > 0:
            rows.append((SIL_ID, end - trail, end))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def _run_length(flags: np.ndarray) -> int:
    """Length of the run of True at the start of ``flags``."""
    stops = np.flatnonzero(~flags)
    return int(stops[0]) if stops.size else int(flags.size)
