"""The speech front-end through the workflow: Whisper ASR and forced alignment on gold and ASR text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

N = 60  # enough speech (~2 min) for the flat-start aligner to train on
SESSIONS = 3  # of the synthetic IEMOCAP layout, two speakers each

TARGETS = [
    "data/demo/asr/faster-whisper-tiny.en.parquet",
    "data/demo/asr/faster-whisper-tiny.en.wer.json",
    "data/demo/align/kaldi-gold/words.parquet",
    "data/demo/align/kaldi-asr/words.parquet",
]


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("speech")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = N
    config["corpora"]["demo"]["synth"]["sessions"] = SESSIONS
    config["asr"]["shards"] = 2
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(workdir, path, *TARGETS)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, path


@pytest.mark.slow
def test_asr_output_covers_the_corpus(speech_run: tuple[Path, Path]) -> None:
    workdir, _ = speech_run
    asr = pd.read_parquet(workdir / TARGETS[0])
    failures = pd.read_csv(workdir / "data/demo/asr/faster-whisper-tiny.en_failures.tsv", sep="\t")
    assert len(asr) + len(failures) == N and asr["utt_id"].is_unique
    assert set(asr.columns) >= {"utt_id", "text", "words", "language", "avg_logprob", "no_speech_prob"}
    wer = json.loads((workdir / TARGETS[1]).read_text())
    assert 0.0 <= wer["overall"]["wer"] < 0.6
    assert set(wer["per_session"]) == {str(session) for session in range(1, SESSIONS + 1)}


@pytest.mark.slow
@pytest.mark.parametrize("text_source", ["gold", "asr"])
def test_alignment_accounts_for_every_utterance(speech_run: tuple[Path, Path], text_source: str) -> None:
    workdir, _ = speech_run
    out = workdir / f"data/demo/align/kaldi-{text_source}"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["utterances"] == N == summary["aligned"] + summary["failed"]
    assert summary["aligned"] >= 0.9 * N
    words = pd.read_parquet(out / "words.parquet")
    phones = pd.read_parquet(out / "phones.parquet")
    assert words["utt_id"].nunique() == summary["aligned"]
    assert (words["end"] > words["start"]).all()
    # Phones tile their words.
    spans = phones.groupby(["utt_id", "word_index"]).agg(start_ph=("start", "min"), end_ph=("end", "max"))
    joined = words.set_index(["utt_id", "word_index"]).join(spans)
    assert (joined["start"] - joined["start_ph"]).abs().max() < 1e-3
    assert (joined["end"] - joined["end_ph"]).abs().max() < 1e-3
    failures = pd.read_csv(out / "failures.tsv", sep="\t")
    assert len(failures) == summary["failed"] and failures["reason"].notna().all()
    grids = list((out / "textgrids").rglob("*.TextGrid"))
    assert len(grids) == summary["aligned"]
    assert all(p.is_symlink() for p in (out / "corpus").rglob("*.wav"))  # the audio is not copied


@pytest.mark.slow
def test_second_run_does_nothing(speech_run: tuple[Path, Path]) -> None:
    workdir, config = speech_run
    again = run_snakemake(workdir, config, "-n", *TARGETS)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
