"""One training epoch of GBAN on an IEMOCAP-sized synthetic set: padded batches against a per-utterance loop.

    .venv/bin/python benchmarks/bench_gban.py [--quick] [--utterances 5531] [--batch-size 32] [--threads 2]
        [--text-dim 300] [--loop-batches 10] [--seed 0]

Data: 5,531 synthetic utterances, the size of IEMOCAP's 4-class set. Durations log-normal (median about
3.6 s, mean about 4.3 s, 0.5 to 35 s) at the 10 ms step of ``gban52``, so ``prepare`` keeps the first 750
frames of the longest (about 11 %) and zero-pads the few under 61; ``gban52 [T, 52]`` frames are random.
Words per utterance: the duration (at most 10 s) times a log-normal rate around 4.4 words/s, about 20 on
average (1 to 120); word ids drawn from a Zipf-like law over 6,000 types, so that the training split has
words seen once (they share the OOV row); ``glove [N, D]`` is a fixed random vector per id (about 3 % of the
types all zero, as for words missing from GloVe), ``word_ids [N, 1]`` the ids. Labels: 4 random classes.
``prepare`` runs once and ``fold_hparams`` / ``init_fold`` see all the utterances (the training split here),
outside the timing. ``--text-dim 50`` gives the size of the offline glove.6B.50d, for information.

Timed, in one process, with ``torch.set_num_threads(--threads)``: model ``gban`` (``follow="paper"``) in
training mode (dropout on), Adam(lr 1e-4, betas (0.9, 0.9)) and gradient-norm clipping at 5, as the trainer
builds them for GBAN; loss: cross-entropy.

- ``batched epoch``: every batch of a shuffled epoch: ``collate`` + forward + backward + clip + step. In full.
- ``batched`` vs ``per-utterance loop`` on the same ``--loop-batches`` batches, in turns (batched, loop,
  batched, ...). The loop trains as a straightforward port would: for each utterance of the batch,
  :func:`serflow.models.gban.utterance_loop_forward` on it alone (its own conv, LSTM and attention calls, no
  padding, no packing) and a backward of its loss / batch size, so the gradients add up over the batch; then
  one clip + step. Its epoch time is extrapolated from its mean time per batch; the ratio is loop / batched
  on the same batches.

Before the timing, in eval mode on a few utterances (the shortest, the longest, the fewest words, some
random ones), the batched and looped outputs, and the gradients of the batch loss, are compared (max abs
difference printed). The machine may be shared with other jobs: times are wall-clock and nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from serflow.models import get_spec
from serflow.models.gban import Gban, utterance_loop_forward

LR, BETAS, CLIP = 1e-4, (0.9, 0.9), 5.0
N_TYPES, ZIPF = 6000, 1.2


def synth_corpus(n: int, text_dim: int, seed: int) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """IEMOCAP-sized utterances (see the module docstring) and random 4-class labels."""
    rng = np.random.default_rng(seed)
    frames = np.clip(np.round(rng.lognormal(np.log(360), 0.6, n)), 50, 3500).astype(np.int64)
    rate = rng.lognormal(np.log(4.4), 0.35, n)  # words per second of speech
    words = np.clip(np.round(np.minimum(frames, 1000) / 100 * rate), 1, 120).astype(np.int64)
    p = 1.0 / (np.arange(N_TYPES) + 2.7) ** ZIPF
    ids = rng.choice(N_TYPES, size=int(words.sum()), p=p / p.sum())
    table = (0.4 * rng.standard_normal((N_TYPES, text_dim))).astype(np.float32)
    table[rng.random(N_TYPES) < 0.03] = 0.0  # not in GloVe
    starts = np.concatenate([[0], np.cumsum(words)[:-1]])
    samples = []
    for t, start, m in zip(frames.tolist(), starts.tolist(), words.tolist(), strict=True):
        utt_ids = ids[start : start + m]
        samples.append(
            {
                "gban52": rng.standard_normal((t, 52), dtype=np.float32),
                "glove": table[utt_ids],
                "word_ids": utt_ids.astype(np.float32)[:, None],
            }
        )
    return samples, rng.integers(0, 4, n)


def step_batched(
    model: Gban, opt: torch.optim.Optimizer, samples: list[dict[str, np.ndarray]], y: torch.Tensor
) -> None:
    loss = F.cross_entropy(model(model.collate(samples)), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()


def loop_backward(model: Gban, samples: list[dict[str, np.ndarray]], y: torch.Tensor) -> None:
    """Forward + backward one utterance at a time; the gradients add up to those of the batch's mean loss."""
    for sample, target in zip(samples, y, strict=True):
        out = utterance_loop_forward(model, [sample])
        (F.cross_entropy(out, target.unsqueeze(0)) / len(samples)).backward()


def step_loop(model: Gban, opt: torch.optim.Optimizer, samples: list[dict[str, np.ndarray]], y: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loop_backward(model, samples, y)
    nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()


def check_same(model: Gban, samples: list[dict[str, np.ndarray]], y: torch.Tensor) -> tuple[float, float, float]:
    """Eval mode: max abs differences batched vs loop of the outputs and of the batch loss's gradients; the
    largest gradient entry, for scale. The weights are not changed."""
    model.eval()
    model.zero_grad(set_to_none=True)
    batched = model(model.collate(samples))
    F.cross_entropy(batched, y).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    with torch.no_grad():
        looped = utterance_loop_forward(model, samples)
    loop_backward(model, samples, y)
    out_diff = float((batched.detach() - looped).abs().max())
    grad_diff, grad_max = 0.0, 0.0
    for name, p in model.named_parameters():
        ref = grads.get(name)
        got = p.grad
        if ref is None and got is None:
            continue
        ref = torch.zeros_like(p) if ref is None else ref
        got = torch.zeros_like(p) if got is None else got
        grad_diff = max(grad_diff, float((ref - got).abs().max()))
        grad_max = max(grad_max, float(ref.abs().max()))
    model.zero_grad(set_to_none=True)
    model.train()
    return out_diff, grad_diff, grad_max


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="400 utterances, 3 loop batches")
    parser.add_argument("--utterances", type=int, default=5531)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text-dim", type=int, default=300)
    parser.add_argument("--loop-batches", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.utterances, args.loop_batches = 400, 3
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    raw, labels = synth_corpus(args.utterances, args.text_dim, args.seed)
    t_synth = time.perf_counter() - t0
    spec = get_spec("gban")
    preparer = spec.create(4, text_dim=args.text_dim)
    t0 = time.perf_counter()
    prepared, totals = [], dict.fromkeys(("utterances_truncated", "utterances_padded", "texts_padded"), 0)
    for sample in raw:
        out, counts = preparer.prepare(sample)
        prepared.append(out)
        for key in totals:
            totals[key] += counts[key]
    t_prepare = time.perf_counter() - t0
    fold = preparer.fold_hparams(prepared)
    torch.manual_seed(args.seed)
    model = spec.create(4, text_dim=args.text_dim, **fold)
    fit = model.init_fold(prepared)
    model.train()
    frames = np.array([len(s["gban52"]) for s in raw])
    kept = np.array([len(s["gban52"]) for s in prepared])
    words = np.array([len(s["word_ids"]) for s in raw])
    print(
        f"{args.utterances} synthetic utterances in {t_synth:.1f} s: {frames.mean() / 100:.1f} s mean "
        f"({np.median(frames) / 100:.1f} s median, max {frames.max() / 100:.1f} s) at 10 ms, {kept.mean():.0f} "
        f"frames kept on average; {words.mean():.1f} words (max {words.max()}); glove {args.text_dim}-d"
    )
    print(f"prepare in {t_prepare:.1f} s: {totals}")
    print(
        f"vocabulary (init_fold): {fit['vocab_size']} words with a row of {fit['train_word_types']} types, "
        f"{fit['train_oov_words']} seen once -> OOV row ({fit['train_oov_rate']:.2%} of {fit['train_words']} "
        f"words), {fit['vocab_not_in_glove']} not in GloVe"
    )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; batch "
        f"{args.batch_size}; {sum(p.numel() for p in model.parameters()):,} parameters; settings "
        f"{ {k: model.settings()[k] for k in ('follow', 'attention', 'padding')} }"
    )

    y_all = torch.from_numpy(labels)
    rng = np.random.default_rng(args.seed + 1)
    picks = [int(np.argmin(frames)), int(np.argmax(frames)), int(np.argmin(words))]
    picks += [int(i) for i in rng.choice(args.utterances, 5, replace=False) if i not in picks]
    out_diff, grad_diff, grad_max = check_same(model, [prepared[i] for i in picks], y_all[picks])
    print(
        f"check, eval mode, {len(picks)} utterances ({frames[picks].min()} to {frames[picks].max()} frames, "
        f"{words[picks].min()} to {words[picks].max()} words): batched vs loop max abs difference "
        f"{out_diff:.2e} (outputs), {grad_diff:.2e} (gradients; largest entry {grad_max:.2e})"
    )

    order = rng.permutation(args.utterances)
    batches = [order[i : i + args.batch_size] for i in range(0, args.utterances, args.batch_size)]

    def batched(idx: np.ndarray) -> None:
        step_batched(model, opt, [prepared[i] for i in idx], y_all[idx])

    def loop(idx: np.ndarray) -> None:
        step_loop(model, opt, [prepared[i] for i in idx], y_all[idx])

    opt = torch.optim.Adam(model.parameters(), lr=LR, betas=BETAS)
    batched(batches[0])  # warm-up (allocator, first-call overheads)
    loop(batches[0])
    epoch = timed(lambda: [batched(idx) for idx in batches])

    subset = batches[: args.loop_batches]
    t_batched, t_loop = [], []
    for idx in subset:  # in turns, so drift in a shared machine affects both alike
        t_batched.append(timed(lambda idx=idx: batched(idx)))
        t_loop.append(timed(lambda idx=idx: loop(idx)))
    lookup = min(timed(lambda: {int(g): k for k, g in enumerate(model.vocab_ids.tolist())}) for _ in range(5))

    n = len(batches)
    mean_batched, mean_loop = statistics.mean(t_batched), statistics.mean(t_loop)
    print(f"\none training epoch ({n} batches): forward + backward + clip + Adam step, collate included")
    print(f"  {'method':36s} {'batches timed':>13s} {'ms / batch':>11s} {'epoch (s)':>10s} {'ratio':>7s}")
    print(f"  {'batched (serflow), full epoch':36s} {n:13d} {epoch / n * 1000:11.1f} {epoch:10.1f} {'':>7s}")
    print(
        f"  {'batched, same batches as the loop':36s} {len(subset):13d} {mean_batched * 1000:11.1f} "
        f"{mean_batched * n:10.1f} x{1:6.1f}"
    )
    print(
        f"  {'per-utterance loop (extrapolated)':36s} {len(subset):13d} {mean_loop * 1000:11.1f} "
        f"{mean_loop * n:10.1f} x{mean_loop / mean_batched:6.1f}"
    )
    print(
        f"\nloop / batched: x{mean_loop / mean_batched:.1f} on {len(subset)} batches (loop epoch extrapolated "
        f"{mean_loop * n:.1f} s vs batched epoch {epoch:.1f} s measured, x{mean_loop * n / epoch:.1f})"
    )
    rebuilt = lookup * args.batch_size  # utterance_loop_forward builds its word dict on every call
    print(
        f"of the loop's time, rebuilding the word dict per utterance: {lookup * 1000:.2f} ms each, "
        f"{lookup * args.utterances:.1f} s per epoch; without it x{(mean_loop - rebuilt) / mean_batched:.1f}"
    )


if __name__ == "__main__":
    main()
