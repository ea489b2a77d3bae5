"""Features, training and evaluation through the workflow on a small synthetic corpus: built, incremental."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from serflow.features.plan import plan
from serflow.features.stores import feature_names
from serflow.shards import FeatureSet

N = 40
SESSIONS = 3  # loso_session: one fold per session (fewer sessions, fewer training jobs; IEMOCAP has 5)


@pytest.fixture(scope="module")
def features_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    workdir = tmp_path_factory.mktemp("features")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = N
    config["corpora"]["demo"]["synth"]["sessions"] = SESSIONS
    config["features"]["shards"] = 2
    config["corpora"]["demo"]["feature_shards"] = 2  # two jobs per sharded store: their merge is checked
    config["train"]["models"] = ["wise", "wise_audio"]
    config["corpora"]["demo"]["train"] = {"seeds": [0], "epochs": 2, "patience": 2}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(workdir, path, *_targets(config))
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, path, config


def _targets(config: dict) -> list[str]:
    stores = [plan(config, "demo", f).directory + "/manifest.json" for f in feature_names(config["features"])]
    return stores + [f"results/demo_{model}.json" for model in config["train"]["models"]]


def _jobs(dry_run_output: str) -> dict[str, int]:
    """The job-count table of ``snakemake -n``."""
    table = dry_run_output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "all"}


@pytest.mark.slow
def test_every_store_is_complete_and_accounts_for_every_utterance(features_run: tuple[Path, Path, dict]) -> None:
    workdir, _, config = features_run
    manifest = pd.read_parquet(workdir / "data/demo/manifest.parquet")
    labelled = int(manifest["label"].notna().sum())
    for feature in feature_names(config["features"]):
        store = FeatureSet(workdir / plan(config, "demo", feature).directory)
        counts = store.meta["meta"]["counts"]
        assert counts["selected"] == labelled == counts["stored"] + counts["dropped"], feature
        assert len(store) == counts["stored"] >= 0.9 * labelled, feature
    bert = json.loads((workdir / plan(config, "demo", "bert").directory / "manifest.json").read_text())
    assert bert["meta"]["model"]["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    roberta = FeatureSet(workdir / plan(config, "demo", "roberta_utt").directory)
    assert roberta.meta["meta"]["model"]["random_init"] is True
    # Word stores and spans describe the same words.
    glove = FeatureSet(workdir / plan(config, "demo", "glove").directory)
    spans = FeatureSet(workdir / plan(config, "demo", "spans_mfcc39").directory)
    for utt_id in spans.ids[:10]:
        assert int(spans[utt_id][-1, 0]) + 1 == glove[utt_id].shape[0]


@pytest.mark.slow
def test_second_run_does_nothing(features_run: tuple[Path, Path, dict]) -> None:
    workdir, path, config = features_run
    again = run_snakemake(workdir, path, "-n", *_targets(config))
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


@pytest.mark.slow
def test_one_changed_parameter_rebuilds_that_store_and_what_reads_it(features_run: tuple[Path, Path, dict]) -> None:
    workdir, _, base = features_run
    config = copy.deepcopy(base)
    config["features"]["acoustic"]["mfcc39"] = {"frame_step_s": 0.01}
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    dry = run_snakemake(workdir, changed, "-n", *_targets(config))
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = _jobs(dry.stdout)  # the stores, then every model reading mfcc39 or the spans (wise, wise_audio)
    assert jobs == {"acoustic_shard": 2, "finalize_features": 1, "spans": 1, "train": 2 * SESSIONS, "evaluate": 2}
    assert "wildcards: corpus=demo, acoustic=mfcc39" in dry.stdout and "acoustic=gban52" not in dry.stdout

    config["features"]["acoustic"]["mfcc39"] = {}
    config["features"]["glove"]["oov"] = "random"
    changed.write_text(yaml.safe_dump(config))
    dry = run_snakemake(workdir, changed, "-n", *_targets(config))
    assert _jobs(dry.stdout) == {"glove": 1, "train": SESSIONS, "evaluate": 1}  # wise_audio reads no GloVe


@pytest.mark.slow
def test_results_are_cross_validated_and_a_hyperparameter_reruns_only_training(
    features_run: tuple[Path, Path, dict],
) -> None:
    workdir, _, base = features_run
    config = copy.deepcopy(base)
    result = json.loads((workdir / "results/demo_wise.json").read_text())
    groups = [f"Session{i}" for i in range(1, SESSIONS + 1)]
    assert result["n_folds"] == SESSIONS and [f["test_group"] for f in result["folds"]] == groups
    assert (
        0.0 <= result["ua"] <= 1.0 and result["features"]["mfcc39"]["version"] == plan(config, "demo", "mfcc39").version
    )
    assert result["utterances"]["used"] + result["utterances"]["dropped"] >= 0.9 * N
    for fold in range(1, SESSIONS + 1):
        assert (workdir / f"models/demo/wise/loso_session/fold{fold}/checkpoints/seed0.safetensors").is_file()

    config["models"]["wise"]["dropout"] = 0.5
    changed = workdir / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    dry = run_snakemake(workdir, changed, "-n", *_targets(config))
    assert _jobs(dry.stdout) == {"train": 2 * SESSIONS, "evaluate": 2}  # both WISE variants, nothing upstream
