"""The finished run that the rerun tests (tests/test_reruns.py, tests/test_reruns_code.py; issue 12) start from, and
their helpers. Two test files, so that pytest-xdist (--dist loadfile) runs them on two workers at once; each builds
its own run (the module-scoped fixtures ``code`` and ``run`` below, imported by each: module scope is per test file)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, run_snakemake

N = 40
SESSIONS = 3  # loso_session: one fold per session (fewer sessions, fewer training jobs; IEMOCAP has 5)
MODELS = ["wise_audio", "wise_text"]
TARGETS = [f"results/demo_{m}.json" for m in MODELS]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jobs(dry_run_output: str) -> dict[str, int]:
    """The job-count table of ``snakemake -n`` ({} when there is nothing to be done)."""
    if "Job stats:" not in dry_run_output:
        return {}
    table = dry_run_output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "all"}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the workflow's code, which a test may edit."""
    return copy_workflow(tmp_path_factory.mktemp("checkout"))


def finished_run(code: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A finished run of two WISE variants (mfcc39 + spans, GloVe) on a 40-utterance corpus."""
    workdir = tmp_path_factory.mktemp("run")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = N
    config["corpora"]["demo"]["synth"]["sessions"] = SESSIONS
    config["features"]["shards"] = 2
    config["corpora"]["demo"]["feature_shards"] = 2  # two shards: one is damaged, the other must stay
    config["train"]["models"] = MODELS
    config["corpora"]["demo"]["train"] = {"seeds": [0], "epochs": 2, "patience": 2}
    path = write_config(workdir / "config.yaml", config)
    done = run_snakemake(workdir, path, *TARGETS, repo=code)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, path, config


def snakemake(run: tuple[Path, Path, dict], code: Path, *args: str, config: Path | None = None, cores: int = 2):
    workdir, path, _ = run
    return run_snakemake(workdir, config or path, *args, repo=code, cores=cores)


def store(workdir: Path, feature: str) -> Path:
    (store,) = [p.parent for p in (workdir / "features" / "demo" / feature).glob("*/manifest.json")]
    return store


def fold(workdir: Path, model: str, fold: int) -> Path:
    return workdir / "models" / "demo" / model / "loso_session" / f"fold{fold}"


@pytest.fixture(scope="module", name="code")
def code_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return checkout(tmp_path_factory)


@pytest.fixture(scope="module", name="run")
def run_fixture(code: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A finished run of two WISE variants (mfcc39 + spans, GloVe) on a 40-utterance corpus."""
    return finished_run(code, tmp_path_factory)
