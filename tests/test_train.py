"""The shared trainer end to end on a tiny model and tiny stores: outputs, determinism, model selection on
validation only, checkpoints without pickle, results fields, and the bad inputs (missing utterance, absent
class, unknown model, refused utterance, unknown hyperparameter)."""

from __future__ import annotations

import copy
import json
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO
from torch import nn

from serflow.corpora.folds import fold_index, make_folds
from serflow.models import MODELS, ModelSpec, SerModel, register
from serflow.shards import FeatureSet, FeatureSpec, ShardWriter
from serflow.train.checkpoint import load_model, load_state
from serflow.train.checks import check_training_config
from serflow.train.config import TrainSettings, dim_hparams, family_settings, merge_train_config
from serflow.train.evaluate import evaluate_model
from serflow.train.loop import Selector
from serflow.train.optim import keras_decay
from serflow.train.run import FoldJob, FoldOutputs, train_fold

LABELS = ("ang", "hap", "neu", "sad")
AUDIO_DIMS, TEXT_DIMS = 5, 3
MODEL = "test_meanpool"


class MeanPool(SerModel):
    """Mean-pooled frames and words, one hidden layer: small enough to train in milliseconds."""

    def __init__(
        self, n_classes: int, audio_dim: int, text_dim: int, hidden: int = 8, dropout: float = 0.1, max_frames: int = 0
    ) -> None:
        super().__init__()
        self.max_frames = max_frames
        self.net = nn.Sequential(
            nn.Linear(audio_dim + text_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes)
        )

    def prepare(self, sample):  # type: ignore[no-untyped-def]
        audio, text = sample["mfcc39"], sample["glove"]
        if not text.any():
            raise ValueError("every word vector is zero")
        counts = {}
        if self.max_frames and len(audio) > self.max_frames:
            audio, counts = audio[: self.max_frames], {"frames_truncated": len(audio) - self.max_frames}
        return {"x": np.concatenate([audio.mean(0), text.mean(0)])}, counts

    def collate(self, samples):  # type: ignore[no-untyped-def]
        return {"x": torch.from_numpy(np.stack([s["x"] for s in samples]))}

    def forward(self, batch):  # type: ignore[no-untyped-def]
        return self.net(batch["x"])


if MODEL not in MODELS:
    register(ModelSpec(MODEL, MeanPool, ("mfcc39", "glove"), "test_family", "test-only mean-pool MLP"))


# --- a tiny corpus: 3 sessions x 2 speakers, 4 classes, features with a class signal -----------------------


@dataclass(frozen=True)
class Corpus:
    root: Path
    manifest: Path
    folds: Path
    mfcc39: Path
    glove: Path
    utt_ids: tuple[str, ...]
    labels: tuple[str, ...]


def _utterances(per_class: int = 6) -> tuple[list[str], list[str], list[int]]:
    ids, labels, sessions = [], [], []
    for session in (1, 2, 3):
        for k in range(per_class * len(LABELS)):
            gender = "F" if k % 2 else "M"
            ids.append(f"Ses0{session}{gender}_impro01_{gender}{k:03d}")
            labels.append(LABELS[k % len(LABELS)])
            sessions.append(session)
    return ids, labels, sessions


def _store(root: Path, feature: str, items: list[tuple[str, np.ndarray]], variant: str = "") -> Path:
    spec = FeatureSpec(feature, {"variant": variant}, "test", "1")
    with ShardWriter(root, spec, shard_bytes=2000) as writer:
        for utt_id, array in items:
            writer.add(utt_id, array)
        writer.finalize(meta={"test": True})
    return spec.directory(root)


def _features(ids: list[str], labels: list[str], seed: int = 0) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    centres_a = rng.standard_normal((len(LABELS), AUDIO_DIMS)) * 1.5
    centres_t = rng.standard_normal((len(LABELS), TEXT_DIMS)) * 1.5
    audio, text = [], []
    for utt_id, label in zip(ids, labels, strict=True):
        c = LABELS.index(label)
        frames = int(rng.integers(3, 12))
        audio.append((utt_id, centres_a[c] + rng.standard_normal((frames, AUDIO_DIMS)) * 2.0))
        text.append((utt_id, centres_t[c] + rng.standard_normal((int(rng.integers(1, 4)), TEXT_DIMS)) * 2.0))
    return audio, text


def make_corpus(root: Path, *, drop_class_in_session3: str | None = None) -> Corpus:
    ids, labels, sessions = _utterances()
    if drop_class_in_session3:  # relabel session 3's utterances of that class: the class is absent from fold 3's test
        other = next(c for c in LABELS if c != drop_class_in_session3)
        labels = [
            other if s == 3 and lab == drop_class_in_session3 else lab for lab, s in zip(labels, sessions, strict=True)
        ]
    manifest = pd.DataFrame(
        {
            "utt_id": ids,
            "session": sessions,
            "speaker": [f"Ses0{s}{u[5]}" for s, u in zip(sessions, ids, strict=True)],
            "label": labels,
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    manifest.to_parquet(root / "manifest.parquet")
    make_folds(manifest, ["loso_session"], seed=0, validation_fraction=0.25).to_parquet(root / "folds.parquet")
    audio, text = _features(ids, labels)
    return Corpus(
        root,
        root / "manifest.parquet",
        root / "folds.parquet",
        _store(root / "features", "mfcc39", audio),
        _store(root / "features", "glove", text),
        tuple(ids),
        tuple(labels),
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


SETTINGS = TrainSettings(seeds=(0, 1), epochs=8, patience=3, batch_size=16, device="cpu", amp=False)
FAMILY = {"hidden": 8, "optim": {"lr": 1.0e-2, "lr_decay": 1.0e-3, "weight_decay": 1.0e-4}}


def job(corpus: Corpus, fold: int = 1, **changes: object) -> FoldJob:
    base = FoldJob(
        corpus="tiny",
        model=MODEL,
        protocol="loso_session",
        fold=fold,
        classes=LABELS,
        stores={"mfcc39": corpus.mfcc39, "glove": corpus.glove},
        manifest=corpus.manifest,
        folds=corpus.folds,
        train=SETTINGS,
        family_config=FAMILY,
        label_merge={"exc": "hap"},
    )
    return replace(base, **changes)


def run_all_folds(corpus: Corpus, out: Path, **changes: object) -> dict:
    metrics, runs = [], []
    for fold in (1, 2, 3):
        outputs = FoldOutputs.under(out / f"fold{fold}")
        train_fold(job(corpus, fold, **changes), outputs, progress=False)
        metrics.append(outputs.metrics)
        runs.append(outputs.run)
    return evaluate_model(metrics, runs)


# --- outputs and results ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def results(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("models")
    return run_all_folds(corpus, out), out


def test_fold_outputs(results: tuple[dict, Path], corpus: Corpus) -> None:
    _, out = results
    fold = out / "fold1"
    for name in ("metrics.json", "predictions.parquet", "history.tsv", "run.json"):
        assert (fold / name).is_file(), name
    for seed in (0, 1):
        assert (fold / "checkpoints" / f"seed{seed}.safetensors").is_file()
        assert (fold / "checkpoints" / f"seed{seed}.json").is_file()
    metrics = json.loads((fold / "metrics.json").read_text())
    assert metrics["test_group"] == "Session1" and metrics["n"] == 24
    assert metrics["utterances"]["used"]["test"] == 24
    predictions = pd.read_parquet(fold / "predictions.parquet")
    assert list(predictions.columns) == ["utt_id", "seed", "label", "prediction", "p_ang", "p_hap", "p_neu", "p_sad"]
    assert len(predictions) == 2 * 24 and set(predictions["seed"]) == {0, 1}
    assert np.allclose(predictions[[f"p_{c}" for c in LABELS]].sum(axis=1), 1.0, atol=1e-5)
    history = pd.read_csv(fold / "history.tsv", sep="\t")
    columns = ["seed", "epoch", "train_loss", "val_loss", "val_wa", "val_ua", "val_macro_f1", "lr", "best"]
    assert list(history.columns) == columns
    assert history.groupby("seed")["best"].sum().tolist() == [1, 1]
    # Keras-style decay: lr / (1 + decay * steps), 3 steps per epoch (36 training utterances, batches of 16)
    first = history[(history.seed == 0) & (history.epoch == 1)]["lr"].item()
    assert first == pytest.approx(1.0e-2 * keras_decay(1.0e-3)(3))


def test_results_fields(results: tuple[dict, Path]) -> None:
    res, _ = results
    required = {
        "corpus", "model", "protocol", "text_source", "labels", "folds", "wa", "ua", "wa_std", "ua_std",
        "per_class_recall", "confusion", "seeds", "features", "utterances", "prepare_counts", "runtime",
        "macro_f1", "per_seed", "fold_std", "pooled", "hparams", "optim", "train", "warnings", "label_merge",
    }  # fmt: skip
    assert required <= set(res)
    assert res["model"] == MODEL and res["protocol"] == "loso_session" and res["labels"] == list(LABELS)
    assert res["seeds"] == [0, 1] and res["n_folds"] == 3
    assert [f["test_group"] for f in res["folds"]] == ["Session1", "Session2", "Session3"]
    for f in res["folds"]:
        assert {"fold", "test_group", "n", "wa", "ua", "macro_f1", "confusion"} <= set(f)
        assert np.asarray(f["confusion"]).sum() == 2 * f["n"]  # summed over the two seeds
    assert np.asarray(res["confusion"]).sum() == 2 * 72
    assert res["utterances"] == {"used": 72, "dropped": 0, "dropped_by_reason": {}, "dropped_utterances": []}
    assert set(res["features"]) == {"mfcc39", "glove"} and res["features"]["glove"]["dims"] == TEXT_DIMS
    assert res["hparams"]["audio_dim"] == AUDIO_DIMS and res["hparams"]["text_dim"] == TEXT_DIMS
    optim = {k: res["optim"][k] for k in ("name", "lr", "schedule", "lr_decay", "weight_decay", "grad_clip")}
    assert optim == {
        "name": "adam", "lr": 1.0e-2, "schedule": "keras_decay", "lr_decay": 1.0e-3, "weight_decay": 1.0e-4,
        "grad_clip": None,
    }  # fmt: skip
    per_seed_ua = [s["ua"] for s in res["per_seed"]]
    assert res["ua"] == pytest.approx(np.mean(per_seed_ua))
    assert res["ua_std"] == pytest.approx(np.std(per_seed_ua, ddof=1))
    assert res["per_seed"][0]["wa"] == pytest.approx(np.mean([f["per_seed"][0]["wa"] for f in res["folds"]]))
    assert res["ua"] > 0.4  # chance is 0.25: the features carry the class
    assert "elapsed_s" not in res and res["warnings"] == []  # wall times only in run.json: same config, same bytes
    json.dumps(res)  # JSON-ready


# --- determinism and model selection --------------------------------------------------------------------------


def _fold_bytes(directory: Path) -> dict[str, bytes]:
    names = [
        "metrics.json",
        "predictions.parquet",
        "history.tsv",
        *(f"checkpoints/seed{s}.safetensors" for s in (0, 1)),
    ]
    return {name: (directory / name).read_bytes() for name in names}


def test_same_config_same_bytes(corpus: Corpus, results: tuple[dict, Path], tmp_path: Path) -> None:
    first, out = results
    train_fold(job(corpus, 1), FoldOutputs.under(tmp_path / "again"), progress=False)
    assert _fold_bytes(tmp_path / "again") == _fold_bytes(out / "fold1")
    # The results file (DVC's metrics file) too: the wall times of run.json, which differ between identical
    # runs, do not reach it.
    slower = json.loads((out / "fold1" / "run.json").read_text())
    slower["elapsed_s"] *= 7
    (tmp_path / "slower.json").write_text(json.dumps(slower))
    metrics = [tmp_path / "again" / "metrics.json", *(out / f"fold{k}" / "metrics.json" for k in (2, 3))]
    runs = [tmp_path / "slower.json", *(out / f"fold{k}" / "run.json" for k in (2, 3))]
    assert json.dumps(evaluate_model(metrics, runs), sort_keys=True) == json.dumps(first, sort_keys=True)


def test_selection_never_sees_the_test_fold(corpus: Corpus, results: tuple[dict, Path], tmp_path: Path) -> None:
    """Relabel every test utterance (anything that looked at test scores would now behave differently): the
    kept weights, the curves and the selected epochs are unchanged; only the test scores move."""
    _, out = results
    folds = pd.read_parquet(corpus.folds)
    test_ids = set(folds[(folds.fold == 1) & (folds.split == "test")]["utt_id"])
    manifest = pd.read_parquet(corpus.manifest)
    shift = {c: LABELS[(i + 1) % len(LABELS)] for i, c in enumerate(LABELS)}
    manifest["label"] = [
        shift[lab] if u in test_ids else lab for u, lab in zip(manifest.utt_id, manifest.label, strict=True)
    ]
    manifest.to_parquet(tmp_path / "relabelled.parquet")
    train_fold(
        job(corpus, 1, manifest=tmp_path / "relabelled.parquet"), FoldOutputs.under(tmp_path / "r"), progress=False
    )
    before, after = _fold_bytes(out / "fold1"), _fold_bytes(tmp_path / "r")
    assert after["history.tsv"] == before["history.tsv"]
    assert after["checkpoints/seed0.safetensors"] == before["checkpoints/seed0.safetensors"]
    m_before = json.loads(before["metrics.json"])
    m_after = json.loads(after["metrics.json"])
    assert [s["best_epoch"] for s in m_after["seeds"]] == [s["best_epoch"] for s in m_before["seeds"]]
    assert m_after["ua"] < m_before["ua"]
    # the kept epoch is the best validation UA of the curves
    history = pd.read_csv(out / "fold1" / "history.tsv", sep="\t")
    for seed, curve in history.groupby("seed"):
        best = curve.sort_values(["val_ua", "val_loss"], ascending=[False, True], kind="stable").iloc[0]
        assert int(best.epoch) == m_before["seeds"][int(seed)]["best_epoch"]


def test_selector_and_early_stopping() -> None:
    sel = Selector(patience=2)
    seen = []
    for epoch, (ua, loss) in enumerate([(0.3, 1.0), (0.5, 0.9), (0.5, 0.8), (0.5, 0.85), (0.4, 0.7)], start=1):
        seen.append(sel.update(epoch, ua, loss))
        if sel.should_stop(epoch):
            break
    assert seen == [True, True, True, False, False]  # equal UA with lower loss counts as better
    assert sel.best_epoch == 3 and epoch == 5
    assert not Selector(None).should_stop(1000)


def test_early_stopping_limits_epochs(corpus: Corpus, tmp_path: Path) -> None:
    settings = replace(SETTINGS, seeds=(0,), epochs=40, patience=1)
    record = train_fold(job(corpus, 2, train=settings), FoldOutputs.under(tmp_path), progress=False)
    seed = record["seeds"][0]
    assert seed["stopped_early"] and seed["epochs_run"] == seed["best_epoch"] + 1 < 40


# --- checkpoints -----------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_without_pickle(
    corpus: Corpus, results: tuple[dict, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = results

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a checkpoint must load without unpickling")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    model, meta = load_model(out / "fold1" / "checkpoints" / "seed1.json")
    assert meta["model"] == MODEL and meta["seed"] == 1 and meta["labels"] == list(LABELS)
    assert meta["hparams"]["audio_dim"] == AUDIO_DIMS and meta["best_epoch"] >= 1
    # the reloaded weights reproduce the stored test probabilities
    predictions = pd.read_parquet(out / "fold1" / "predictions.parquet").query("seed == 1")
    stores = {"mfcc39": FeatureSet(corpus.mfcc39), "glove": FeatureSet(corpus.glove)}
    samples = [model.prepare({k: fs[u] for k, fs in stores.items()})[0] for u in predictions.utt_id]
    with torch.inference_mode():
        probs = torch.softmax(model(model.collate(samples)), dim=1).numpy()
    assert np.allclose(probs, predictions[[f"p_{c}" for c in LABELS]].to_numpy(), atol=1e-6)
    assert meta["test"]["wa"] == pytest.approx((predictions.label == predictions.prediction).mean())


def test_changed_weights_are_refused(results: tuple[dict, Path], tmp_path: Path) -> None:
    _, out = results
    src = out / "fold1" / "checkpoints"
    for name in ("seed0.json", "seed0.safetensors"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    data = bytearray((tmp_path / "seed0.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "seed0.safetensors").write_bytes(bytes(data))
    with pytest.raises(Exception, match="sha256"):
        load_state(tmp_path / "seed0.json")


# --- bad input ---------------------------------------------------------------------------------------------------


def test_utterance_missing_from_one_store_is_dropped_with_reason(corpus: Corpus, tmp_path: Path) -> None:
    ids, labels, _ = _utterances()
    _, text = _features(ids, labels)
    gone = ids[1]  # a session-1 utterance: in fold 1's test split, in the other folds' train/valid
    glove = _store(tmp_path, "glove", [item for item in text if item[0] != gone], variant="one missing")
    res = run_all_folds(
        corpus,
        tmp_path / "models",
        stores={"mfcc39": corpus.mfcc39, "glove": glove},
        train=replace(SETTINGS, seeds=(0,), epochs=2),
    )
    reason = "not in feature store 'glove'"
    assert res["utterances"]["dropped"] == 1 and res["utterances"]["used"] == 71
    assert res["utterances"]["dropped_by_reason"] == {reason: 1}
    assert res["utterances"]["dropped_utterances"] == [{"utt_id": gone, "reason": reason}]
    assert res["folds"][0]["n"] == 23 and res["folds"][0]["dropped"]["test"] == 1
    assert sum(res["folds"][1]["dropped"].values()) == 1  # dropped from fold 2's training data too
    fold1 = json.loads((tmp_path / "models" / "fold1" / "metrics.json").read_text())
    assert fold1["utterances"]["dropped_utterances"] == [{"utt_id": gone, "split": "test", "reason": reason}]


def test_fold_without_one_class_is_scored_with_a_warning(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", drop_class_in_session3="sad")
    res = run_all_folds(corpus, tmp_path / "models", train=replace(SETTINGS, seeds=(0,), epochs=2))
    fold3 = res["folds"][2]
    assert fold3["absent_classes"] == ["sad"] and fold3["n"] == 24
    assert all(np.isfinite(fold3[k]) for k in ("wa", "ua", "macro_f1"))
    assert np.asarray(fold3["confusion"])[3].sum() == 0
    assert any("Session3" in w and "sad" in w for w in res["warnings"])
    assert np.isfinite(res["ua"]) and res["per_class_recall"]["sad"] is not None  # other folds have sad


def test_unknown_model_lists_the_known_ones(corpus: Corpus, tmp_path: Path) -> None:
    known = r"unknown model 'wise_typo'; did you mean 'wise_text'\? known models: .*test_meanpool"
    with pytest.raises(ValueError, match=known):
        train_fold(job(corpus, model="wise_typo"), FoldOutputs.under(tmp_path), progress=False)


def test_refused_and_truncated_utterances_are_counted(corpus: Corpus, tmp_path: Path) -> None:
    ids, labels, _ = _utterances()
    audio, text = _features(ids, labels)
    refused = ids[30]  # session 2
    text = [(u, np.zeros_like(a) if u == refused else a) for u, a in text]
    glove = _store(tmp_path, "glove", text, variant="one zero")
    family = {**FAMILY, "max_frames": 6}
    res = run_all_folds(
        corpus,
        tmp_path / "models",
        stores={"mfcc39": corpus.mfcc39, "glove": glove},
        family_config=family,
        train=replace(SETTINGS, seeds=(0,), epochs=2),
    )
    assert res["utterances"]["dropped_by_reason"] == {"refused by prepare(): every word vector is zero": 1}
    expected = sum(max(0, len(a) - 6) for u, a in audio if u != refused)
    assert res["prepare_counts"] == {"frames_truncated": expected} and expected > 0
    assert res["hparams"]["max_frames"] == 6


def test_unknown_hyperparameter_is_refused_before_training(corpus: Corpus, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"takes no hyperparameter \['hiden'\]; it takes: .*hidden"):
        train_fold(job(corpus, family_config={"hiden": 4}), FoldOutputs.under(tmp_path), progress=False)


def test_store_dims_are_passed_as_role_dims() -> None:
    assert dim_hparams({"mfcc39": 39, "spans_mfcc39": 3, "glove": 300}) == {"audio_dim": 39, "text_dim": 300}
    with pytest.raises(ValueError, match="both give audio_dim"):
        dim_hparams({"mfcc39": 39, "logmel64": 64})
    with pytest.raises(ValueError, match="no role"):
        dim_hparams({"mystery": 7})


# --- configuration ------------------------------------------------------------------------------------------------


def test_corpus_train_override_and_family_sections() -> None:
    config = {
        "train": {"seeds": [0, 1, 2], "epochs": 50, "patience": 10, "models": ["wise"]},
        "corpora": {"demo": {"train": {"seeds": [0], "epochs": 12}}, "iemocap": {}},
    }
    demo = TrainSettings.from_config(merge_train_config(config, "demo"))
    assert demo.seeds == (0,) and demo.epochs == 12 and demo.patience == 10 and demo.models == ("wise",)
    assert TrainSettings.from_config(merge_train_config(config, "iemocap")).seeds == (0, 1, 2)
    assert "models" not in demo.result_params() and demo.result_params()["threads"] == 1  # threads change the bytes
    hparams, optim = family_settings({"phone_hidden": 50, "optim": {"lr": 1.0e-3, "lr_decay": 1.0e-3}})
    assert hparams == {"phone_hidden": 50} and optim.lr_decay == 1.0e-3 and optim.weight_decay == 0.0
    with pytest.raises(ValueError, match="unknown optim settings"):
        family_settings({"optim": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="unknown train settings"):
        TrainSettings.from_config({"epoch": 3})


def _training_config(**changes: object) -> dict:
    config = {
        "corpora": {"tiny": {"format": "iemocap", "labels": list(LABELS)}},
        "folds": {"protocols": ["loso_session"]},
        "train": {"models": [MODEL], "seeds": [0]},
        "models": {"test_family": {"hidden": 4, "optim": {"lr": 0.01}}},
    }
    config.update(changes)
    return config


def test_parse_time_checks_name_the_key_and_the_choices() -> None:
    assert check_training_config(_training_config())["tiny"].models == (MODEL,)
    with pytest.raises(ValueError, match=r"train.models \(corpus tiny\): unknown model 'nope'; known models: .*wise"):
        check_training_config(_training_config(train={"models": ["nope"]}))
    with pytest.raises(ValueError, match=r"models.wize: no registered model is of family 'wize'; known: .*wise"):
        check_training_config(_training_config(models={"wize": {}}))
    with pytest.raises(ValueError, match=r"models.test_family: model 'test_meanpool' .*no hyperparameter \['hiden'\]"):
        check_training_config(_training_config(models={"test_family": {"hiden": 4}}))
    with pytest.raises(ValueError, match=r"not one of folds\.protocols"):
        check_training_config(_training_config(train={"models": [MODEL], "protocol": "loso_speaker"}))
    with pytest.raises(ValueError, match=r"corpora.tiny.train.*unknown train settings \['epoch'\]"):
        check_training_config(_training_config(corpora={"tiny": {"labels": ["a", "b"], "train": {"epoch": 3}}}))


def test_project_config_is_valid_and_builds_every_model() -> None:
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    settings = check_training_config(config)  # every train.models entry built on the meta device
    assert settings["demo"].seeds == (0,) and len(settings["iemocap"].seeds) > 1
    assert config["corpora"]["demo"]["train"].keys() == {"seeds", "epochs", "patience"}  # no defaults injected
    hparams, optim = family_settings(config["models"]["wise"])
    assert (hparams["max_words"], hparams["max_phones"], hparams["max_frames"]) == (128, 14, 64)
    assert (optim.lr, optim.lr_decay, optim.weight_decay) == (1.0e-3, 1.0e-3, 1.0e-4)  # WISE section 4.2
    bad = copy.deepcopy(config)
    bad["corpora"]["demo"]["train"]["epochz"] = 3
    with pytest.raises(Exception, match="epochz"):
        validate(bad, str(REPO / "config" / "schema.yaml"))


def test_fold_index(corpus: Corpus) -> None:
    index = fold_index(pd.read_parquet(corpus.folds), "loso_session")
    assert [f["fold"] for f in index["folds"]] == [1, 2, 3]
    assert index["folds"][0] == {"fold": 1, "test_group": "Session1", "test": 24, "train": 36, "valid": 12}
    with pytest.raises(ValueError, match="no protocol 'loso_speaker'"):
        fold_index(pd.read_parquet(corpus.folds), "loso_speaker")
