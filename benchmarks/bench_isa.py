"""Which stage's output depends on the CPU's vector instructions, and by how much (README, "Reproducibility").

    .venv/bin/python benchmarks/bench_isa.py [--utterances 200] [--keep]

The same commit and config gave other numbers on another machine (issue 12, finding 7). This benchmark cannot
borrow a second machine, so it makes one: it runs the workflow twice on the same small synthetic corpus, once as
this CPU is, once with every numeric library told to use only baseline x86-64 instructions (SSE4.2: no AVX2, no
FMA), which is what a machine with another instruction set does to the floating-point code paths. Then it walks
the stages in order and prints, side by side, whether each output is byte-identical and, where not, how far
apart the two are: the synthetic audio, the manifest, Whisper's transcripts and WER, the forced alignment's word
times, every feature store (largest absolute difference), and each model's WA / UA and predictions. The first
line that differs is the first stage whose result depends on the instruction set.

The variables that pin the instruction set (``serflow.provenance.ISA_ENV``):

* ``ATEN_CPU_CAPABILITY`` (torch's vectorised kernels), ``ONEDNN_MAX_CPU_ISA`` (torch's oneDNN kernels),
  ``MKL_ENABLE_INSTRUCTIONS`` (MKL BLAS under torch);
* ``CT2_FORCE_CPU_ISA`` (CTranslate2, faster-whisper);
* ``OPENBLAS_CORETYPE`` and ``NPY_DISABLE_CPU_FEATURES`` (NumPy and SciPy; kaldi's GMM code uses its own
  arithmetic).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
BASELINE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
    "CT2_FORCE_CPU_ISA": "GENERIC",
    "OPENBLAS_CORETYPE": "Nehalem",
    "NPY_DISABLE_CPU_FEATURES": "AVX2 FMA3 F16C AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL",
}
MODELS = ["wise", "wise_audio", "wise_text"]
STORES = ["mfcc39", "gban52", "logmel64", "bert_utt", "glove", "spans_mfcc39"]


def _config(workdir: Path, utterances: int) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = utterances
    config["corpora"]["demo"]["train"] = {"seeds": [0], "epochs": 4, "patience": 4}
    config["features"]["shards"] = 2
    config["asr"]["shards"] = 2
    config["train"]["models"] = MODELS
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _targets(config_path: Path) -> list[str]:
    from serflow.features.plan import plan

    config = yaml.safe_load(config_path.read_text())
    asr = f"data/demo/asr/{config['asr']['backend']}-{config['asr']['model']}"
    stores = [plan(config, "demo", f).directory + "/manifest.json" for f in STORES]
    return [f"{asr}.wer.json", "data/demo/align/kaldi-gold/words.parquet", *stores] + [
        f"results/demo_{m}.json" for m in MODELS
    ]


def _run(workdir: Path, env: dict[str, str]) -> float:
    config = _config(workdir, ARGS.utterances)
    command = [
        str(Path(sys.executable).with_name("snakemake")),
        *("--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--configfile", str(config)),
        *("--cores", "2", *_targets(config)),
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, **env})
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return time.perf_counter() - start


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _same_files(a: Path, b: Path, pattern: str) -> tuple[int, int]:
    files = sorted(p.relative_to(a) for p in a.glob(pattern) if p.is_file())
    return sum(_sha(a / f) == _sha(b / f) for f in files), len(files)


def _row(stage: str, identical: bool, detail: str) -> None:
    print(f"| {stage} | {'yes' if identical else '**no**'} | {detail} |")


def _store_diff(a: Path, b: Path, feature: str) -> None:
    from serflow.features.plan import plan
    from serflow.shards import FeatureSet

    config = yaml.safe_load((a / "config.yaml").read_text())
    folder = plan(config, "demo", feature).directory
    left, right = FeatureSet(a / folder), FeatureSet(b / folder)
    shards = [s["sha256"] for s in left.meta["shards"]] == [s["sha256"] for s in right.meta["shards"]]
    common = [u for u in left.ids if u in right]
    diffs = [float(np.max(np.abs(left[u] - right[u]))) if left[u].shape == right[u].shape else np.inf for u in common]
    scale = max(float(np.max(np.abs(left[u]))) for u in common) if common else 0.0
    differing = sum(d > 0 for d in diffs)
    _row(
        f"store {feature}",
        shards,
        f"{differing} of {len(common)} utterances differ; largest |diff| {max(diffs, default=0.0):.3g} "
        f"(values up to {scale:.3g}); utterances only on one side: {len(left) + len(right) - 2 * len(common)}",
    )


def compare(a: Path, b: Path) -> None:
    print("| stage | identical | how far apart |\n|---|---|---|")
    same, total = _same_files(a, b, "data/demo/corpus/**/*.wav")
    _row("synthetic audio (espeak-ng)", same == total, f"{same} of {total} wav files identical")
    ma, mb = (pd.read_parquet(x / "data/demo/manifest.parquet").drop(columns="audio_path") for x in (a, b))
    _row("manifest", ma.equals(mb), f"{len(ma)} rows")
    (asr_a,) = (a / "data/demo/asr").glob("*.parquet")
    asr_b = b / "data/demo/asr" / asr_a.name
    ta, tb = (pd.read_parquet(x, columns=["utt_id", "text"]).set_index("utt_id")["text"] for x in (asr_a, asr_b))
    wer = [yaml.safe_load(x.with_suffix(".wer.json").read_text())["overall"]["wer"] for x in (asr_a, asr_b)]
    _row(
        "Whisper transcripts (CTranslate2)",
        bool((ta == tb).all()),
        f"{int((ta != tb).sum())} of {len(ta)} transcripts differ; WER {wer[0]:.4f} vs {wer[1]:.4f}",
    )
    wa, wb = (pd.read_parquet(x / "data/demo/align/kaldi-gold/words.parquet") for x in (a, b))
    same_words = len(wa) == len(wb) and (wa["word"].to_numpy() == wb["word"].to_numpy()).all()
    times = np.abs(wa[["start", "end"]].to_numpy() - wb[["start", "end"]].to_numpy()) if same_words else np.array([])
    _row(
        "forced alignment, gold text (kaldi)",
        bool(same_words and times.max(initial=0) == 0),
        f"{len(wa)} words; word times differ for {int((times.max(axis=1) > 0).sum()) if times.size else '-'}, "
        f"by at most {times.max(initial=0) * 1000:.0f} ms",
    )
    for feature in STORES:
        _store_diff(a, b, feature)
    for model in MODELS:
        ra, rb = (yaml.safe_load((x / f"results/demo_{model}.json").read_text()) for x in (a, b))
        pa, pb = (pd.read_parquet(x / f"models/demo/{model}/loso_session/fold1/predictions.parquet") for x in (a, b))
        _row(
            f"model {model}",
            _sha(a / f"results/metrics/demo_{model}.json") == _sha(b / f"results/metrics/demo_{model}.json"),
            f"UA {ra['ua']:.4f} vs {rb['ua']:.4f}, WA {ra['wa']:.4f} vs {rb['wa']:.4f}; fold 1 predictions "
            f"{'identical' if pa.equals(pb) else 'differ'}",
        )


def main() -> None:
    here = Path(tempfile.mkdtemp(prefix="bench_isa."))
    try:
        native, baseline = here / "native", here / "baseline"
        for workdir, env, label in ((native, {}, "this CPU as it is"), (baseline, BASELINE_ENV, "baseline x86-64")):
            workdir.mkdir()
            print(f"running the workflow ({label}) ...", file=sys.stderr)
            print(f"- {label}: {_run(workdir, env):.0f} s", file=sys.stderr)
        from serflow.provenance import machine

        print(f"CPU: {machine()['cpu']}, {' '.join(machine()['isa'])}; {ARGS.utterances} utterances\n")
        compare(native, baseline)
    finally:
        if ARGS.keep:
            print(f"\nkept {here}", file=sys.stderr)
        else:
            shutil.rmtree(here, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=200, help="size of the synthetic corpus (default 200)")
    parser.add_argument("--keep", action="store_true", help="keep the two workflow folders")
    ARGS = parser.parse_args()
    main()
