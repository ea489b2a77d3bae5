"""Whisper ASR on CPU: speed (real-time factor) and WER of each backend, side by side in one run.

Usage: .venv/bin/python benchmarks/bench_asr.py [--utterances 30] [--seed 11]
Synthesises a small demo corpus in a temporary folder, reads it with the IEMOCAP reader, and runs
faster-whisper (int8, 1 and 2 threads) and openai-whisper (fp32, on the checkpoint converted from the
offline tiny.en) over the same utterances. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from serflow.asr.backends import get_backend
from serflow.asr.convert import convert_ct2_to_openai
from serflow.asr.models import offline_ct2_dir, resolve_model
from serflow.asr.run import transcribe_manifest
from serflow.asr.wer import word_error_rates
from serflow.corpora.iemocap import read_iemocap
from serflow.corpora.synth.corpus import synthesize_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=30)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_asr_") as tmp:
        root = Path(tmp) / "corpus"
        synthesize_corpus(root, utterances=args.utterances, seed=args.seed, jobs=2)
        manifest = read_iemocap(root, labels=["ang", "hap", "neu", "sad"], merge={"exc": "hap"}).manifest
        audio_s = float(manifest["duration"].sum())
        ct2 = offline_ct2_dir()
        converted = Path(tmp) / "openai-whisper-tiny.en.pt"
        if ct2 is not None:
            convert_ct2_to_openai(ct2, converted)
        runs = [
            ("faster-whisper", resolve_model("faster-whisper", "tiny.en", None), 1),
            ("faster-whisper", resolve_model("faster-whisper", "tiny.en", None), 2),
            ("openai-whisper", str(converted) if ct2 else "tiny.en", 1),
            ("openai-whisper", str(converted) if ct2 else "tiny.en", 2),
        ]
        print(f"{len(manifest)} utterances, {audio_s:.1f} s of audio (synthetic demo speech, seed {args.seed})")
        print(f"{'backend':16} {'threads':>7} {'load s':>7} {'decode s':>9} {'RTF':>6} {'WER':>6}")
        for name, model, threads in runs:
            start = time.perf_counter()
            backend = get_backend(name, model, device="cpu", threads=threads)
            loaded = time.perf_counter()
            table, failures = transcribe_manifest(manifest, backend)
            decoded = time.perf_counter()
            wer = word_error_rates(manifest, table.to_pandas())["overall"]["wer"]
            print(
                f"{name:16} {threads:>7} {loaded - start:>7.1f} {decoded - loaded:>9.1f} "
                f"{(decoded - loaded) / audio_s:>6.2f} {wer:>6.3f}"
                + (f"  ({len(failures)} failed)" if len(failures) else "")
            )
        print("RTF = decode time / audio time (lower is faster); WER after Whisper's English normaliser.")


if __name__ == "__main__":
    main()
