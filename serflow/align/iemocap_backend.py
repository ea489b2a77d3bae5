"""IEMOCAP's own forced alignments (``sentences/ForcedAlignment``) as an alignment backend.

IEMOCAP ships a Sphinx alignment of every turn against its own transcript: ``<utt>.wdseg`` (words)
and ``<utt>.phseg`` (phones), columns ``SFrm EFrm SegAScr Word|Phone`` in 10 ms frames, a header line
and a ``Total score`` footer. Reading them costs seconds where aligning costs hours, and they are what
papers using IEMOCAP word timings used. Facts and traps: shared/reference/iemocap.md.

Choices, so the output matches the other backends (MFA's english_us_arpa conventions):

* Times: ``start = SFrm / 100``, ``end = (EFrm + 1) / 100`` (EFrm is the last frame, inclusive).
* Not words: ``<s>``, ``</s>``, ``<sil>`` (silence) and Sphinx filler words ``++BREATH++``,
  ``++LAUGH++``, ``++NOISE++``, ``++GARBAGE++``... (non-speech); their phones (``SIL``, ``+BREATH+``...)
  are dropped with them, as MFA leaves silence unlabelled.
* Words lose their pronunciation variant (``WHAT(2)`` -> ``what``) and are lower-cased.
* Phones: IEMOCAP uses the CMU Sphinx set, ARPAbet without stress; labels are upper-cased, stress
  digits (if any) stripped, and anything outside the 39 ARPAbet phones is an error. Some Sphinx
  versions write the left/right context and word position after the phone (``AH K T i``); only the
  fourth column is read.
* The item's text is not used: these alignments are against IEMOCAP's transcript.

Utterances with no ``.wdseg`` (two in the release), a missing ``.phseg``, or a file that does not
parse go to ``fallback`` (another backend) in one batch, or become Failures with the reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from serflow.align.textgrid import TilingError, group_phones
from serflow.align.types import AlignItem, AlignResult, Failure, Phone, UttAlignment, Word

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 100
ARPABET = frozenset(
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W Y Z ZH".split()
)
SILENCE_WORDS = frozenset({"<s>", "</s>", "<sil>"})
SILENCE_PHONES = frozenset({"SIL"})
_ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+(-?\d+)\s+(\S+)(?:\s+\S+)*\s*$")
_VARIANT = re.compile(r"\(\d+\)$")
_UTT_ID = re.compile(r"^Ses(?P<session>\d\d)[FM]_.+_[FM]\d+$")

Fallback = Callable[[list[AlignItem]], AlignResult]


@dataclass(frozen=True)
class Segment:
    """One row of a .wdseg / .phseg file: frames as a half-open range ``[first, last + 1)``."""

    first: int
    stop: int
    label: str
    line: int


def align_from_iemocap(items: Sequence[AlignItem], root: Path, fallback: Fallback | None = None) -> AlignResult:
    """Alignments of ``items`` read from IEMOCAP's ``.wdseg``/``.phseg`` files under ``root``.

    ``root`` is ``IEMOCAP_full_release`` (it must exist: a wrong root is a configuration error, raised
    as ValueError, not ten thousand failures). Utterances that cannot be read from IEMOCAP's files are
    passed to ``fallback`` once, as one list, and its result is merged in; with no fallback they are
    listed as failures. ``details`` records how many came from each source, why each fell back, and
    the utterances whose segments hold no spoken word (only silence, breath or laughter): those are
    aligned, with no words, rather than failures, because there is nothing for another aligner to find.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"IEMOCAP root {root} does not exist or is not a folder")
    alignments: list[UttAlignment] = []
    rejected: dict[str, str] = {}
    for item in items:
        try:
            alignments.append(read_iemocap_alignment(item.utt_id, root))
        except (OSError, ValueError) as exc:
            rejected[item.utt_id] = str(exc)
    details: dict[str, object] = {
        "iemocap_aligned": len(alignments),
        "iemocap_no_words": sorted(a.utt_id for a in alignments if not a.words),
        "iemocap_rejected": dict(sorted(rejected.items())),
    }
    result = AlignResult(alignments=alignments, backend="iemocap", details=details)
    if rejected:
        log.info("%d of %d utterances not readable from IEMOCAP's alignments", len(rejected), len(items))
    return result.merge(_handle_rejected(items, rejected, fallback))


def _handle_rejected(items: Sequence[AlignItem], rejected: dict[str, str], fallback: Fallback | None) -> AlignResult:
    if not rejected:
        return AlignResult()
    if fallback is None:
        failures = [Failure(utt, f"IEMOCAP alignment unusable: {why}") for utt, why in rejected.items()]
        return AlignResult(failures=failures)
    chosen = [item for item in items if item.utt_id in rejected]
    other = fallback(chosen)
    return AlignResult(
        alignments=other.alignments,
        failures=other.failures,
        oovs=other.oovs,
        details={**other.details, "fallback_backend": other.backend, "fallback_count": len(chosen)},
    )


def segment_paths(utt_id: str, root: Path) -> tuple[Path, Path]:
    """``root/SessionN/sentences/ForcedAlignment/<dialog>/<utt>.wdseg`` and its ``.phseg``."""
    match = _UTT_ID.match(utt_id)
    if match is None:
        raise ValueError(f"{utt_id!r} is not an IEMOCAP utterance id (like Ses01F_impro01_F000)")
    dialog = utt_id.rsplit("_", 1)[0]
    folder = root / f"Session{int(match['session'])}" / "sentences" / "ForcedAlignment" / dialog
    return folder / f"{utt_id}.wdseg", folder / f"{utt_id}.phseg"


def read_iemocap_alignment(utt_id: str, root: Path) -> UttAlignment:
    """One utterance's alignment; raises ValueError (naming the file and line) or FileNotFoundError."""
    wdseg, phseg = segment_paths(utt_id, root)
    for path in (wdseg, phseg):
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
    words = read_segments(wdseg)
    phones = read_segments(phseg)
    return build_alignment(utt_id, words, phones, wdseg, phseg)


def read_segments(path: Path) -> list[Segment]:
    """The rows of a .wdseg or .phseg file; the header must come first and the footer last."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from exc
    rows: list[Segment] = []
    header = footer = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or footer:  # whatever follows the footer (a score summary) is not data
            continue
        if not header:
            if stripped.split()[:3] != ["SFrm", "EFrm", "SegAScr"]:
                raise ValueError(f"{path}:{number}: expected the header 'SFrm EFrm SegAScr ...', found {line!r}")
            header = True
        elif stripped.startswith("Total score"):
            footer = True
        else:
            rows.append(_row(path, number, line, rows[-1] if rows else None))
    if not footer:
        raise ValueError(f"{path}: no 'Total score' footer: the file looks truncated")
    if not rows:
        raise ValueError(f"{path}: no segments between the header and the footer")
    return rows


def _row(path: Path, number: int, line: str, previous: Segment | None) -> Segment:
    match = _ROW.match(line)
    if match is None:
        raise ValueError(f"{path}:{number}: cannot parse {line!r} (expected 'SFrm EFrm SegAScr label')")
    first, last = int(match[1]), int(match[2])
    if last < first:
        raise ValueError(f"{path}:{number}: segment ends (frame {last}) before it starts (frame {first})")
    if previous is not None and first < previous.stop:
        raise ValueError(f"{path}:{number}: segment starts at frame {first}, inside the previous segment")
    return Segment(first, last + 1, match[4], number)


def build_alignment(
    utt_id: str, words: Sequence[Segment], phones: Sequence[Segment], wdseg: Path, phseg: Path
) -> UttAlignment:
    """Assign phones to words by frame containment and keep the spoken words (see the module notes)."""
    try:
        groups = group_phones(_spans(words), _spans(phones), tol=0)
    except TilingError as exc:
        where = f"{phseg}:{phones[exc.phone].line}" if exc.phone is not None else f"{wdseg}:{words[exc.word or 0].line}"
        raise ValueError(f"{where}: {exc}") from exc
    kept: list[Word] = []
    for word, members in zip(words, groups, strict=True):
        label = normalise_word(word.label)
        if label is None:
            continue
        word_phones = tuple(_phone(phones[i], phseg, wdseg, word) for i in members)
        kept.append(Word(label, _seconds(word.first), _seconds(word.stop), word_phones))
    return UttAlignment(utt_id, tuple(kept))


def _spans(segments: Sequence[Segment]) -> list[tuple[float, float, str]]:
    return [(s.first, s.stop, s.label) for s in segments]


def normalise_word(label: str) -> str | None:
    """``WHAT(2)`` -> ``what``; None for silence (``<s>``, ``</s>``, ``<sil>``) and fillers (``++LAUGH++``)."""
    if label.lower() in SILENCE_WORDS or _is_filler(label):
        return None
    return _VARIANT.sub("", label).lower()


def normalise_phone(label: str) -> str | None:
    """An ARPAbet phone without stress; None for silence and filler phones; ValueError for others."""
    if label.upper() in SILENCE_PHONES or _is_filler(label):
        return None
    phone = re.sub(r"[0-2]$", "", label.upper())
    if phone not in ARPABET:
        raise ValueError(f"{label!r} is not an ARPAbet phone")
    return phone


def _is_filler(label: str) -> bool:
    """Sphinx filler tokens are wrapped in plus signs: ``++LAUGH++`` (word), ``+LAUGH+`` (phone)."""
    return len(label) > 2 and label.startswith("+") and label.endswith("+")


def _phone(segment: Segment, phseg: Path, wdseg: Path, word: Segment) -> Phone:
    try:
        phone = normalise_phone(segment.label)
    except ValueError as exc:
        raise ValueError(f"{phseg}:{segment.line}: {exc}") from exc
    if phone is None:
        raise ValueError(
            f"{phseg}:{segment.line}: non-speech phone {segment.label!r} inside word {word.label!r} "
            f"({wdseg}:{word.line})"
        )
    return Phone(phone, _seconds(segment.first), _seconds(segment.stop))


def _seconds(frame: int) -> float:
    return frame / FRAMES_PER_SECOND
