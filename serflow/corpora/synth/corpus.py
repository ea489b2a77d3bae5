"""Generate the synthetic demo corpus in IEMOCAP's own on-disk layout.

Why IEMOCAP's layout: the pipeline's real IEMOCAP reader then serves the demo corpus unchanged, and
the demo exercises the reader's traps (labels outside the class map, ``exc`` to merge, unlabelled
``XX`` turns, per-annotator files beside the consensus files, colons inside transcripts).

Reproducibility: everything random is drawn from ``np.random.default_rng([seed, stream, index])``,
one generator per utterance and purpose, and the whole plan (text, prosody, gains, annotations,
gaps) is fixed before any audio is made. Synthesis is a pure function of one utterance's plan (see
:mod:`serflow.corpora.synth.espeak` for why the engine needs care there), so the bytes written do not
depend on order or on the number of worker processes.
"""

from __future__ import annotations

import io
import multiprocessing
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from serflow.io import write_bytes, write_text

from . import espeak
from .sentences import choose_filler, choose_text

GENERATOR_VERSION = "1.0.0"
SAMPLE_RATE = 16000
CLASSES: tuple[str, ...] = ("ang", "hap", "neu", "sad")
N_SESSIONS = 5
GENDERS: tuple[str, ...] = ("F", "M")

# Independent random streams (the second element of every generator's seed).
_STREAM_SPEAKERS = 1
_STREAM_ORDER = 2
_STREAM_TEXT = 3
_STREAM_PROSODY = 4
_STREAM_AUDIO = 5
_STREAM_NOISE = 6
_STREAM_ANNOTATION = 7
_STREAM_TIMING = 8
_STREAM_DIALOG = 9


@dataclass(frozen=True)
class Prosody:
    """One class's voice settings.

    The first five are espeak-ng's: pitch 0..100, rate in words per minute, amplitude 0..200, word
    gap (10 ms units), pitch range 0..100 (intonation excursion, 50 normal). ``effort`` is applied
    after synthesis as a first-order spectral tilt (positive: brighter, as in tense high-arousal
    speech; negative: darker, as in lax speech); espeak-ng has no vocal-effort control of its own.
    """

    pitch: int
    rate: int
    amplitude: int
    word_gap: int
    pitch_range: int = 50
    effort: float = 0.0


def _between(a: Prosody, b: Prosody) -> Prosody:
    mid = [(x + y) / 2 for x, y in zip(_astuple(a), _astuple(b), strict=True)]
    return Prosody(*(round(v) for v in mid[:5]), effort=round(mid[5], 4))


def _astuple(p: Prosody) -> tuple[float, ...]:
    return (p.pitch, p.rate, p.amplitude, p.word_gap, p.pitch_range, p.effort)


# pitch, rate, amplitude and word gap follow the reference measurements; pitch range and effort were
# added because, with this library and the padding, those four alone left MFCC baselines near 0.39 UA
# on "moderate" (0.59 on "strong"), far below the measured regime (0.63 / 0.79).
_BASE_PRESETS: dict[str, dict[str, Prosody]] = {
    "strong": {
        "ang": Prosody(60, 195, 150, 0, pitch_range=75, effort=0.95),
        "hap": Prosody(72, 185, 120, 0, pitch_range=80, effort=0.65),
        "neu": Prosody(50, 165, 100, 0, pitch_range=50, effort=0.0),
        "sad": Prosody(32, 125, 70, 4, pitch_range=25, effort=-0.8),
    },
    "moderate": {
        "ang": Prosody(56, 182, 125, 0, pitch_range=65, effort=0.8),
        "hap": Prosody(62, 176, 112, 0, pitch_range=70, effort=0.5),
        "neu": Prosody(50, 168, 100, 0, pitch_range=50, effort=0.0),
        "sad": Prosody(42, 150, 85, 1, pitch_range=35, effort=-0.6),
    },
}
# Frustration is spoken as a milder anger: halfway between neutral and angry.
PRESETS: dict[str, dict[str, Prosody]] = {
    name: {**table, "fru": _between(table["neu"], table["ang"])} for name, table in _BASE_PRESETS.items()
}

PITCH_JITTER = 6
RATE_JITTER = 12
AMPLITUDE_JITTER = 12
EFFORT_JITTER = 0.15
SPEAKER_PITCH_OFFSET = 5
SPEAKER_RATE_OFFSET = 8
SILENCE_RANGE_S = (0.10, 0.35)
GAIN_RANGE_DB = 6.0
BASE_GAIN_DB = -8.0  # headroom: espeak-ng peaks near full scale at high amplitude
SNR_DB = 30.0

# Voices per (session, gender). espeak-ng 1.52's API does not resolve "en-gb"; its RP voice stands in.
VOICES: dict[tuple[int, str], str] = {
    (1, "F"): "en+f2",
    (1, "M"): "en-us+m3",
    (2, "F"): "en-us+f4",
    (2, "M"): "en+m1",
    (3, "F"): "en-gb-x-rp+f3",
    (3, "M"): "en-gb-x-rp+m2",
    (4, "F"): "en-us+f1",
    (4, "M"): "en-us+m7",
    (5, "F"): "en+f5",
    (5, "M"): "en-gb-scotland+m4",
}

# IEMOCAP's 4-class counts (exc merged into hap later), used as the shares of the 90% in-class part.
_IN_CLASS_COUNTS: dict[str, int] = {"neu": 1708, "hap": 595, "exc": 1041, "ang": 1103, "sad": 1084}
_OTHER_SHARES: dict[str, float] = {"fru": 0.45, "xxx": 0.25, "sur": 0.10, "oth": 0.08, "fea": 0.06, "dis": 0.06}
IN_CLASS_FRACTION = 0.9
LABEL_ORDER: tuple[str, ...] = (*_IN_CLASS_COUNTS, *_OTHER_SHARES)
MERGE: dict[str, str] = {"exc": "hap"}

_PROSODY_ROW: dict[str, str] = {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad", "fru": "fru"}

# Annotator category names: EmoEvaluation's C- lines, and the Categorical/ files' wording.
CATEGORY_NAMES: dict[str, str] = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "ang": "Anger",
    "sad": "Sadness",
    "fru": "Frustration",
    "sur": "Surprise",
    "fea": "Fear",
    "dis": "Disgust",
    "oth": "Other",
}
_CATEGORICAL_NAMES = {**CATEGORY_NAMES, "neu": "Neutral state"}
# Plausible second opinions when annotators disagree.
_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "neu": ("fru", "sad", "hap"),
    "hap": ("exc", "neu", "sur"),
    "exc": ("hap", "sur", "neu"),
    "ang": ("fru", "dis", "neu"),
    "sad": ("neu", "fru", "fea"),
    "fru": ("ang", "neu", "sad"),
    "sur": ("exc", "hap", "fea"),
    "fea": ("sad", "sur", "fru"),
    "dis": ("ang", "fru", "neu"),
    "oth": ("neu", "fru", "sur"),
}
# Mean valence, activation, dominance per label (1..5), IEMOCAP-like.
_VAD_MEANS: dict[str, tuple[float, float, float]] = {
    "neu": (3.0, 2.5, 2.8),
    "hap": (3.9, 3.0, 3.0),
    "exc": (4.0, 3.6, 3.4),
    "ang": (1.9, 3.8, 3.8),
    "sad": (2.1, 2.3, 2.4),
    "fru": (2.0, 3.2, 3.2),
    "sur": (3.3, 3.7, 3.0),
    "fea": (2.2, 3.6, 2.3),
    "dis": (2.0, 3.2, 3.4),
    "oth": (2.9, 3.0, 3.0),
    "xxx": (2.8, 3.0, 3.0),
}
_XX_PROBABILITY = 0.06
_SCRIPTS: tuple[str, ...] = ("01_1", "01_2", "01_3", "02_1", "02_2", "03_1", "03_2")
_MAX_DIALOGS_PER_SESSION = 4 * len(_SCRIPTS)
_TURNS_PER_DIALOG = 25


@dataclass(frozen=True)
class Speaker:
    """One of the ten voices, with its fixed per-speaker prosody offset."""

    session: int
    gender: str
    voice: str
    pitch_offset: int
    rate_offset: int

    @property
    def speaker_id(self) -> str:
        return f"Ses{self.session:02d}{self.gender}"


@dataclass(frozen=True)
class Annotation:
    """One turn's consensus V/A/D and the individual annotator lines that back it."""

    vad: tuple[float, float, float]
    categorical: tuple[tuple[str, tuple[str, ...]], ...]  # (evaluator, categories)
    attributes: tuple[tuple[str, tuple[int, int, int]], ...]  # (evaluator, (val, act, dom))


@dataclass(frozen=True)
class UtterancePlan:
    """Everything needed to render and describe one labelled turn, decided before synthesis."""

    index: int
    utt_id: str
    dialog: str
    session: int
    speaker: str
    label: str
    text: str
    from_class_pool: bool
    voice: str
    prosody: Prosody
    lead_s: float
    trail_s: float
    gain_db: float
    annotation: Annotation
    gap_after_s: float
    backchannel: tuple[str, str, float, float] | None  # (id, text, offset after turn end, duration)

    @property
    def label_class(self) -> str | None:
        """The 4-class label (exc merged into hap), or None outside the class map."""
        merged = MERGE.get(self.label, self.label)
        return merged if merged in CLASSES else None

    def wav_relpath(self) -> Path:
        return Path(f"Session{self.session}", "sentences", "wav", self.dialog, f"{self.utt_id}.wav")


@dataclass(frozen=True)
class DialogPlan:
    name: str
    session: int
    start_s: float
    turns: tuple[UtterancePlan, ...]


@dataclass(frozen=True)
class CorpusPlan:
    seed: int
    preset: str
    speakers: tuple[Speaker, ...]
    dialogs: tuple[DialogPlan, ...]

    @property
    def utterances(self) -> tuple[UtterancePlan, ...]:
        return tuple(u for d in self.dialogs for u in d.turns)


@dataclass(frozen=True)
class SynthSummary:
    """What was written: counts per raw label, 4-class label, session and speaker; audio seconds."""

    root: Path
    utterances: int
    dialogs: int
    per_label: dict[str, int]
    per_class: dict[str, int]
    per_session: dict[str, int]
    per_speaker: dict[str, int]
    seconds: float
    seed: int
    preset: str
    per_dialog_kind: dict[str, int] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0


def _rng(seed: int, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` into integer parts proportional to ``weights``; ties go to the earlier key."""
    norm = sum(weights.values())
    exact = {k: total * w / norm for k, w in weights.items()}
    counts = {k: int(np.floor(v)) for k, v in exact.items()}
    rest = total - sum(counts.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - counts[k]), list(weights).index(k)))
    for k in order[:rest]:
        counts[k] += 1
    return counts


def plan_label_counts(utterances: int) -> dict[str, int]:
    """Raw label counts for a corpus of ``utterances`` labelled turns (IEMOCAP-like imbalance).

    About 90% fall in the four classes with IEMOCAP's own proportions (hap and exc written apart,
    exc about two thirds of them); the rest are labels the 4-class task drops (fru, xxx, sur...).
    """
    if utterances < 1:
        raise ValueError("utterances must be at least 1")
    in_class = round(utterances * IN_CLASS_FRACTION)
    counts = _largest_remainder(in_class, {k: float(v) for k, v in _IN_CLASS_COUNTS.items()})
    counts.update(_largest_remainder(utterances - in_class, _OTHER_SHARES))
    return {k: counts[k] for k in LABEL_ORDER}


def make_speakers(seed: int, sessions: int = N_SESSIONS) -> tuple[Speaker, ...]:
    """Two speakers per session (ten for IEMOCAP's five), session-major, F before M, with offsets drawn from
    ``seed``; fewer sessions give the first speakers of five, unchanged."""
    rng = _rng(seed, _STREAM_SPEAKERS)
    speakers = []
    for session in range(1, sessions + 1):
        for gender in GENDERS:
            pitch = int(rng.integers(-SPEAKER_PITCH_OFFSET, SPEAKER_PITCH_OFFSET + 1))
            rate = int(rng.integers(-SPEAKER_RATE_OFFSET, SPEAKER_RATE_OFFSET + 1))
            speakers.append(Speaker(session, gender, VOICES[(session, gender)], pitch, rate))
    return tuple(speakers)


def assign_labels_to_speakers(utterances: int, n_speakers: int = 2 * N_SESSIONS) -> list[list[str]]:
    """Deal labels round-robin, label by label, so every class spreads evenly over the speakers.

    Dealing the label-sorted list continuously (not restarting per label) also keeps the speakers'
    totals within one of each other.
    """
    labels = [lab for lab, n in plan_label_counts(utterances).items() for _ in range(n)]
    dealt: list[list[str]] = [[] for _ in range(n_speakers)]
    for k, label in enumerate(labels):
        dealt[k % n_speakers].append(label)
    return dealt


def dialog_names(session: int, count: int) -> list[str]:
    """IEMOCAP-like dialog names; the first two are already one improvised and one scripted.

    The F/M letter in a dialog name says who wore the markers and alternates; improvisations and
    scripts alternate too: F_impro01, M_script01_1, M_impro01, F_script01_1, F_impro02, ...
    """
    if count > _MAX_DIALOGS_PER_SESSION:
        raise ValueError(f"at most {_MAX_DIALOGS_PER_SESSION} dialogs per session")
    names = []
    for i in range(count):
        group, slot = divmod(i, 4)
        marker = "FMMF"[slot]
        kind = f"impro{group + 1:02d}" if slot in (0, 2) else f"script{_SCRIPTS[group]}"
        names.append(f"Ses{session:02d}{marker}_{kind}")
    return names


def _dialog_count(turns: int) -> int:
    if turns < 2:
        return 1
    return int(min(_MAX_DIALOGS_PER_SESSION, max(2, round(turns / _TURNS_PER_DIALOG))))


def _interleave(first: Sequence[str], second: Sequence[str]) -> list[tuple[int, str]]:
    """Alternate two speakers' turns; returns (speaker position 0/1, label) pairs."""
    out: list[tuple[int, str]] = []
    for i in range(max(len(first), len(second))):
        if i < len(first):
            out.append((0, first[i]))
        if i < len(second):
            out.append((1, second[i]))
    return out


def _prosody_for(label: str, preset: str, speaker: Speaker, rng: np.random.Generator) -> Prosody:
    base = PRESETS[preset][_PROSODY_ROW.get(label, "neu")]
    return jittered_prosody(base, speaker.pitch_offset, speaker.rate_offset, rng)


def jittered_prosody(base: Prosody, pitch_offset: int, rate_offset: int, rng: np.random.Generator) -> Prosody:
    """A class's prosody for one utterance: the voice's offsets plus per-utterance jitter, clipped to espeak-ng's
    ranges (the draws in a fixed order: the same seed gives the same corpus). Shared by every layout."""
    pitch = base.pitch + pitch_offset + int(rng.integers(-PITCH_JITTER, PITCH_JITTER + 1))
    rate = base.rate + rate_offset + int(rng.integers(-RATE_JITTER, RATE_JITTER + 1))
    amplitude = base.amplitude + int(rng.integers(-AMPLITUDE_JITTER, AMPLITUDE_JITTER + 1))
    return Prosody(
        pitch=int(np.clip(pitch, *espeak.PITCH_RANGE)),
        rate=int(np.clip(rate, *espeak.RATE_RANGE)),
        amplitude=int(np.clip(amplitude, *espeak.VOLUME_RANGE)),
        word_gap=base.word_gap,
        pitch_range=base.pitch_range,
        effort=round(base.effort + float(rng.uniform(-EFFORT_JITTER, EFFORT_JITTER)), 4),
    )


def _annotate(label: str, speaker_gender: str, rng: np.random.Generator) -> Annotation:
    """Annotator lines whose majority is ``label`` (none for xxx) and whose V/A/D mean is the consensus."""
    evaluators = sorted(rng.choice([f"C-E{i}" for i in range(1, 6)], size=3, replace=False).tolist())
    if label == "xxx":  # no majority: three different opinions
        picks = rng.choice(list(CATEGORY_NAMES), size=3, replace=False).tolist()
        cats = [(CATEGORY_NAMES[p],) for p in picks]
    else:
        third = label if rng.random() < 0.5 else str(rng.choice(_CONFUSIONS[label]))
        cats = [(CATEGORY_NAMES[label],), (CATEGORY_NAMES[label],), (CATEGORY_NAMES[third],)]
        if rng.random() < 0.2:
            extra = str(rng.choice(_CONFUSIONS[label]))
            cats[2] = (*cats[2], CATEGORY_NAMES[extra]) if CATEGORY_NAMES[extra] not in cats[2] else cats[2]
        order = rng.permutation(3)
        cats = [cats[i] for i in order]
    categorical = list(zip(evaluators, cats, strict=True))
    if rng.random() < 0.5:  # self-evaluation by the speaker
        categorical.append((f"C-{speaker_gender}1", cats[0]))
    n_attr = int(rng.integers(2, 4))
    attr_evals = sorted(rng.choice([f"A-E{i}" for i in range(1, 4)], size=n_attr, replace=False).tolist())
    mean = np.array(_VAD_MEANS[label])
    scores = np.clip(np.rint(mean + rng.normal(0.0, 0.7, size=(n_attr, 3))), 1, 5).astype(int)
    attributes = tuple((e, (int(s[0]), int(s[1]), int(s[2]))) for e, s in zip(attr_evals, scores, strict=True))
    v, a, d = (round(float(x), 4) for x in scores.mean(axis=0))
    return Annotation(vad=(v, a, d), categorical=tuple(categorical), attributes=attributes)


def _plan_turn(
    index: int,
    utt_id: str,
    dialog: str,
    label: str,
    speaker: Speaker,
    other: Speaker,
    xx_counter: Counter[str],
    seed: int,
    preset: str,
) -> UtterancePlan:
    label_class = MERGE.get(label, label)
    text, from_pool = choose_text(label_class if label_class in CLASSES else None, _rng(seed, _STREAM_TEXT, index))
    prosody = _prosody_for(label, preset, speaker, _rng(seed, _STREAM_PROSODY, index))
    audio = _rng(seed, _STREAM_AUDIO, index)
    lead, trail = (round(float(x), 4) for x in audio.uniform(*SILENCE_RANGE_S, size=2))
    gain = round(float(audio.uniform(-GAIN_RANGE_DB, GAIN_RANGE_DB)), 4)
    annotation = _annotate(label, speaker.gender, _rng(seed, _STREAM_ANNOTATION, index))
    timing = _rng(seed, _STREAM_TIMING, index)
    gap = round(float(timing.uniform(0.2, 2.0)), 4)
    backchannel = None
    if timing.random() < _XX_PROBABILITY:
        xx_id = f"{dialog}_{other.gender}XX{xx_counter[other.gender]}"
        xx_counter[other.gender] += 1
        offset, length = (round(float(x), 4) for x in (timing.uniform(0.1, 0.4), timing.uniform(0.3, 0.8)))
        backchannel = (xx_id, choose_filler(timing), offset, length)
    return UtterancePlan(
        index=index,
        utt_id=utt_id,
        dialog=dialog,
        session=speaker.session,
        speaker=speaker.speaker_id,
        label=label,
        text=text,
        from_class_pool=from_pool,
        voice=speaker.voice,
        prosody=prosody,
        lead_s=lead,
        trail_s=trail,
        gain_db=gain,
        annotation=annotation,
        gap_after_s=gap,
        backchannel=backchannel,
    )


def plan_corpus(utterances: int, seed: int, preset: str = "moderate", sessions: int = N_SESSIONS) -> CorpusPlan:
    """Decide every utterance (speaker, dialog, id, label, text, prosody, annotation) without audio.

    Cheap and deterministic, so tests and measurements can know the corpus without parsing it. ``sessions``
    (2 to 5): Session1 ... of IEMOCAP's layout, two speakers each; loso_session then has that many folds.
    """
    if not 2 <= sessions <= N_SESSIONS:
        raise ValueError(f"sessions must be 2 to {N_SESSIONS}, got {sessions}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    if utterances < 2 * sessions:
        raise ValueError(f"utterances must be at least {2 * sessions} (one per speaker)")
    speakers = make_speakers(seed, sessions)
    dealt = assign_labels_to_speakers(utterances, len(speakers))
    order_rng = _rng(seed, _STREAM_ORDER)
    dialogs: list[DialogPlan] = []
    index = 0
    for session in range(1, sessions + 1):
        pair = [speakers[2 * (session - 1)], speakers[2 * (session - 1) + 1]]
        labels = [[str(x) for x in order_rng.permutation(dealt[2 * (session - 1) + g])] for g in range(2)]
        turns = _interleave(labels[0], labels[1])
        names = dialog_names(session, _dialog_count(len(turns)))
        for name, chunk in zip(names, np.array_split(np.arange(len(turns)), len(names)), strict=True):
            per_gender: Counter[str] = Counter()
            xx_counter: Counter[str] = Counter()
            planned = []
            for t in chunk:
                who, label = turns[int(t)]
                spk, other = pair[who], pair[1 - who]
                utt_id = f"{name}_{spk.gender}{per_gender[spk.gender]:03d}"
                per_gender[spk.gender] += 1
                planned.append(_plan_turn(index, utt_id, name, label, spk, other, xx_counter, seed, preset))
                index += 1
            start = round(float(_rng(seed, _STREAM_DIALOG, len(dialogs)).uniform(1.5, 8.0)), 4)
            dialogs.append(DialogPlan(name=name, session=session, start_s=start, turns=tuple(planned)))
    return CorpusPlan(seed=seed, preset=preset, speakers=speakers, dialogs=tuple(dialogs))


# ----------------------------------------------------------------------------------------- audio


def apply_effort(x: np.ndarray, effort: float) -> np.ndarray:
    """Tilt the spectrum with ``y[n] = x[n] - effort * x[n-1]``, keeping the RMS level unchanged."""
    if effort == 0.0 or x.size < 2:
        return x
    y = x.copy()
    y[1:] -= effort * x[:-1]
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2))
    return y * (rms_in / rms_out) if rms_out > 0 else y


def render_audio(plan: UtterancePlan, seed: int) -> np.ndarray:
    """Synthesise one utterance and post-process it to 16 kHz int16 (a pure function of its inputs).

    Resampling, padding, a random gain (so loudness is no label cue) and white noise at a fixed SNR
    make the audio less clean than raw espeak-ng, as real recordings are.
    """
    p = plan.prosody
    raw, sr = espeak.synthesize(
        plan.text,
        plan.voice,
        p.pitch,
        p.rate,
        p.amplitude,
        p.word_gap,
        pitch_range=p.pitch_range,
        seed=(seed * 1_000_003 + plan.index) % 2**31,
    )
    speech = apply_effort(soxr.resample(raw, sr, SAMPLE_RATE).astype(np.float64), p.effort)
    speech *= 10.0 ** ((BASE_GAIN_DB + plan.gain_db) / 20.0)
    lead = np.zeros(round(plan.lead_s * SAMPLE_RATE))
    trail = np.zeros(round(plan.trail_s * SAMPLE_RATE))
    signal = np.concatenate([lead, speech, trail])
    power = float(np.mean(speech**2)) if speech.size else 0.0
    noise_std = np.sqrt(power / 10.0 ** (SNR_DB / 10.0)) if power > 0 else 1e-4
    signal += _rng(seed, _STREAM_NOISE, plan.index).normal(0.0, noise_std, size=signal.size)
    return np.clip(np.rint(signal * 32768.0), -32768, 32767).astype(np.int16)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A PCM_16 mono WAV file's bytes (libsndfile writes no timestamps, so this is reproducible)."""
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _render_task(args: tuple[UtterancePlan, int, str]) -> tuple[int, int]:
    """Worker entry point: render, write atomically, return (index, number of samples)."""
    plan, seed, root = args
    samples = render_audio(plan, seed)
    write_bytes(wav_bytes(samples), Path(root) / plan.wav_relpath())
    return plan.index, int(samples.size)


def _warm_worker() -> None:
    espeak.engine_version()  # each worker process initialises its own engine up front


def _render_all(tasks: list[tuple[UtterancePlan, int, str]], jobs: int, progress: bool) -> Iterator[tuple[int, int]]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="synthesising", unit="utt", disable=not progress)
    try:
        if jobs <= 1:
            for task in tasks:
                yield _render_task(task)
                bar.update()
            return
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited library state
        with ctx.Pool(jobs, initializer=_warm_worker) as pool:
            for result in pool.imap_unordered(_render_task, tasks, chunksize=8):
                yield result
                bar.update()
    finally:
        bar.close()


# ------------------------------------------------------------------------------------ text files


def _fmt_time(t: float) -> str:
    return f"{t:.4f}"


def _turn_times(dialog: DialogPlan, durations: dict[int, float]) -> list[tuple[float, float]]:
    """Start/end of every labelled turn: real audio durations plus the planned gaps and backchannels."""
    t = dialog.start_s
    times = []
    for u in dialog.turns:
        start, end = t, t + durations[u.index]
        times.append((start, end))
        t = end + u.gap_after_s
        if u.backchannel is not None:
            _, _, offset, length = u.backchannel
            t += offset + length
    return times


def emo_evaluation_text(dialog: DialogPlan, times: Sequence[tuple[float, float]]) -> str:
    """``EmoEvaluation/<dialog>.txt`` exactly in IEMOCAP's format."""
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for u, (start, end) in zip(dialog.turns, times, strict=True):
        v, a, d = u.annotation.vad
        lines.append(f"[{_fmt_time(start)} - {_fmt_time(end)}]\t{u.utt_id}\t{u.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
        for evaluator, cats in u.annotation.categorical:
            lines.append(f"{evaluator}:\t{' '.join(c + ';' for c in cats)}\t()")
        for evaluator, (val, act, dom) in u.annotation.attributes:
            lines.append(f"{evaluator}:\tval {val}; act {act}; dom  {dom};\t()")
        lines.append("")
    return "\n".join(lines) + "\n"


def _tx_time(start: float, end: float) -> str:
    return f"[{start:08.4f}-{end:08.4f}]"


def transcription_text(dialog: DialogPlan, times: Sequence[tuple[float, float]]) -> str:
    """``transcriptions/<dialog>.txt``: one line per turn, unlabelled ``XX`` backchannels included."""
    lines = []
    for u, (start, end) in zip(dialog.turns, times, strict=True):
        lines.append(f"{u.utt_id} {_tx_time(start, end)}: {u.text}")
        if u.backchannel is not None:
            xx_id, text, offset, length = u.backchannel
            lines.append(f"{xx_id} {_tx_time(end + offset, end + offset + length)}: {text}")
    return "\n".join(lines) + "\n"


def categorical_text(dialog: DialogPlan) -> str:
    """``Categorical/<dialog>_e1_cat.txt``: one annotator's own labels, a file readers must ignore."""
    names = {v: k for k, v in CATEGORY_NAMES.items()}
    lines = []
    for u in dialog.turns:
        cats = u.annotation.categorical[0][1]
        wording = " ".join(_CATEGORICAL_NAMES[names[c]] + ";" for c in cats)
        lines.append(f"{u.utt_id} :{wording} ()")
    return "\n".join(lines) + "\n"


def readme_text(plan: CorpusPlan, utterances: int) -> str:
    """The root README: says plainly that this is synthetic, and how to regenerate it."""
    voices = ", ".join(f"{s.speaker_id}={s.voice}" for s in plan.speakers)
    return (
        "SYNTHETIC demo corpus in the layout of IEMOCAP_full_release. This is NOT IEMOCAP.\n"
        "All speech was synthesised with espeak-ng; labels were assigned, not annotated.\n"
        "\n"
        f"generator: serflow.corpora.synth {GENERATOR_VERSION}\n"
        f"espeak-ng: {espeak.engine_version()}\n"
        f"seed: {plan.seed}\n"
        f"preset: {plan.preset}\n"
        f"utterances: {utterances}\n"
        + (f"sessions: {len(plan.speakers) // 2}\n" if len(plan.speakers) != 2 * N_SESSIONS else "")
        + f"dialogs: {len(plan.dialogs)}\n"
        f"voices: {voices}\n"
        "\n"
        "Regenerate with serflow.corpora.synth.corpus.synthesize_corpus(out_dir, utterances, seed, preset).\n"
    )


def _write_dialog_files(root: Path, dialog: DialogPlan, durations: dict[int, float]) -> None:
    session = root / f"Session{dialog.session}" / "dialog"
    times = _turn_times(dialog, durations)
    write_text(emo_evaluation_text(dialog, times), session / "EmoEvaluation" / f"{dialog.name}.txt")
    write_text(categorical_text(dialog), session / "EmoEvaluation" / "Categorical" / f"{dialog.name}_e1_cat.txt")
    write_text(transcription_text(dialog, times), session / "transcriptions" / f"{dialog.name}.txt")


# ---------------------------------------------------------------------------------------- driver


def _summarise(root: Path, plan: CorpusPlan, durations: dict[int, float]) -> SynthSummary:
    utts = plan.utterances
    per_class = Counter(u.label_class for u in utts if u.label_class is not None)
    kinds = Counter("impro" if "_impro" in d.name else "script" for d in plan.dialogs)
    return SynthSummary(
        root=root,
        utterances=len(utts),
        dialogs=len(plan.dialogs),
        per_label=dict(sorted(Counter(u.label for u in utts).items())),
        per_class={c: per_class.get(c, 0) for c in CLASSES},
        per_session=dict(sorted(Counter(f"Session{u.session}" for u in utts).items())),
        per_speaker=dict(sorted(Counter(u.speaker for u in utts).items())),
        seconds=float(sum(durations.values())),
        seed=plan.seed,
        preset=plan.preset,
        per_dialog_kind=dict(sorted(kinds.items())),
    )


def _check_empty(out_dir: Path) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; the synthetic corpus needs an empty or new directory")


def synthesize_corpus(
    out_dir: Path,
    utterances: int,
    seed: int,
    preset: str = "moderate",
    jobs: int = 1,
    progress: bool = False,
    sessions: int = N_SESSIONS,
) -> SynthSummary:
    """Write a synthetic corpus of ``utterances`` labelled turns in IEMOCAP's layout under ``out_dir``.

    Same arguments give a byte-identical tree whatever ``jobs`` is. ``out_dir`` must be new or empty
    (stale files from an earlier, larger corpus would silently join the new one). The README is
    written last, so its presence marks a complete corpus. ``jobs > 1`` uses a "spawn" process pool,
    so a calling script needs the usual ``if __name__ == "__main__":`` guard.
    """
    out_dir = Path(out_dir)
    plan = plan_corpus(utterances, seed, preset, sessions)
    _check_empty(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(u, seed, str(out_dir)) for u in plan.utterances]
    durations: dict[int, float] = {}
    for index, n_samples in _render_all(tasks, max(1, int(jobs)), progress):
        durations[index] = n_samples / SAMPLE_RATE
    for dialog in plan.dialogs:
        _write_dialog_files(out_dir, dialog, durations)
    write_text(readme_text(plan, utterances), out_dir / "README.txt")
    return _summarise(out_dir, plan, durations)


def iter_plan_rows(plan: CorpusPlan, root: Path) -> Iterable[dict[str, object]]:
    """One dict per labelled turn (id, speaker, session, label, 4-class label, text, wav path).

    For measurements and tests that want the generator's own knowledge of a corpus; the pipeline
    itself reads the tree with the IEMOCAP reader.
    """
    for u in plan.utterances:
        yield {
            "utt_id": u.utt_id,
            "dialog": u.dialog,
            "session": u.session,
            "speaker": u.speaker,
            "raw_label": u.label,
            "label": u.label_class,
            "transcript": u.text,
            "from_class_pool": u.from_class_pool,
            "audio_path": str(Path(root) / u.wav_relpath()),
        }
