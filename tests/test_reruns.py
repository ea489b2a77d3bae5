"""Reruns that can never pass stale or damaged results (issue 12), through the real workflow on a small corpus.

Each test reproduces one way a finished run was found to let wrong numbers through: a damaged shard re-certified, a
damaged fold aggregated, a code change rerunning nothing, overlapping runs training one fold twice, a killed run
blocking the next one, the thread count changing the bytes. The workflow runs from a copy of the repository's
code, so a test can edit a source file and watch exactly which jobs rerun.

This file: damaged shards and folds. tests/test_reruns_code.py: code changes, overlapping and killed runs,
threads (two files, run by two pytest-xdist workers at once; the run and helpers: tests/reruns_workflow.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from reruns_workflow import TARGETS, code_fixture, run_fixture  # noqa: F401 - fixtures code, run
from reruns_workflow import fold as _fold
from reruns_workflow import jobs as _jobs
from reruns_workflow import sha as _sha
from reruns_workflow import snakemake as _snakemake
from reruns_workflow import store as _store

pytestmark = pytest.mark.slow


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
