"""Time `snakemake -n` for every feature store of an IEMOCAP-sized corpus (the workflow must plan in seconds).

    .venv/bin/python benchmarks/bench_plan.py [--root PATH] [--shards 16] [--keep]

Builds the 10,039-turn IEMOCAP-shaped tree of tests/fixtures/iemocap_tree.py (or uses ``--root``), then
times two dry runs of all feature stores of that corpus: from clean (nothing built: the plan includes
the manifest and alignment jobs) and with the manifest already built (the usual state when a parameter
changes). Jobs are per shard, never per utterance, so the job count does not grow with the corpus.
Nothing is asserted; the issue's target (under 10 s) is printed beside the result.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
TARGET_S = 10.0


def _snakemake(workdir: Path, config: Path, *args: str) -> tuple[float, str]:
    command = [
        str(Path(sys.executable).with_name("snakemake")),
        *("--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config)),
        *("--cores", "16", *args),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return elapsed, done.stdout


def _job_count(stdout: str) -> int:
    match = re.search(r"^total\s+(\d+)$", stdout, re.M)
    return int(match[1]) if match else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="an IEMOCAP_full_release folder (default: build the fake tree)")
    parser.add_argument("--shards", type=int, default=16, help="features.shards (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    from serflow.features.plan import plan
    from serflow.features.stores import feature_names

    tmp = Path(tempfile.mkdtemp(prefix="bench_plan."))
    try:
        root = args.root
        if root is None:
            from fixtures.iemocap_tree import build_full_iemocap_tree

            root = tmp / "IEMOCAP_full_release"
            build_full_iemocap_tree(root)
        config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        config["corpora"]["iemocap"]["root"] = str(root)
        config["features"]["shards"] = args.shards
        path = tmp / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        targets = [plan(config, "iemocap", f).directory + "/manifest.json" for f in feature_names(config["features"])]
        workdir = tmp / "work"
        workdir.mkdir()

        clean_s, clean_out = _snakemake(workdir, path, "-n", *targets)
        _snakemake(workdir, path, "data/iemocap/manifest.parquet")
        built_s, built_out = _snakemake(workdir, path, "-n", *targets)
        print(f"corpus: {root} ({len(targets)} feature stores, features.shards={args.shards})")
        print(f"{'state':<28}{'jobs':>6}{'dry run (s)':>14}{'target (s)':>12}")
        print(f"{'clean':<28}{_job_count(clean_out):>6}{clean_s:>14.2f}{TARGET_S:>12.0f}")
        print(f"{'manifest built':<28}{_job_count(built_out):>6}{built_s:>14.2f}{TARGET_S:>12.0f}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
