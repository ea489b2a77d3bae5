"""The dimensional task: CCC (against a hand computation and numpy, degenerate cases defined), its loss, and a
fold trained and evaluated on valence / arousal / dominance, with utterances lacking them dropped with reasons."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from test_train import SETTINGS, Corpus, job, make_corpus

from serflow.train.evaluate import compact_metrics, evaluate_model
from serflow.train.loop import ccc_loss
from serflow.train.run import FoldOutputs, train_fold
from serflow.train.tasks import ccc, dimensional_targets, make_task, pearson, regression_metrics, run_name, split_run


def test_ccc_by_hand_and_against_numpy() -> None:
    pred, true = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    # means 2 and 7/3; population variances 2/3 and 14/9; covariance 1; CCC = 2 / (2/3 + 14/9 + 1/9) = 6/7
    assert ccc(pred, true) == pytest.approx(6 / 7)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=500), rng.normal(size=500) * 2 + 1
    reference = 2 * np.cov(x, y, bias=True)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert ccc(x, y) == pytest.approx(reference)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])


def test_degenerate_cases_are_defined() -> None:
    const, varying = np.full(10, 3.0), np.arange(10.0)
    assert ccc(const, const) == 1.0  # both constant and equal: perfect agreement
    assert ccc(const, varying) == 0.0 and pearson(const, varying) == 0.0  # no covariance, no measurable correlation
    assert ccc(const, np.full(10, 4.0)) == 0.0  # both constant, different: no agreement
    assert ccc(np.array([1.0]), np.array([2.0])) == 0.0 and pearson(np.array([1.0]), np.array([1.0])) == 0.0
    metrics = regression_metrics(np.c_[const, varying], np.c_[varying, varying], ["valence", "arousal"])
    assert metrics["ccc"] == {"valence": 0.0, "arousal": 1.0} and metrics["mean_ccc"] == 0.5
    assert all(np.isfinite(v) for key in ("ccc", "pearson", "mse") for v in metrics[key].values())


def test_ccc_loss_is_one_minus_the_mean_ccc_and_has_a_gradient() -> None:
    rng = np.random.default_rng(1)
    pred = torch.tensor(rng.normal(size=(64, 3)), requires_grad=True)
    true = torch.tensor(rng.normal(size=(64, 3)))
    loss = ccc_loss(pred, true)
    expected = 1 - np.mean([ccc(pred.detach().numpy()[:, i], true.numpy()[:, i]) for i in range(3)])
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_run_names_carry_the_task() -> None:
    assert split_run("cnn14@vad") == ("cnn14", "vad") and split_run("cnn14") == ("cnn14", "categorical")
    assert run_name("cnn14", "arousal") == "cnn14@arousal" and run_name("cnn14", "categorical") == "cnn14"
    with pytest.raises(ValueError, match="unknown task 'happiness'"):
        split_run("cnn14@happiness")
    assert make_task("vad", ["a"], (1, 5)).loss == "ccc" and make_task("arousal", ["a"], (1, 5)).loss == "mse"
    with pytest.raises(ValueError, match="dimensional scale"):
        make_task("vad", ["a"], None)


def test_targets_outside_the_scale_or_missing_are_refused_with_the_reason() -> None:
    manifest = pd.DataFrame(
        {"utt_id": ["a", "b", "c"], "valence": [2.5, np.nan, 3.0], "arousal": [3.0, 2.0, 6.5], "dominance": [1, 2, 3]}
    )
    targets = dimensional_targets(manifest, make_task("vad", [], (1, 5)))
    assert targets["a"].tolist() == [2.5, 3.0, 1.0]
    assert targets["b"] == "no valence in the manifest" and targets["c"] == "arousal 6.5 outside the corpus's scale 1-5"


@pytest.fixture(scope="module")
def vad_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    corpus = make_corpus(tmp_path_factory.mktemp("vad"))
    manifest = pd.read_parquet(corpus.manifest)
    rng = np.random.default_rng(3)
    signal = manifest["label"].map({"ang": 1.5, "hap": 4.0, "neu": 3.0, "sad": 2.0}).to_numpy()
    for i, dim in enumerate(("valence", "arousal", "dominance")):
        manifest[dim] = np.clip(signal + rng.normal(0, 0.3, len(manifest)) * (i + 1), 1, 5)
    manifest.loc[1, "valence"] = np.nan  # no annotation: dropped from the dimensional task only
    manifest.to_parquet(corpus.manifest)
    return corpus


def test_a_dimensional_fold_is_trained_selected_on_ccc_and_evaluated(vad_corpus: Corpus, tmp_path) -> None:
    settings = replace(SETTINGS, seeds=(0, 1), epochs=25, patience=None)
    metrics = []
    for fold in (1, 2, 3):
        out = FoldOutputs.under(tmp_path / f"fold{fold}")
        record = train_fold(job(vad_corpus, fold=fold, train=settings, task="vad", scale=(1.0, 5.0)), out)
        metrics.append(out.metrics)
    assert set(record["task"]["outputs"]) == {"valence", "arousal", "dominance"} and record["task"]["loss"] == "ccc"
    predictions = pd.read_parquet(out.predictions)
    assert {"true_valence", "pred_valence", "true_dominance", "pred_dominance"} <= set(predictions.columns)
    history = pd.read_csv(out.history, sep="\t")
    assert {"val_ccc", "val_ccc_arousal", "val_mse_valence"} <= set(history.columns)
    results = evaluate_model(metrics, [m.with_name("run.json") for m in metrics])
    assert results["task"]["name"] == "vad" and -1 <= results["ccc"] <= 1
    assert results["ccc"] > 0.3  # the dimensions follow the classes, which the features carry
    assert results["pooled"]["ccc_arousal"] == pytest.approx(results["pooled"]["ccc_arousal"])
    assert results["utterances"]["dropped_by_reason"] == {"no valence in the manifest": 1}
    assert "confusion" not in results and set(compact_metrics(results)) >= {"ccc", "ccc_valence", "mse_arousal"}


def test_targets_are_standardised_on_the_training_split_and_scored_in_corpus_units() -> None:
    from serflow.train.loop import TargetScale, scores

    rng = np.random.default_rng(3)
    train_y = rng.normal([3.0, 2.5, 4.0], [0.5, 1.0, 0.0], size=(50, 3)).astype(np.float32)  # dominance constant
    scale = TargetScale.fit(train_y)
    assert scale.std[2] == 1.0  # a constant target keeps unit scale: no division by zero
    encoded = scale.encode(train_y)
    assert np.allclose(encoded[:, :2].mean(0), 0, atol=1e-5) and np.allclose(encoded[:, :2].std(0), 1, atol=1e-4)
    assert np.allclose(scale.decode(encoded), train_y, atol=1e-5)
    # an untrained head outputs about 0: the prediction is the training mean, on the corpus's scale
    assert np.allclose(scale.decode(np.zeros((1, 3))), train_y.mean(0), atol=1e-5)
    task = make_task("vad", ["ang"], (1, 5))
    outputs, y = rng.normal(size=(40, 3)).astype(np.float32), rng.normal(3, 1, size=(40, 3)).astype(np.float32)
    scaled = scores(outputs, y, task, scale)
    direct = regression_metrics(scale.decode(outputs), y, task.outputs)
    assert scaled["ccc"] == direct["ccc"] and scaled["mse"] == direct["mse"]  # metrics: decoded outputs, raw targets
    assert scaled["loss"] == pytest.approx(
        float(ccc_loss(torch.from_numpy(outputs), torch.from_numpy(scale.encode(y))))
    )
