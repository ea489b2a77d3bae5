"""Praat TextGrids as the Montreal Forced Aligner (MFA) 3 writes and reads them.

Every alignment backend's result can be written as MFA writes it (long "ooTextFile" format, UTF-8,
an IntervalTier ``words`` then an IntervalTier ``phones``, empty-text intervals for silence, both
tiers spanning ``[0, duration]``), so tools built around MFA's output (Praat, notebook scripts,
phonetic analysis packages) work on every backend's output unchanged.

praatio (the library MFA itself uses for TextGrids) does the parsing and the writing:
``textgrid_io.parseTextgridStr`` reads the long and the short text formats, ``getTextgridAsStr``
writes the long format and fills the gaps between intervals with empty ones. What serflow adds, and why:

- Decoding: UTF-8 (with or without a byte-order mark) or UTF-16 (Praat's choice for non-ASCII labels,
  with or without a byte-order mark). praatio's ``openTextgrid`` fails on UTF-16 without a
  byte-order mark; it also reads only paths, and :func:`parse_textgrid` parses text.
- Checks, so that a bad file gives a ValueError naming it, not a praatio traceback or a silently
  shorter tier: the header must say ``ooTextFile`` and ``TextGrid`` and declare the tier count that
  is found; each interval tier must reach its ``xmax`` (Praat's intervals cover their tier, and
  praatio's short-format reader silently stops where a file is cut); tier names must be unique.
- MFA 3's bytes: praatio writes a whole-number time as an integer (``2``), MFA 3 as a float
  (``2.0``) except in the grid's and the tiers' ``xmin = 0``; those lines are rewritten.
- praatio's dictionaries, not its ``Textgrid``/``IntervalTier`` objects: an IntervalTier refuses
  zero-length intervals, and the writer must write every alignment that
  :func:`serflow.align.tables.check_alignment` accepts, and the reader read it back.
- Turning the ``words`` and ``phones`` tiers into an :class:`UttAlignment` (:func:`alignment_from_textgrid`).

Like MFA, times are rounded to 6 decimals and an end past the file's duration is clipped to it.
Known differences from MFA's own writer, in edge cases only: MFA leaves gaps of at most 1 ms between
intervals unfilled (the tier then has a hole, which Praat rejects); here every gap is filled with an
empty interval. MFA stretches the last interval to the file's end when it ends within two frames
of it; here times are written as aligned.

What praatio cannot do, in cases neither MFA nor Praat produce for speech: it strips labels of
surrounding whitespace; in the long format it rejects a time in exponent notation (``1e-05``) and
misreads a negative one; it writes a tier's intervals sorted, so zero-length intervals at the same
instant come out in label order; and a truncated point tier (``TextTier``) goes unnoticed.
"""

from __future__ import annotations

import bisect
import codecs
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from praatio.utilities import textgrid_io
from praatio.utilities.constants import INTERVAL_TIER, TextgridFormats
from praatio.utilities.errors import PraatioException

from serflow.align.types import Phone, UttAlignment, Word
from serflow.io import write_text

Interval = tuple[float, float, str]
"""``(start, end, label)`` in seconds; a point of a TextTier is read as ``(time, time, mark)``."""

TIME_TOLERANCE = 0.001  # seconds: phones must tile their word to within 1 ms
SILENCE_WORDS = frozenset({"", "<eps>", "sil", "<sil>", "sp"})  # MFA's words tier: "" (MFA 3), <eps> (uncleaned)
SILENCE_PHONES = frozenset({"", "sil", "sp", "<eps>", "<sil>"})  # MFA's phones tier: "" (MFA 3), sil (MFA 1/2)
_DECIMALS = 6  # MFA rounds every time to 6 decimals before writing
_STRESS = re.compile(r"(?<=[A-Za-z])[0-2]$")  # AH0 -> AH; "spn" and IPA phones are left alone


# ----------------------------------------------------------------------------------------------
# Writing


def write_textgrid(alignment: UttAlignment, duration: float, path: str | os.PathLike[str]) -> None:
    """Write ``alignment`` as MFA 3 writes a TextGrid: tiers ``words`` and ``phones`` over ``[0, duration]``.

    Silences (the gaps between words, and between phones of different words) become empty intervals.
    An interval ending past ``duration`` is clipped to it, as MFA does; one that starts at or after
    ``duration`` raises ValueError. The file is written atomically.
    """
    write_text(textgrid_text(alignment, duration), path)


def textgrid_text(alignment: UttAlignment, duration: float) -> str:
    """The long-format TextGrid text of ``alignment`` (what :func:`write_textgrid` writes)."""
    xmax = round(float(duration), _DECIMALS)
    words = [(w.start, w.end, w.word) for w in alignment.words]
    phones = [(p.start, p.end, p.phone) for w in alignment.words for p in w.phones]
    grid = {
        "xmin": 0.0,
        "xmax": xmax,
        "tiers": [
            {"class": INTERVAL_TIER, "name": name, "xmin": 0.0, "xmax": xmax, "entries": entries}
            for name, entries in (
                ("words", _clipped(words, xmax, alignment.utt_id)),
                ("phones", _clipped(phones, xmax, alignment.utt_id)),
            )
        ],
    }
    # minimumIntervalLength=None: praatio would otherwise merge intervals shorter than 10 ns away.
    text = textgrid_io.getTextgridAsStr(
        grid, TextgridFormats.LONG_TEXTGRID, includeBlankSpaces=True, minimumIntervalLength=None
    )
    return _WHOLE_TIME.sub(_as_mfa_float, text)


def _clipped(intervals: Sequence[Interval], xmax: float, utt_id: str) -> list[Interval]:
    """Round times as MFA does and clip them to the file (praatio then fills the gaps).

    Frame-based aligners can overshoot the audio's true end by up to a frame; MFA clips such an end to
    the file's duration, and so does this. An overlap with the previous interval of up to
    ``TIME_TOLERANCE`` is trimmed off this one's start; a start at or after the end, or a larger
    overlap, is an error.
    """
    out: list[Interval] = []
    cursor = 0.0
    for start, end, label in intervals:
        start, end = round(float(start), _DECIMALS), round(float(end), _DECIMALS)
        if start >= xmax:
            raise ValueError(f"{utt_id}: interval {label!r} starts at {start} s, at or past the file's end {xmax} s")
        if start < cursor - TIME_TOLERANCE:
            raise ValueError(f"{utt_id}: interval {label!r} starts at {start} s, before the previous end {cursor} s")
        start, end = max(start, cursor), min(end, xmax)
        out.append((start, end, label))
        cursor = end
    return out


# A whole-number time as praatio writes it ("xmax = 2 "), with its indentation.
_WHOLE_TIME = re.compile(r"^(?P<indent> *)(?P<key>xmin|xmax) = (?P<value>\d+) $", re.MULTILINE)
_INTERVAL_INDENT = 12  # praatio and MFA indent an interval's fields by three 4-space tabs


def _as_mfa_float(match: re.Match[str]) -> str:
    """MFA's form of a whole-number time: ``2.0``, but ``0`` for the grid's and the tiers' ``xmin``."""
    if match["key"] == "xmin" and len(match["indent"]) < _INTERVAL_INDENT:
        return match[0]
    return f"{match['indent']}{match['key']} = {match['value']}.0 "


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class TextGrid:
    """A parsed TextGrid: the file's time span and its tiers by name, in file order."""

    xmin: float
    xmax: float
    tiers: dict[str, list[Interval]]


def read_textgrid(path: str | os.PathLike[str]) -> dict[str, list[Interval]]:
    """The tiers of the TextGrid at ``path``: name -> ``[(start, end, label), ...]``, empty labels kept.

    Labels are stripped of surrounding whitespace (praatio does that). Raises ValueError naming the
    file when it is not a TextGrid, does not parse, or is truncated.
    """
    return load_textgrid(path).tiers


def load_textgrid(path: str | os.PathLike[str]) -> TextGrid:
    """Like :func:`read_textgrid` but also returns the file's ``xmin``/``xmax``."""
    path = Path(path)
    return parse_textgrid(_decode(path.read_bytes(), path), str(path))


def parse_textgrid(text: str, source: str = "<string>") -> TextGrid:
    """Parse TextGrid text in the long or the short format; ``source`` names it in error messages."""
    n_tiers = _check_header(text, source)
    if not text.endswith("\n"):  # praatio's short-format reader drops a last label that no newline ends
        text += "\n"
    try:
        parsed = textgrid_io.parseTextgridStr(text, includeEmptyIntervals=True)
    except (PraatioException, ValueError, IndexError) as exc:
        # praatio's messages name neither the file nor the place ("Expected field in Textgrid missing.").
        raise ValueError(f"{source}: malformed or truncated TextGrid ({type(exc).__name__}: {exc})") from exc
    if len(parsed["tiers"]) != n_tiers:
        raise ValueError(f"{source}: {n_tiers} tiers declared but {len(parsed['tiers'])} found (a truncated file?)")
    tiers: dict[str, list[Interval]] = {}
    for tier in parsed["tiers"]:
        if tier["name"] in tiers:
            raise ValueError(f"{source}: a second tier named {tier['name']!r}")
        tiers[tier["name"]] = _entries(tier, f"{source}: tier {tier['name']!r}")
    return TextGrid(parsed["xmin"], parsed["xmax"], tiers)


# The header (the file type and the object class), and the tier count in the long or the short format.
_HEADER = re.compile(r'\A\ufeff?\s*File type = "(?P<type>[^"]*)"\s*Object class = "(?P<kind>[^"]*)"')
_TIER_COUNT = re.compile(r"<exists>\s*(?:size\s*=\s*)?(\d+)")


def _check_header(text: str, source: str) -> int:
    """Check that ``text`` is a Praat TextGrid (praatio does not) and return its declared tier count."""
    header = _HEADER.match(text)
    if header is None or header["type"] not in ("ooTextFile", "ooTextFile short"):
        raise ValueError(f"{source}: not a Praat text file (no 'ooTextFile' header)")
    if header["kind"] != "TextGrid":
        raise ValueError(f"{source}: the object class is {header['kind']!r}, not 'TextGrid'")
    count = _TIER_COUNT.search(text, header.end())
    if count is None:
        raise ValueError(f"{source}: no tier count ('<exists>' and the number of tiers) after the header")
    return int(count[1])


def _entries(tier: dict[str, Any], where: str) -> list[Interval]:
    """A praatio tier's entries as ``(start, end, label)``, times made floats (praatio leaves them strings)."""
    try:
        if tier["class"] != INTERVAL_TIER:  # a TextTier: each point becomes ``(time, time, mark)``
            return [(float(time), float(time), mark) for time, mark in tier["entries"]]
        intervals = [(float(start), float(end), label) for start, end, label in tier["entries"]]
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    _check_reaches_end(intervals, tier["xmax"], where)
    return intervals


def _check_reaches_end(intervals: Sequence[Interval], tier_xmax: float, where: str) -> None:
    """An interval tier covers its span, so one that stops short was cut (praatio reads such files)."""
    if not intervals:
        raise ValueError(f"{where} has no intervals (a truncated file?)")
    if abs(intervals[-1][1] - tier_xmax) > TIME_TOLERANCE:
        raise ValueError(f"{where} ends at {intervals[-1][1]} s, not at its xmax {tier_xmax} s (a truncated file?)")


def _decode(raw: bytes, path: Path) -> str:
    """Decode UTF-8 or UTF-16 (with or without a byte-order mark), as Praat may write either."""
    try:
        if raw.startswith(codecs.BOM_UTF8):
            return raw[len(codecs.BOM_UTF8) :].decode("utf-8")
        if raw.startswith((codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)):
            return raw.decode("utf-16")
        if len(raw) >= 2 and raw[0] == 0 and raw[1] != 0:
            return raw.decode("utf-16-be")
        if len(raw) >= 2 and raw[1] == 0 and raw[0] != 0:
            return raw.decode("utf-16-le")
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: neither UTF-8 nor UTF-16 ({exc.reason} at byte {exc.start})") from exc


# ----------------------------------------------------------------------------------------------
# From tiers to an UttAlignment


class TilingError(ValueError):
    """Phones that do not tile their words; ``word`` / ``phone`` index the offending input item."""

    def __init__(self, message: str, word: int | None = None, phone: int | None = None) -> None:
        super().__init__(message)
        self.word = word
        self.phone = phone


def group_phones(words: Sequence[Interval], phones: Sequence[Interval], tol: float) -> list[list[int]]:
    """For each word, the indices of the phones inside it (by time containment, within ``tol``).

    Shared by every reader that gets words and phones as separate tiers (MFA's TextGrids, IEMOCAP's
    .wdseg/.phseg), because containment is the only link between the two. Both sequences must be in
    time order. Raises :class:`TilingError` when a phone lies outside every word (or across a word
    boundary), a word has no phones, or a word's phones leave a gap or overlap.
    """
    _check_order(words, "word", tol)
    _check_order(phones, "phone", tol)
    starts = [w[0] for w in words]
    groups: list[list[int]] = [[] for _ in words]
    for p_index, phone in enumerate(phones):
        groups[_containing_word(words, starts, phone, p_index, tol)].append(p_index)
    for w_index, members in enumerate(groups):
        _check_tiling(words[w_index], w_index, [phones[i] for i in members], members, tol)
    return groups


def _check_order(intervals: Sequence[Interval], what: str, tol: float) -> None:
    """Times valid and in order; words must not overlap either (containment would be ambiguous)."""
    for index, (start, end, label) in enumerate(intervals):
        if end < start or start < 0:
            raise TilingError(f"{what} {label!r} has times [{start}, {end}]", **{what: index})
        if not index:
            continue
        previous = intervals[index - 1]
        if start < previous[0] or (what == "word" and start < previous[1] - tol):
            raise TilingError(
                f"{what} {label!r} at [{start}, {end}] overlaps or precedes {previous[2]!r} [{previous[0]}, "
                f"{previous[1]}]",
                **{what: index},
            )


def _containing_word(
    words: Sequence[Interval], starts: Sequence[float], phone: Interval, p_index: int, tol: float
) -> int:
    start, end, label = phone
    candidate = bisect.bisect_right(starts, start + tol) - 1
    for w_index in (candidate, candidate - 1):
        if 0 <= w_index < len(words) and words[w_index][0] - tol <= start and end <= words[w_index][1] + tol:
            return w_index
    crossed = [w for w in words if w[0] < end and start < w[1]]
    detail = f" (it overlaps {' and '.join(f'{w[2]!r} [{w[0]}, {w[1]}]' for w in crossed)})" if crossed else ""
    raise TilingError(f"phone {label!r} [{start}, {end}] is inside no word{detail}", phone=p_index)


def _check_tiling(word: Interval, w_index: int, phones: Sequence[Interval], indices: Sequence[int], tol: float) -> None:
    w_start, w_end, w_label = word
    if not phones:
        raise TilingError(f"word {w_label!r} [{w_start}, {w_end}] has no phones", word=w_index)
    cursor = w_start
    for (start, end, label), p_index in zip(phones, indices, strict=True):
        if abs(start - cursor) > tol:
            gap = "a gap" if start > cursor else "an overlap"
            raise TilingError(
                f"phones of word {w_label!r} [{w_start}, {w_end}] leave {gap} at {cursor} (phone {label!r} "
                f"starts at {start})",
                word=w_index,
                phone=p_index,
            )
        cursor = end
    if abs(cursor - w_end) > tol:
        raise TilingError(
            f"phones of word {w_label!r} [{w_start}, {w_end}] end at {cursor}, not at the word's end", word=w_index
        )


def normalise_phone(label: str) -> str:
    """MFA's phone label in the project's convention: stress digits stripped (``AH0`` -> ``AH``).

    ``spn`` (MFA's spoken-noise phone, what an out-of-vocabulary word is aligned to) is kept as is so
    that such words stay visible; IPA phones from MFA's ``english_mfa`` models pass through unchanged.
    """
    return _STRESS.sub("", label.strip())


def alignment_from_textgrid(
    utt_id: str, tiers: Mapping[str, Sequence[Interval]], source: str | os.PathLike[str] | None = None
) -> UttAlignment:
    """Turn a TextGrid's ``words`` and ``phones`` tiers into an :class:`UttAlignment`.

    Silence words (empty, ``<eps>``) and silence phones (empty, ``sil``, ``sp``) are dropped, words are
    lower-cased, phones lose their stress digits, and each phone is assigned to the word whose interval
    contains it. Multi-speaker TextGrids name their tiers ``"<speaker> - words"``; one such pair is
    accepted. Raises ValueError naming ``source`` (the file; ``utt_id`` if not given) when a tier is
    missing, a word has no phones, or the phones do not tile their words within 1 ms.
    """
    where = f"{source if source is not None else utt_id}"
    word_tier = _tier(tiers, "words", where)
    phone_tier = _tier(tiers, "phones", where)
    words = [(s, e, label.strip().lower()) for s, e, label in word_tier if label.strip().lower() not in SILENCE_WORDS]
    phones = [
        (s, e, normalise_phone(label)) for s, e, label in phone_tier if label.strip().lower() not in SILENCE_PHONES
    ]
    try:
        groups = group_phones(words, phones, TIME_TOLERANCE)
    except TilingError as exc:
        raise ValueError(f"{where}: utterance {utt_id}: {exc}") from exc
    return UttAlignment(
        utt_id,
        tuple(
            Word(label, start, end, tuple(Phone(phones[i][2], phones[i][0], phones[i][1]) for i in members))
            for (start, end, label), members in zip(words, groups, strict=True)
        ),
    )


def _tier(tiers: Mapping[str, Sequence[Interval]], kind: str, where: str) -> Sequence[Interval]:
    """The tier named ``kind``, or the single tier named ``"<speaker> - <kind>"``."""
    if kind in tiers:
        return tiers[kind]
    matches = [name for name in tiers if name.rsplit("-", 1)[-1].strip() == kind and "-" in name]
    if len(matches) == 1:
        return tiers[matches[0]]
    found = ", ".join(repr(name) for name in tiers) or "none"
    if not matches:
        raise ValueError(f"{where}: no {kind!r} tier (tiers: {found})")
    raise ValueError(f"{where}: several {kind!r} tiers ({found}); one speaker per utterance is expected")


def read_alignment(path: str | os.PathLike[str], utt_id: str | None = None) -> UttAlignment:
    """Read an MFA-style TextGrid file into an :class:`UttAlignment` (``utt_id`` defaults to the file stem)."""
    path = Path(path)
    return alignment_from_textgrid(utt_id or path.stem, read_textgrid(path), path)
