"""Reader for TESS (Toronto Emotional Speech Set), as used by the MultiModal-ER report.

Every file is ``<OAF|YAF>_<word>_<emotion>.wav``: two female speakers (older, younger) saying
"Say the word <word>." in seven emotions (angry, disgust, fear, happy, neutral, ps = pleasant
surprise, sad). Folder names vary between distributions, so only the file name is trusted. Some
distributions hold the whole set twice in nested folders: byte-identical copies are kept once and
the extra copies recorded; copies that differ are both quarantined.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from serflow.corpora.audio import AudioError, probe
from serflow.corpora.manifest import MANIFEST_COLUMNS, CorpusError, IssueLog, LabelMap, ReadResult

log = logging.getLogger(__name__)

TESS_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
_SPEAKER_SESSION = {"OAF": 1, "YAF": 2}  # each speaker was recorded on her own: one "session" each
_EMOTION_ALIASES = {
    "pleasant_surprise": "ps",
    "pleasant_surprised": "ps",
    "surprise": "ps",
    "surprised": "ps",
}
_NAME = re.compile(r"^(?P<speaker>OAF|YAF)_(?P<word>[a-z]+)_(?P<emotion>[a-z_]+)\.wav$", re.IGNORECASE)


def parse_name(name: str) -> tuple[str, str, str] | None:
    """``("OAF", "back", "ps")`` for ``OAF_back_ps.wav``; None when the name does not follow the scheme."""
    match = _NAME.match(name)
    if match is None:
        return None
    emotion = match["emotion"].lower()
    emotion = _EMOTION_ALIASES.get(emotion, emotion)
    if emotion not in TESS_LABELS:
        return None
    return match["speaker"].upper(), match["word"].lower(), emotion


def read_tess(
    root: Path | str,
    labels: Sequence[str] = TESS_LABELS,
    merge: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
) -> ReadResult:
    """Read every ``*.wav`` under ``root`` (recursively). A file whose name does not parse is quarantined with the
    reason (with ``strict``: a :class:`CorpusError` naming it)."""
    label_map = LabelMap.of(labels, merge)
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"TESS root {root} does not exist or is not a folder")
    wavs = sorted(p for p in root.resolve().rglob("*") if p.suffix.lower() == ".wav" and not p.name.startswith("._"))
    if not wavs:
        raise CorpusError(f"TESS root {root} holds no .wav files")
    issues = IssueLog()
    by_id: dict[str, list[Path]] = defaultdict(list)
    for wav in wavs:
        parsed = parse_name(wav.name)
        if parsed is None:
            reason = "file name is not <OAF|YAF>_<word>_<emotion>.wav with a TESS emotion"
            if strict:
                raise CorpusError(f"{wav}: {reason} (strict: rename or remove it, or read without strict)")
            issues.drop(None, wav, None, reason)
            continue
        by_id["_".join(parsed)].append(wav)
    rows = []
    for utt_id in sorted(by_id):
        wav = _one_copy(utt_id, by_id[utt_id], issues)
        if wav is None:
            continue
        try:
            info = probe(wav)
        except AudioError as exc:
            issues.drop(utt_id, wav, None, str(exc))
            continue
        speaker, word, emotion = utt_id.split("_")
        rows.append(
            {
                "utt_id": utt_id,
                "session": _SPEAKER_SESSION[speaker],
                "speaker": speaker,
                "gender": "F",
                "dialog": f"{speaker}_{emotion}",
                "improvised": False,
                "start": None,
                "end": None,
                "audio_path": str(wav),
                "duration": info.duration,
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "raw_label": emotion,
                "label": label_map.apply(emotion),
                "valence": None,
                "arousal": None,
                "dominance": None,
                "transcript": f"Say the word {word}.",
            }
        )
    result = ReadResult(manifest=pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)), issues=issues.frame())
    log.info(result.summary())
    return result


def _one_copy(utt_id: str, copies: list[Path], issues: IssueLog) -> Path | None:
    if len(copies) == 1:
        return copies[0]
    digests = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in copies}
    if len(set(digests.values())) == 1:
        for extra in copies[1:]:
            issues.drop(utt_id, extra, None, f"byte-identical copy of {copies[0]}; kept once")
        return copies[0]
    for path in copies:
        issues.drop(utt_id, path, None, f"{len(copies)} different files claim this utterance id")
    return None
