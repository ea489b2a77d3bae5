"""Praat TextGrids as the Montreal Forced Aligner (MFA) 3 writes and reads them.

Every alignment backend's result can be written as MFA writes it (long "ooTextFile" format, UTF-8,
an IntervalTier ``words`` then an IntervalTier ``phones``, empty-text intervals for silence, both
tiers spanning ``[0, duration]``), so tools built around MFA's output (Praat, notebook scripts,
phonetic analysis packages) work on every backend's output unchanged.

Reading accepts what Praat and MFA produce: the long and the short text formats, UTF-8 (with or
without a byte-order mark) and UTF-16 (Praat's choice for files with non-ASCII labels). The parser
reads the file as Praat does, as a stream of numbers, strings and flags in which the long format's
labels (``xmin =``, ``intervals [3]:``) are decoration, so both formats share one code path.

Like MFA, times are rounded to 6 decimals and an end past the file's duration is clipped to it.
Known differences from MFA's own writer, in edge cases only: MFA leaves gaps of at most 1 ms between
intervals unfilled (the tier then has a hole, which Praat rejects); here every gap is filled with an
empty interval. MFA stretches the last interval to the file's end when it ends within two frames
of it; here times are written as aligned.
"""

from __future__ import annotations

import bisect
import codecs
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    tiers = {
        "words": _filled_tier(words, xmax, alignment.utt_id),
        "phones": _filled_tier(phones, xmax, alignment.utt_id),
    }
    return _long_format(tiers, xmax)


def _filled_tier(intervals: Sequence[Interval], xmax: float, utt_id: str) -> list[Interval]:
    """Round times as MFA does, clip to the file, and fill every gap with an empty interval.

    Frame-based aligners can overshoot the audio's true end by up to a frame; MFA clips such an end to
    the file's duration, and so does this. An interval that starts at or after the end is an error.
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
        if start > cursor:
            out.append((cursor, start, ""))
        out.append((start, end, label))
        cursor = end
    if cursor < xmax or not out:
        out.append((cursor, xmax, ""))
    return out


def _long_format(tiers: Mapping[str, Sequence[Interval]], xmax: float) -> str:
    """Praat's long text format, byte for byte as MFA 3 writes it (note the trailing spaces)."""
    lines = [
        'File type = "ooTextFile"',
        'Object class = "TextGrid"',
        "",
        "xmin = 0 ",
        f"xmax = {_num(xmax)} ",
        "tiers? <exists> ",
        f"size = {len(tiers)} ",
        "item []: ",
    ]
    tab = " " * 4
    for number, (name, intervals) in enumerate(tiers.items(), start=1):
        lines += [
            f"{tab}item [{number}]:",
            f'{tab * 2}class = "IntervalTier" ',
            f"{tab * 2}name = {_quote(name)} ",
            f"{tab * 2}xmin = 0 ",
            f"{tab * 2}xmax = {_num(xmax)} ",
            f"{tab * 2}intervals: size = {len(intervals)} ",
        ]
        for index, (start, end, label) in enumerate(intervals, start=1):
            lines += [
                f"{tab * 2}intervals [{index}]:",
                f"{tab * 3}xmin = {_num(start)} ",
                f"{tab * 3}xmax = {_num(end)} ",
                f"{tab * 3}text = {_quote(label)} ",
            ]
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    """Python's shortest float repr (``0.0``, ``1.25``), which is what MFA's f-strings produce."""
    return repr(round(float(value), _DECIMALS))


def _quote(text: str) -> str:
    """A Praat string: double quotes, with inner quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


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

    Labels are returned as written (not stripped). Raises ValueError naming the file and line when the
    file is not a TextGrid or does not parse.
    """
    return load_textgrid(path).tiers


def load_textgrid(path: str | os.PathLike[str]) -> TextGrid:
    """Like :func:`read_textgrid` but also returns the file's ``xmin``/``xmax``."""
    path = Path(path)
    return parse_textgrid(_decode(path.read_bytes(), path), str(path))


def parse_textgrid(text: str, source: str = "<string>") -> TextGrid:
    """Parse TextGrid text in the long or the short format; ``source`` names it in error messages."""
    stream = _TokenStream(text, source)
    if stream.string("the file type") not in ("ooTextFile", "ooTextFile short"):
        raise ValueError(f"{source}: not a Praat text file (no 'ooTextFile' header)")
    if (kind := stream.string("the object class")) != "TextGrid":
        raise ValueError(f"{source}: the object class is {kind!r}, not 'TextGrid'")
    xmin, xmax = stream.number("xmin"), stream.number("xmax")
    n_tiers = int(stream.number("the tier count")) if stream.flag() else 0
    tiers: dict[str, list[Interval]] = {}
    for _ in range(n_tiers):
        line = stream.line
        name, intervals = _read_tier(stream)
        if name in tiers:
            raise ValueError(f"{source}:{line}: a second tier named {name!r}")
        tiers[name] = intervals
    return TextGrid(xmin, xmax, tiers)


def _read_tier(stream: _TokenStream) -> tuple[str, list[Interval]]:
    tier_class = stream.string("the tier class")
    name = stream.string("the tier name")
    stream.number("the tier's xmin")
    stream.number("the tier's xmax")
    count = int(stream.number("the interval count"))
    if tier_class == "IntervalTier":
        return name, [(stream.number("xmin"), stream.number("xmax"), stream.string("text")) for _ in range(count)]
    if tier_class == "TextTier":
        points = []
        for _ in range(count):
            time = stream.number("a point's time")
            points.append((time, time, stream.string("mark")))
        return name, points
    raise ValueError(f"{stream.source}:{stream.line}: unknown tier class {tier_class!r}")


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


# A quoted string (inner quotes doubled), a "[...]" index to skip, a "!" comment, or any other bare word.
_TOKEN = re.compile(r'"(?:[^"]|"")*"|\[[^\]\n]*\]|![^\n]*|[^\s"\[]+')


class _TokenStream:
    """The values of a Praat text file in order: numbers, strings and ``<exists>``/``<absent>`` flags.

    Bare words that are neither numbers nor flags (the long format's ``xmin =``, ``intervals:``) and
    bracketed indices are skipped, which is how one reader handles both the long and the short format.
    """

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self._text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]
        self._tokens = self._values()
        self.line = 1
        if text.count('"') % 2:  # every string has two quotes, inner quotes are doubled: the count is even
            raise ValueError(f"{source}: unbalanced quotes (an unterminated string)")

    def _values(self) -> Iterator[tuple[int, str, str | float]]:
        for match in _TOKEN.finditer(self._text):
            token = match.group()
            line = bisect.bisect_left(self._newlines, match.start()) + 1
            if token.startswith('"'):
                yield line, "string", token[1:-1].replace('""', '"')
            elif token in ("<exists>", "<absent>"):
                yield line, "flag", token
            elif (number := _as_number(token)) is not None:
                yield line, "number", number

    def _next(self, kind: str, what: str) -> str | float:
        try:
            line, found, value = next(self._tokens)
        except StopIteration:
            raise ValueError(f"{self.source}: the file ends where {what} was expected") from None
        self.line = line
        if found != kind:
            raise ValueError(f"{self.source}:{line}: expected {what} ({kind}), found {found} {value!r}")
        return value

    def number(self, what: str) -> float:
        return float(self._next("number", what))

    def string(self, what: str) -> str:
        return str(self._next("string", what))

    def flag(self) -> bool:
        return self._next("flag", "the '<exists>' flag") == "<exists>"


def _as_number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


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
