"""``train.feature_scaling``: statistics from the training split only, the global and per-speaker transforms, the
stores it leaves alone, constant dimensions, the result identity of ``none``, and a fold trained end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_train import MODEL, SETTINGS, Corpus, job, make_corpus

import serflow.train.data as train_data
from serflow.models import get_spec
from serflow.train.config import TrainSettings
from serflow.train.evaluate import evaluate_model
from serflow.train.run import FoldOutputs, job_identity, train_fold
from serflow.train.standardise import STD_FLOOR, fit_moments, scale_fold_stores

DIMS = 4
# speakers A, B train (B also in valid), C valid only, D test only
SPEAKERS = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "b3": "B", "c1": "C", "c2": "C", "d1": "D", "d2": "D"}
ASSIGNMENT = {"train": ["a1", "a2", "b1", "b2"], "valid": ["b3", "c1", "c2"], "test": ["d1", "d2"]}


def _stores(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    offset = {s: rng.normal(0, 5, DIMS) for s in "ABCD"}

    def frames(utt: str, dims: int = DIMS) -> np.ndarray:
        rows = int(rng.integers(3, 9))
        return (offset[SPEAKERS[utt]][:dims] + rng.normal(0, 2, (rows, dims))).astype(np.float32)

    return {
        "mfcc39": {u: frames(u) for u in SPEAKERS},
        "waveform": {u: rng.normal(0, 1, (1, 400)).astype(np.float32) for u in SPEAKERS},
        "glove": {u: frames(u, 3) for u in SPEAKERS},
        "word_ids": {u: np.arange(3, dtype=np.float32)[:, None] for u in SPEAKERS},
        "spans_mfcc39": {u: np.array([[0, 2], [2, 3]], np.float32) for u in SPEAKERS},
    }


def _frames(store: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    return np.concatenate([store[u] for u in ids]).astype(np.float64)


def test_statistics_come_from_the_training_split_only() -> None:
    stores = _stores()
    scaled, _ = scale_fold_stores(stores, ASSIGNMENT, "global")
    changed = {name: dict(arrays) for name, arrays in stores.items()}
    changed["mfcc39"]["d1"] = changed["mfcc39"]["d1"] * 100 + 7  # a test utterance
    changed["mfcc39"]["c1"] = changed["mfcc39"]["c1"] - 50  # a validation utterance
    rescaled, _ = scale_fold_stores(changed, ASSIGNMENT, "global")
    for utt in ASSIGNMENT["train"] + ["b3", "c2", "d2"]:
        np.testing.assert_array_equal(rescaled["mfcc39"][utt], scaled["mfcc39"][utt])
    assert not np.allclose(rescaled["mfcc39"]["d1"], scaled["mfcc39"]["d1"])


def test_global_gives_zero_mean_and_unit_std_on_the_training_frames() -> None:
    stores = _stores()
    scaled, record = scale_fold_stores(stores, ASSIGNMENT, "global")
    train = _frames(scaled["mfcc39"], ASSIGNMENT["train"])
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-6)
    raw = _frames(stores["mfcc39"], ASSIGNMENT["train"])
    expected = (stores["mfcc39"]["d1"] - raw.mean(axis=0)) / raw.std(axis=0)  # the test split: train's statistics
    np.testing.assert_allclose(scaled["mfcc39"]["d1"], expected, rtol=1e-5, atol=1e-5)
    assert scaled["mfcc39"]["d1"].dtype == np.float32
    assert record == {
        "mode": "global",
        "fitted_on": "train",
        "stores": {"mfcc39": {"groups": 1, "utterances": 4, "frames": len(raw), "constant_dims": 0}},
        "std_floor": STD_FLOOR,
    }


def test_speaker_gives_zero_mean_per_speaker() -> None:
    stores = _stores()
    scaled, record = scale_fold_stores(stores, ASSIGNMENT, "speaker", SPEAKERS)
    own = {"A": ["a1", "a2"], "B": ["b1", "b2"], "C": ["c1", "c2"], "D": ["d1", "d2"]}  # where each is fitted
    for ids in own.values():
        frames = _frames(scaled["mfcc39"], ids)
        np.testing.assert_allclose(frames.mean(axis=0), 0, atol=1e-6)
        np.testing.assert_allclose(frames.std(axis=0), 1, atol=1e-6)
    raw_b = _frames(stores["mfcc39"], own["B"])  # b3 (valid) takes B's training statistics
    expected = (stores["mfcc39"]["b3"] - raw_b.mean(axis=0)) / raw_b.std(axis=0)
    np.testing.assert_allclose(scaled["mfcc39"]["b3"], expected, rtol=1e-5, atol=1e-5)
    assert record["fitted_on"] == {"A": "train", "B": "train", "C": "valid", "D": "test"}
    assert record["transductive"] is True
    assert record["stores"]["mfcc39"]["groups"] == 4 and record["stores"]["mfcc39"]["utterances"] == 8


def test_speaker_statistics_of_a_training_speaker_ignore_other_splits() -> None:
    stores = _stores()
    scaled, _ = scale_fold_stores(stores, ASSIGNMENT, "speaker", SPEAKERS)
    changed = {name: dict(arrays) for name, arrays in stores.items()}
    changed["mfcc39"]["b3"] = changed["mfcc39"]["b3"] + 30  # B's validation utterance
    rescaled, _ = scale_fold_stores(changed, ASSIGNMENT, "speaker", SPEAKERS)
    for utt in ("b1", "b2", "a1", "c1", "d1"):
        np.testing.assert_array_equal(rescaled["mfcc39"][utt], scaled["mfcc39"][utt])


def test_none_leaves_the_arrays_identical_and_the_identity_unchanged(tmp_path: Path) -> None:
    stores = _stores()
    out, record = scale_fold_stores(stores, ASSIGNMENT, "none")
    assert record == {"mode": "none"}
    assert all(out[name][u] is stores[name][u] for name in stores for u in stores[name])
    assert "feature_scaling" not in TrainSettings().result_params()
    assert TrainSettings(feature_scaling="global").result_params()["feature_scaling"] == "global"
    corpus = make_corpus(tmp_path / "c")
    spec = get_spec(MODEL)
    default = job_identity(job(corpus), spec)
    assert job_identity(job(corpus, train=replace(SETTINGS, feature_scaling="none")), spec) == default
    assert job_identity(job(corpus, train=replace(SETTINGS, feature_scaling="global")), spec) != default
    with pytest.raises(ValueError, match="feature_scaling"):
        TrainSettings(feature_scaling="per_utterance")


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_waveform_and_text_stores_are_untouched(mode: str) -> None:
    stores = _stores()
    out, record = scale_fold_stores(stores, ASSIGNMENT, mode, SPEAKERS)
    for name in ("waveform", "glove", "word_ids", "spans_mfcc39"):
        assert out[name] is stores[name]
    assert list(record["stores"]) == ["mfcc39"]
    assert set(out["mfcc39"]) == set(SPEAKERS)  # the fold's utterances, each a new array
    assert all(out["mfcc39"][u] is not stores["mfcc39"][u] for u in SPEAKERS)


@pytest.mark.parametrize("mode", ["global", "speaker"])
def test_a_constant_dimension_is_centred_not_nan(mode: str) -> None:
    stores = _stores()
    for arrays in stores["mfcc39"].values():
        arrays[:, 1] = 3.5
    out, record = scale_fold_stores(stores, ASSIGNMENT, mode, SPEAKERS)
    frames = np.concatenate(list(out["mfcc39"].values()))
    assert np.isfinite(frames).all()
    np.testing.assert_array_equal(frames[:, 1], 0)
    assert record["stores"]["mfcc39"]["constant_dims"] >= 1
    moments = fit_moments([np.ones((5, 2), np.float32)])
    assert moments.constant_dims == 2 and np.all(moments.scale == 1)


def test_no_training_frames_is_an_error() -> None:
    stores = _stores()
    for utt in ASSIGNMENT["train"]:
        del stores["mfcc39"][utt]
    with pytest.raises(ValueError, match="no train utterance"):
        scale_fold_stores(stores, ASSIGNMENT, "global")


# --- a fold end to end -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _train_spied(
    corpus: Corpus, out: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, dict, dict[str, list[str]]]:
    """Train fold 1 with ``mode``; return its metrics record, the stores prepare() was given and the assignment."""
    seen: dict = {}
    original = train_data.build_fold_data

    def spy(model, stores, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(stores=stores, assignment=kwargs["assignment"])
        return original(model, stores, *args, **kwargs)

    monkeypatch.setattr(train_data, "build_fold_data", spy)
    settings = replace(SETTINGS, seeds=(0,), epochs=3, feature_scaling=mode)
    outputs = FoldOutputs.under(out)
    record = train_fold(job(corpus, 1, train=settings), outputs, progress=False)
    assert json.loads(outputs.metrics.read_text()) == record
    return record, seen["stores"], seen["assignment"]


def test_a_fold_trained_with_global_scaling(corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, stores, assignment = _train_spied(corpus, tmp_path / "fold1", "global", monkeypatch)
    train = _frames(stores["mfcc39"], assignment["train"])  # what prepare() saw: standardised frames
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=0), 1, atol=1e-5)
    assert not np.allclose(_frames(stores["mfcc39"], assignment["test"]).mean(axis=0), 0, atol=1e-3)
    assert record["train"]["feature_scaling"] == "global"
    scaling = record["feature_scaling"]
    assert scaling["mode"] == "global" and scaling["fitted_on"] == "train" and list(scaling["stores"]) == ["mfcc39"]
    n_train = record["utterances"]["used"]["train"]
    assert scaling["stores"]["mfcc39"]["utterances"] == len(assignment["train"]) == n_train
    results = evaluate_model([tmp_path / "fold1" / "metrics.json"], [tmp_path / "fold1" / "run.json"])
    assert results["feature_scaling"] == {"mode": "global", "folds": [{"fold": 1, **scaling}]}
    assert results["train"]["feature_scaling"] == "global"


def test_a_fold_trained_with_speaker_scaling(corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record, stores, assignment = _train_spied(corpus, tmp_path / "fold1", "speaker", monkeypatch)
    test = _frames(stores["mfcc39"], [u for u in assignment["test"] if u.startswith("Ses01F")])
    np.testing.assert_allclose(test.mean(axis=0), 0, atol=1e-5)  # the test speaker's own statistics
    scaling = record["feature_scaling"]
    assert scaling["fitted_on"] == {
        "Ses01F": "test", "Ses01M": "test", "Ses02F": "train", "Ses02M": "train", "Ses03F": "train", "Ses03M": "train",
    }  # fmt: skip
    assert scaling["transductive"] is True and scaling["stores"]["mfcc39"]["groups"] == 6


def test_none_records_the_mode_and_passes_the_stores_through(
    corpus: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record, stores, _ = _train_spied(corpus, tmp_path / "fold1", "none", monkeypatch)
    assert record["feature_scaling"] == {"mode": "none"} and "feature_scaling" not in record["train"]
    raw = train_data.store_arrays(train_data.FeatureSet(corpus.mfcc39))
    assert all(np.array_equal(stores["mfcc39"][u], raw[u]) for u in raw)
