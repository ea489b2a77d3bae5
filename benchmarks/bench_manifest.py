"""Time the IEMOCAP reader on a full-size IEMOCAP-shaped tree, on one CPU core.

    .venv/bin/python benchmarks/bench_manifest.py [--runs 3] [--core 0] [--root PATH] [--keep]

Builds the 10,039-turn tree of tests/fixtures/iemocap_tree.py in a temporary folder (or uses ``--root``,
e.g. a real ``IEMOCAP_full_release``), then runs ``read_iemocap`` in fresh subprocesses pinned to one
core and compares it with the floor of merely ``os.stat``-ing every wav. The tree was just written, so
these are warm-page-cache numbers. Nothing is asserted: the issue's target is printed beside the result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 30.0  # the issue: a 10,039-utterance tree read in under 30 s on one core
LABELS = ["ang", "hap", "neu", "sad"]
MERGE = {"exc": "hap"}


def _pin(core: int) -> None:
    # Pin before importing anything heavy, so numpy/pandas thread pools see a single CPU as well.
    os.sched_setaffinity(0, {core})


def _child_read(root: str, core: int) -> dict[str, object]:
    _pin(core)
    t0 = time.perf_counter()
    from serflow.corpora.iemocap import read_iemocap

    t1 = time.perf_counter()
    result = read_iemocap(root, labels=LABELS, merge=MERGE)
    t2 = time.perf_counter()
    manifest = result.manifest
    return {
        "import_s": t1 - t0,
        "read_s": t2 - t1,
        "rows": len(manifest),
        "four_class": int(manifest["label"].notna().sum()),
        "issues": len(result.issues),
        "cpus": sorted(os.sched_getaffinity(0)),
    }


def _child_stat(list_file: str, root: str, core: int, repeats: int) -> dict[str, object]:
    _pin(core)
    paths = Path(list_file).read_text().splitlines()
    known, walked = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for path in paths:
            os.stat(path)
        known.append(time.perf_counter() - t0)
        # Also discovering the files costs something: walk sentences/wav and stat each wav found.
        t0 = time.perf_counter()
        n = 0
        for session in sorted(Path(root).glob("Session*")):
            for dirpath, _dirs, files in os.walk(session / "sentences" / "wav"):
                for name in files:
                    if name.endswith(".wav") and not name.startswith("._"):
                        os.stat(os.path.join(dirpath, name))
                        n += 1
        walked.append(time.perf_counter() - t0)
    return {"stat_known_s": min(known), "walk_stat_s": min(walked), "n_walked": n, "n_known": len(paths)}


def _run_child(args: list[str]) -> dict[str, object]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"child {args[0]} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tree_size(root: Path) -> tuple[int, int]:
    files, size = 0, 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.stat(os.path.join(dirpath, name)).st_size
    return files, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="reader runs, each in a fresh process (default 3)")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin the reader to (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated tree")
    parser.add_argument("--root", type=Path, help="read this IEMOCAP_full_release instead of building one")
    parser.add_argument("--keep", action="store_true", help="keep the generated tree and print where it is")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, *rest = args.child
        if kind == "read":
            out = _child_read(rest[0], int(rest[1]))
        else:
            out = _child_stat(rest[0], rest[1], int(rest[2]), int(rest[3]))
        print(json.dumps(out))
        return 0

    workdir = Path(tempfile.mkdtemp(prefix="bench_iemocap_"))
    try:
        if args.root is None:
            sys.path.insert(0, str(REPO))  # tests/ is not an installed package
            from tests.fixtures.iemocap_tree import build_full_iemocap_tree

            root = workdir / "IEMOCAP_full_release"
            t0 = time.perf_counter()
            facts = build_full_iemocap_tree(root, seed=args.seed)
            build_s = time.perf_counter() - t0
            wavs = [str(p) for p in facts.wav_paths()]
            n_files, n_bytes = _tree_size(root)
            print(
                f"tree: {facts.total_labelled:,} labelled turns, {len(facts.dialogs)} dialogs, "
                f"{n_files:,} files, {n_bytes / 1e6:.1f} MB; built in {build_s:.2f} s (seed {args.seed})"
            )
        else:
            root = args.root.resolve()
            wavs = [str(p) for p in sorted(root.glob("Session*/sentences/wav/*/*.wav")) if not p.name.startswith("._")]
            print(f"tree: {root} ({len(wavs):,} wav files)")
        list_file = workdir / "wavs.txt"
        list_file.write_text("\n".join(wavs) + "\n")

        reads = [_run_child(["read", str(root), str(args.core)]) for _ in range(args.runs)]
        floor = _run_child(["stat", str(list_file), str(root), str(args.core), "3"])
    finally:
        if args.keep and args.root is None:
            print(f"kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    times = [float(r["read_s"]) for r in reads]
    best, median = min(times), statistics.median(times)
    first = reads[0]
    rows = int(first["rows"])
    print(
        f"reader on core {first['cpus']}, {args.runs} runs (fresh process each): "
        f"best {best:.3f} s, median {median:.3f} s (import {float(first['import_s']):.2f} s, not counted)"
    )
    print(
        f"rows read: {rows:,} ({int(first['four_class']):,} in {len(LABELS)} classes), "
        f"{int(first['issues'])} issues; {rows / best:,.0f} rows/s"
    )
    stat_s, walk_s = float(floor["stat_known_s"]), float(floor["walk_stat_s"])
    print(
        f"floor: os.stat of {int(floor['n_known']):,} wavs {stat_s * 1e3:.1f} ms; "
        f"walk sentences/wav + stat {walk_s * 1e3:.1f} ms; "
        f"reader / stat floor = {best / stat_s:.0f}x, reader / walk floor = {best / walk_s:.0f}x"
    )
    verdict = "within" if best < TARGET_S else "OVER"
    print(
        f"target (issue): a 10,039-utterance tree in < {TARGET_S:.0f} s on one core; "
        f"measured best {best:.2f} s for {rows:,} rows: {verdict} target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
