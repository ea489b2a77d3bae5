"""What a fold and a results file record about their inputs (issue 17): the manifest and the folds file by sha256,
the label merge as the manifest recorded it, the fold seed and the validation share (docs/results.md, ``inputs``);
and the stores' full effective parameters (``features.<store>.effective_params``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_train import SETTINGS, Corpus, job, make_corpus

from serflow.features.plan import effective_params
from serflow.train.evaluate import evaluate_model
from serflow.train.run import FoldOutputs, fold_settings, train_fold

FOLDS_CONFIG = {"seed": 3, "validation_fraction": 0.25, "protocols": ["loso_session"]}
MERGE = {"exc": "hap"}
QUICK = replace(SETTINGS, seeds=(0,), epochs=2)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_label_metadata(manifest: Path, merge: dict[str, str]) -> None:
    """The manifest's label config in its Parquet metadata, as ``serflow.corpora.manifest.to_table`` writes it."""
    table = pq.read_table(manifest)
    meta = {
        **(table.schema.metadata or {}),
        b"serflow.labels": json.dumps(["ang", "hap", "neu", "sad"]).encode(),
        b"serflow.merge": json.dumps(merge, sort_keys=True).encode(),
    }
    pq.write_table(table.replace_schema_metadata(meta), manifest)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    made = make_corpus(tmp_path_factory.mktemp("corpus"))
    with_label_metadata(made.manifest, MERGE)
    return made


@pytest.fixture(scope="module")
def results(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("models")
    settings = fold_settings(FOLDS_CONFIG, "loso_session")
    metrics, runs = [], []
    for fold in (1, 2, 3):
        outputs = FoldOutputs.under(out / f"fold{fold}")
        train_fold(job(corpus, fold, train=QUICK, fold_settings=settings), outputs, progress=False)
        metrics.append(outputs.metrics)
        runs.append(outputs.run)
    return evaluate_model(metrics, runs), out


def test_results_record_the_manifest_and_folds_by_sha256(results: tuple[dict, Path], corpus: Corpus) -> None:
    res, out = results
    inputs = res["inputs"]
    assert inputs["manifest"] == {
        "path": str(corpus.manifest),
        "sha256": sha256(corpus.manifest),
        "labels": ["ang", "hap", "neu", "sad"],
        "merge": MERGE,
    }
    assert inputs["folds"] == {
        "path": str(corpus.folds),
        "sha256": sha256(corpus.folds),
        "seed": 3,
        "validation_fraction": 0.25,
        "validation_split": "stratified",
    }
    for fold in (1, 2, 3):  # every fold records the same, and the results file is its copy
        record = json.loads((out / f"fold{fold}" / "metrics.json").read_text())
        assert record["inputs"] == inputs
    assert res["warnings"] == []  # the manifest's merge is the configured one


def test_results_record_the_stores_effective_params(results: tuple[dict, Path]) -> None:
    res, _ = results
    mfcc39 = res["features"]["mfcc39"]
    assert mfcc39["params"] == {"variant": ""}  # as the (test) store recorded and hashed them
    assert mfcc39["effective_params"] == effective_params("mfcc39", mfcc39["params"])
    assert mfcc39["effective_params"]["frame_step_s"] == 0.015 and mfcc39["effective_params"]["variant"] == ""


def test_family_validation_share_is_recorded_when_it_redraws(corpus: Corpus, tmp_path: Path) -> None:
    settings = fold_settings(FOLDS_CONFIG, "loso_session")
    redraw = replace(QUICK, validation_fraction=0.1)
    record = train_fold(job(corpus, 1, train=redraw, fold_settings=settings), FoldOutputs.under(tmp_path / "f"))
    folds = record["inputs"]["folds"]
    assert folds["validation_fraction"] == 0.1 and folds["validation_split"] == "redrawn"
    assert folds["seed"] == 3 and folds["sha256"] == sha256(corpus.folds)


def test_a_manifest_merged_otherwise_is_warned_about(corpus: Corpus, tmp_path: Path) -> None:
    record = train_fold(job(corpus, 1, train=QUICK, label_merge={}), FoldOutputs.under(tmp_path / "f"))
    assert record["inputs"]["manifest"]["merge"] == MERGE
    assert any("label merge" in w and "manifest's" in w for w in record["warnings"])


def test_a_hand_made_manifest_records_no_labels(tmp_path: Path) -> None:
    plain = make_corpus(tmp_path / "corpus")  # written by pandas: no serflow metadata
    record = train_fold(job(plain, 1, train=QUICK), FoldOutputs.under(tmp_path / "f"))
    assert record["inputs"]["manifest"]["labels"] is None and record["inputs"]["manifest"]["merge"] is None
    assert record["inputs"]["folds"] == {"path": str(plain.folds), "sha256": sha256(plain.folds)}  # not told


def test_folds_with_other_inputs_are_not_aggregated(results: tuple[dict, Path], tmp_path: Path) -> None:
    _, out = results
    metrics, runs = [], []
    for fold in (1, 2, 3):
        copy = tmp_path / f"fold{fold}"
        copy.mkdir()
        for name in ("metrics.json", "run.json", "predictions.parquet", "history.tsv"):
            (copy / name).write_bytes((out / f"fold{fold}" / name).read_bytes())
        (copy / "checkpoints").mkdir()
        for ckpt in (out / f"fold{fold}" / "checkpoints").iterdir():
            (copy / "checkpoints" / ckpt.name).write_bytes(ckpt.read_bytes())
        metrics.append(copy / "metrics.json")
        runs.append(copy / "run.json")
    record = json.loads(metrics[1].read_text())
    record["inputs"]["folds"]["seed"] = 4
    metrics[1].write_text(json.dumps(record))
    with pytest.raises(ValueError, match="differs from fold 1 in 'inputs'"):
        evaluate_model(metrics, runs)


def test_fold_settings_per_protocol() -> None:
    config = {"seed": 0, "validation_fraction": 0.1, "random_split": {"train": 0.6, "valid": 0.2, "seed": 7}}
    assert fold_settings(config, "loso_session") == {
        "seed": 0,
        "validation_fraction": 0.1,
        "validation_split": "stratified",
    }
    assert fold_settings(config, "loso_speaker")["validation_split"] == "partner_or_stratified"
    assert fold_settings(config, "random_split") == {
        "seed": 7,
        "train_fraction": 0.6,
        "validation_fraction": 0.2,
        "validation_split": "random_split",
    }
    assert fold_settings({}, "random_split")["seed"] == 42  # the random split's own default, not folds.seed


def test_late_fusion_records_its_components_inputs(tmp_path: Path) -> None:
    from test_late_fusion import CLASSES, component

    from serflow.train.late_fusion import fuse_fold
    from serflow.train.tasks import make_task

    inputs = {"manifest": {"sha256": "m" * 64}, "folds": {"sha256": "f" * 64, "seed": 0}}
    folders = {}
    for name in ("cnn14", "bert"):
        folders[name] = component(tmp_path / name, name, {"u1": [0.6, 0.4, 0, 0]})
        record = json.loads((folders[name] / "metrics.json").read_text())
        (folders[name] / "metrics.json").write_text(json.dumps({**record, "inputs": inputs}))
    task = make_task("categorical", CLASSES)
    fused = fuse_fold(folders, task, FoldOutputs.under(tmp_path / "lf" / "fold1"))
    assert fused["inputs"] == inputs
    other = json.loads((folders["bert"] / "metrics.json").read_text())
    other["inputs"]["folds"]["sha256"] = "g" * 64
    (folders["bert"] / "metrics.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="another manifest or folds file"):
        fuse_fold(folders, task, FoldOutputs.under(tmp_path / "lf2" / "fold1"))
