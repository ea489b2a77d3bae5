"""Whisper ASR on CPU: packed against unpacked decoding (asr.packing), side by side on the same utterances.

Usage: .venv/bin/python benchmarks/bench_asr.py [--utterances 40] [--seed 11] [--layout iemocap|tess]
       [--corpus N] [--model tiny.en] [--threads 1] [--gaps 0.5 1.0] [--backends]
Synthesises a demo-sized corpus in a temporary folder (IEMOCAP layout, 600 utterances, or TESS layout with
--layout tess, 168), reads it with the corpus's reader, and transcribes its first --utterances (sorted ids: a
run of windows as one transcription job of the demo sees them; a window holds one speaker's utterances, so a
small corpus of many speakers would pack fewer per window than the demo does) with faster-whisper (int8),
unpacked and packed with each gap: real-time factor, seconds per utterance, WER against the gold transcript,
and how many transcripts differ from the unpacked ones (as written, and after Whisper's English normaliser,
which is what WER sees). --backends adds the earlier comparison: faster-whisper at 1 and 2
threads and openai-whisper (fp32, on the checkpoint converted from the offline tiny.en), all unpacked. Prints
numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from serflow.asr.backends import get_backend
from serflow.asr.convert import convert_ct2_to_openai
from serflow.asr.models import offline_ct2_dir, resolve_model
from serflow.asr.packing import PackingSettings
from serflow.asr.run import transcribe_manifest
from serflow.asr.wer import english_normalizer, word_error_rates
from serflow.corpora.iemocap import read_iemocap
from serflow.corpora.synth.corpus import synthesize_corpus
from serflow.corpora.synth.tess import synthesize_tess
from serflow.corpora.tess import read_tess


@dataclass(frozen=True)
class Run:
    label: str
    backend: str
    model: str
    threads: int
    packing: PackingSettings


@dataclass(frozen=True)
class Outcome:
    load_s: float
    decode_s: float  # wall clock
    cpu_s: float  # this process's CPU time (all threads): what the shared machine's other jobs do not inflate
    texts: pd.Series  # utt_id -> text
    packed: int
    wer: float | None
    failed: int


def corpus(tmp: Path, layout: str, utterances: int, seed: int) -> pd.DataFrame:
    """The synthetic corpus's manifest (every labelled utterance, gold transcripts included), sorted by id."""
    root = tmp / "corpus"
    if layout == "tess":
        synthesize_tess(root, words=max(1, utterances // 14), seed=seed, nested_copy=False, jobs=2)
        manifest = read_tess(root).manifest
    else:
        synthesize_corpus(root, utterances=utterances, seed=seed, jobs=2)
        manifest = read_iemocap(root, labels=["ang", "hap", "neu", "sad"], merge={"exc": "hap"}).manifest
    return manifest.sort_values("utt_id").reset_index(drop=True)


def runs(args: argparse.Namespace, tmp: Path) -> list[Run]:
    # the workflow's assembled copy of an offline model when there is one, else one assembled for this run
    model = resolve_model("faster-whisper", args.model, None, assemble=False)
    if not Path(model).exists():
        model = resolve_model("faster-whisper", args.model, None, cache=tmp / "whisper")
    off = PackingSettings(enabled=False)
    plan = [Run("unpacked", "faster-whisper", model, args.threads, off)]
    plan += [
        Run(f"packed gap {gap:g} s", "faster-whisper", model, args.threads, PackingSettings(gap_s=gap))
        for gap in args.gaps
    ]
    if args.backends:
        ct2 = offline_ct2_dir()
        converted = tmp / "openai-whisper-tiny.en.pt"
        if ct2 is not None:
            convert_ct2_to_openai(ct2, converted)
        openai_model = str(converted) if ct2 else "tiny.en"
        plan += [
            Run("unpacked", "faster-whisper", model, 3 - args.threads, off),
            Run("unpacked", "openai-whisper", openai_model, 1, off),
            Run("unpacked", "openai-whisper", openai_model, 2, off),
        ]
    return plan


def measure(run: Run, manifest: pd.DataFrame) -> Outcome:
    start = time.perf_counter()
    backend = get_backend(run.backend, run.model, device="cpu", threads=run.threads)
    loaded, cpu = time.perf_counter(), time.process_time()
    table, failures = transcribe_manifest(manifest, backend, packing=run.packing)
    decoded, cpu = time.perf_counter(), time.process_time() - cpu
    asr = table.to_pandas()
    return Outcome(
        load_s=loaded - start,
        decode_s=decoded - loaded,
        cpu_s=cpu,
        texts=asr.set_index("utt_id")["text"],
        packed=int(asr["packed"].sum()),
        wer=word_error_rates(manifest, asr)["overall"]["wer"],
        failed=len(failures),
    )


def differing(a: pd.Series, b: pd.Series, normalise: bool) -> int:
    """How many utterances' transcripts differ between two runs (raw, or after Whisper's English normaliser)."""
    norm = english_normalizer() if normalise else (lambda text: text)
    both = a.index.intersection(b.index)
    return sum(norm(a[u]) != norm(b[u]) for u in both) + len(a.index.symmetric_difference(b.index))


def show_differences(manifest: pd.DataFrame, first: pd.Series, other: pd.Series, label: str) -> list[str]:
    """Lines for each utterance whose normalised transcript differs between the first run and another."""
    norm = english_normalizer()
    gold = dict(zip(manifest["utt_id"], manifest["transcript"], strict=True))
    lines = [f"-- {label}: gold | first run | this run"]
    for utt in first.index.intersection(other.index):
        if norm(first[utt]) != norm(other[utt]):
            lines.append(f"{utt}: {gold.get(utt)!r} | {first[utt]!r} | {other[utt]!r}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--layout", choices=["iemocap", "tess"], default="iemocap")
    parser.add_argument("--corpus", type=int, help="utterances synthesised (default: the demo's, 600 or 168)")
    parser.add_argument("--model", default="tiny.en", help="tiny.en (the IEMOCAP demo's), base (the TESS demo's)")
    parser.add_argument("--threads", type=int, choices=[1, 2], default=1, help="CPU threads (the demo's jobs: 1)")
    parser.add_argument("--gaps", type=float, nargs="*", default=[1.0], help="packed runs' silence gaps, seconds")
    parser.add_argument("--backends", action="store_true", help="also faster-whisper x2 threads and openai-whisper")
    parser.add_argument("--show", action="store_true", help="print each transcript that differs from the first run's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_asr_") as tmp:
        size = args.corpus or (168 if args.layout == "tess" else 600)
        manifest = corpus(Path(tmp), args.layout, size, args.seed).head(args.utterances)
        audio_s = float(manifest["duration"].sum())
        print(
            f"{len(manifest)} utterances ({manifest['speaker'].nunique()} speakers), {audio_s:.1f} s of audio "
            f"({args.layout} layout, synthetic speech, seed {args.seed}); Whisper {args.model}, int8 on CPU"
        )
        header = f"{'run':26} {'threads':>7} {'load s':>6} {'wall s':>7} {'CPU s':>6} {'RTF':>6} {'s/utt':>6}"
        print(f"{header} {'WER':>6} {'packed':>6} {'differ':>6} {'norm.':>5} {'speed-up':>8}")
        reference: Outcome | None = None
        shown: list[str] = []
        for run in runs(args, Path(tmp)):
            got = measure(run, manifest)
            reference = reference or got
            if args.show and got is not reference:
                shown += show_differences(manifest, reference.texts, got.texts, run.label)
            label = f"{run.backend.split('-')[0]} {run.label}"
            wer = f"{got.wer:>6.3f}" if got.wer is not None else f"{'-':>6}"
            print(
                f"{label:26} {run.threads:>7} {got.load_s:>6.1f} {got.decode_s:>7.1f} {got.cpu_s:>6.1f} "
                f"{got.cpu_s / audio_s:>6.3f} {got.cpu_s / len(manifest):>6.3f} {wer} {got.packed:>6} "
                f"{differing(reference.texts, got.texts, False):>6} {differing(reference.texts, got.texts, True):>5} "
                f"{reference.cpu_s / got.cpu_s:>7.2f}x" + (f"  ({got.failed} failed)" if got.failed else "")
            )
        print(
            "wall s / CPU s: decoding's wall-clock and CPU time (the machine may be shared: RTF, s/utt and speed-up "
            "use CPU time); RTF = CPU time / audio time (lower is faster); WER after Whisper's English normaliser; "
            "packed = utterances whose text came from a shared window; differ / norm. = transcripts unlike the first "
            "(unpacked) run's, as written / normalised; speed-up = the first run's CPU time / this run's."
        )
        print("\n".join(shown))


if __name__ == "__main__":
    main()
