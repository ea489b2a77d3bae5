"""The Snakemake workflow from clean: config validation, the demo corpus to manifest and folds, errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake


def _config(tmp_path: Path, **corpora_overrides: dict) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = 40
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
    assert manifest["speaker"].nunique() == 10
    assert (tmp_path / "data/demo/manifest_issues.tsv").read_text().startswith("utt_id\tpath\tline\taction\treason")
    folds = pd.read_parquet(tmp_path / "data/demo/folds.parquet")
    assert set(folds["protocol"]) == {"loso_session", "loso_speaker"}
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
    ("edit", "named"),
    [
        (lambda c: c.update(featurez={}), "'featurez' was unexpected"),
        (lambda c: c["folds"].update(seed="zero"), "'zero' is not of type 'integer'"),
        (lambda c: c["corpora"]["demo"].update(labells=["a"]), "'labells' was unexpected"),
        (lambda c: c["folds"].update(protocols=["random_split"]), "'random_split' is not one of"),
    ],
)
def test_config_errors_fail_before_any_job_naming_the_key(tmp_path: Path, edit, named: str) -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    edit(config)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, path, "-n")
    assert done.returncode != 0
    assert "Error validating config file" in done.stderr + done.stdout
    assert named in done.stderr + done.stdout
    assert not (tmp_path / "data").exists()


def test_real_corpus_through_the_workflow(tmp_path: Path) -> None:
    """A configured IEMOCAP copy (here the trap-laden mini tree) goes through the same rules."""
    from conftest import write_mini_iemocap

    root = write_mini_iemocap(tmp_path / "IEMOCAP_full_release")
    config = _config(tmp_path, iemocap={"root": str(root)})
    done = run_snakemake(tmp_path, config, "data/iemocap/manifest.parquet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(pd.read_parquet(tmp_path / "data/iemocap/manifest.parquet")) == 11
