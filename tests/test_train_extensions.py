"""What the trainer does for the families beyond WISE: fold-level fitting hooks, class weights, the selection
metric, optimisers and schedules, a family's own validation share, per-family and per-corpus settings."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import LABELS, SETTINGS, Corpus, job, make_corpus
from torch import nn

from serflow.models import MODELS, ModelSpec, SerModel, register
from serflow.train.checkpoint import load_model
from serflow.train.config import (
    OptimSettings,
    TrainSettings,
    family_section,
    family_settings,
    merge_train_config,
    reduced_settings,
)
from serflow.train.data import redraw_validation
from serflow.train.loop import Selector, class_weights
from serflow.train.optim import AdamNoBiasCorrection, Schedule, build_optimizer, linear_warmup
from serflow.train.run import FoldOutputs, train_fold

VOCAB_MODEL = "test_vocab"


class VocabModel(SerModel):
    """A model with a training-split "vocabulary": its size is a fold hyperparameter, its rows set by init_fold."""

    def __init__(self, n_classes: int, audio_dim: int, text_dim: int, vocab_size: int = 0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.register_buffer("seen", torch.zeros(max(vocab_size, 1)))
        self.net = nn.Linear(audio_dim + text_dim + 1, n_classes)
        self.vocabulary_splits = ("train",)

    def prepare(self, sample):  # type: ignore[no-untyped-def]
        x = np.concatenate([sample["mfcc39"].mean(0), sample["glove"].mean(0)])
        return {"x": x, "n": np.array([len(sample["mfcc39"])], np.float32)}, {}

    def fold_hparams(self, train):  # type: ignore[no-untyped-def]
        return {"vocab_size": len({int(s["n"][0]) for s in train})}

    def init_fold(self, train):  # type: ignore[no-untyped-def]
        self.seen.fill_(float(len(train)))
        return {"rows": self.vocab_size, "samples": len(train)}

    def oov_stats(self, samples):  # type: ignore[no-untyped-def]
        return {"words": len(samples), "oov_rate": 0.0}

    def settings(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def collate(self, samples):  # type: ignore[no-untyped-def]
        x = torch.from_numpy(np.stack([np.concatenate([s["x"], s["n"] / 10]) for s in samples]))
        return {"x": x.float()}

    def forward(self, batch):  # type: ignore[no-untyped-def]
        return self.net(batch["x"])


if VOCAB_MODEL not in MODELS:
    register(ModelSpec(VOCAB_MODEL, VocabModel, ("mfcc39", "glove"), "test_vocab_family", "test-only vocabulary"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_fold_hooks_size_the_model_from_the_training_split_and_rebuild_from_the_checkpoint(corpus, tmp_path) -> None:
    out = FoldOutputs.under(tmp_path / "fold1")
    record = train_fold(replace(job(corpus), model=VOCAB_MODEL, family_config={}), out)
    vocab = record["fold_hparams"]["vocab_size"]
    assert vocab >= 2 and "vocab_size" not in record["hparams"]  # per fold, apart from the configured ones
    assert record["fold_fit"] == {"rows": vocab, "samples": record["utterances"]["used"]["train"]}
    assert record["oov"]["test"]["words"] == record["utterances"]["used"]["test"]
    assert record["model_settings"] == {"vocab_size": vocab}
    assert record["parameters"]["total"] == sum(p.numel() for p in VocabModel(4, 5, 3).parameters())
    model, meta = load_model(out.checkpoints / "seed0.json")  # rebuilt with the fold's size, buffers loaded
    assert meta["hparams"]["vocab_size"] == vocab and model.seen.shape == (vocab,)
    assert float(model.seen[0]) == record["utterances"]["used"]["train"]


def test_balanced_class_weights_are_n_over_classes_times_count() -> None:
    y = np.array([0, 0, 0, 1, 2, 2])
    weights = class_weights(y, 4)
    assert weights.tolist() == pytest.approx([6 / (3 * 3), 6 / (3 * 1), 6 / (3 * 2), 1.0])  # class 3 absent


def test_class_weighted_training_runs_and_is_recorded(corpus, tmp_path) -> None:
    settings = replace(SETTINGS, seeds=(0,), class_weights="balanced", selection="wa")
    record = train_fold(job(corpus, train=settings), FoldOutputs.under(tmp_path / "f"))
    assert record["train"]["class_weights"] == "balanced" and record["train"]["selection"] == "wa"


def test_selection_picks_on_the_configured_score() -> None:
    by_ua, by_wa, by_loss = Selector(None, "ua"), Selector(None, "wa"), Selector(None, "loss")
    for s in (by_ua, by_wa, by_loss):
        s.update(1, val_score=0.6, val_loss=1.0, val_wa=0.5)
        s.update(2, val_score=0.5, val_loss=0.8, val_wa=0.7)
    assert (by_ua.best_epoch, by_wa.best_epoch, by_loss.best_epoch) == (1, 2, 2)


def test_optimisers_follow_the_settings() -> None:
    model = nn.Linear(3, 2)
    sgd = build_optimizer(model, OptimSettings(name="sgd", lr=0.01, momentum=0.9, nesterov=True))
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    adam = build_optimizer(model, OptimSettings(lr=1e-4, betas=(0.9, 0.9)))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.9, 0.9)
    bert = build_optimizer(model, OptimSettings(lr=2e-5, eps=1e-6, bias_correction=False))
    assert isinstance(bert, AdamNoBiasCorrection)
    with pytest.raises(ValueError, match="nesterov needs name: sgd"):
        OptimSettings(nesterov=True)
    with pytest.raises(ValueError, match="lr_decay is the keras_decay"):
        OptimSettings(lr_decay=1e-3, schedule="constant")
    assert OptimSettings.from_config({"lr_decay": 1e-3}).schedule == "keras_decay"  # WISE's short form


def test_adam_without_bias_correction_is_the_plain_update() -> None:
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = AdamNoBiasCorrection([p], lr=0.1, betas=(0.9, 0.99), eps=1e-6)
    g = torch.tensor([0.5, -1.0])
    p.grad = g.clone()
    opt.step()
    m, v = 0.1 * g, 0.01 * g * g
    assert torch.allclose(p.detach(), torch.tensor([1.0, -2.0]) - 0.1 * m / (v.sqrt() + 1e-6))


def test_schedules() -> None:
    factor = linear_warmup(10, 110)
    assert [factor(s) for s in (0, 5, 10, 60, 110, 200)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0, 0.0])
    assert linear_warmup(10, None)(50) == 1.0
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, OptimSettings(lr=1.0, schedule="plateau", plateau_patience=1, plateau_factor=0.5))
    schedule = Schedule(opt, OptimSettings(lr=1.0, schedule="plateau", plateau_patience=1, plateau_factor=0.5))
    for loss in (1.0, 1.0, 1.0):
        schedule.after_epoch(loss)
    assert schedule.lr == 0.5


def test_a_family_validation_share_is_redrawn_from_the_training_part_only() -> None:
    ids = [f"u{i:03d}" for i in range(200)]
    labels = {u: LABELS[i % 4] for i, u in enumerate(ids)}
    assignment = {"train": ids[:150], "valid": ids[150:180], "test": ids[180:]}
    redrawn = redraw_validation(assignment, labels, 0.05, fold=1)
    assert redrawn["test"] == ids[180:] and set(redrawn["train"]) | set(redrawn["valid"]) == set(ids[:180])
    assert len(redrawn["valid"]) == 8 and {labels[u] for u in redrawn["valid"]} == set(LABELS)  # stratified
    assert redraw_validation(assignment, labels, 0.05, fold=1) == redrawn  # deterministic
    assert redraw_validation(assignment, labels, 0.05, fold=2) != redrawn


def test_settings_merge_from_everywhere_to_the_most_specific() -> None:
    config = {
        "train": {"epochs": 50, "seeds": [0, 1, 2]},
        "models": {"gban": {"dropout": 0.5, "optim": {"lr": 1e-4, "grad_clip": 5.0}, "train": {"epochs": 100}}},
        "corpora": {
            "demo": {"train": {"epochs": 8}, "families": {"gban": {"dropout": 0.2, "optim": {"lr": 1e-3}}}},
            "iemocap": {},
        },
    }
    assert merge_train_config(config, "iemocap", "gban")["epochs"] == 100  # the family's paper regime
    assert merge_train_config(config, "demo", "gban")["epochs"] == 8  # the corpus's shortcut over it
    demo = family_section(config, "demo", "gban")
    hparams, optim = family_settings(demo)
    assert hparams == {"dropout": 0.2} and (optim.lr, optim.grad_clip) == (1e-3, 5.0)
    assert reduced_settings(config, "demo", "gban") == {"dropout": 0.2, "optim": {"lr": 1e-3}}
    assert reduced_settings(config, "iemocap", "gban") == {}
    with pytest.raises(ValueError, match="class_weights"):
        TrainSettings(class_weights="inverse")


def test_results_carry_the_reduced_setting_and_the_paper(corpus, tmp_path) -> None:
    from serflow.train.evaluate import evaluate_model

    metrics = []
    for fold in (1, 2, 3):
        out = FoldOutputs.under(tmp_path / f"fold{fold}")
        train_fold(job(corpus, fold=fold, train=replace(SETTINGS, seeds=(0,), epochs=2), reduced={"hidden": 4}), out)
        metrics.append(out.metrics)
    results = evaluate_model(metrics, [m.with_name("run.json") for m in metrics], {"format": "iemocap"})
    assert results["reduced"] == {"hidden": 4} and results["paper"] is None  # the test model is in no paper
    assert results["parameters"]["total"] > 0 and json.dumps(results)
    assert pd.notna(results["ua"])
