"""Reruns that can never pass stale or damaged results (issue 12), continued (tests/test_reruns.py has the damaged
shards and folds): a code change rerunning exactly what runs it, overlapping runs training one fold twice, a killed
run blocking the next one, the thread count changing the bytes. The run and helpers: tests/reruns_workflow.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import snakemake_command
from reruns_workflow import SESSIONS, TARGETS, code_fixture, run_fixture  # noqa: F401 - fixtures code, run
from reruns_workflow import fold as _fold
from reruns_workflow import jobs as _jobs
from reruns_workflow import sha as _sha
from reruns_workflow import snakemake as _snakemake
from reruns_workflow import store as _store
from reruns_workflow import write_config as _write_config

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------------- 2. code changes


def _edit(path: Path, text: str) -> str:
    before = path.read_text()
    path.write_text(before + text)
    return before


def test_a_changed_line_of_training_code_reruns_exactly_the_training(run, code) -> None:
    loop = code / "serflow" / "train" / "loop.py"
    before = _edit(loop, "\n# a changed line\n")
    try:
        dry = _snakemake(run, code, "-n", *TARGETS)
        assert _jobs(dry.stdout) == {"train": 2 * SESSIONS, "evaluate": 2}, dry.stdout[-2000:]
    finally:
        loop.write_text(before)
    assert _jobs(_snakemake(run, code, "-n", *TARGETS).stdout) == {}  # reverting the line reverts the identity


def test_a_changed_extractor_moves_its_store_version_and_nothing_else(run, code) -> None:
    workdir = run[0]
    mfcc39 = code / "serflow" / "features" / "acoustic" / "mfcc39.py"
    before = _edit(mfcc39, "\n# a changed default would be here\n")
    try:
        dry = _snakemake(run, code, "-n", *TARGETS)
        jobs = _jobs(dry.stdout)
        assert jobs == {"acoustic_shard": 2, "finalize_features": 1, "spans": 1, "train": SESSIONS, "evaluate": 1}
        old = _store(workdir, "mfcc39").name
        (new,) = set(re.findall(r"features/demo/mfcc39/([0-9a-f]{12})/", dry.stdout))
        assert new != old  # a new version folder beside the old one
        gban52 = code / "serflow" / "features" / "acoustic" / "gban52.py"
        before_gban = _edit(gban52, "\n# another extractor\n")
        try:
            assert _jobs(_snakemake(run, code, "-n", *TARGETS).stdout) == jobs  # not read by these models
        finally:
            gban52.write_text(before_gban)
    finally:
        mfcc39.write_text(before)


def test_results_store_manifests_and_checkpoints_record_the_code(run) -> None:
    workdir = run[0]
    results = json.loads((workdir / "results/demo_wise_text.json").read_text())
    assert results["code"]["serflow"] and len(results["code"]["code_hash"]) == 64
    fold = _fold(workdir, "wise_text", 1)
    checkpoint = json.loads((fold / "checkpoints" / "seed0.json").read_text())
    assert checkpoint["code"]["code_hash"] == results["code"]["code_hash"] and "git" in checkpoint["code"]
    manifest = json.loads((_store(workdir, "glove") / "manifest.json").read_text())
    provenance = manifest["provenance"]
    assert provenance["serflow"] and "serflow/features/jobs/glove.py" in provenance["files"] and "git" in provenance
    run_info = json.loads((fold / "run.json").read_text())
    assert run_info["runtime"]["machine"]["arch"] and "isa" in run_info["runtime"]["machine"]


# --------------------------------------------------------------------------------- 3. overlapping and killed runs


def _slow(run: tuple[Path, Path, dict], name: str) -> Path:
    """The run's config with training slow enough for another process to start while a fold trains."""
    config = copy.deepcopy(run[2])
    config["corpora"]["demo"]["train"] = {"seeds": [0], "epochs": 100_000, "patience": None}
    return _write_config(run[0] / name, config)


def _start(run, code, config: Path, *targets: str) -> subprocess.Popen[str]:
    command = snakemake_command(run[0], config, *targets, repo=code)
    return subprocess.Popen(
        command, cwd=code, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _wait_for_training(log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and "epoch 2:" in log.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"training did not start within {timeout} s ({log})")


def test_overlapping_runs_never_train_one_fold_twice_and_a_killed_run_needs_no_unlock(run, code) -> None:
    workdir = run[0]
    slow = _slow(run, "slow.yaml")
    target = "models/demo/wise_text/loso_session/fold1/metrics.json"
    log = workdir / "logs/demo/train/wise_text/loso_session/fold1.log"
    first = _start(run, code, slow, target)
    try:
        _wait_for_training(log)
        # A second run on another target starts, locks, finishes and unlocks while the first one trains ...
        other = workdir / "models/demo/loso_speaker.folds.json"
        other.unlink(missing_ok=True)
        second = _snakemake(run, code, str(other.relative_to(workdir)), config=slow)
        assert second.returncode == 0, second.stderr[-2000:]
        # ... and must not have taken the first run's locks with it: a third run on the first target is refused.
        third = _snakemake(run, code, target, config=slow)
        assert third.returncode != 0 and "cannot be locked" in third.stdout + third.stderr
        assert first.poll() is None and "epoch" in log.read_text()  # the first one still trains, its log intact
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # a crash: no cleanup at all
        first.wait()
    assert list((workdir / ".snakemake" / "locks").glob("*.lock"))  # the dead run's locks are still there
    # The next run needs no --unlock: the dead run's locks are recognised as stale and removed.
    other.unlink(missing_ok=True)
    after = _snakemake(run, code, str(other.relative_to(workdir)), config=slow)
    assert after.returncode == 0, after.stderr[-2000:]
    assert "a lock left by a Snakemake run that no longer exists" in after.stderr + after.stdout


def test_two_jobs_on_one_fold_run_it_once(tmp_path: Path) -> None:
    """The job lock itself: a second writer waits, then keeps what the first wrote for the same identity."""
    from multiprocessing import get_context

    ctx = get_context("spawn")
    out = tmp_path / "fold"
    with ctx.Pool(2) as pool:
        results = pool.starmap(_locked_job, [(str(out), 0.0), (str(out), 0.3)])
    assert sorted(r[0] for r in results) == ["computed", "kept"]
    assert (out / "count").read_text() == "1"


def _locked_job(out: str, delay: float) -> tuple[str, int]:
    from serflow.locks import once

    time.sleep(delay)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    def done() -> tuple[str, int] | None:
        return ("kept", os.getpid()) if (folder / "count").exists() else None

    def work() -> tuple[str, int]:
        time.sleep(1.5)
        previous = int((folder / "count").read_text()) if (folder / "count").exists() else 0
        (folder / "count").write_text(str(previous + 1))
        return ("computed", os.getpid())

    return once(folder / ".serflow.lock", done, work, what="test fold")


# --------------------------------------------------------------------------------- 4. threads


def test_the_thread_count_is_the_configs_not_the_cores_and_changing_it_reruns(run, code) -> None:
    workdir = run[0]
    config = copy.deepcopy(run[2])
    config["train"]["threads"] = 2
    two = _write_config(workdir / "threads2.yaml", config)
    dry = _snakemake(run, code, "-n", *TARGETS, config=two)
    assert _jobs(dry.stdout) == {"train": 2 * SESSIONS, "evaluate": 2}  # the thread count changes the bytes: it reruns
    target = "models/demo/wise_audio/loso_session/fold3/metrics.json"
    fold = _fold(workdir, "wise_audio", 3)
    outputs = ("predictions.parquet", "checkpoints/seed0.safetensors", "history.tsv")
    hashes = {}
    for cores in (1, 2):  # Snakemake scales the rule's threads down to --cores; the computation must not follow
        done = _snakemake(run, code, target, "--forcerun", "train", config=two, cores=cores)
        assert done.returncode == 0, done.stderr[-2000:]
        hashes[cores] = {name: _sha(fold / name) for name in outputs}
        assert json.loads((fold / "run.json").read_text())["runtime"]["threads"] == 2
        assert json.loads((fold / "metrics.json").read_text())["train"]["threads"] == 2
    assert hashes[1] == hashes[2]
