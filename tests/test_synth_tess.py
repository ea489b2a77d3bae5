"""The synthetic TESS-layout corpus: real folder quirks, exact reader round trip, duplicates, same bytes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serflow.corpora.synth.tess import _FOLDERS, _WORDS, TessSynthSummary, synthesize_tess
from serflow.corpora.tess import TESS_LABELS, parse_name, read_tess

WORDS = 3
SEED = 7
NESTED = "TESS Toronto emotional speech set data"
N_UTTS = 2 * 7 * WORDS
Corpus = tuple[Path, TessSynthSummary]

# The folder names of the real download, spelled out here independently of the generator's table.
REAL_FOLDERS = {
    "OAF_angry",
    "OAF_disgust",
    "OAF_Fear",
    "OAF_happy",
    "OAF_neutral",
    "OAF_Pleasant_surprise",
    "OAF_Sad",
    "YAF_angry",
    "YAF_disgust",
    "YAF_fear",
    "YAF_happy",
    "YAF_neutral",
    "YAF_pleasant_surprised",
    "YAF_sad",
}
SUFFIX = {"Pleasant_surprise": "ps", "pleasant_surprised": "ps"}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("synth_tess") / "TESS Toronto emotional speech set data"
    return root, synthesize_tess(root, words=WORDS, seed=SEED)


def test_layout_and_names_follow_the_real_distribution(corpus: Corpus) -> None:
    root, summary = corpus
    top = {p.name for p in root.iterdir() if p.is_dir()}
    assert top == REAL_FOLDERS | {NESTED}
    assert {p.name for p in (root / NESTED).iterdir()} == REAL_FOLDERS
    assert set(_FOLDERS.values()) == REAL_FOLDERS
    words: set[str] = set()
    for folder in sorted(REAL_FOLDERS):
        speaker, rest = folder.split("_", 1)
        suffix = SUFFIX.get(rest, rest.lower())
        wavs = sorted(p.name for p in (root / folder).iterdir())
        assert len(wavs) == WORDS
        for name in wavs:
            spk, word, emo = name[: -len(".wav")].split("_")
            assert (spk, emo) == (speaker, suffix) and word.isalpha() and word.islower()
            words.add(word)
    assert len(words) == WORDS and words == set(summary.words)
    readme = (root / "README.txt").read_text()
    assert "SYNTHETIC" in readme and "NOT TESS" in readme and f"seed: {SEED}" in readme
    assert summary.utterances == N_UTTS and summary.files == 2 * N_UTTS and summary.duplicates == N_UTTS
    assert summary.per_speaker == {"OAF": 7 * WORDS, "YAF": 7 * WORDS}
    assert summary.per_class == dict.fromkeys(TESS_LABELS, 2 * WORDS)
    assert summary.per_folder == dict.fromkeys(sorted(REAL_FOLDERS), WORDS)


def test_nested_copy_is_byte_identical(corpus: Corpus) -> None:
    root, _ = corpus
    files = _files(root)
    top = {k: v for k, v in files.items() if k.endswith(".wav") and not k.startswith(NESTED)}
    nested = {k[len(NESTED) + 1 :]: v for k, v in files.items() if k.startswith(NESTED + "/")}
    assert len(top) == N_UTTS and nested == top


def test_audio_format_and_level(corpus: Corpus) -> None:
    root, summary = corpus
    total = 0.0
    for path in sorted(root.glob("*/*.wav")):
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "WAV")
        assert 0.8 < info.duration < 4.0
        audio, _ = sf.read(path, dtype="float32")
        assert float(np.sqrt(np.mean(audio**2))) > 0.005
        total += info.frames / 16000
    assert summary.seconds == pytest.approx(total, abs=1e-3)


def test_reader_round_trip_counts_and_duplicates(corpus: Corpus) -> None:
    root, summary = corpus
    result = read_tess(root)
    m, issues = result.manifest, result.issues
    assert len(m) == N_UTTS and m["utt_id"].is_unique
    assert Counter(zip(m["speaker"], m["label"], strict=True)) == {
        (spk, emo): WORDS for spk in ("OAF", "YAF") for emo in TESS_LABELS
    }
    assert dict(Counter(m["session"])) == {1: 7 * WORDS, 2: 7 * WORDS}
    assert (m["raw_label"] == m["label"]).all() and (m["sample_rate"] == 16000).all() and (m["channels"] == 1).all()
    assert set(m["transcript"]) == {f"Say the word {w}." for w in summary.words}
    # Every utterance once in the manifest and its other copy once in the issues, as a byte-identical copy.
    assert len(issues) == N_UTTS and issues["utt_id"].is_unique
    assert set(issues["utt_id"]) == set(m["utt_id"])
    assert (issues["action"] == "dropped").all() and issues["reason"].str.contains("byte-identical copy").all()
    kept = dict(zip(m["utt_id"], m["audio_path"], strict=True))
    for utt, path in zip(issues["utt_id"], issues["path"], strict=True):
        assert Path(path) != Path(kept[utt])
        assert Path(path).name == Path(kept[utt]).name
        assert Path(path).read_bytes() == Path(kept[utt]).read_bytes()


def test_same_seed_same_bytes_whatever_jobs(corpus: Corpus, tmp_path: Path) -> None:
    root, _ = corpus
    synthesize_tess(tmp_path / "again", words=WORDS, seed=SEED)
    synthesize_tess(tmp_path / "parallel", words=WORDS, seed=SEED, jobs=2)
    reference = _files(root)
    assert _files(tmp_path / "again") == reference
    assert _files(tmp_path / "parallel") == reference


def test_files_do_not_depend_on_word_count_or_copy_but_on_seed(corpus: Corpus, tmp_path: Path) -> None:
    root, _ = corpus
    one = synthesize_tess(tmp_path / "one", words=1, seed=SEED, nested_copy=False)
    assert one.files == one.utterances == 14 and one.duplicates == 0
    assert not (tmp_path / "one" / NESTED).exists()
    small = {k: v for k, v in _files(tmp_path / "one").items() if k.endswith(".wav")}
    reference = _files(root)
    assert small and all(reference[k] == v for k, v in small.items())
    result = read_tess(tmp_path / "one")
    assert len(result.manifest) == 14 and result.issues.empty
    synthesize_tess(tmp_path / "other", words=1, seed=SEED + 1, nested_copy=False)
    other = _files(tmp_path / "other")
    assert all(other[k] != v for k, v in small.items())


def test_text_carries_only_the_word() -> None:
    assert len(_WORDS) == 200 and len(set(_WORDS)) == 200
    for word in _WORDS:
        assert word.isalpha() and word.islower()
        for emo in ("angry", "ps", "sad"):
            assert parse_name(f"OAF_{word}_{emo}.wav") == ("OAF", word, emo)


def test_bad_arguments(tmp_path: Path) -> None:
    for words in (0, 201):
        with pytest.raises(ValueError, match="words"):
            synthesize_tess(tmp_path / "x", words=words)
    with pytest.raises(ValueError, match="seed"):
        synthesize_tess(tmp_path / "x", words=1, seed=-1)
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "old.wav").write_bytes(b"")
    with pytest.raises(FileExistsError):
        synthesize_tess(tmp_path / "stale", words=1)
    assert not (tmp_path / "x").exists()


def test_emotion_is_in_the_prosody_across_speakers(tmp_path: Path) -> None:
    """Train on one voice, test on the other: well above chance (1/7), well below perfect."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.preprocessing import StandardScaler

    from serflow.corpora.baseline import mfcc_stats

    synthesize_tess(tmp_path / "sep", words=8, seed=0, nested_copy=False)
    m = read_tess(tmp_path / "sep").manifest
    x = np.vstack([mfcc_stats(p) for p in m["audio_path"]])
    y, speaker = m["label"].to_numpy(dtype=str), m["speaker"].to_numpy(dtype=str)
    scores = []
    for train in ("OAF", "YAF"):
        fit = speaker == train
        scaler = StandardScaler().fit(x[fit])
        clf = LogisticRegression(max_iter=5000, C=10.0).fit(scaler.transform(x[fit]), y[fit])
        scores.append(balanced_accuracy_score(y[~fit], clf.predict(scaler.transform(x[~fit]))))
    assert 0.3 < float(np.mean(scores)) < 0.9, scores
