"""A CNN14 training epoch over an IEMOCAP-sized set of log-Mel spectrograms on CPU: batching, memory format, threads.

    .venv/bin/python benchmarks/bench_cnn14.py [--quick] [--steps N] [--demo-width 0.03125] [--width1-frames 8192]
        [--utterances 5531] [--batch-size 64] [--only ID ...] [--gpu-tflops 100] [--seed 0] [--out results.json]

Data: 5,531 synthetic utterances, the size of IEMOCAP's 4-class set (exc merged into hap). Durations are
log-normal with mean 4.5 s and sigma 0.7 (median about 3.5 s), clipped to [0.6 s, 34 s] (the range assumed for IEMOCAP),
at 100 frames per second (the ``logmel64`` store's 10 ms hop); each utterance is a ``logmel64 [T, 64]``
float32 array of normal(-40, 15) "dB" values, drawn from a generator seeded by (seed, utterance), and goes
through :meth:`Cnn14.prepare`. Targets: 4 random classes. Nothing is read from disk.

Batching, batch size 64 (the paper's), each batch padded by :meth:`Cnn14.collate` to its longest utterance
rounded up to a multiple of 32 frames:

- ``random``: a seeded permutation cut into batches of 64 (the last one smaller);
- ``sorted``: length-sorted buckets, :func:`serflow.train.buckets.length_batches` with one window over the
  whole set and ``max_size`` 64: batches of similar length, the batch order shuffled.

The padded frames of a whole epoch under each scheme are exact (computed from the lengths) and printed, with
their ratio, and for information those of the trainer-style windowed sort (windows of 256 utterances).

Configurations, each in a fresh subprocess of this script (so that its peak RSS, ``ru_maxrss`` of the child,
is its own), with ``torch.set_num_threads`` 1 or 2 in the child:

- the demo width (``--demo-width``, default 0.03125 as ``corpora.demo.families.cnn14.width``, about 79 k
  parameters): the full grid, batching
  {random, sorted} x memory format {contiguous, channels_last} x threads {2, 1};
- width 1 (the paper's CNN14, 79.7 M parameters): the baseline (random, contiguous, 2 threads) and one change
  at a time (sorted; channels_last; 1 thread).

A timed step is a training step as the trainer runs it: ``collate`` + forward + cross-entropy + backward +
SGD step (Nesterov momentum 0.9, lr 0.01), model in train mode (dropout on, batch norms on the valid
positions). Per configuration, ``--steps`` batches of the scheme are timed (default 4 at the demo width, 3 at
width 1), chosen at evenly spaced quantiles of their padded length so that they represent the epoch, after one
untimed warm-up step (on at most 16 utterances of the smallest of them, at its padded length: one-time set-up
costs, not a whole batch's time). **The epoch time is extrapolated**, not measured: (seconds per
padded frame over the timed steps) x (padded frames of the whole epoch under that scheme). At the demo width a
step is a whole batch of 64. At width 1 a whole batch is out of reach on a small CPU machine (a random batch
of 64 holds about 120 k padded frames: some 40 GB of activations and minutes per step), so a width-1 step
trains on a slice of the batch, its first ``k`` utterances with ``k x T <= --width1-frames`` (at least one),
padded to the whole batch's length ``T``: the padding per utterance is the scheme's, the cost per padded
frame is what is measured, and the peak RSS is the slice's. The extrapolation assumes the time per padded
frame does not depend on the batch shape (the convolutions' work is linear in ``B x T``; per-call overheads and
cache effects are not); the RSS of the epoch's largest batch is extrapolated linearly from the growth per
padded frame and printed as an estimate.

FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` on the meta device (no computation) for one
forward + backward of a typical batch (the median random batch), at width 1 and at the demo width. It counts
the convolutions and matrix products only (batch norm, ReLU, pooling and masking are not counted); the count
is exactly ``B x (a x T + c)``, so the FLOPs per epoch are summed over the epoch's batch shapes. The GPU time
printed from them (``--gpu-tflops``, default 100 TFLOP/s effective) is an estimate from counted FLOPs, not a
GPU measurement.

The machine may be shared with other jobs: times are wall-clock and nothing is asserted; the 1-minute load
average before and after each configuration is printed (on 2 cores busy with other work, 2 threads can be
many times slower than 1: OpenMP threads wait on each other). With the defaults the
run takes about 12 to 15 minutes on 2 idle cores (longer on a shared machine) and its largest child about 6 GB
of memory; ``--quick`` (50 utterances, batch 8, width 0.0625 only, 2 steps) about a minute. ``--only ID``
(repeatable; a substring of the configuration ids printed, e.g. ``w1-random-contiguous-t2``) runs a subset.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from serflow.models import get_spec
from serflow.models.cnn14 import TIME_STRIDE, Cnn14
from serflow.train.buckets import length_batches

FPS = 100  # frames per second: the logmel64 store's 10 ms hop
N_MELS = 64
N_CLASSES = 4
MEAN_S, SIGMA = 4.5, 0.7  # log-normal durations: mean 4.5 s, median about 3.5 s
MIN_S, MAX_S = 0.6, 34.0
DB_MEAN, DB_STD = -40.0, 15.0
LR, MOMENTUM = 0.01, 0.9
TRAINER_WINDOW = 256  # serflow.train.buckets.DEFAULT_WINDOW, for the information line
SCHEMES = ("random", "sorted")
WARMUP_UTTERANCES = 16


@dataclass(frozen=True)
class Config:
    width: float
    scheme: str  # "random" | "sorted"
    memory_format: str  # "contiguous" | "channels_last"
    threads: int
    steps: int
    micro_frames: int | None  # width 1: padded frames per timed slice; None: whole batches

    @property
    def id(self) -> str:
        return f"w{self.width:g}-{self.scheme}-{self.memory_format}-t{self.threads}"


# ---------------------------------------------------------------------- corpus and batches
def synth_lengths(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames per utterance (see the module docstring) and 4-class labels."""
    rng = np.random.default_rng([seed, 0])
    seconds = np.clip(rng.lognormal(np.log(MEAN_S) - SIGMA**2 / 2, SIGMA, n), MIN_S, MAX_S)
    return np.round(seconds * FPS).astype(np.int64), rng.integers(0, N_CLASSES, n)


def synth_logmel(index: int, frames: int, seed: int) -> np.ndarray:
    """The ``logmel64 [frames, 64]`` of utterance ``index``: the same array in every process."""
    rng = np.random.default_rng([seed, 1, index])
    return rng.normal(DB_MEAN, DB_STD, (frames, N_MELS)).astype(np.float32)


def make_batches(lengths: np.ndarray, scheme: str, batch_size: int, seed: int) -> list[list[int]]:
    n = len(lengths)
    if scheme == "random":
        order = np.random.default_rng([seed, 2]).permutation(n)
        return [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    if scheme == "sorted":
        bound = batch_size * int(lengths.max())  # only max_size limits a batch
        return length_batches(lengths, bound, seed=seed, epoch=0, window=max(n, 1), max_size=batch_size).batches
    if scheme == "windowed":  # information only: the trainer-style sort within windows
        bound = batch_size * int(lengths.max())
        return length_batches(lengths, bound, seed=seed, epoch=0, window=TRAINER_WINDOW, max_size=batch_size).batches
    raise ValueError(f"unknown batching scheme {scheme!r}")


def padded_length(frames: int) -> int:
    """``Cnn14.collate``'s padded length for a batch whose longest utterance has ``frames`` frames."""
    return max(TIME_STRIDE, -(-frames // TIME_STRIDE) * TIME_STRIDE)


def batch_shapes(batches: list[list[int]], lengths: np.ndarray) -> list[tuple[int, int]]:
    """``(utterances, padded length)`` of each batch (lengths after ``prepare``'s padding to 32 frames)."""
    kept = np.maximum(lengths, TIME_STRIDE)
    return [(len(b), padded_length(int(kept[b].max()))) for b in batches if b]


def padded_frames(shapes: list[tuple[int, int]]) -> int:
    return sum(b * t for b, t in shapes)


def timed_batches(shapes: list[tuple[int, int]], steps: int) -> list[int]:
    """Indices of ``steps`` batches at evenly spaced quantiles of their padded frames (distinct when possible)."""
    ranked = sorted(range(len(shapes)), key=lambda i: (shapes[i][0] * shapes[i][1], i))
    picks = [ranked[min(len(ranked) - 1, int((k + 0.5) * len(ranked) / steps))] for k in range(steps)]
    return picks


# ---------------------------------------------------------------------- one configuration (child process)
def collate_to(model: Cnn14, samples: list[dict[str, np.ndarray]], total: int) -> dict[str, torch.Tensor]:
    """``model.collate`` padded further, with zeros, to ``total`` frames (a slice keeps its batch's padding)."""
    batch = model.collate(samples)
    short = total - batch["mel"].shape[1]
    if short > 0:
        batch["mel"] = F.pad(batch["mel"], (0, 0, 0, short))
    return batch


def run_config(cfg: Config, n: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Warm-up + timed steps of one configuration in this process; times, frames and RSS (KiB -> MiB)."""
    torch.set_num_threads(cfg.threads)
    lengths, labels = synth_lengths(n, seed)
    batches = make_batches(lengths, cfg.scheme, batch_size, seed)
    shapes = batch_shapes(batches, lengths)
    picks = timed_batches(shapes, cfg.steps)
    torch.manual_seed(seed)
    model = get_spec("cnn14").create(N_CLASSES, width=cfg.width, memory_format=cfg.memory_format).train()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True)

    steps = []  # (samples, targets, padded length) of each timed step
    for i in picks:
        idx, total = batches[i], shapes[i][1]
        if cfg.micro_frames is not None:
            idx = idx[: max(1, min(len(idx), cfg.micro_frames // total))]
        samples = [model.prepare({"logmel64": synth_logmel(j, int(lengths[j]), seed)})[0] for j in idx]
        steps.append((samples, torch.from_numpy(labels[idx]), total))

    def step(samples: list[dict[str, np.ndarray]], y: torch.Tensor, total: int) -> None:
        loss = F.cross_entropy(model(collate_to(model, samples, total)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    rss_setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    samples, y, total = min(steps, key=lambda s: len(s[0]) * s[2])
    t0 = time.perf_counter()
    step(samples[:WARMUP_UTTERANCES], y[:WARMUP_UTTERANCES], total)  # warm-up: oneDNN, allocator, first calls
    warmup_s = time.perf_counter() - t0
    times = []
    for s in steps:
        t0 = time.perf_counter()
        step(*s)
        times.append(time.perf_counter() - t0)
    return {
        "config": asdict(cfg),
        "id": cfg.id,
        "n_parameters": model.n_parameters,
        "torch_threads": torch.get_num_threads(),
        "warmup_s": warmup_s,
        "step_s": times,
        "step_utterances": [len(s[0]) for s in steps],
        "step_padded_length": [s[2] for s in steps],
        "step_padded_frames": [len(s[0]) * s[2] for s in steps],
        "rss_setup_mib": rss_setup,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def spawn(cfg: Config, n: int, batch_size: int, seed: int) -> dict[str, Any]:
    """``run_config`` in a fresh interpreter running this script; its result is the last line it prints."""
    payload = json.dumps({"config": asdict(cfg), "n": n, "batch_size": batch_size, "seed": seed})
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", payload],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return {"config": asdict(cfg), "id": cfg.id, "error": f"child exited with {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_main(payload: str) -> None:
    spec = json.loads(payload)
    result = run_config(Config(**spec["config"]), spec["n"], spec["batch_size"], spec["seed"])
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------- FLOPs (meta device)
def flops_per_batch(width: float) -> tuple[int, int]:
    """``(a, c)`` with forward + backward FLOPs of a ``[B, T]`` batch = ``B x (a x T + c)`` (counted, on meta)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = get_spec("cnn14").create(N_CLASSES, width=width)
    model.train()

    def count(t: int) -> int:
        mel = torch.empty(1, t, N_MELS, device="meta")
        n_frames = torch.full((1,), t)  # on the CPU: nothing padded, so no masks (not counted anyway)
        y = torch.zeros(1, dtype=torch.long, device="meta")
        with FlopCounterMode(display=False) as counter:
            F.cross_entropy(model({"mel": mel, "n_frames": n_frames}), y).backward()
        model.zero_grad(set_to_none=True)
        return counter.get_total_flops()

    one, two = count(TIME_STRIDE), count(2 * TIME_STRIDE)
    a = (two - one) // TIME_STRIDE
    return a, one - a * TIME_STRIDE


def flops_of(shapes: list[tuple[int, int]], a: int, c: int) -> int:
    return sum(b * (a * t + c) for b, t in shapes)


# ---------------------------------------------------------------------- the grid and the report
def build_grid(args: argparse.Namespace) -> list[Config]:
    demo_steps = args.steps or (2 if args.quick else 4)
    w1_steps = args.steps or 3
    grid = [
        Config(args.demo_width, scheme, fmt, threads, demo_steps, None)
        for scheme in SCHEMES
        for fmt in ("contiguous", "channels_last")
        for threads in (2, 1)
    ]
    if not args.quick:
        frames = args.width1_frames or None
        grid += [
            Config(1.0, "random", "contiguous", 2, w1_steps, frames),
            Config(1.0, "sorted", "contiguous", 2, w1_steps, frames),
            Config(1.0, "random", "channels_last", 2, w1_steps, frames),
            Config(1.0, "random", "contiguous", 1, w1_steps, frames),
        ]
    if args.only:
        grid = [cfg for cfg in grid if any(sel in cfg.id for sel in args.only)]
    return grid


def summarise(result: dict[str, Any], epoch_frames: dict[str, int], largest: int) -> dict[str, Any]:
    cfg = result["config"]
    frames = sum(result["step_padded_frames"])
    per_frame = sum(result["step_s"]) / frames
    growth = (result["rss_peak_mib"] - result["rss_setup_mib"]) / max(result["step_padded_frames"])
    return {
        "per_frame_s": per_frame,
        "timed_frames": frames,
        "epoch_s": per_frame * epoch_frames[cfg["scheme"]],
        "rss_largest_batch_mib": result["rss_setup_mib"] + growth * largest,
    }


def fmt_time(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def fmt_flops(flops: float) -> str:
    for unit, scale in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if flops >= scale:
            return f"{flops / scale:.2f} {unit}"
    return f"{flops:.0f} FLOP"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: 50 utterances, batch 8, width 0.0625, 2 steps"
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration (default 4; width 1: 3)")
    parser.add_argument("--demo-width", type=float, default=0.03125)
    parser.add_argument("--width1-frames", type=int, default=8192, help="padded frames per width-1 step; 0: whole")
    parser.add_argument("--utterances", type=int, default=5531)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--only", action="append", default=[], help="run configurations whose id contains this")
    parser.add_argument("--gpu-tflops", type=float, default=100.0, help="effective TFLOP/s for the GPU estimate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child_main(args.child)
        return
    if args.quick:
        args.utterances, args.batch_size, args.demo_width = 50, 8, 0.0625
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    started = time.perf_counter()

    lengths, _ = synth_lengths(args.utterances, args.seed)
    seconds = lengths / FPS
    print(
        f"{args.utterances} synthetic utterances: log-normal durations, mean {seconds.mean():.2f} s, median "
        f"{np.median(seconds):.2f} s, {seconds.min():.2f} to {seconds.max():.1f} s ({int((seconds >= MAX_S).sum())} "
        f"clipped at {MAX_S:g} s); {int(lengths.sum()):,} frames at {FPS} frames/s; logmel64 normal({DB_MEAN:g}, "
        f"{DB_STD:g}) dB; {N_CLASSES} classes"
    )
    shapes = {s: batch_shapes(make_batches(lengths, s, args.batch_size, args.seed), lengths) for s in SCHEMES}
    windowed = batch_shapes(make_batches(lengths, "windowed", args.batch_size, args.seed), lengths)
    epoch_frames = {s: padded_frames(v) for s, v in shapes.items()}
    real = int(np.maximum(lengths, TIME_STRIDE).sum())
    largest = max(b * t for v in shapes.values() for b, t in v)
    print(
        f"\npadded frames of one epoch, batch {args.batch_size} (exact, from the lengths; padding to a multiple of 32):"
    )
    for name, value, n_batches in (
        ("random order", epoch_frames["random"], len(shapes["random"])),
        ("length-sorted buckets", epoch_frames["sorted"], len(shapes["sorted"])),
        (f"sorted in windows of {TRAINER_WINDOW} (info)", padded_frames(windowed), len(windowed)),
    ):
        print(f"  {name:34s} {value:>12,d} frames in {n_batches:3d} batches, x{value / real:.2f} the real frames")
    ratio = epoch_frames["random"] / epoch_frames["sorted"]
    print(f"  random / sorted padded frames: x{ratio:.3f}; largest batch {largest:,} padded frames")

    grid = build_grid(args)
    print(
        f"\ntorch {torch.__version__}, {os.cpu_count()} CPUs; {len(grid)} configuration(s), each in a fresh "
        f"subprocess; SGD Nesterov {MOMENTUM} lr {LR}, cross-entropy, train mode"
    )
    results = []
    for cfg in grid:
        t0 = time.perf_counter()
        load = os.getloadavg()[0]  # other jobs on the machine distort the times, 2 threads most of all
        result = spawn(cfg, args.utterances, args.batch_size, args.seed)
        result["load_before"], result["load_after"] = load, os.getloadavg()[0]
        if "error" not in result:
            result.update(summarise(result, epoch_frames, largest))
            print(
                f"  {cfg.id:36s} {statistics.mean(result['step_s']):7.2f} s/step over {len(result['step_s'])} "
                f"steps ({time.perf_counter() - t0:.0f} s with start-up; 1-min load average "
                f"{load:.1f} -> {result['load_after']:.1f})",
                flush=True,
            )
        else:
            print(f"  {cfg.id:36s} FAILED: {result['error']}", flush=True)
        results.append(result)

    ok = [r for r in results if "error" not in r]
    print(
        "\nepoch time EXTRAPOLATED: (measured s per padded frame over the timed steps) x (padded frames of the "
        "epoch);\nwidth-1 steps train on a slice of each batch (its first utterances, padded to the batch's length)"
    )
    head = (
        f"  {'width':>6s} {'batching':8s} {'memory':13s} {'thr':>3s} {'steps':>5s} {'utt/step':>8s} "
        f"{'timed frames':>12s} {'s/step':>7s} {'us/frame':>8s} {'epoch (extrap.)':>15s} {'ratio':>7s} "
        f"{'peak RSS':>9s} {'RSS, largest batch':>18s}"
    )
    print(head)
    for r in ok:
        c = r["config"]
        base = next(
            (
                b
                for b in ok
                if b["config"]["width"] == c["width"]
                and (b["config"]["scheme"], b["config"]["memory_format"], b["config"]["threads"])
                == ("random", "contiguous", 2)
            ),
            None,
        )
        rel = f"x{r['epoch_s'] / base['epoch_s']:6.2f}" if base else ""
        print(
            f"  {c['width']:6g} {c['scheme']:8s} {c['memory_format']:13s} {c['threads']:3d} {len(r['step_s']):5d} "
            f"{statistics.mean(r['step_utterances']):8.1f} {r['timed_frames']:12,d} "
            f"{statistics.mean(r['step_s']):7.2f} {r['per_frame_s'] * 1e6:8.1f} {fmt_time(r['epoch_s']):>15s} "
            f"{rel:>7s} {r['rss_peak_mib']:5.0f} MiB {r['rss_largest_batch_mib'] / 1024:14.1f} GiB"
        )
    print(
        "  ratio: epoch time / the same width's random, contiguous, 2-thread epoch.\n  peak RSS: the child's "
        "ru_maxrss (interpreter, torch, model, optimizer, data of the timed steps).\n  RSS, largest batch "
        f"(estimate): the RSS growth per padded frame, extrapolated linearly to the epoch's largest batch "
        f"({largest:,} frames)"
    )

    print("\nside by side, one setting changed, the others equal (epoch-time ratios, extrapolated):")
    changes = (
        ("scheme", "random", "sorted", "sorted buckets / random order"),
        ("memory_format", "contiguous", "channels_last", "channels_last / contiguous"),
        ("threads", 2, 1, "1 thread / 2 threads"),
    )
    for key, frm, to, label in changes:
        pairs = [(r, o) for r in ok if r["config"][key] == frm for o in ok if o["config"] == {**r["config"], key: to}]
        for r, o in pairs:
            rest = [f"{r['config'][k]}" for k in ("scheme", "memory_format") if k != key]
            threads = r["config"]["threads"]
            rest += [f"{threads} thread{'s' if threads != 1 else ''}"] if key != "threads" else []
            where = f"width {r['config']['width']:g}; {', '.join(rest)}"
            print(f"  {label:30s} x{o['epoch_s'] / r['epoch_s']:5.2f}   ({where})")

    typical = sorted(shapes["random"], key=lambda s: s[0] * s[1])[len(shapes["random"]) // 2]
    flops: dict[str, Any] = {}
    print(
        f"\nFLOPs (FlopCounterMode on the meta device: convolutions and matrix products, forward + backward; "
        f"typical batch = the median random batch [{typical[0]}, {typical[1]}])"
    )
    for width in sorted({1.0, args.demo_width}, reverse=True):
        a, c = flops_per_batch(width)
        typ = typical[0] * (a * typical[1] + c)
        per_epoch = {s: flops_of(v, a, c) for s, v in shapes.items()}
        flops[f"{width:g}"] = {"per_frame": a, "per_utterance": c, "typical_batch": typ, "epoch": per_epoch}
        print(
            f"  width {width:g}: {fmt_flops(a)} per padded frame (+ {fmt_flops(c)} per utterance); typical batch "
            f"{fmt_flops(typ)}; epoch {fmt_flops(per_epoch['random'])} random, {fmt_flops(per_epoch['sorted'])} sorted"
        )
    w1 = flops["1"]["epoch"]
    print(
        f"  ESTIMATE, not a GPU measurement: at {args.gpu_tflops:g} TFLOP/s effective, one width-1 epoch "
        f"≈ {w1['random'] / args.gpu_tflops / 1e12:.1f} s (random order), "
        f"{w1['sorted'] / args.gpu_tflops / 1e12:.1f} s (sorted buckets); real utilisation at these shapes may be "
        "far lower"
    )
    total = time.perf_counter() - started
    print(f"\nbenchmark wall time {fmt_time(total)}")

    if args.out is not None:
        report = {
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "child"},
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "corpus": {
                "utterances": args.utterances,
                "frames": int(lengths.sum()),
                "mean_s": float(seconds.mean()),
                "median_s": float(np.median(seconds)),
                "max_s": float(seconds.max()),
            },
            "epoch_padded_frames": {**epoch_frames, "windowed": padded_frames(windowed)},
            "random_over_sorted_padded_frames": ratio,
            "largest_batch_padded_frames": largest,
            "results": results,
            "flops": flops,
            "wall_s": total,
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
