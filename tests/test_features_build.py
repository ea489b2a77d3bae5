"""Feature jobs (serflow.features.jobs) and parse-time versions (serflow.features.plan), bad input included."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from conftest import REPO, write_wav

from serflow.features.jobs.acoustic import acoustic_shard
from serflow.features.jobs.common import labelled_utterances, shard_rows
from serflow.features.jobs.finalize import finalize_store
from serflow.features.jobs.glove import glove_store
from serflow.features.jobs.spans import spans_store
from serflow.features.plan import plan
from serflow.shards import FeatureSet, StoreError

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _config(**changes: object) -> dict:
    config = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        node = config
        for part in path:
            node = node[part]
        node[key] = value
    return config


# --------------------------------------------------------------------------------- versions


def test_a_parameter_change_renames_only_its_store_and_what_reads_it() -> None:
    base = {f: plan(CONFIG, "demo", f).version for f in ("mfcc39", "gban52", "glove", "bert", "spans_mfcc39")}
    changed = _config(features__acoustic__mfcc39={"frame_step_s": 0.01})
    after = {f: plan(changed, "demo", f).version for f in base}
    assert {f for f in base if base[f] != after[f]} == {"mfcc39", "spans_mfcc39"}


def test_text_source_renames_text_stores_only() -> None:
    asr = _config(text_source="asr")
    for feature, moves in [("glove", True), ("bert", True), ("spans_mfcc39", True), ("logmel64", False)]:
        assert (plan(CONFIG, "demo", feature).version != plan(asr, "demo", feature).version) is moves


def test_versions_ignore_where_a_corpus_lives_and_training_settings() -> None:
    moved = _config(corpora__iemocap__root="/elsewhere/IEMOCAP_full_release")
    assert plan(moved, "iemocap", "mfcc39").version == plan(CONFIG, "iemocap", "mfcc39").version
    relabelled = _config(corpora__iemocap__merge={})
    assert plan(relabelled, "iemocap", "mfcc39").version != plan(CONFIG, "iemocap", "mfcc39").version


def test_the_per_utterance_companion_shares_the_word_store_version() -> None:
    assert plan(CONFIG, "demo", "bert_utt").version == plan(CONFIG, "demo", "bert").version
    assert plan(CONFIG, "demo", "bert_utt").directory.endswith(f"bert_utt/{plan(CONFIG, 'demo', 'bert').version}")


def test_unknown_feature_is_named() -> None:
    with pytest.raises(ValueError, match="unknown feature 'mfcc13'"):
        plan(CONFIG, "demo", "mfcc13")


def test_shards_are_contiguous_and_cover_everything() -> None:
    rows = pd.DataFrame({"utt_id": [f"u{i:02d}" for i in range(10)]})
    blocks = [shard_rows(rows, k, 4)["utt_id"].tolist() for k in range(4)]
    assert [u for block in blocks for u in block] == rows["utt_id"].tolist() and all(blocks)
    assert [len(b) for b in (shard_rows(rows.head(2), k, 4) for k in range(4))].count(0) == 2


# --------------------------------------------------------------------------------- acoustic


def _manifest(tmp_path: Path, audio: dict[str, Path], labels: dict[str, str | None] | None = None) -> Path:
    labels = labels or {}
    table = pd.DataFrame(
        {
            "utt_id": list(audio),
            "audio_path": [str(p) for p in audio.values()],
            "label": [labels.get(u, "neu") for u in audio],
        }
    )
    path = tmp_path / "manifest.parquet"
    table.to_parquet(path)
    return path


@pytest.fixture
def bad_audio(tmp_path: Path) -> dict[str, Path]:
    audio = tmp_path / "audio"
    names = ("a_ok", "b_missing", "c_truncated", "d_short", "e_stereo44k", "f_nan")
    files = {name: audio / f"{name}.wav" for name in names}
    write_wav(files["a_ok"], 1.0)
    write_wav(files["c_truncated"], 1.0)
    files["c_truncated"].write_bytes(files["c_truncated"].read_bytes()[:30])  # header cut short
    write_wav(files["d_short"], 0.01)  # 10 ms: shorter than one 25 ms frame
    write_wav(files["e_stereo44k"], 1.0, sr=44100, channels=2)
    signal = np.zeros(16000, dtype=np.float32)
    signal[100] = np.nan
    sf.write(files["f_nan"], signal, 16000, subtype="FLOAT")
    return files


def test_acoustic_shard_quarantines_bad_audio_with_reasons(tmp_path: Path, bad_audio: dict[str, Path]) -> None:
    manifest = _manifest(tmp_path, bad_audio, {"g_unlabelled": None})
    p = plan(CONFIG, "demo", "mfcc39")
    store = tmp_path / p.directory
    counts = acoustic_shard(manifest, p, 0, 1, store)
    assert counts == {"selected": 6, "stored": 2, "dropped": 4}
    final = finalize_store(store, p, 1, {"manifest": manifest})
    dropped = pd.read_parquet(store / "dropped.parquet").set_index("utt_id")["reason"]
    assert "missing" in dropped["b_missing"] and str(bad_audio["b_missing"]) in dropped["b_missing"]
    assert "unreadable" in dropped["c_truncated"] or "no samples" in dropped["c_truncated"]
    assert "too short" in dropped["d_short"]
    assert "NaN" in dropped["f_nan"]
    meta = final["meta"]
    assert meta["counts"]["selected"] == meta["counts"]["stored"] + meta["counts"]["dropped"] == 6
    assert meta["converted"] == {"resampled": 1, "downmixed": 1}
    info = pd.read_parquet(store / "utterances.parquet").set_index("utt_id")
    assert info.loc["e_stereo44k", "resampled_from"] == 44100 and info.loc["e_stereo44k", "downmixed_from"] == 2
    features = FeatureSet(store)
    assert sorted(features.ids) == ["a_ok", "e_stereo44k"]
    assert features["e_stereo44k"].shape == (66, 39)  # 1 s at 16 kHz: (16000 - 400) // 240 + 1 frames


def test_only_labelled_utterances_are_extracted() -> None:
    manifest = pd.DataFrame({"utt_id": ["b", "a", "c"], "label": ["ang", None, "sad"]})
    assert labelled_utterances(manifest)["utt_id"].tolist() == ["b", "c"]


def test_finalize_refuses_a_missing_shard(tmp_path: Path, bad_audio: dict[str, Path]) -> None:
    manifest = _manifest(tmp_path, {"a_ok": bad_audio["a_ok"]})
    p = plan(CONFIG, "demo", "logmel64")
    store = tmp_path / p.directory
    acoustic_shard(manifest, p, 0, 2, store)
    with pytest.raises(StoreError, match=r"shard-00001\.json.*did a shard job fail"):
        finalize_store(store, p, 2, {"manifest": manifest})
    assert not (store / "manifest.json").exists()


# --------------------------------------------------------------------------------- text and spans


@pytest.fixture
def aligned(tmp_path: Path) -> dict[str, Path]:
    """Three labelled utterances: u1 aligned (one phone between two frame centres, one word without
    phones), u2 an alignment failure, u3 aligned but missing from the frame store."""
    words = pd.DataFrame(
        {
            "utt_id": ["u1", "u1", "u1", "u3"],
            "word_index": np.array([0, 1, 2, 0], dtype=np.int32),
            "word": ["hello", "qzxvbnmw", "there", "yes"],
            "start": [0.10, 0.40, 0.50, 0.1],
            "end": [0.40, 0.50, 0.90, 0.5],
        }
    )
    phones = pd.DataFrame(
        {
            "utt_id": ["u1"] * 6 + ["u3"],
            "word_index": np.array([0, 0, 0, 0, 2, 2, 0], dtype=np.int32),
            "phone_index": np.array([0, 1, 2, 3, 0, 1, 0], dtype=np.int32),
            "phone": ["HH", "AH", "L", "OW", "DH", "EH", "Y"],
            "start": [0.10, 0.20, 0.30, 0.31, 0.50, 0.70, 0.1],
            "end": [0.20, 0.30, 0.31, 0.40, 0.70, 0.90, 0.5],
        }
    )
    paths = {"words": tmp_path / "words.parquet", "phones": tmp_path / "phones.parquet"}
    words.to_parquet(paths["words"])
    phones.to_parquet(paths["phones"])
    paths["failures"] = tmp_path / "failures.tsv"
    paths["failures"].write_text("utt_id\treason\nu2\taudio too short for its transcript\n")
    audio = tmp_path / "audio"
    for name in ("u1", "u2"):
        write_wav(audio / f"{name}.wav", 1.0)
    paths["manifest"] = _manifest(tmp_path, {u: audio / f"{u}.wav" for u in ("u1", "u2", "u3")})
    return paths


def test_glove_store_records_oov_and_missing_text(tmp_path: Path, aligned: dict[str, Path]) -> None:
    p = plan(CONFIG, "demo", "glove")
    meta = glove_store(aligned["manifest"], aligned["words"], aligned["failures"], p, tmp_path / "features/demo")
    store = FeatureSet(tmp_path / p.directory)
    assert store["u1"].shape == (3, 50) and not store["u1"][1].any()  # the OOV word is a zero row
    assert meta["oov"]["n_oov"] == 1 and meta["oov"]["oov_words_top"] == {"qzxvbnmw": 1}
    dropped = store.table("dropped").to_pandas().set_index("utt_id")["reason"]
    assert "alignment failed: audio too short" in dropped["u2"]
    assert meta["counts"]["selected"] == 3 == meta["counts"]["stored"] + meta["counts"]["dropped"]
    assert store.table("words").to_pandas()["oov"].tolist() == [False, True, False, False]


def test_spans_give_every_word_frames_and_record_repairs(tmp_path: Path, aligned: dict[str, Path]) -> None:
    frames = plan(CONFIG, "demo", "mfcc39")
    frames_dir = tmp_path / frames.directory
    acoustic_shard(aligned["manifest"], frames, 0, 1, frames_dir)
    finalize_store(frames_dir, frames, 1, {"manifest": aligned["manifest"]})
    p = plan(CONFIG, "demo", "spans_mfcc39")
    meta = spans_store(
        aligned["manifest"], aligned["words"], aligned["phones"], aligned["failures"], frames_dir, p, {},
        tmp_path / "features/demo",
    )  # fmt: skip
    store = FeatureSet(tmp_path / p.directory)
    spans = store["u1"]
    # 7 phones: 4 + the filler of the phoneless word 1 + 2; every phone has >= 1 frame.
    assert spans.shape == (7, 3) and (spans[:, 2] > spans[:, 1]).all()
    assert spans[:, 0].tolist() == [0, 0, 0, 0, 1, 2, 2]
    # mfcc39 frame t is centred at 12.5 ms + 15 ms * t: [0.10, 0.20) holds the centres of frames 6..12.
    assert spans[0, 1:].tolist() == [6, 13]
    phones = store.table("phones").to_pandas()
    assert phones["repaired"].sum() == 1 and phones.loc[phones["repaired"], "phone"].item() == "L"
    assert meta["counts"]["words_without_phones"] == 1
    dropped = store.table("dropped").to_pandas().set_index("utt_id")["reason"]
    assert "alignment failed" in dropped["u2"] and "no mfcc39 frames" in dropped["u3"]
    assert meta["counts"]["stored"] == 1 and meta["counts"]["dropped"] == 2


def test_the_stores_manifest_is_json_a_reader_can_use_without_serflow(tmp_path: Path, aligned: dict[str, Path]) -> None:
    p = plan(CONFIG, "demo", "glove")
    glove_store(aligned["manifest"], aligned["words"], aligned["failures"], p, tmp_path / "features/demo")
    manifest = json.loads((tmp_path / p.directory / "manifest.json").read_text())
    assert manifest["version"] == p.version and manifest["params"]["oov"] == "zero"
    index = pd.read_parquet(tmp_path / p.directory / "index.parquet")
    assert index["utt_id"].tolist() == ["u1", "u3"]
