"""WavFusion training steps: length-bucketed against fixed-size batches, time and peak memory, side by side.

    .venv/bin/python benchmarks/bench_wavfusion.py [--data demo] [--data iemocap] [--batch-size 16]
        [--threads 1] [--device cpu|cuda] [--utterances 512] [--seed 0] [--quick]

Model: ``wavfusion`` as the trainer builds it (gated fusion, margin loss), with the wav2vec 2.0 of
``--path`` (default: none, the tiny random-init stand-in the offline demo trains; give a folder of
``facebook/wav2vec2-base`` where one exists), Adam at 1e-4 with the encoder at 3e-5, gradient clipping 1,
the feature encoder frozen; train mode. A step is what the trainer does per batch: ``collate`` +
``training_loss`` (cross-entropy + margin loss) + backward + clip + step.

Data (``--data``, repeatable; default both):

- ``demo``: the demo corpus's stores as the workflow wrote them, ``features/demo/waveform/<version>`` and
  ``features/demo/roberta/<version>`` (the newest complete version of each; run ``make demo`` or
  ``snakemake results/demo_wavfusion.json`` first), every utterance of both, full length;
- ``iemocap``: ``--utterances`` random waveforms with IEMOCAP's spread of durations (log-normal, median 3.5 s,
  clipped to 0.6-34 s: the range of the 4-class set), 3 to 60 random 768-wide "RoBERTa" rows each, random
  4-class labels; nothing read from disk. Where the demo's synthetic utterances are all of similar length,
  this is where bucketing matters.

Batching, over one epoch of the same utterances:

- ``fixed``: a seeded permutation cut into batches of ``--batch-size`` utterances (the trainer's default);
- ``bucketed``: :func:`serflow.train.buckets.length_batches` with ``max_batch_length`` = ``--batch-size`` x the
  mean utterance length (so a batch holds as much real audio as a fixed batch on average) and at most
  ``--batch-size`` utterances: ``train.max_batch_length`` of the trainer.

Each (data, batching) runs in a fresh subprocess (its own peak RSS, ``ru_maxrss``), after one untimed warm-up
step on the smallest batch. Printed per run: steps, the whole epoch's time (measured, every step), the median
step, padded samples of the epoch and of its largest batch, the peak RSS and its growth over the RSS before
training (data and model loaded), and on CUDA ``torch.cuda.max_memory_allocated``; then bucketed / fixed
ratios. The machine may be shared: times are wall-clock and nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 16000


def newest_store(corpus_dir: Path, name: str) -> Path:
    """The newest complete version folder of a store (``manifest.json`` marks it complete)."""
    done = sorted((p.parent for p in (corpus_dir / name).glob("*/manifest.json")), key=lambda p: p.stat().st_mtime)
    if not done:
        raise SystemExit(
            f"no complete {name} store under {corpus_dir}: run `make demo` (or its wavfusion targets) first"
        )
    return done[-1]


def demo_samples() -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    import pandas as pd

    from serflow.shards import FeatureSet
    from serflow.train.data import store_arrays

    features = ROOT / "features" / "demo"
    wave = store_arrays(FeatureSet(newest_store(features, "waveform")))
    words = store_arrays(FeatureSet(newest_store(features, "roberta")))
    labels = pd.read_parquet(ROOT / "data" / "demo" / "manifest.parquet", columns=["utt_id", "label"])
    label_of = dict(zip(labels["utt_id"], labels["label"], strict=True))
    ids = sorted(u for u in wave if u in words and len(words[u]) and label_of.get(u))
    classes = sorted({label_of[u] for u in ids})
    y = np.array([classes.index(label_of[u]) for u in ids])
    return [{"waveform": wave[u], "roberta": words[u]} for u in ids], y


def iemocap_samples(n: int, seed: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(3.5), 0.7, n), 0.6, 34.0)
    samples = [
        {
            "waveform": (0.1 * rng.standard_normal((round(s * SAMPLE_RATE), 1))).astype(np.float32),
            "roberta": rng.standard_normal((int(rng.integers(3, 61)), 768)).astype(np.float32),
        }
        for s in seconds
    ]
    return samples, rng.integers(0, 4, n)


def child(args: argparse.Namespace) -> dict[str, object]:
    from serflow.models import get_spec
    from serflow.train.buckets import length_batches, padded_total
    from serflow.train.config import OptimSettings
    from serflow.train.optim import build_optimizer

    torch.set_num_threads(args.threads)
    samples, y = demo_samples() if args.data == "demo" else iemocap_samples(args.utterances, args.seed)
    if args.quick:
        samples, y = samples[:48], y[:48]
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    hparams = {
        "text_dim": samples[0]["roberta"].shape[1],
        "path": args.path,
        "cache_dir": str(ROOT / "models" / "audio-encoders"),
    }
    model = get_spec("wavfusion").create(int(y.max()) + 1, **hparams).to(device).train()
    prepared = [model.prepare(s)[0] for s in samples]
    lengths = np.array([model.sample_length(s) for s in prepared])
    rng = np.random.default_rng(args.seed)
    if args.mode == "fixed":
        order = rng.permutation(len(prepared)).tolist()
        batches = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        bound = None
    else:
        bound = int(args.batch_size * lengths.mean())
        batches = length_batches(lengths, bound, seed=args.seed, epoch=1, max_size=args.batch_size).batches
    optimizer = build_optimizer(model, OptimSettings(lr=1e-4, encoder_lr=3e-5))
    target = torch.from_numpy(y)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )

    def step(idx: list[int]) -> float:
        start = time.perf_counter()
        batch = {k: v.to(device) for k, v in model.collate([prepared[i] for i in idx]).items()}
        optimizer.zero_grad(set_to_none=True)
        with amp:
            loss, _ = model.training_loss(batch, target[idx].to(device), torch.nn.functional.cross_entropy)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    step(min(batches, key=lambda b: len(b) * lengths[b].max()))  # warm-up: one-time set-up costs
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = [step(b) for b in batches]
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "data": args.data,
        "mode": args.mode,
        "utterances": len(prepared),
        "audio_s": float(lengths.sum() / SAMPLE_RATE),
        "max_batch_length": bound,
        "steps": len(batches),
        "epoch_s": sum(times),
        "median_step_s": statistics.median(times),
        "padded_samples": padded_total(batches, lengths),
        "largest_batch_samples": max(len(b) * int(lengths[b].max()) for b in batches),
        "peak_rss_mb": rss_peak,
        "rss_growth_mb": rss_peak - rss_before,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
        "random_init": bool(model.random_init),
        "threads": args.threads,
        "device": str(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", action="append", choices=["demo", "iemocap"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--utterances", type=int, default=512, help="iemocap: how many utterances")
    parser.add_argument("--path", default=None, help="a wav2vec 2.0 folder (default: the tiny random-init stand-in)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="48 utterances per data set")
    parser.add_argument("--child", dest="mode", choices=["fixed", "bucketed"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        args.data = args.data[0]
        print(json.dumps(child(args)))
        return
    rows = []
    for data in args.data or ["demo", "iemocap"]:
        for mode in ("fixed", "bucketed"):
            command = [sys.executable, __file__, "--child", mode, "--data", data, "--batch-size", str(args.batch_size)]
            command += ["--threads", str(args.threads), "--device", args.device, "--utterances", str(args.utterances)]
            command += ["--seed", str(args.seed)] + (["--path", args.path] if args.path else [])
            command += ["--quick"] if args.quick else []
            done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT, env=dict(os.environ))
            if done.returncode:
                raise SystemExit(f"{data} {mode} failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            report(rows[-1])
        fixed, bucketed = rows[-2], rows[-1]
        print(
            f"  {data}: bucketed / fixed: epoch time x{bucketed['epoch_s'] / fixed['epoch_s']:.2f}, padded samples "
            f"x{bucketed['padded_samples'] / fixed['padded_samples']:.2f}, largest batch "
            f"x{bucketed['largest_batch_samples'] / fixed['largest_batch_samples']:.2f}, RSS growth "
            f"x{bucketed['rss_growth_mb'] / max(fixed['rss_growth_mb'], 1e-9):.2f}"
            + (f", CUDA peak x{bucketed['cuda_peak_mb'] / fixed['cuda_peak_mb']:.2f}" if fixed["cuda_peak_mb"] else "")
        )


def report(row: dict[str, object]) -> None:
    init = " (tiny random-init wav2vec 2.0)" if row["random_init"] else ""
    bound = f", max_batch_length {row['max_batch_length']}" if row["max_batch_length"] else ""
    cuda = f", CUDA peak {row['cuda_peak_mb']:.0f} MB" if row["cuda_peak_mb"] else ""
    print(
        f"{row['data']:8s} {row['mode']:9s}{init} on {row['device']} x{row['threads']}: {row['utterances']} utts, "
        f"{row['audio_s']:.0f} s audio{bound}; {row['steps']} steps, epoch {row['epoch_s']:.1f} s, median step "
        f"{row['median_step_s'] * 1000:.0f} ms; padded {row['padded_samples'] / SAMPLE_RATE:.0f} s, largest batch "
        f"{row['largest_batch_samples'] / SAMPLE_RATE:.1f} s; peak RSS {row['peak_rss_mb']:.0f} MB "
        f"(+{row['rss_growth_mb']:.0f} MB while training){cuda}"
    )


if __name__ == "__main__":
    main()
