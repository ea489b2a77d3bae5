"""Two Whisper implementations behind one interface: faster-whisper (CTranslate2) and openai-whisper.

Both load the model once per backend object and decode the same way, so their outputs are comparable
and each is reproducible:

* Deterministic decoding: temperature 0 only (no fallback to sampling), a fixed beam, the language
  given rather than detected; the same input gives the same bytes on the same machine and settings.
* Audio is read here (soundfile, down-mixed, resampled to 16 kHz with soxr) and passed as an array,
  so both libraries see identical samples and neither shells out to ffmpeg.
* Silence: Whisper hallucinates on silence ("you", " . ."). A clip whose RMS level is below
  ``silence_dbfs`` is not decoded at all, and segments whose text holds no letter or digit are dropped;
  such utterances get an empty text.
* Bad input: a missing or unreadable wav is recorded in :attr:`TranscribeResult.failures` with the
  reason; it does not stop the other utterances.

``avg_logprob`` of an utterance is the token-weighted mean of its segments' ``avg_logprob`` (i.e. the
mean log-probability per token over the whole utterance); ``no_speech_prob``, a property of each 30 s
decoding window, is the duration-weighted mean over segments. Both are null when no segment was kept
(silence gate, or only punctuation decoded).
"""

from __future__ import annotations

import math
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from serflow.corpora.audio import AudioError, probe

SAMPLE_RATE = 16_000
# Whisper's own thresholds (both libraries' defaults), stated so the two backends provably agree.
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
DEFAULT_SILENCE_DBFS = -60.0
_HAS_WORD_CHAR = re.compile(r"\w")

BackendName = Literal["faster-whisper", "openai-whisper"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class AsrResult:
    """One transcribed utterance.

    ``words``: dicts with ``word`` (without Whisper's leading space), ``start`` and ``end`` (seconds from
    the start of the clip) and ``probability``. ``packed``: the text comes from a window shared with other
    utterances (:mod:`serflow.asr.packing`), not from decoding this clip alone.
    """

    utt_id: str
    text: str
    words: list[dict[str, Any]]
    language: str
    avg_logprob: float | None
    no_speech_prob: float | None
    packed: bool = False


@dataclass(frozen=True)
class AsrFailure:
    """An utterance that could not be transcribed because its audio could not be read."""

    utt_id: str
    audio_path: str
    reason: str


@dataclass
class TranscribeResult:
    """What :meth:`WhisperBackend.transcribe` returns: every input item is in exactly one of the lists."""

    results: list[AsrResult] = field(default_factory=list)
    failures: list[AsrFailure] = field(default_factory=list)


@dataclass(frozen=True)
class _Segment:
    """The library-independent part of a decoded segment.

    ``word_texts``: each word as decoded, leading space and attached punctuation included, so that a packed
    window's words rebuild exactly the text Whisper wrote for them (they concatenate to ``text``); empty when the
    decoder gave none (the words' stripped forms are then joined with spaces).
    """

    text: str
    words: list[dict[str, Any]]
    n_tokens: int
    start: float
    end: float
    avg_logprob: float
    no_speech_prob: float
    word_texts: tuple[str, ...] = ()


def read_audio(path: str | Path) -> np.ndarray:
    """16 kHz mono float32 samples of ``path``; raises :class:`AudioError` with the reason when unusable.

    Multi-channel audio is averaged; other rates are resampled with soxr (high quality).
    """
    probe(path)  # missing, unreadable, empty or truncated files get the corpus reader's reasons
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise AudioError(f"audio file unreadable ({str(exc).strip().splitlines()[-1]})") from exc
    mono = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    if not np.all(np.isfinite(mono)):
        raise AudioError("audio file holds non-finite samples")
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_or_record(utt_id: str, path: str | Path, out: TranscribeResult) -> np.ndarray | None:
    """:func:`read_audio`, or None after recording in ``out`` why the file cannot be used (a failure naming it)."""
    try:
        return read_audio(path)
    except AudioError as exc:
        out.failures.append(AsrFailure(utt_id=utt_id, audio_path=str(path), reason=str(exc)))
        return None


def level_dbfs(audio: np.ndarray) -> float:
    """RMS level relative to full scale; -inf for digital silence."""
    if audio.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


class WhisperBackend(ABC):
    """Reads audio, applies the silence gate, collects failures and results; subclasses only decode."""

    name: str

    def __init__(
        self,
        model: str,
        device: str,
        compute_type: str,
        threads: int,
        beam_size: int,
        language: str,
        silence_dbfs: float = DEFAULT_SILENCE_DBFS,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, not {beam_size}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self.model = model
        self.device = device
        self.compute_type = compute_type
        self.threads = threads
        self.beam_size = beam_size
        self.language = language
        self.silence_dbfs = silence_dbfs
        self._model = self._load()

    @property
    def settings(self) -> dict[str, Any]:
        """Everything that determines the output, recorded beside it (and checked when shards are merged)."""
        return {
            "backend": self.name,
            "library_version": self.library_version(),
            "model": self.model,
            "device": self.device,
            "compute_type": self.compute_type,
            "beam_size": self.beam_size,
            "language": self.language,
            "temperature": 0.0,
            "silence_dbfs": self.silence_dbfs,
        }

    def transcribe(self, items: Sequence[tuple[str, str | Path]]) -> TranscribeResult:
        """Transcribe ``(utt_id, wav_path)`` pairs in the given order; unreadable audio becomes a failure."""
        out = TranscribeResult()
        bar = tqdm(items, desc=f"ASR ({self.name})", unit="utt", disable=not sys.stderr.isatty())
        for utt_id, path in bar:
            audio = read_or_record(utt_id, path, out)
            if audio is not None:
                out.results.append(self.transcribe_array(utt_id, audio))
        return out

    def transcribe_array(self, utt_id: str, audio: np.ndarray) -> AsrResult:
        """Transcribe 16 kHz mono float32 samples (the silence gate applies here too)."""
        if self.is_silent(audio):
            return AsrResult(utt_id, "", [], self.language, None, None)
        segments, language = self._decode(audio)
        return _combine(utt_id, speech_segments(segments), language)

    def is_silent(self, audio: np.ndarray) -> bool:
        """Below the silence gate: not decoded at all, the text is empty."""
        return level_dbfs(audio) < self.silence_dbfs

    def decode_window(self, audio: np.ndarray) -> tuple[list[_Segment], str]:
        """Decode a window of several packed utterances (:mod:`serflow.asr.packed_run`).

        Without conditioning on previous text: when Whisper needs a second pass over the window (its last
        segment unfinished), the text already decoded is not fed back as a prompt, so a misrecognition cannot
        carry over from one pass to the next. Within one pass the decoder is autoregressive over the whole
        window, so utterance k's text is decoded after, and may be influenced by, utterances 0..k-1's text.
        """
        return self._decode(audio, condition_on_previous_text=False)

    @abstractmethod
    def _load(self) -> Any:
        """Load the model; called once, by the constructor."""

    @abstractmethod
    def _decode(self, audio: np.ndarray, condition_on_previous_text: bool = True) -> tuple[list[_Segment], str]:
        """Decode the whole clip: its segments and the language the library reports. ``condition_on_previous_text``
        is both libraries' option of that name (their default, True, for a clip decoded alone)."""

    @abstractmethod
    def library_version(self) -> str:
        """The implementing library's version, part of :attr:`settings` (outputs change between versions)."""


def speech_segments(segments: list[_Segment]) -> list[_Segment]:
    """The segments that hold a letter or digit: the others are Whisper's hallucinations on silence (" . .")."""
    return [s for s in segments if has_word_char(s.text)]


def has_word_char(text: str) -> bool:
    """Whether ``text`` holds a letter or digit (what separates speech from decoded punctuation)."""
    return bool(_HAS_WORD_CHAR.search(text))


def _combine(utt_id: str, segments: list[_Segment], language: str) -> AsrResult:
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    words = [w for s in segments for w in s.words]
    return AsrResult(
        utt_id=utt_id,
        text=text,
        words=words,
        language=language,
        avg_logprob=weighted_mean([s.avg_logprob for s in segments], [s.n_tokens for s in segments]),
        no_speech_prob=weighted_mean([s.no_speech_prob for s in segments], [s.end - s.start for s in segments]),
    )


def weighted_mean(values: list[float], weights: list[float]) -> float | None:
    """Weighted mean; the plain mean when the weights are all zero; None for no values."""
    if not values:
        return None
    total = float(sum(weights))
    if total <= 0:
        return float(np.mean(values))
    return float(sum(v * w for v, w in zip(values, weights, strict=True)) / total)


def _word(text: str, start: float, end: float, probability: float) -> dict[str, Any]:
    return {"word": text.strip(), "start": float(start), "end": float(end), "probability": float(probability)}


class FasterWhisperBackend(WhisperBackend):
    """CTranslate2 Whisper: int8 on CPU by default, the fast path for batch transcription."""

    name = "faster-whisper"

    def _load(self) -> Any:
        from faster_whisper import WhisperModel

        return WhisperModel(
            self.model, device=self.device, compute_type=self.compute_type, cpu_threads=self.threads, num_workers=1
        )

    def library_version(self) -> str:
        import faster_whisper

        return faster_whisper.__version__

    def _decode(self, audio: np.ndarray, condition_on_previous_text: bool = True) -> tuple[list[_Segment], str]:
        segments, info = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            log_prob_threshold=LOG_PROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=condition_on_previous_text,
        )
        decoded = [
            _Segment(
                text=s.text,
                words=[_word(w.word, w.start, w.end, w.probability) for w in s.words or []],
                n_tokens=len(s.tokens),
                start=float(s.start),
                end=float(s.end),
                avg_logprob=float(s.avg_logprob),
                no_speech_prob=float(s.no_speech_prob),
                word_texts=tuple(w.word for w in s.words or []),
            )
            for s in segments  # a generator: decoding happens here
        ]
        return decoded, info.language


class OpenAIWhisperBackend(WhisperBackend):
    """The reference implementation (PyTorch): fp32 on CPU, fp16 on CUDA.

    ``threads`` sets ``torch.set_num_threads`` for the process, since PyTorch has no per-model setting.
    """

    name = "openai-whisper"

    def _load(self) -> Any:
        if self.compute_type not in ("float16", "float32"):
            raise ValueError(f"openai-whisper computes in float16 or float32, not {self.compute_type!r}")
        import torch

        from serflow.asr.convert import load_openai_whisper

        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        return load_openai_whisper(self.model, device=self.device)

    def library_version(self) -> str:
        import whisper

        return whisper.__version__

    def _decode(self, audio: np.ndarray, condition_on_previous_text: bool = True) -> tuple[list[_Segment], str]:
        result = self._model.transcribe(
            audio,
            language=self.language,
            beam_size=self.beam_size,
            temperature=0.0,
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            logprob_threshold=LOG_PROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            word_timestamps=True,
            fp16=self.compute_type == "float16",
            verbose=None,
            condition_on_previous_text=condition_on_previous_text,
        )
        decoded = [
            _Segment(
                text=s["text"],
                words=[_word(w["word"], w["start"], w["end"], w["probability"]) for w in s.get("words", [])],
                n_tokens=len(s["tokens"]),
                start=float(s["start"]),
                end=float(s["end"]),
                avg_logprob=float(s["avg_logprob"]),
                no_speech_prob=float(s["no_speech_prob"]),
                word_texts=tuple(w["word"] for w in s.get("words", [])),
            )
            for s in result["segments"]
        ]
        return decoded, result["language"]


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when PyTorch sees a GPU, else ``cpu``."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def default_compute_type(backend: str, device: str) -> str:
    """fp16 on CUDA; on CPU int8 for faster-whisper (its fast path) and fp32 for openai-whisper (no CPU fp16)."""
    if device == "cuda":
        return "float16"
    return "int8" if backend == "faster-whisper" else "float32"


def get_backend(
    name: BackendName,
    model: str,
    device: Device = "auto",
    compute_type: str | None = None,
    threads: int = 1,
    beam_size: int = 5,
    language: str = "en",
    silence_dbfs: float = DEFAULT_SILENCE_DBFS,
) -> WhisperBackend:
    """Build a backend and load its model (once). ``model`` is what :func:`serflow.asr.models.resolve_model` gave."""
    classes: dict[str, type[WhisperBackend]] = {
        "faster-whisper": FasterWhisperBackend,
        "openai-whisper": OpenAIWhisperBackend,
    }
    if name not in classes:
        raise ValueError(f"unknown ASR backend {name!r} (expected one of {sorted(classes)})")
    resolved = resolve_device(device)
    return classes[name](
        model,
        resolved,
        compute_type or default_compute_type(name, resolved),
        threads,
        beam_size,
        language,
        silence_dbfs=silence_dbfs,
    )
