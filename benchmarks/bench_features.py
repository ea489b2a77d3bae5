"""Time the acoustic feature extractors side by side with a per-file librosa loop and with reading the audio.

    .venv/bin/python benchmarks/bench_features.py [--root DIR] [--utterances 200] [--seed 5] [--runs 5]
                                                  [--cores 0]

Uses the wav files under ``--root`` (any tree; e.g. one written by ``serflow corpus synth --out
/tmp/featbench --utterances 200 --seed 5``), or synthesises such a corpus (200 utterances, seed 5)
in a temporary folder. Every step runs in its own fresh process pinned to ``--cores`` (default: core 0
only), with torch given one thread per core: a separate process per step because thread pools left
spinning by one library (numpy's BLAS after librosa's matrix products) were measured to slow the next
one down on a 2-core machine. Each step runs ``--runs`` times on the same decoded utterances after a
warm-up, and the best time is kept (other processes on the machine only ever add time).

The issue's targets: ``logmel64`` and ``mfcc120`` extraction at least 3x faster than a per-file
librosa loop computing the same definition over the same utterances; and, for every extractor, how far
it is from the cost of just reading the audio (time / read time). Nothing is asserted: the targets
are printed beside the measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 3.0  # the issue: logmel64 and mfcc120 at least 3x faster than per-file librosa
STEPS = [
    "read (load_audio)",
    "logmel64 librosa per file",
    "logmel64 extract_batch",
    "logmel64 extract per file",
    "mfcc120 librosa per file",
    "mfcc120 extract_batch",
    "mfcc120 extract per file",
    "gban52 librosa per file",
    "gban52 extract_batch",
    "mfcc39 extract_batch",
    "mfcc39 Smile.process_signal",
    "mfcc39 Smile.process_file*",
    "waveform extract_batch",
]


def _wavs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.wav") if not p.name.startswith("._"))


def _child(step: str, root: Path, cores: list[int], runs: int) -> dict[str, Any]:
    """Time one step in this (fresh) process; pinned before numpy/torch size their thread pools."""
    os.sched_setaffinity(0, set(cores))
    import librosa
    import numpy as np
    import torch

    from serflow.features import EXTRACTORS, get_extractor, load_audio

    torch.set_num_threads(len(cores))
    paths = _wavs(root)
    signals = [load_audio(p)[0] for p in paths]
    Signals = list[np.ndarray]

    def librosa_logmel64(signals: Signals, _paths: list[Path]) -> None:
        for y in signals:
            mel = librosa.feature.melspectrogram(
                y=y, sr=16000, n_fft=512, hop_length=160, pad_mode="reflect", n_mels=64, fmin=50, fmax=8000
            )
            librosa.power_to_db(mel, top_db=None)

    def librosa_mfcc120(signals: Signals, _paths: list[Path]) -> None:
        for y in signals:
            m = librosa.feature.mfcc(y=y, sr=16000, n_mfcc=40, n_fft=400, hop_length=160, n_mels=40)
            np.vstack([m, librosa.feature.delta(m), librosa.feature.delta(m, order=2)])

    def librosa_gban52(signals: Signals, _paths: list[Path]) -> None:
        for y in signals:
            mel = librosa.feature.melspectrogram(
                y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, window="hamming", n_mels=26, fmax=6500
            )
            logmel = librosa.power_to_db(mel, top_db=None)
            m = librosa.feature.mfcc(S=logmel, n_mfcc=13)
            np.vstack([logmel, m, librosa.feature.delta(m)])

    name = step.split()[0]
    librosa_loops = {"logmel64": librosa_logmel64, "mfcc120": librosa_mfcc120, "gban52": librosa_gban52}
    ex = get_extractor(name) if name in EXTRACTORS else None
    top = np.float32(32767 / 32768)  # what the mfcc39 extractor clips to before openSMILE's int16

    def step_fn(signals: Signals, paths: list[Path]) -> object:
        if step.startswith("read"):
            return [load_audio(p) for p in paths]
        if "librosa" in step:
            return librosa_loops[name](signals, paths)
        if step.endswith("extract_batch"):
            return ex.extract_batch(signals)
        if step.endswith("extract per file"):
            return [ex.extract(y) for y in signals]
        if "process_signal" in step:  # the opensmile package's own entry points, same config and options
            return [ex.smile.process_signal(np.clip(y, -1, top), 16000) for y in signals]
        return [ex.smile.process_file(str(p)) for p in paths]

    versions = f"torch {torch.__version__} with {torch.get_num_threads()} thread(s), librosa {librosa.__version__}"
    if ex is not None and name == "mfcc39":
        versions += f", {ex.backend}"
    step_fn(signals[:5], paths[:5])  # warm-up: lazy imports, caches, first allocations
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        step_fn(signals, paths)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "wall": min(walls),
        "cpu": min(cpus),
        "files": len(paths),
        "seconds": sum(x.size for x in signals) / 16000,
        "lengths": [float(min(x.size for x in signals)) / 16000, float(max(x.size for x in signals)) / 16000],
        "versions": versions,
    }


def _run_child(step: str, root: Path, cores: str, runs: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, "--root", str(root), "--cores", cores]
    cmd += ["--runs", str(runs)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"step {step!r} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="time the wav files under this folder")
    parser.add_argument("--utterances", type=int, default=200, help="size of the synthesised corpus (default 200)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the synthesised corpus (default 5)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per step; the best is kept (default 5)")
    parser.add_argument("--cores", default="0", help="comma-separated CPU cores to run on (default 0)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cores = [int(c) for c in args.cores.split(",")]

    if args.child:
        print(json.dumps(_child(args.child, args.root, cores, args.runs)))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        root = args.root
        if root is None:
            from serflow.corpora.synth.corpus import synthesize_corpus

            root = Path(tmp) / "corpus"
            t0 = time.perf_counter()
            synthesize_corpus(root, utterances=args.utterances, seed=args.seed)
            print(f"synthesised {args.utterances} utterances (seed {args.seed}) in {time.perf_counter() - t0:.1f} s")
        if not _wavs(root):
            raise SystemExit(f"no wav files under {root}")
        best = {step: _run_child(step, root, args.cores, args.runs) for step in STEPS}

    first = best[STEPS[0]]
    seconds = first["seconds"]
    lo, hi = first["lengths"]
    print(f"audio: {first['files']} files, {seconds:.1f} s of 16 kHz audio ({lo:.2f}-{hi:.2f} s each) under {root}")
    print(f"cpu: cores {cores}; {best['logmel64 extract_batch']['versions']}; one process per step")
    print(f"openSMILE: {best['mfcc39 extract_batch']['versions'].rsplit(', ', 1)[-1]}")

    hours = seconds / 3600
    read = best["read (load_audio)"]["wall"]
    print(f"\nbest of {args.runs} runs; s/h = seconds per hour of audio; x read = time / read time")
    print(f"{'step':32} {'wall s':>8} {'cpu s':>8} {'s/h':>7} {'x read':>7}")
    for step in STEPS:
        wall, cpu = best[step]["wall"], best[step]["cpu"]
        print(f"{step:32} {wall:8.3f} {cpu:8.3f} {wall / hours:7.2f} {wall / read:7.1f}")
    print("* process_file reads the wav itself: compare it with read + mfcc39 extract_batch")

    print(f"\ntargets (extraction only, same decoded utterances, wall time): >= {TARGET_SPEEDUP:.0f}x librosa per file")
    for name in ("logmel64", "mfcc120", "gban52"):
        ref = best[f"{name} librosa per file"]["wall"]
        batch = ref / best[f"{name} extract_batch"]["wall"]
        line = f"  {name:9} extract_batch {batch:4.1f}x faster than librosa per file"
        if f"{name} extract per file" in best:
            line += f" (extract per file: {ref / best[f'{name} extract per file']['wall']:.1f}x)"
        if name != "gban52":  # no target for GBAN's features; shown for comparison
            line += "  target " + ("met" if batch >= TARGET_SPEEDUP else "NOT met")
        print(line)
    mfcc39 = read + best["mfcc39 extract_batch"]["wall"]
    by_file = best["mfcc39 Smile.process_file*"]["wall"]
    print(f"  mfcc39    read + extract_batch {mfcc39:.3f} s vs opensmile process_file loop {by_file:.3f} s")
    print("\ndistance from just reading the audio (extract_batch wall time / read wall time):")
    for name in ("logmel64", "mfcc120", "gban52", "mfcc39", "waveform"):
        print(f"  {name:9} {best[f'{name} extract_batch']['wall'] / read:6.2f}x the read time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
