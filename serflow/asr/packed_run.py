"""Run a Whisper backend over packed windows (:mod:`serflow.asr.packing`) and give each utterance its words back.

For each window: read its utterances (unreadable audio becomes a failure, audio under the silence gate an empty
text, as unpacked), lay the rest end to end with ``gap_s`` of zeros between them, decode once, and split the words
by their timestamps. An utterance is transcribed alone, exactly as without packing, when

* it is alone in its window (longer than ``max_utterance_s``, or the last one left over);
* a word of the window could belong to it or to a neighbour (:func:`~serflow.asr.packing.assign_words`);
* it received no word in the window: Whisper skipped it (a window-level "no speech" decision, or text that ran
  together), so its own decode decides whether it is silence;
* the window's words cannot be split at all: a segment with text but no word timestamps, or a decoding loop
  (Whisper repeating a phrase it has no audio for, which also shifts every later word's timestamps; seen on the
  TESS demo's repeated carrier phrase with base): then every utterance of the window is transcribed alone.

Per-utterance ``avg_logprob`` and ``no_speech_prob`` of a packed utterance are those of the window's segments
that held its words, weighted by how many of its words each held (``no_speech_prob`` is a property of a whole
30 s decoding pass, so for a packed utterance it describes its window, not the utterance).
"""

from __future__ import annotations

import logging
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from serflow.asr.backends import (
    COMPRESSION_RATIO_THRESHOLD,
    SAMPLE_RATE,
    AsrResult,
    TranscribeResult,
    WhisperBackend,
    _Segment,
    has_word_char,
    read_or_record,
    speech_segments,
    weighted_mean,
)
from serflow.asr.packing import WHISPER_WINDOW_S, Assignment, PackingSettings, assign_words, layout

log = logging.getLogger(__name__)
Item = tuple[str, str | Path]  # (utt_id, wav path)
ZERO_DURATION_S = 0.005  # a word shorter than this has no duration (Whisper's times are on a 20 ms grid)
MAX_ZERO_DURATION_WORDS = 3  # an utterance with this many words of no duration looped (see _looping)
MAX_WORDS_PER_SECOND = 8.0  # well above speech (at most 5.4 on the demos): more words than that were made up


@dataclass
class PackingReport:
    """What packing did in one run; logged by the caller (the job's log is the record of it)."""

    windows: int = 0  # windows decoded with two or more utterances in them
    packed: int = 0  # utterances whose text came from such a window
    alone: int = 0  # utterances decoded alone from the start (long, or the only one in their window)
    silent: int = 0  # under the silence gate: empty text, not decoded
    retried_ambiguous: int = 0  # decoded alone because a word could not be given to it or a neighbour for sure
    retried_empty: int = 0  # decoded alone because they received no word in their window
    retried_window: int = 0  # decoded alone because their whole window was distrusted (a loop, words without times)
    ambiguous_words: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"packing: {self.windows} windows, {self.packed} utterances packed, {self.alone} alone, "
            f"{self.silent} under the silence gate, {self.retried_ambiguous} retried alone after an ambiguous "
            f"split, {self.retried_empty} retried alone after getting no word, {self.retried_window} retried alone "
            f"with their whole window (a decoding loop)"
        )


@dataclass(frozen=True)
class _Clip:
    utt_id: str
    audio: np.ndarray


def transcribe_windows(
    backend: WhisperBackend, windows: Sequence[Sequence[Item]], settings: PackingSettings
) -> tuple[TranscribeResult, PackingReport]:
    """Transcribe every window's utterances; every item ends up in exactly one of the result's lists."""
    out, report = TranscribeResult(), PackingReport()
    bar = tqdm(windows, desc=f"ASR ({backend.name}, packed)", unit="window", disable=not sys.stderr.isatty())
    for items in bar:
        clips = _read(items, backend, out, report)
        if len(clips) > 1 and _window_seconds(clips, settings) <= WHISPER_WINDOW_S:
            _transcribe_packed(backend, clips, settings, out, report)
        else:
            report.alone += len(clips)
            out.results.extend(backend.transcribe_array(c.utt_id, c.audio) for c in clips)
    return out, report


def _read(items: Sequence[Item], backend: WhisperBackend, out: TranscribeResult, report: PackingReport) -> list[_Clip]:
    """The window's decodable clips; failures and silent clips are settled here, as the unpacked path does."""
    clips = []
    for utt_id, path in items:
        audio = read_or_record(utt_id, path, out)
        if audio is None:
            continue
        if backend.is_silent(audio):
            report.silent += 1
            out.results.append(backend.transcribe_array(utt_id, audio))  # the gate's empty result
            continue
        clips.append(_Clip(utt_id, audio))
    return clips


def _gap(settings: PackingSettings) -> np.ndarray:
    return np.zeros(round(settings.gap_s * SAMPLE_RATE), dtype=np.float32)


def _window_seconds(clips: Sequence[_Clip], settings: PackingSettings) -> float:
    """The window's real length (the plan used the manifest's durations; a resampled clip may differ slightly)."""
    samples = sum(c.audio.size for c in clips) + _gap(settings).size * (len(clips) - 1)
    return samples / SAMPLE_RATE


def _transcribe_packed(
    backend: WhisperBackend,
    clips: Sequence[_Clip],
    settings: PackingSettings,
    out: TranscribeResult,
    report: PackingReport,
) -> None:
    gap = _gap(settings)
    window = np.concatenate([part for c in clips for part in (gap, c.audio)][1:])
    spans = layout([c.audio.size / SAMPLE_RATE for c in clips], gap.size / SAMPLE_RATE)
    segments, language = backend.decode_window(window)
    segments = speech_segments(segments)
    words = [(s, i) for s in segments for i in range(len(s.words))]
    assignment = assign_words([(s.words[i]["start"], s.words[i]["end"]) for s, i in words], spans)
    mine = [[words[i] for i in assignment.words_of(k)] for k in range(len(clips))]
    trouble = _window_trouble(segments, clips, mine)
    if trouble:
        # A loop shifts the alignment of every word after it, so no word of this window is trusted.
        log.warning(
            "window %s..%s: %s; each of its utterances transcribed alone", clips[0].utt_id, clips[-1].utt_id, trouble
        )
        report.retried_window += len(clips)
        out.results.extend(backend.transcribe_array(c.utt_id, c.audio) for c in clips)
        return
    _record_ambiguous(assignment, words, clips, spans, report)
    unsure = assignment.unsure()
    report.windows += 1
    for k, clip in enumerate(clips):
        if k in unsure or not has_word_char(_text(mine[k])):
            if k in unsure:
                report.retried_ambiguous += 1
            else:
                report.retried_empty += 1
            out.results.append(backend.transcribe_array(clip.utt_id, clip.audio))
            continue
        report.packed += 1
        out.results.append(_result(clip, spans[k], mine[k], language))


def _window_trouble(
    segments: Sequence[_Segment], clips: Sequence[_Clip], words: Sequence[Sequence[tuple[_Segment, int]]]
) -> str | None:
    """Why the window's words cannot be split at all, or None: a segment with text but no word timestamps, or an
    utterance whose words look like a decoding loop (:func:`_looping`)."""
    if any(not s.words for s in segments):
        return "a segment has text but no word timestamps"
    for clip, mine in zip(clips, words, strict=True):
        why = _looping(mine, clip.audio.size / SAMPLE_RATE)
        if why:
            return f"{clip.utt_id} looks like a decoding loop ({why})"
    return None


def _looping(words: Sequence[tuple[_Segment, int]], duration: float) -> str | None:
    """Signs that Whisper looped (repeated a phrase it has no audio for), or None.

    Measured on the demos (120 IEMOCAP-layout utterances with tiny.en, 84 TESS-layout with base, each decoded alone
    and packed): a normal transcript has at most 2 words of no duration and at most 5.4 words per second; every
    looped one ("say the word chain, say the word chain, ...") had 3 or more words of no duration (tokens the
    alignment found no audio for). The compression ratio is Whisper's own loop test, applied to one utterance.
    """
    zero = sum(1 for s, i in words if s.words[i]["end"] - s.words[i]["start"] < ZERO_DURATION_S)
    if zero >= MAX_ZERO_DURATION_WORDS:
        return f"{zero} words of no duration"
    ratio = compression_ratio(_text(words))
    if ratio > COMPRESSION_RATIO_THRESHOLD:
        return f"compression ratio {ratio:.2f}"
    rate = len(words) / duration if duration > 0 else 0.0
    if rate > MAX_WORDS_PER_SECOND:
        return f"{rate:.1f} words per second"
    return None


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: the text's UTF-8 length over its zlib-compressed length (0 for no text)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def _record_ambiguous(
    assignment: Assignment,
    words: Sequence[tuple[_Segment, int]],
    clips: Sequence[_Clip],
    spans: Sequence[tuple[float, float]],
    report: PackingReport,
) -> None:
    for i, candidates in assignment.ambiguous:
        segment, j = words[i]
        word = segment.words[j]
        where = " or ".join(f"{clips[k].utt_id} ({spans[k][0]:.2f}-{spans[k][1]:.2f} s)" for k in candidates)
        note = f"{word['word']!r} at {word['start']:.2f}-{word['end']:.2f} s of the window: {where}"
        report.ambiguous_words.append(note)
        log.info("ambiguous word %s (transcribed alone)", note)


def _text(words: Sequence[tuple[_Segment, int]]) -> str:
    """The utterance's text as Whisper wrote it: its words as decoded, concatenated (they carry their spaces)."""
    if all(s.word_texts for s, _ in words):
        return "".join(s.word_texts[i] for s, i in words).strip()
    return " ".join(s.words[i]["word"] for s, i in words).strip()


def _result(clip: _Clip, span: tuple[float, float], words: Sequence[tuple[_Segment, int]], language: str) -> AsrResult:
    """The utterance's result from its words: timestamps moved to its own clip (and kept inside it)."""
    offset, duration = span[0], span[1] - span[0]
    shifted = [_shift(s.words[i], offset, duration) for s, i in words]
    held = list({id(s): s for s, _ in words}.values())  # its segments, in order, once each
    counts = [sum(1 for t, _ in words if t is s) for s in held]
    return AsrResult(
        utt_id=clip.utt_id,
        text=_text(words),
        words=shifted,
        language=language,
        avg_logprob=weighted_mean([s.avg_logprob for s in held], counts),
        no_speech_prob=weighted_mean([s.no_speech_prob for s in held], counts),
        packed=True,
    )


def _shift(word: dict[str, Any], offset: float, duration: float) -> dict[str, Any]:
    """A word in clip time; a word whose timestamps spill into the gap is clipped to the clip."""
    start = min(max(word["start"] - offset, 0.0), duration)
    end = min(max(word["end"] - offset, start), duration)
    # Whisper's times are on a 20 ms grid; rounding drops the float noise of the subtraction (3.0199999...)
    return {**word, "start": round(start, 6), "end": round(end, 6)}
