"""Reruns that can never pass stale or damaged results (issue 12), through the real workflow on a small corpus.

Each test reproduces one way a finished run was found to let wrong numbers through: a damaged shard re-certified, a
damaged fold aggregated, a code change rerunning nothing, overlapping runs training one fold twice, a killed run
blocking the next one, the thread count changing the bytes. The workflow runs from a copy of the repository's
code, so a test can edit a source file and watch exactly which jobs rerun.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, run_snakemake, snakemake_command

pytestmark = pytest.mark.slow

N = 40
MODELS = ["wise_audio", "wise_text"]
TARGETS = [f"results/demo_{m}.json" for m in MODELS]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _jobs(dry_run_output: str) -> dict[str, int]:
    """The job-count table of ``snakemake -n`` ({} when there is nothing to be done)."""
    if "Job stats:" not in dry_run_output:
        return {}
    table = dry_run_output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "all"}


def _write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def run(code: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A finished run of two WISE variants (mfcc39 + spans, GloVe) on a 40-utterance corpus."""
    workdir = tmp_path_factory.mktemp("run")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = N
    config["features"]["shards"] = 2
    config["train"]["models"] = MODELS
    config["corpora"]["demo"]["train"] = {"seeds": [0], "epochs": 2, "patience": 2}
    path = _write_config(workdir / "config.yaml", config)
    done = run_snakemake(workdir, path, *TARGETS, repo=code)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, path, config


def _snakemake(run: tuple[Path, Path, dict], code: Path, *args: str, config: Path | None = None, cores: int = 2):
    workdir, path, _ = run
    return run_snakemake(workdir, config or path, *args, repo=code, cores=cores)


def _store(workdir: Path, feature: str) -> Path:
    (store,) = [p.parent for p in (workdir / "features" / "demo" / feature).glob("*/manifest.json")]
    return store


def _fold(workdir: Path, model: str, fold: int) -> Path:
    return workdir / "models" / "demo" / model / "loso_session" / f"fold{fold}"


# --------------------------------------------------------------------------------- 1. damaged shards


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["bit_flip", "truncated"])
def test_a_damaged_shard_is_never_recertified_and_the_next_run_rebuilds_it_alone(run, code, damage) -> None:
    workdir = run[0]
    store = _store(workdir, "mfcc39")
    shard = store / "shard-00001.safetensors"
    original, results = _sha(shard), _sha(workdir / "results/demo_wise_audio.json")
    damage(shard)

    failed = _snakemake(run, code, *TARGETS)  # finalize reruns (its input changed) and verifies, never re-hashes
    assert failed.returncode != 0
    assert re.search(
        r"shard-00001\.safetensors.*(differs from|sha256).*recorded by the job", failed.stderr + failed.stdout
    )
    assert not shard.exists() and list((store / ".damaged").glob("shard-00001.safetensors.*"))
    assert not (store / "parts" / "shard-00001.json").exists() and not (store / "manifest.json").exists()

    # The results on disk came from the intact shard and stay valid, so Snakemake (rightly) has nothing to redo for
    # them alone; asking for the store (as `make demo`'s default target does) rebuilds exactly the damaged shard.
    targets = [*TARGETS, str((store / "manifest.json").relative_to(workdir))]
    dry = _snakemake(run, code, "-n", *targets)
    jobs = _jobs(dry.stdout)
    assert jobs["acoustic_shard"] == 1 and "shard=00001" in dry.stdout and "shard=00000" not in dry.stdout
    assert jobs["finalize_features"] == 1 and "glove" not in jobs and "align" not in jobs

    repaired = _snakemake(run, code, *targets)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert _sha(shard) == original  # the rebuilt shard has the original bytes
    assert _sha(workdir / "results/demo_wise_audio.json") == results  # and so do the results


def test_a_shard_damaged_after_finalize_is_set_aside_when_training_reads_it(tmp_path: Path) -> None:
    """The reader's side: mtime restored, so nothing reran, but the training job refuses the shard and makes the
    store rebuildable (shard and its record set aside, manifest removed)."""
    from serflow.shards import ShardIntegrityError, ShardWriter
    from serflow.shards.writer import FeatureSpec
    from serflow.train.run import _load_stores

    spec = FeatureSpec("mfcc39", {}, "mfcc39", "test", {})
    with ShardWriter(tmp_path / "features", spec, shard_bytes=1) as writer:
        for k in range(3):
            writer.add(f"u{k}", [[float(k), 1.0], [2.0, 3.0]])
        writer.finalize()
    store = spec.directory(tmp_path / "features")
    shard = store / "shard-00001.safetensors"
    stat = shard.stat()
    _flip_byte(shard)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ShardIntegrityError, match=r"shard-00001\.safetensors.*moved .*/\.damaged/shard-00001"):
        _load_stores({"mfcc39": store}, threads=1)
    assert not shard.exists() and not (store / "manifest.json").exists()
    assert list((store / ".damaged").glob("shard-00001.safetensors.*.reason.txt"))


# --------------------------------------------------------------------------------- ... and damaged folds


def test_a_damaged_fold_is_not_aggregated_and_the_next_run_retrains_it_alone(run, code) -> None:
    workdir = run[0]
    fold = _fold(workdir, "wise_text", 2)
    predictions = fold / "predictions.parquet"
    original = _sha(predictions)
    _flip_byte(predictions)

    failed = _snakemake(run, code, *TARGETS)  # evaluate reruns (an input changed) and checks every fold's hashes
    assert failed.returncode != 0 and "fold2/predictions.parquet" in failed.stderr + failed.stdout
    assert not (fold / "metrics.json").exists() and list((fold / ".damaged").glob("predictions.parquet.*"))

    dry = _snakemake(run, code, "-n", *TARGETS)
    assert _jobs(dry.stdout) == {"train": 1, "evaluate": 1} and "fold=2" in dry.stdout
    assert _snakemake(run, code, *TARGETS).returncode == 0
    assert _sha(predictions) == original


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
        assert _jobs(dry.stdout) == {"train": 10, "evaluate": 2}, dry.stdout[-2000:]
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
        assert jobs == {"acoustic_shard": 2, "finalize_features": 1, "spans": 1, "train": 5, "evaluate": 1}
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
    assert _jobs(dry.stdout) == {"train": 10, "evaluate": 2}  # the thread count changes the bytes: it reruns
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
