"""A model that reads text runs on gold and on Whisper transcripts side by side (train.text_sources): run names,
which models have a run per text source, the stores each run reads, and the workflow's plan for ``+asr``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_snakemake, write_mini_iemocap
from test_significance import CNN14, DEMO, MFCNN14, SFCNN14, result

from serflow.features.plan import plan
from serflow.models import MODELS
from serflow.models.registry import reads_transcripts
from serflow.report.figures import load_paper_figures
from serflow.report.significance import reference_tests
from serflow.report.summary import fold_rows, label_tests, summary_csv, summary_html, summary_markdown, summary_rows
from serflow.train.config import RUN_ONLY_KEYS, TrainSettings
from serflow.train.tasks import run_name, split_protocol, split_run, split_text


@pytest.mark.parametrize(
    ("model", "task", "protocol", "source", "name"),
    [
        ("bert", "categorical", None, None, "bert"),
        ("bert", "categorical", None, "asr", "bert+asr"),
        ("bert", "vad", None, "asr", "bert@vad+asr"),
        ("mmer_text", "categorical", "loso_speaker", "gold", "mmer_text+gold~loso_speaker"),
        ("cnn14", "arousal", "loso_session", None, "cnn14@arousal~loso_session"),
    ],
)
def test_run_names_round_trip(model: str, task: str, protocol: str | None, source: str | None, name: str) -> None:
    assert run_name(model, task, protocol, source) == name
    assert split_run(name) == (model, task)
    without_protocol, found_protocol = split_protocol(name)
    assert found_protocol == protocol
    assert split_text(without_protocol) == (run_name(model, task), source)


def test_an_unknown_text_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown text source 'whisper'"):
        split_text("bert+whisper")


def test_which_models_depend_on_the_transcripts() -> None:
    # WISE's audio-only variant reads the word and phone spans of the alignment: its numbers change with the text
    assert reads_transcripts("wise_audio") and reads_transcripts("wise") and reads_transcripts("gban_text")
    assert reads_transcripts("lf")  # a late fusion with a text component (bert)
    assert reads_transcripts("mfcnn14") and reads_transcripts("wavfusion")
    for audio_only in ("cnn14", "gban_speech", "wavfusion_audio", "mmer_speech"):
        assert not reads_transcripts(audio_only), audio_only
    # every registered model answers without building it
    assert {name: reads_transcripts(name) for name in MODELS}


def test_text_sources_setting_is_checked_and_is_no_part_of_a_jobs_identity() -> None:
    assert TrainSettings.from_config({"text_sources": ["gold", "asr"]}).text_sources == ("gold", "asr")
    assert "text_sources" in RUN_ONLY_KEYS
    assert "text_sources" not in TrainSettings.from_config({"text_sources": ["asr"]}).result_params()
    for bad in (["gold", "gold"], ["whisper"]):
        with pytest.raises(ValueError, match=r"train\.text_sources"):
            TrainSettings.from_config({"text_sources": bad})


def test_text_stores_get_a_version_per_text_source_and_acoustic_stores_one() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    own = config["corpora"]["demo"].get("text_source", config["text_source"])
    for store in ("glove", "bert", "bert_tokens", "spans_mfcc39", "word_ids"):
        default = plan(config, "demo", store)
        assert plan(config, "demo", store, text_source=own).version == default.version, store  # spelt out: the same
        other = plan(config, "demo", store, text_source="asr" if own == "gold" else "gold")
        assert other.version != default.version, store
    assert plan(config, "demo", "mfcc39", text_source="asr").version == plan(config, "demo", "mfcc39").version


def _iemocap_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["iemocap"]["root"] = str(write_mini_iemocap(tmp_path / "IEMOCAP_full_release"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_an_asr_run_plans_on_whisper_transcripts_beside_the_gold_one(tmp_path: Path) -> None:
    """`snakemake -n` of a fold of bert+asr (and of lf+asr, whose audio component keeps its one run): Whisper, the
    alignment of its words and stores of their own; a +asr run of an audio-only model, or +gold where gold is the
    corpus's own text, is refused with the run named (rules/train.smk: run_text_source)."""
    config = _iemocap_config(tmp_path)
    fold = "loso_speaker/fold1/metrics.json"
    done = run_snakemake(tmp_path, config, "-n", f"models/iemocap/bert+asr/{fold}", f"models/iemocap/lf+asr/{fold}")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "rule transcribe_shard:" in out and "data/iemocap/align/kaldi-asr/words.parquet" in out
    settings = yaml.safe_load(config.read_text())
    asr_tokens = plan(settings, "iemocap", "bert_tokens", text_source="asr").directory
    gold_tokens = plan(settings, "iemocap", "bert_tokens").directory
    assert asr_tokens in out and gold_tokens not in out
    assert "models/iemocap/cnn14/loso_speaker/fold1/metrics.json" in out  # lf+asr = cnn14 + bert+asr
    assert "models/iemocap/bert+asr/loso_speaker/fold1/predictions.parquet" in out
    assert "data/iemocap/align/kaldi-gold" not in out
    refused = run_snakemake(tmp_path, config, "-n", f"models/iemocap/cnn14+asr/{fold}")
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "iemocap_cnn14+asr: cnn14 reads no text" in said, said[-2000:]


def test_the_summary_keeps_a_gold_and_an_asr_run_of_one_model_apart() -> None:
    """Rows, marks, the CSV's p-values and the per-fold page of mfcnn14 on gold and on ASR text: two of each, and
    both tested against cnn14 (it reads no text, so its one run is the reference on either text)."""
    results = [
        result("cnn14", "cnn14", CNN14),
        result("mfcnn14", "cnn14", MFCNN14),  # differs from cnn14
        {**result("mfcnn14", "cnn14", [u - 0.15 for u in MFCNN14]), "text_source": "asr"},  # does not
        {**result("sfcnn14", "cnn14", SFCNN14), "text_source": "asr"},
    ]
    tests = label_tests(reference_tests(results, references={"cnn14": ("cnn14",)}), results)
    by_label = {t["label"]: t for t in tests}
    assert set(by_label) == {"mfcnn14 (gold)", "mfcnn14 (asr)", "sfcnn14"}
    assert all(t["reason"] is None for t in tests)
    assert by_label["mfcnn14 (gold)"]["metrics"]["ua"]["significant"]
    assert not by_label["mfcnn14 (asr)"]["metrics"]["ua"]["significant"]
    figures = load_paper_figures()
    rows = summary_rows(results, figures)
    assert [r["label"] for r in rows] == ["cnn14", "mfcnn14 (gold)", "mfcnn14 (asr)", "sfcnn14"]
    markdown = summary_markdown(rows, results, DEMO, figures, tests)
    cells = [line.split(" | ") for line in markdown.splitlines() if line.startswith("| `")]
    lines = {(c[0], c[1]): c for c in cells}  # the model and its text column
    assert lines["| `mfcnn14`", "gold"][5].endswith("*") and not lines["| `mfcnn14`", "asr"][5].endswith("*")
    table = list(csv.DictReader(io.StringIO(summary_csv(rows, tests))))
    refs = {(r["model"], r["text_source"]): (r["ref1"], r["ref1_p_ua"]) for r in table}
    assert refs["cnn14", "gold"] == ("", "")  # not tested against itself
    p_gold, p_asr = refs["mfcnn14", "gold"], refs["mfcnn14", "asr"]
    assert p_gold[0] == p_asr[0] == "cnn14" and float(p_gold[1]) < 0.05 < float(p_asr[1])
    page = summary_html(rows, fold_rows(results), results, DEMO, figures, tests)
    assert "<td>mfcnn14 (gold)</td>" in page and "<td>mfcnn14 (asr)</td>" in page
