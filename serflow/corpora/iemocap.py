"""Reader for IEMOCAP_full_release (and the synthetic demo corpus written in its layout).

Labels come from the consensus line of ``dialog/EmoEvaluation/<dialog>.txt`` only; the per-annotator
sub-folders (Categorical/, Attribute/, Self-evaluation/) and macOS ``._*`` files are ignored.
Transcripts are the text after the FIRST ``]:`` of each ``dialog/transcriptions`` line, because
transcripts themselves may contain colons. Facts and traps: shared/reference/iemocap.md.

One bad line does not cost the corpus: a consensus line that does not parse, or whose utterance id does not
belong to its file, is quarantined with the file, line and reason, and reading goes on; a ``.txt`` beside the
label files whose name is not a dialog's (``Ses01F_impro01 copy.txt``, a backup) is skipped and listed. With
``strict=True`` both stop the reader with a :class:`CorpusError` naming the file and line, as before.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serflow.corpora.audio import AudioError, probe
from serflow.corpora.manifest import MANIFEST_COLUMNS, CorpusError, IssueLog, LabelMap, ReadResult
from serflow.corpora.text import decoded_lines

log = logging.getLogger(__name__)

SESSIONS = (1, 2, 3, 4, 5)
_NUM = r"(\d+(?:\.\d*)?)"
_CONSENSUS = re.compile(
    rf"^\[\s*{_NUM}\s*-\s*{_NUM}\s*\]\s+(\S+)\s+(\S+)\s+\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]\s*$"
)
_UTT_ID = re.compile(r"^Ses0(?P<session>\d)[FM]_.+_(?P<gender>[FM])\d+$")
_DIALOG_FILE = re.compile(r"^Ses0\d[FM]_[A-Za-z0-9_]+\.txt$")
_ID_IN_LINE = re.compile(r"\bSes0\d[FM]_\S+_[FM]\d+\b")
_TRANSCRIPT = re.compile(r"^(?P<utt>\S+)\s+\[[^\]]*\]:(?P<text>.*)$")


@dataclass(frozen=True)
class _Turn:
    utt_id: str
    dialog: str
    session: int
    gender: str
    start: float
    end: float
    raw_label: str
    valence: float
    arousal: float
    dominance: float
    where: str  # "file:line", for messages


def read_iemocap(
    root: Path | str, labels: Sequence[str], merge: Mapping[str, str] | None = None, *, strict: bool = False
) -> ReadResult:
    """Read every labelled turn under ``root`` (an ``IEMOCAP_full_release`` folder).

    Raises :class:`CorpusError` for a wrong root. Utterances that cannot be used (a consensus line that does not
    parse, missing or unreadable wav, no transcript, an id that occurs twice) are quarantined in
    ``ReadResult.issues`` with the reason; stray files beside the label files are skipped and listed. With
    ``strict`` a bad line or a stray file is a :class:`CorpusError` naming the file and line instead.
    """
    label_map = LabelMap.of(labels, merge)
    root = _check_root(Path(root))
    issues = IssueLog()
    turns = _read_evaluations(root, issues, strict)
    transcripts = _read_transcripts(root, {t.dialog for t in turns}, issues, strict)
    rows = []
    for turn in turns:
        row = _manifest_row(root, turn, transcripts, label_map, issues)
        if row is not None:
            rows.append(row)
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    result = ReadResult(manifest=manifest, issues=issues.frame())
    log.info(result.summary())
    return result


def _check_root(root: Path) -> Path:
    if not root.exists():
        raise CorpusError(f"IEMOCAP root {root} does not exist (set corpora.<name>.root to IEMOCAP_full_release)")
    if not root.is_dir():
        raise CorpusError(f"IEMOCAP root {root} is not a folder")
    present = [s for s in SESSIONS if (root / f"Session{s}" / "dialog" / "EmoEvaluation").is_dir()]
    if not present:
        hint = ""
        if (root / "IEMOCAP_full_release").is_dir():
            hint = f"; did you mean {root / 'IEMOCAP_full_release'}?"
        raise CorpusError(
            f"{root} does not look like IEMOCAP_full_release: no Session1..Session5/dialog/EmoEvaluation{hint}"
        )
    missing = [s for s in SESSIONS if s not in present]
    if missing:
        log.warning("IEMOCAP root %s has no Session%s: reading the sessions present", root, missing)
    return root.resolve()


def _label_files(
    root: Path, session: int, sub: str, issues: IssueLog | None = None, strict: bool = False
) -> list[Path]:
    """The dialogs' files of one session's ``sub`` folder; other ``.txt`` files there are stray (skipped, listed)."""
    folder = root / f"Session{session}" / "dialog" / sub
    if not folder.is_dir():
        return []
    # Only the top level: sub-folders hold per-annotator files. `._*` are macOS AppleDouble junk.
    files = sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("._"))
    stray = [p for p in files if not _DIALOG_FILE.match(p.name)]
    for path in stray:
        reason = "not a dialog's file (names are like Ses01F_impro01.txt): a stray copy? not read"
        if strict:
            raise CorpusError(f"{path}: {reason} (strict: remove it, or read without strict)")
        if issues is not None:
            issues.skip(path, reason)
    return [p for p in files if p not in stray]


def _read_evaluations(root: Path, issues: IssueLog, strict: bool) -> list[_Turn]:
    turns: list[_Turn] = []
    seen: dict[str, list[_Turn]] = defaultdict(list)
    for session in SESSIONS:
        for path in _label_files(root, session, "EmoEvaluation", issues, strict):
            for turn in _parse_evaluation(path, session, issues, strict):
                seen[turn.utt_id].append(turn)
                turns.append(turn)
    duplicated = {utt for utt, found in seen.items() if len(found) > 1}
    for utt in sorted(duplicated):
        places = ", ".join(t.where for t in seen[utt])
        for turn in seen[utt]:
            path, line = turn.where.rsplit(":", 1)
            issues.drop(utt, path, int(line), f"utterance id occurs {len(seen[utt])} times ({places})")
    return [t for t in turns if t.utt_id not in duplicated]


def _parse_evaluation(path: Path, session: int, issues: IssueLog, strict: bool) -> list[_Turn]:
    dialog = path.stem
    turns = []
    for number, line in decoded_lines(path, issues):
        if not line.startswith("["):
            continue  # header, blank and per-annotator lines
        match = _CONSENSUS.match(line)
        problem = f"cannot parse EmoEvaluation line {line!r}" if match is None else None
        if match is not None:
            start, end, utt_id, raw_label, val, act, dom = match.groups()
            id_match = _UTT_ID.match(utt_id)
            if id_match is None or int(id_match["session"]) != session or not utt_id.startswith(dialog + "_"):
                problem = f"utterance id {utt_id!r} is not of the form {dialog}_F000 in Session{session}"
        if problem is not None:
            if strict:
                raise CorpusError(f"{path}:{number}: {problem}")
            found = _ID_IN_LINE.search(line)
            issues.drop(found.group(0) if found else None, path, number, problem)
            continue
        turns.append(
            _Turn(
                utt_id=utt_id,
                dialog=dialog,
                session=session,
                gender=id_match["gender"],
                start=float(start),
                end=float(end),
                raw_label=raw_label.lower(),
                valence=float(val),
                arousal=float(act),
                dominance=float(dom),
                where=f"{path}:{number}",
            )
        )
    return turns


def _read_transcripts(root: Path, dialogs: set[str], issues: IssueLog, strict: bool) -> dict[str, str | None]:
    """utt_id -> transcript; None marks an id whose lines disagree (the reason is logged by the caller)."""
    texts: dict[str, str | None] = {}
    for session in SESSIONS:
        for path in _label_files(root, session, "transcriptions", issues, strict):
            if path.stem not in dialogs:
                continue
            for number, line in decoded_lines(path, issues):
                match = _TRANSCRIPT.match(line)  # "<utt> [start-end]: text", text after the first "]:"
                if match is None:
                    continue  # blank or unlabelled lines without a time stamp
                utt_id, text = match["utt"], match["text"].strip()
                if not text and utt_id not in texts:
                    issues.note(
                        utt_id, path, number, "empty transcript (nothing after ']:'): kept; text stores drop it"
                    )
                if utt_id in texts and texts[utt_id] != text:
                    texts[utt_id] = None
                else:
                    texts[utt_id] = text
    return texts


def _manifest_row(
    root: Path, turn: _Turn, transcripts: dict[str, str | None], label_map: LabelMap, issues: IssueLog
) -> dict[str, object] | None:
    where_path, where_line = turn.where.rsplit(":", 1)
    if turn.utt_id not in transcripts:
        issues.drop(turn.utt_id, where_path, int(where_line), f"no line in transcriptions/{turn.dialog}.txt")
        return None
    transcript = transcripts[turn.utt_id]
    if transcript is None:
        issues.drop(
            turn.utt_id,
            where_path,
            int(where_line),
            f"transcriptions/{turn.dialog}.txt has conflicting lines for this utterance",
        )
        return None
    wav = root / f"Session{turn.session}" / "sentences" / "wav" / turn.dialog / f"{turn.utt_id}.wav"
    try:
        info = probe(wav)
    except AudioError as exc:
        issues.drop(turn.utt_id, wav, None, str(exc))
        return None
    return {
        "utt_id": turn.utt_id,
        "session": turn.session,
        "speaker": f"Ses{turn.session:02d}{turn.gender}",
        "gender": turn.gender,
        "dialog": turn.dialog,
        "improvised": "_impro" in turn.dialog,
        "start": turn.start,
        "end": turn.end,
        "audio_path": str(wav),
        "duration": info.duration,
        "sample_rate": info.sample_rate,
        "channels": info.channels,
        "raw_label": turn.raw_label,
        "label": label_map.apply(turn.raw_label),
        "valence": turn.valence,
        "arousal": turn.arousal,
        "dominance": turn.dominance,
        "transcript": transcript,
    }
