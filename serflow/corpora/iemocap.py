"""Reader for IEMOCAP_full_release (and the synthetic demo corpus written in its layout).

Labels come from the consensus line of ``dialog/EmoEvaluation/<dialog>.txt`` only; the per-annotator
sub-folders (Categorical/, Attribute/, Self-evaluation/) and macOS ``._*`` files are ignored.
Transcripts are the text after the FIRST ``]: `` of each ``dialog/transcriptions`` line, because
transcripts themselves may contain colons. Facts and traps: shared/reference/iemocap.md.
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


def read_iemocap(root: Path | str, labels: Sequence[str], merge: Mapping[str, str] | None = None) -> ReadResult:
    """Read every labelled turn under ``root`` (an ``IEMOCAP_full_release`` folder).

    Raises :class:`CorpusError` for a wrong root or a consensus line that does not parse (naming the
    file and line). Utterances that cannot be used (missing or unreadable wav, no transcript, an id
    that occurs twice) are quarantined in ``ReadResult.issues`` with the reason.
    """
    label_map = LabelMap.of(labels, merge)
    root = _check_root(Path(root))
    issues = IssueLog()
    turns = _read_evaluations(root, issues)
    transcripts = _read_transcripts(root, {t.dialog for t in turns}, issues)
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


def _label_files(root: Path, session: int, sub: str) -> list[Path]:
    folder = root / f"Session{session}" / "dialog" / sub
    if not folder.is_dir():
        return []
    # Only the top level: sub-folders hold per-annotator files. `._*` are macOS AppleDouble junk.
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith("._"))


def _read_evaluations(root: Path, issues: IssueLog) -> list[_Turn]:
    turns: list[_Turn] = []
    seen: dict[str, list[_Turn]] = defaultdict(list)
    for session in SESSIONS:
        for path in _label_files(root, session, "EmoEvaluation"):
            for turn in _parse_evaluation(path, session, issues):
                seen[turn.utt_id].append(turn)
                turns.append(turn)
    duplicated = {utt for utt, found in seen.items() if len(found) > 1}
    for utt in sorted(duplicated):
        places = ", ".join(t.where for t in seen[utt])
        for turn in seen[utt]:
            path, line = turn.where.rsplit(":", 1)
            issues.drop(utt, path, int(line), f"utterance id occurs {len(seen[utt])} times ({places})")
    return [t for t in turns if t.utt_id not in duplicated]


def _parse_evaluation(path: Path, session: int, issues: IssueLog) -> list[_Turn]:
    dialog = path.stem
    turns = []
    for number, line in decoded_lines(path, issues):
        if not line.startswith("["):
            continue  # header, blank and per-annotator lines
        match = _CONSENSUS.match(line)
        if match is None:
            raise CorpusError(f"{path}:{number}: cannot parse EmoEvaluation line {line!r}")
        start, end, utt_id, raw_label, val, act, dom = match.groups()
        id_match = _UTT_ID.match(utt_id)
        if id_match is None or int(id_match["session"]) != session or not utt_id.startswith(dialog + "_"):
            raise CorpusError(
                f"{path}:{number}: utterance id {utt_id!r} is not of the form {dialog}_F000 in Session{session}"
            )
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


def _read_transcripts(root: Path, dialogs: set[str], issues: IssueLog) -> dict[str, str | None]:
    """utt_id -> transcript; None marks an id whose lines disagree (the reason is logged by the caller)."""
    texts: dict[str, str | None] = {}
    for session in SESSIONS:
        for path in _label_files(root, session, "transcriptions"):
            if path.stem not in dialogs:
                continue
            for _number, line in decoded_lines(path, issues):
                head, sep, text = line.partition("]: ")
                if not sep:
                    continue  # blank or unlabelled lines without a time stamp
                utt_id = head.split(" ", 1)[0]
                text = text.strip()
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
