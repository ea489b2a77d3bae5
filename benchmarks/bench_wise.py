"""One training epoch of WISE on an IEMOCAP-sized synthetic set: the packed hierarchy against a Python loop.

    .venv/bin/python benchmarks/bench_wise.py [--quick] [--utterances 5531] [--batch-size 32] [--threads 2]
        [--text-dim 300] [--loop-batches 20] [--phone-loop-batches 5] [--seed 0]

The issue's targets: one epoch of ``wise`` (forward + backward + Adam step, batch 32) under 60 s on 2 CPU
cores, and the batched hierarchy at least 10x faster than computing it with a straightforward per-word
Python loop.

Data: 5,531 synthetic utterances shaped like IEMOCAP's 4-class set as WISE reads it: words per utterance
log-normal around 11 (1 to 100), phones per word 1 + Poisson(2.5) (mean 3.5), frames per phone log-normal
around 6.5 at the 15 ms step (a few above the 64-frame cap), silences between words, so about 300 frames
(4.5 s) per utterance; MFCC-39 frames and GloVe vectors (300-d as in the paper; ``--text-dim 50`` for the
offline glove.6B.50d) are random. ``prepare`` (the paper's truncation) runs once, outside the epoch.

Timed, in one process, with ``torch.set_num_threads(--threads)``, Adam(lr 1e-3, weight decay 1e-4), model
in training mode (dropout on):

- ``packed epoch``: every batch of a shuffled epoch: ``collate`` + forward + backward + step. Measured in full.
- ``packed`` vs ``per-word loop`` on the same ``--loop-batches`` batches, in turns (packed, loop, packed,
  ...): the loop version computes each word's audio vector with :func:`serflow.models.wise.word_audio_loop`
  (per word: one packed GRU call over its phones, then the word GRU), the rest of the model being the same
  code. The loop's epoch time is extrapolated from its mean time per batch (it is too slow to run in full);
  the ratio is loop / packed on the same batches.
- ``per-phone loop`` (one GRU call per phone) on ``--phone-loop-batches`` batches, for information.

The machine may be shared with other jobs: times are wall-clock and nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from serflow.models import get_spec
from serflow.models.wise import Wise, word_audio_loop

TARGET_EPOCH_S = 60.0
TARGET_RATIO = 10.0


def synth_corpus(n: int, text_dim: int, seed: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """IEMOCAP-shaped utterances (see the module docstring) and random 4-class labels."""
    rng = np.random.default_rng(seed)
    n_words = np.clip(np.round(rng.lognormal(np.log(9.5), 0.6, n)), 1, 100).astype(np.int64)
    samples = []
    for words in n_words.tolist():
        phones = 1 + rng.poisson(2.5, words)
        frames = np.clip(np.round(rng.lognormal(np.log(5.8), 0.5, int(phones.sum()))), 1, 90).astype(np.int64)
        gaps = rng.poisson(2.0, words)  # silence before each word
        word_of_phone = np.repeat(np.arange(words), phones)
        first_phone = np.concatenate([[0], np.cumsum(phones)[:-1]])
        shift = np.zeros(len(frames), np.int64)
        shift[first_phone] = gaps
        start = np.cumsum(shift) + np.concatenate([[0], np.cumsum(frames)[:-1]]) + int(rng.integers(5, 30))
        end = start + frames
        total = int(end[-1]) + int(rng.integers(5, 30))
        samples.append(
            {
                "mfcc39": rng.standard_normal((total, 39), dtype=np.float32),
                "spans_mfcc39": np.stack([word_of_phone, start, end], axis=1).astype(np.float32),
                "glove": rng.standard_normal((words, text_dim), dtype=np.float32),
            }
        )
    return samples, rng.integers(0, 4, n)


def step_packed(model: Wise, opt: torch.optim.Optimizer, samples: list[dict[str, np.ndarray]], y: torch.Tensor) -> None:
    loss = nn.functional.cross_entropy(model(model.collate(samples)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def step_loop(
    model: Wise, opt: torch.optim.Optimizer, samples: list[dict[str, np.ndarray]], y: torch.Tensor, per_phone: bool
) -> None:
    audio = pad_sequence(word_audio_loop(model, samples, per_phone=per_phone), batch_first=True)
    text = pad_sequence([torch.from_numpy(s["glove"]) for s in samples], batch_first=True)
    n_words = torch.tensor([len(s["glove"]) for s in samples])
    loss = nn.functional.cross_entropy(model.fuse(audio, text, n_words), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 utterances, 5 loop batches, 2 per-phone ones")
    parser.add_argument("--utterances", type=int, default=5531)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text-dim", type=int, default=300)
    parser.add_argument("--loop-batches", type=int, default=20)
    parser.add_argument("--phone-loop-batches", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.utterances, args.loop_batches, args.phone_loop_batches = 400, 5, 2
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    raw, labels = synth_corpus(args.utterances, args.text_dim, args.seed)
    t_synth = time.perf_counter() - t0
    torch.manual_seed(args.seed)
    model = get_spec("wise").create(4, text_dim=args.text_dim).train()
    t0 = time.perf_counter()
    prepared, totals = [], dict.fromkeys(("words_truncated", "phones_truncated", "frames_truncated"), 0)
    for sample in raw:
        out, counts = model.prepare(sample)
        prepared.append(out)
        for key in totals:
            totals[key] += counts[key]
    t_prepare = time.perf_counter() - t0
    words = np.array([len(s["glove"]) for s in raw])
    phones = np.array([len(s["spans_mfcc39"]) for s in raw])
    frames = np.array([len(s["mfcc39"]) for s in raw])
    in_phones = sum(float((s["spans_mfcc39"][:, 2] - s["spans_mfcc39"][:, 1]).sum()) for s in raw)
    print(
        f"{args.utterances} synthetic utterances in {t_synth:.1f} s: mean {frames.mean():.0f} frames "
        f"({frames.mean() * 0.015:.1f} s at 15 ms, {in_phones / frames.sum():.0%} inside phones), "
        f"{words.mean():.1f} words (max {words.max()}), {phones.sum() / words.sum():.2f} phones per word, "
        f"{in_phones / phones.sum():.1f} frames per phone; glove {args.text_dim}-d"
    )
    print(f"prepare (truncation) in {t_prepare:.1f} s: {totals}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; batch {args.batch_size};"
        f" {sum(p.numel() for p in model.parameters()):,} parameters"
    )

    rng = np.random.default_rng(args.seed + 1)
    order = rng.permutation(args.utterances)
    batches = [order[i : i + args.batch_size] for i in range(0, args.utterances, args.batch_size)]
    y_all = torch.from_numpy(labels)

    def packed(idx: np.ndarray) -> None:
        step_packed(model, opt, [prepared[i] for i in idx], y_all[idx])

    def loop(idx: np.ndarray, per_phone: bool = False) -> None:
        step_loop(model, opt, [prepared[i] for i in idx], y_all[idx], per_phone)

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    packed(batches[0])  # warm-up (allocator, first-call overheads)
    t0 = time.perf_counter()
    for idx in batches:
        packed(idx)
    epoch = time.perf_counter() - t0

    subset = batches[: args.loop_batches]
    t_packed, t_loop = [], []
    for idx in subset:  # in turns, so drift in a shared machine affects both alike
        t0 = time.perf_counter()
        packed(idx)
        t_packed.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        loop(idx)
        t_loop.append(time.perf_counter() - t0)
    t_phone = []
    for idx in batches[: args.phone_loop_batches]:
        t0 = time.perf_counter()
        loop(idx, per_phone=True)
        t_phone.append(time.perf_counter() - t0)

    n = len(batches)
    mean_packed, mean_loop = statistics.mean(t_packed), statistics.mean(t_loop)
    print(f"\none training epoch ({n} batches): forward + backward + Adam step, collate included")
    print(f"  {'method':34s} {'batches timed':>13s} {'ms / batch':>11s} {'epoch (s)':>10s} {'ratio':>7s}")
    print(f"  {'packed (serflow), full epoch':34s} {n:13d} {epoch / n * 1000:11.1f} {epoch:10.1f} {'':>7s}")
    print(
        f"  {'packed, same batches as the loop':34s} {len(subset):13d} {mean_packed * 1000:11.1f} {'':>10s} x{1:6.1f}"
    )
    print(
        f"  {'per-word loop (extrapolated)':34s} {len(subset):13d} {mean_loop * 1000:11.1f} {mean_loop * n:10.1f} "
        f"x{mean_loop / mean_packed:6.1f}"
    )
    if t_phone:
        mean_phone = statistics.mean(t_phone)
        mean_same = statistics.mean(t_packed[: len(t_phone)]) if len(t_packed) >= len(t_phone) else mean_packed
        print(
            f"  {'per-phone loop (extrapolated)':34s} {len(t_phone):13d} {mean_phone * 1000:11.1f} "
            f"{mean_phone * n:10.1f} x{mean_phone / mean_same:6.1f}"
        )
    print(
        f"\ntargets: epoch under {TARGET_EPOCH_S:.0f} s on 2 cores (measured {epoch:.1f} s); packed at least "
        f"x{TARGET_RATIO:.0f} faster than the per-word loop (measured x{mean_loop / mean_packed:.1f} on "
        f"{len(subset)} batches; the loop's epoch is extrapolated from them)"
    )


if __name__ == "__main__":
    main()
