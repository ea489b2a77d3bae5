"""The Snakemake workflow from clean: config validation, the demo corpus to manifest and folds, errors."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from serflow.models import get_spec
from serflow.train.tasks import split_run

SESSIONS = 3  # two speakers each


def _config(tmp_path: Path, **corpora_overrides: dict) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = 40
    config["corpora"]["demo"]["synth"]["sessions"] = SESSIONS
    for name, spec in corpora_overrides.items():
        config["corpora"].setdefault(name, {}).update(spec)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_demo_manifest_and_folds_from_clean(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = run_snakemake(tmp_path, config, "data/demo/manifest.parquet", "data/demo/folds.parquet")
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = pd.read_parquet(tmp_path / "data/demo/manifest.parquet")
    assert len(manifest) == 40
    assert manifest["speaker"].nunique() == 2 * SESSIONS
    assert (tmp_path / "data/demo/manifest_issues.tsv").read_text().startswith("utt_id\tpath\tline\taction\treason")
    folds = pd.read_parquet(tmp_path / "data/demo/folds.parquet")
    assert set(folds["protocol"]) == {"loso_session", "loso_speaker", "random_split"}
    for rule in ("synth_corpus", "manifest", "folds"):
        assert (tmp_path / f"logs/demo/{rule}.log").exists()
        assert (tmp_path / f"logs/demo/{rule}.benchmark.tsv").exists()
    # Nothing to do the second time.
    again = run_snakemake(tmp_path, config, "-n", "data/demo/folds.parquet")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # A fold parameter change reruns folds only.
    edited = yaml.safe_load(config.read_text())
    edited["folds"]["seed"] = 5
    config.write_text(yaml.safe_dump(edited))
    changed = run_snakemake(tmp_path, config, "-n", "data/demo/folds.parquet")
    jobs = changed.stdout + changed.stderr
    assert "rule folds:" in jobs and "rule manifest:" not in jobs and "rule synth_corpus:" not in jobs


def test_unconfigured_iemocap_names_the_key(tmp_path: Path) -> None:
    done = run_snakemake(tmp_path, _config(tmp_path), "-n", "data/iemocap/manifest.parquet")
    assert done.returncode != 0
    assert "set config key corpora.iemocap.root" in done.stdout + done.stderr


def test_root_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    config = _config(tmp_path, iemocap={"root": str(tmp_path / "missing")})
    done = run_snakemake(tmp_path, config, "-n", "data/iemocap/manifest.parquet")
    assert done.returncode != 0
    assert "corpora.iemocap.root" in done.stdout + done.stderr and "is not a folder" in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (lambda c: c.update(featurez={}), "config key featurez is unknown; did you mean 'features'?"),
        (lambda c: c["folds"].update(seed="zero"), "config key folds.seed = 'zero': 'zero' is not of type 'integer'"),
        (lambda c: c["corpora"]["demo"].update(labells=["a"]), "config key corpora.demo.labells is unknown"),
        (lambda c: c["folds"].update(protocols=["random_splits"]), "'random_splits' is not one of"),
        # issue 12: these passed validation and failed inside a job, or in a torch traceback
        (lambda c: c["features"]["acoustic"].update(mfcc39={"bogus": 1}), "config key features.acoustic.mfcc39.bogus"),
        (lambda c: c["features"]["acoustic"].update(mfcc120={"n_mfcc": -5}), "features.acoustic.mfcc120.n_mfcc = -5"),
        (lambda c: c["features"]["acoustic"].update(mfcc120={"n_mfcc": 50}), "n_mfcc must be in 1..n_mels (40)"),
        (lambda c: c["models"]["wise"].update(fc=[-1]), "config key models.wise.fc[0] = -1"),
        (lambda c: c["models"].update(wyse={}), "config key models.wyse is unknown; did you mean 'wise'?"),
    ],
)
def test_config_errors_fail_before_any_job_in_one_line(tmp_path: Path, edit, line: str) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, path, "-n")
    output = done.stderr + done.stdout
    assert done.returncode != 0 and line in output
    assert "Traceback" not in output and "schema" not in output  # one line, not a traceback or a schema dump
    assert not (tmp_path / "data").exists()


def test_numbers_nested_in_config_on_the_command_line_are_typed_by_the_schema(tmp_path: Path) -> None:
    """`--config` parses nested values as strings; the schema's types turn them back into numbers and booleans."""
    nested = [
        'train={"threads": 2, "amp": false, "seeds": [0, 1]}',
        'features={"shards": 3, "acoustic": {"mfcc39": {"n_ceps": 12}}}',
    ]
    done = run_snakemake(tmp_path, _config(tmp_path), "-n", "data/demo/folds.parquet", "--config", *nested)
    assert done.returncode == 0, done.stderr[-2000:]


def test_real_corpus_through_the_workflow(tmp_path: Path) -> None:
    """A configured IEMOCAP copy (here the trap-laden mini tree) goes through the same rules."""
    from conftest import write_mini_iemocap

    root = write_mini_iemocap(tmp_path / "IEMOCAP_full_release")
    config = _config(tmp_path, iemocap={"root": str(root)})
    done = run_snakemake(tmp_path, config, "data/iemocap/manifest.parquet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(tmp_path / "data/iemocap/manifest.parquet")) == 11


PLANNED_MODELS = ["gban", "gban_speech", "gban_text", "mfcnn14", "cnn14@vad", "lf", "wavfusion"]


@pytest.fixture(scope="module")
def iemocap_plans(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two dry runs on one configured copy (the trap-laden mini tree), shared by the models' tests: every model's
    results/iemocap_<model>.json at once, then every store those models read. Each dry run parses the workflow once
    (most of its time), so one run for all seven models instead of two per model."""
    from conftest import write_mini_iemocap

    from serflow.features.plan import plan

    tmp_path = tmp_path_factory.mktemp("iemocap_plans")
    root = write_mini_iemocap(tmp_path / "IEMOCAP_full_release")
    config = _config(tmp_path, iemocap={"root": str(root)})
    results = run_snakemake(tmp_path, config, "-n", *(f"results/iemocap_{model}.json" for model in PLANNED_MODELS))
    settings = yaml.safe_load(config.read_text())
    stores = {
        store: plan(settings, "iemocap", store).directory
        for model in PLANNED_MODELS
        for store in get_spec(split_run(model)[0]).features
    }
    planned = run_snakemake(tmp_path, config, "-n", *(f"{folder}/manifest.json" for folder in stores.values()))
    return {"results": results, "stores": stores, "planned": planned, "settings": settings}


def _planned_jobs(output: str) -> list[tuple[str, str, str]]:
    """(rule, input, output) of each job a dry run lists."""
    jobs = []
    for match in re.finditer(r"^(?:localrule|rule|checkpoint) (\w+):\n((?:    .*\n)+)", output, re.M):
        fields = dict(line.strip().split(": ", 1) for line in match.group(2).splitlines() if ": " in line)
        jobs.append((match.group(1), fields.get("input", ""), fields.get("output", "")))
    return jobs


@pytest.mark.parametrize("model", PLANNED_MODELS)
def test_a_model_plans_on_an_iemocap_tree(iemocap_plans: dict, model: str) -> None:
    """`snakemake -n results/iemocap_<model>.json` plans for a configured copy (up to the fold index: the folds
    are known once it has run), and the stores the model reads plan from the manifest through the alignment."""
    done = iemocap_plans["results"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rule manifest:" in done.stdout and "checkpoint fold_index:" in done.stdout
    settings = iemocap_plans["settings"]
    spec = get_spec(split_run(model)[0])
    if not spec.features:  # late fusion reads its components' predictions, no store
        return
    planned = iemocap_plans["planned"]
    assert planned.returncode == 0, planned.stderr[-3000:]
    jobs = _planned_jobs(planned.stdout)
    words = "data/iemocap/align/"
    for store in spec.features:
        folder = iemocap_plans["stores"][store]
        assert f"features/iemocap/{store}/" in folder and folder in planned.stdout, store
        # Text stores (and spans) read the alignment's words, acoustic stores do not: the jobs that write the
        # store (its shards or the store itself) list the alignment among their inputs exactly when it reads words.
        writers = [job for job in jobs if folder in job[2] and job[0] != "finalize_features"]
        assert writers, (store, planned.stdout[-3000:])
        reads_words = store not in settings["features"]["acoustic"]
        assert all((words in job[1]) == reads_words for job in writers), (store, writers)
    if any(store not in settings["features"]["acoustic"] for store in spec.features):
        assert "rule align:" in planned.stdout
    if spec.family == "wavfusion":  # the checkpoints a user with the hub gets: named in the config it planned with
        assert settings["models"]["wavfusion"]["model"] == "facebook/wav2vec2-base"
        assert settings["features"]["roberta"]["model"] == "roberta-base"
