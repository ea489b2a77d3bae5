"""Generate a synthetic demo corpus in TESS's own on-disk layout.

Why TESS's layout: the pipeline's real TESS reader (:mod:`serflow.corpora.tess`) then serves the demo
unchanged, and the demo exercises the reader's traps: folder names that differ between the two
speakers in case and spelling (``OAF_Fear`` and ``YAF_fear``, ``OAF_Pleasant_surprise`` and
``YAF_pleasant_surprised``), the ``_ps`` file suffix, and the nested second copy of the whole set that
some downloads hold (byte-identical, so the reader must keep each utterance once and record the rest).

What carries the emotion: only prosody. Every file says "Say the word <word>." with a target word
that is the same in all seven emotions, so text carries nothing but the word. Each class has its own
pitch, rate, amplitude, word gap, intonation range and vocal effort, jittered per utterance, and the
post-processing of the IEMOCAP demo (random gain, white noise) removes the loudness cue. The presets
are moderate on purpose: TESS itself is solved by audio alone, which says nothing about a pipeline.

Speech synthesis and post-processing are the IEMOCAP demo's own
(:func:`serflow.corpora.synth.corpus.render_audio`); each utterance draws its randomness from
``np.random.default_rng([seed, stream, index])`` with an index fixed by (speaker, word, emotion), so a
file's bytes depend on the seed and on nothing else: not on the word count, nor on ``jobs``.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serflow.corpora.tess import TESS_LABELS
from serflow.io import write_bytes, write_text

from . import espeak
from .corpus import (
    GAIN_RANGE_DB,
    SAMPLE_RATE,
    Annotation,
    Prosody,
    UtterancePlan,
    _check_empty,
    _warm_worker,
    jittered_prosody,
    render_audio,
    wav_bytes,
)

_GENERATOR_VERSION = "1.0.0"
_NESTED_FOLDER = "TESS Toronto emotional speech set data"  # the folder name of the common download
_CARRIER = "Say the word {}."

# Common English monosyllables in the manner of TESS's 200 target words; alphabetical, letters only
# (the reader's file-name pattern accepts nothing else).
_WORDS: tuple[str, ...] = tuple(
    """
    back bar base bath bean beg bite boat bone book bought burn cab calm came cause chain chair chalk chat
    check cheek chief choice cool dab date dead death deep dime dip ditch dodge dog doll door fail fall far
    fat fit five food gap gas gaze germ get gin goal good goose gun half hall hash hate have haze hire hit
    hole home hurl jail jar join judge jug juice keen keep keg kick kill king kite knock late laud lean learn
    lease lid life limb live loaf long lore lose lot love luck make match merge mess met mill mob mode mood
    moon mop mouse nag name near neat nice note numb pad page pain pass pearl peg perch phone pick pike pole
    pool puff rag raid rain raise rat reach read red ring ripe road room rose rot rough rush said sail search
    seize sell shack shall shawl sheep shirt should shout size soap soup sour south sub such sure take talk
    tape team tell thin third thought thumb time tip tire ton tool tough turn vine voice void vote wag wait
    walk wash week wheat when which whip white wife wire witch yearn yes young youth
    """.split()
)


@dataclass(frozen=True)
class _Voice:
    voice: str
    pitch_offset: int  # added to every class's espeak-ng pitch
    rate_offset: int  # added to every class's words per minute


# Two distinct female espeak-ng variants: OAF (the older actress) lower and slower, YAF (the younger)
# higher and quicker; neutral median F0 about 172 Hz and 185 Hz. Pairs further apart in pitch or
# formants (en-us+f3, near 214 Hz) left a classifier trained on one voice near chance on the other.
_SPEAKERS: dict[str, _Voice] = {
    "OAF": _Voice("en-us+f4", pitch_offset=-4, rate_offset=-8),
    "YAF": _Voice("en-us+f1", pitch_offset=3, rate_offset=6),
}

# Folder names of the real distribution, quirks included; file names always use the short label.
_FOLDERS: dict[tuple[str, str], str] = {
    ("OAF", "angry"): "OAF_angry",
    ("OAF", "disgust"): "OAF_disgust",
    ("OAF", "fear"): "OAF_Fear",
    ("OAF", "happy"): "OAF_happy",
    ("OAF", "neutral"): "OAF_neutral",
    ("OAF", "ps"): "OAF_Pleasant_surprise",
    ("OAF", "sad"): "OAF_Sad",
    ("YAF", "angry"): "YAF_angry",
    ("YAF", "disgust"): "YAF_disgust",
    ("YAF", "fear"): "YAF_fear",
    ("YAF", "happy"): "YAF_happy",
    ("YAF", "neutral"): "YAF_neutral",
    ("YAF", "ps"): "YAF_pleasant_surprised",
    ("YAF", "sad"): "YAF_sad",
}

# pitch 0..100, words per minute, amplitude 0..200, word gap (10 ms), then intonation range 0..100 and
# spectral-tilt effort (see corpus.Prosody). Neighbours in arousal share direction and differ mostly in
# one or two settings (angry/happy/ps high and tense, fear high but narrow and quick, disgust and sad
# low and slow), so classes overlap under the per-utterance jitter rather than falling apart.
_PRESET: dict[str, Prosody] = {
    "angry": Prosody(56, 182, 125, 0, pitch_range=62, effort=0.8),
    "disgust": Prosody(45, 145, 105, 1, pitch_range=45, effort=0.3),
    "fear": Prosody(61, 190, 95, 0, pitch_range=35, effort=0.2),
    "happy": Prosody(60, 174, 112, 0, pitch_range=72, effort=0.5),
    "neutral": Prosody(50, 165, 100, 0, pitch_range=50, effort=0.0),
    "ps": Prosody(65, 168, 115, 0, pitch_range=85, effort=0.4),
    "sad": Prosody(42, 148, 85, 1, pitch_range=32, effort=-0.6),
}

_SILENCE_RANGE_S = (0.15, 0.45)  # lead and trail; TESS clips hold some silence around the phrase

# Independent random streams (the second element of every generator's seed).
_STREAM_PROSODY = 101
_STREAM_AUDIO = 102

_NO_ANNOTATION = Annotation(vad=(3.0, 3.0, 3.0), categorical=(), attributes=())


@dataclass(frozen=True)
class TessSynthSummary:
    """What :func:`synthesize_tess` wrote: utterances (each once), files (copies included), audio seconds."""

    root: Path
    utterances: int
    files: int
    duplicates: int
    words: tuple[str, ...]
    per_speaker: dict[str, int]
    per_class: dict[str, int]
    per_folder: dict[str, int]
    seconds: float
    seed: int


def _choose_words(count: int) -> tuple[str, ...]:
    """``count`` words spread evenly over the alphabetical list (the same set for every seed)."""
    if not 1 <= count <= len(_WORDS):
        raise ValueError(f"words must be between 1 and {len(_WORDS)}")
    return tuple(_WORDS[i * len(_WORDS) // count] for i in range(count))


def _index(speaker: str, word: str, emotion: str) -> int:
    """A stable utterance index: independent of how many words are chosen."""
    spk = list(_SPEAKERS).index(speaker)
    return (spk * len(_WORDS) + _WORDS.index(word)) * len(TESS_LABELS) + TESS_LABELS.index(emotion)


def _plan(speaker: str, word: str, emotion: str, seed: int) -> UtterancePlan:
    """Everything :func:`render_audio` needs; fields that only describe IEMOCAP turns are left inert."""
    index = _index(speaker, word, emotion)
    voice, base = _SPEAKERS[speaker], _PRESET[emotion]
    rng = np.random.default_rng([seed, _STREAM_PROSODY, index])
    prosody = jittered_prosody(base, voice.pitch_offset, voice.rate_offset, rng)
    audio = np.random.default_rng([seed, _STREAM_AUDIO, index])
    lead, trail = (round(float(x), 4) for x in audio.uniform(*_SILENCE_RANGE_S, size=2))
    return UtterancePlan(
        index=index,
        utt_id=f"{speaker}_{word}_{emotion}",
        dialog=_FOLDERS[(speaker, emotion)],
        session=list(_SPEAKERS).index(speaker) + 1,
        speaker=speaker,
        label=emotion,
        text=_CARRIER.format(word),
        from_class_pool=False,
        voice=voice.voice,
        prosody=prosody,
        lead_s=lead,
        trail_s=trail,
        gain_db=round(float(audio.uniform(-GAIN_RANGE_DB, GAIN_RANGE_DB)), 4),
        annotation=_NO_ANNOTATION,
        gap_after_s=0.0,
        backchannel=None,
    )


def _relpath(plan: UtterancePlan) -> Path:
    return Path(plan.dialog, f"{plan.utt_id}.wav")


def _render(task: tuple[UtterancePlan, int]) -> tuple[UtterancePlan, bytes, int]:
    """Worker entry point: one file's bytes and its number of samples."""
    plan, seed = task
    samples = render_audio(plan, seed)
    return plan, wav_bytes(samples), int(samples.size)


def _render_all(tasks: list[tuple[UtterancePlan, int]], jobs: int) -> Iterator[tuple[UtterancePlan, bytes, int]]:
    if jobs <= 1:
        yield from map(_render, tasks)
        return
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited library state
    with ctx.Pool(jobs, initializer=_warm_worker) as pool:
        yield from pool.imap_unordered(_render, tasks, chunksize=8)


def _readme(words: tuple[str, ...], seed: int, nested_copy: bool) -> str:
    voices = ", ".join(f"{spk}={v.voice}" for spk, v in _SPEAKERS.items())
    return (
        "SYNTHETIC demo corpus in the layout of the Toronto Emotional Speech Set. This is NOT TESS.\n"
        "All speech was synthesised with espeak-ng; emotions are prosody settings, not acted.\n"
        "\n"
        f"generator: serflow.corpora.synth.tess {_GENERATOR_VERSION}\n"
        f"espeak-ng: {espeak.engine_version()}\n"
        f"seed: {seed}\n"
        f"words: {len(words)}\n"
        f"utterances: {len(words) * len(_SPEAKERS) * len(TESS_LABELS)}\n"
        f"nested copy: {'yes (' + _NESTED_FOLDER + '/)' if nested_copy else 'no'}\n"
        f"voices: {voices}\n"
        "\n"
        "Regenerate with serflow.corpora.synth.tess.synthesize_tess(root, words, seed, nested_copy).\n"
    )


def synthesize_tess(
    root: Path | str,
    words: int = 20,
    seed: int = 0,
    nested_copy: bool = True,
    jobs: int = 1,
) -> TessSynthSummary:
    """Write a synthetic corpus in TESS's layout under ``root``: 2 speakers x ``words`` x 7 emotions.

    Files are ``<root>/<folder>/<SPEAKER>_<word>_<emotion>.wav`` (16 kHz mono PCM_16) with the real
    folder names (``OAF_Fear``, ``YAF_pleasant_surprised``...). With ``nested_copy`` every file is
    written a second time, byte for byte, under ``<root>/TESS Toronto emotional speech set data/``, as
    in some downloads. ``words`` (1..200) picks that many target words evenly from a fixed list. Same
    arguments give a byte-identical tree whatever ``jobs`` is; ``root`` must be new or empty, and the
    README.txt written last marks a complete corpus. ``jobs > 1`` uses a "spawn" process pool.
    """
    root = Path(root)
    chosen = _choose_words(words)
    if seed < 0:
        raise ValueError("seed must be a non-negative integer")
    _check_empty(root)
    root.mkdir(parents=True, exist_ok=True)
    tasks = [(_plan(spk, w, emo, seed), seed) for spk in _SPEAKERS for w in chosen for emo in TESS_LABELS]
    targets = [root, root / _NESTED_FOLDER] if nested_copy else [root]
    samples: dict[int, int] = {}
    for plan, data, n_samples in _render_all(tasks, max(1, int(jobs))):
        for target in targets:
            write_bytes(data, target / _relpath(plan))
        samples[plan.index] = n_samples
    write_text(_readme(chosen, seed, nested_copy), root / "README.txt")
    plans = [plan for plan, _ in tasks]
    return TessSynthSummary(
        root=root,
        utterances=len(plans),
        files=len(plans) * len(targets),
        duplicates=len(plans) * (len(targets) - 1),
        words=chosen,
        per_speaker=dict(Counter(p.speaker for p in plans)),
        per_class={emo: sum(p.label == emo for p in plans) for emo in TESS_LABELS},
        per_folder=dict(sorted(Counter(p.dialog for p in plans).items())),
        seconds=round(sum(samples[p.index] for p in plans) / SAMPLE_RATE, 4),
        seed=seed,
    )
