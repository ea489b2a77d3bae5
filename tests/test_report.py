"""The report's tables and figures (serflow/report), from small fake inputs: fast, no workflow run."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serflow.report import plots
from serflow.report.figures import PAPER_FIGURES, load_paper_figures
from serflow.report.summary import (
    benchmark_table,
    fold_rows,
    frontend_summary,
    match_benchmarks,
    mean_history,
    prediction_pairs,
    read_histories,
    summary_csv,
    summary_html,
    summary_markdown,
    summary_rows,
)

LABELS = ["ang", "hap", "neu", "sad"]
SEED_PAPERS = Path("/work/shared/seeds")
PNG = b"\x89PNG\r\n\x1a\n"


def fake_result(model: str, wa: float, ua: float, seeds: int = 1) -> dict:
    folds = [
        {
            "fold": k,
            "test_group": f"Session{k}",
            "n": 20,
            "wa": wa + d,
            "ua": ua + d,
            "macro_f1": ua - 0.01 + d,
            "confusion": [[5, 0, 0, 0], [1, 4, 0, 0], [0, 0, 5, 0], [0, 0, 1, 4]],
        }
        for k, d in ((1, -0.05), (2, 0.0), (3, 0.05))
    ]
    return {
        "corpus": "demo",
        "model": model,
        "family": "wise",
        "protocol": "loso_session",
        "text_source": "gold",
        "labels": LABELS,
        "label_merge": {"exc": "hap"},
        "n_folds": 3,
        "seeds": list(range(seeds)),
        "folds": folds,
        "wa": wa,
        "ua": ua,
        "macro_f1": ua - 0.01,
        "wa_std": 0.01 if seeds > 1 else 0.0,
        "ua_std": 0.02 if seeds > 1 else 0.0,
        "fold_std": {"wa": 0.05, "ua": 0.05, "macro_f1": 0.05},
        "pooled": {"wa": wa, "ua": ua, "macro_f1": ua},
        "confusion": [[15, 0, 0, 0], [3, 12, 0, 0], [0, 0, 15, 0], [0, 0, 3, 12]],
        "utterances": {"used": 60, "dropped": 2},
    }


DEMO = {"format": "iemocap", "synth": {"utterances": 100}, "labels": LABELS}
IEMOCAP = {"format": "iemocap", "root": "/data/IEMOCAP_full_release", "labels": LABELS}


# --------------------------------------------------------------------------------- paper figures


def test_paper_figures_name_registered_models_and_a_table() -> None:
    from serflow.models import MODELS
    from serflow.train.tasks import split_run

    figures = load_paper_figures()
    assert {split_run(run)[0] for run in figures["models"]} <= set(MODELS)
    assert figures["models"]["wise"]["wa"] == 0.759 and figures["models"]["wise"]["ua"] == 0.764
    for entry in figures["models"].values():
        assert entry["table"].startswith("Table")
        assert figures["sources"][entry["source"]]["dataset"] in ("IEMOCAP", "TESS")


@pytest.mark.skipif(not SEED_PAPERS.is_dir(), reason="the seed papers are not here")
def test_paper_figures_are_printed_in_the_paper() -> None:
    """Every figure is in its paper's text, exactly as printed: a WA / UA row, or a fold column of a table."""
    figures = load_paper_figures()
    for model, entry in figures["models"].items():
        source = figures["sources"][entry["source"]]
        text = (SEED_PAPERS / source["seed_file"]).read_text(encoding="utf-8")
        digits = source["decimals"]
        if entry.get("printed"):  # a row of mean (sd) figures: the row holds them as printed, and they are ours
            starts = (entry["row"] + " ", f"<b>{entry['row']}</b>")  # MultiModal-ER's rows are bold
            rows = [ln for ln in text.splitlines() if ln.startswith(starts) and entry["printed"] in ln]
            assert rows, (model, entry["printed"])
            if "ua" not in entry and "ccc" not in entry:  # a test accuracy in per cent (MultiModal-ER, Table B.3)
                assert entry["printed"] == f"{entry['wa'] * 100:.2f}%", model
                continue
            value, sd = (
                (entry["ua"], entry["ua_sd"])
                if "ua" in entry
                else next(zip(entry["ccc"].values(), entry["ccc_sd"].values(), strict=True))
            )
            percent = f"{value * 100:.1f} ({sd * 100:.1f})"
            shown = percent if "ua" in entry else f"{value:.3f} ({sd:.3f})".replace("0.", ".")
            assert entry["printed"].startswith(shown), (model, shown)
        elif entry.get("ua") is not None:
            line = f"{entry['row']} {entry['wa']:.{digits}f} {entry['ua']:.{digits}f}"
            assert re.search(rf"^{re.escape(line)}$", text, re.M), (model, line)
        if entry.get("folds_wa"):
            lines = text.split(f"{entry['folds_table']}:", 1)[1].splitlines()[:30]
            column = entry["folds_column"]
            rows = {int(ln.split()[0]): ln.split()[1:] for ln in lines if re.match(r"^[1-5] 0\.", ln)}
            assert [rows[k][column] for k in range(1, 6)] == [f"{v:.{digits}f}" for v in entry["folds_wa"]], model
            avg = next(ln.split()[1:] for ln in lines if ln.startswith("Avg "))
            assert avg[column] == f"{entry['wa']:.{digits}f}", model


def test_bad_paper_figures_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "figures.yaml"
    sources = "sources: {p: {paper: P, dataset: IEMOCAP}}\n"
    bad.write_text(sources + "models: {wise: {wa: 75.9, ua: 0.7, row: W, source: p, table: T1}}\n")
    with pytest.raises(ValueError, match="not a fraction"):
        load_paper_figures(bad)
    bad.write_text("sources: {}\nmodels: {wise: {wa: 0.7, ua: 0.7, row: W, source: p, table: T1}}\n")
    with pytest.raises(ValueError, match="not under sources"):
        load_paper_figures(bad)


# --------------------------------------------------------------------------------- summary table


def test_summary_matches_the_results_and_puts_paper_figures_beside() -> None:
    results = [fake_result("wise", 0.70, 0.72, seeds=3), fake_result("my_model", 0.60, 0.58)]
    figures = load_paper_figures()
    rows = summary_rows(results, figures)
    assert [r["model"] for r in rows] == ["wise", "my_model"]
    wise, mine = rows
    assert (wise["wa"], wise["ua"], wise["wa_fold_std"], wise["ua_seed_std"]) == (0.70, 0.72, 0.05, 0.02)
    assert (wise["folds"], wise["seeds"], wise["n"], wise["dropped"]) == (3, 3, 60, 2)
    assert (wise["paper_wa"], wise["paper_ua"], wise["paper_dataset"]) == (0.759, 0.764, "IEMOCAP")
    assert "Table 1" in wise["paper_source"] and "Interspeech 2020" in wise["paper_source"]
    assert mine["paper_wa"] is None and mine["paper_source"] is None

    table = list(csv.DictReader(io.StringIO(summary_csv(rows))))
    assert table[0]["wa"] == "0.7000" and table[0]["ua"] == "0.7200" and table[0]["paper_ua"] == "0.7640"
    assert table[1]["paper_wa"] == "" and table[1]["paper_source"] == ""

    markdown = summary_markdown(rows, results, DEMO, figures)
    assert "Not comparable with the papers" in markdown
    assert "| `wise` | gold | 3 x 3 | 60 (2 dropped) | 0.700 ± 0.050 (0.010) | 0.720 ± 0.050 (0.020) |" in markdown
    assert "0.759 | 0.764 | IEMOCAP, WISE |" in markdown
    assert "No paper figure for: `my_model`." in markdown
    assert "Not comparable" not in summary_markdown(rows, results, IEMOCAP, figures)


def test_html_page_holds_the_table_and_the_folds() -> None:
    results = [fake_result("wise", 0.70, 0.72)]
    figures = load_paper_figures()
    rows = summary_rows(results, figures)
    page = summary_html(rows, fold_rows(results), results, DEMO, figures)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<b>Not comparable with the papers.</b>" in page
    assert "<td>0.700 ± 0.050</td>" in page and "<td>0.764</td>" in page  # ours, the paper's UA
    assert "<th>Session1</th>" in page and "0.650 / 0.670" in page
    assert page.count("<table>") == 2


def test_fold_rows_list_every_fold_of_every_model() -> None:
    gban = {**fake_result("gban", 0.6, 0.6), "model": "gban", "paper": {"folds_wa": [0.6911, 0.7737, 0.677]}}
    rows = fold_rows([fake_result("wise", 0.7, 0.7), fake_result("wise_text", 0.5, 0.5), gban])
    assert len(rows) == 9
    assert rows[0] == {"model": "wise", "label": "wise", "text_source": "gold", "protocol": "loso_session", "fold": 1,
                       "test_group": "Session1", "n": 20,
                       "wa": pytest.approx(0.65), "ua": pytest.approx(0.65), "macro_f1": pytest.approx(0.64),
                       "paper_wa": None}  # fmt: skip
    assert [r["paper_wa"] for r in rows[6:]] == [0.6911, 0.7737, 0.677]  # the paper's own folds, where printed


# --------------------------------------------------------------------------------- curves, predictions


def write_history(path: Path, epochs: int, seeds: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        (s, e, 1.4 - 0.1 * e, 1.3 - 0.08 * e, 0.3 + 0.05 * e, 0.28 + 0.05 * e, 1e-3, e == epochs - 1)
        for s in range(seeds)
        for e in range(1, epochs + 1)
    ]
    frame = pd.DataFrame(rows, columns=["seed", "epoch", "train_loss", "val_loss", "val_wa", "val_ua", "lr", "best"])
    frame.to_csv(path, sep="\t", index=False)


def test_mean_history_averages_the_runs_that_reached_each_epoch(tmp_path: Path) -> None:
    write_history(tmp_path / "fold1/history.tsv", epochs=4)
    write_history(tmp_path / "fold2/history.tsv", epochs=2, seeds=2)
    history = read_histories([tmp_path / "fold1/history.tsv", tmp_path / "fold2/history.tsv"])
    assert sorted(history["fold"].unique()) == [1, 2]
    table = mean_history(history)
    assert list(table["epoch"]) == [1, 2, 3, 4]
    assert list(table["runs"]) == [3, 3, 1, 1]
    assert table.loc[0, "val_ua"] == pytest.approx(0.33)


def test_prediction_pairs_are_actual_and_predicted(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "utt_id": ["b", "a"],
            "seed": [0, 0],
            "label": ["hap", "ang"],
            "prediction": ["neu", "ang"],
            "p_ang": [0.1, 0.9],
        }
    )
    frame.to_parquet(tmp_path / "predictions.parquet")
    pairs = prediction_pairs([tmp_path / "predictions.parquet"])
    assert pairs.to_dict("records") == [{"actual": "ang", "predicted": "ang"}, {"actual": "hap", "predicted": "neu"}]


# --------------------------------------------------------------------------------- front-end, runtime


def fake_wer() -> dict:
    session = {"substitutions": 10, "deletions": 2, "insertions": 4, "reference_words": 100, "wer": 0.16}
    return {
        "overall": {"wer": 0.2, "utterances": 40, "reference_words": 200},
        "per_session": {"1": session, "2": {**session, "insertions": 12, "wer": 0.24}},
    }


def fake_alignments() -> dict:
    return {
        "kaldi-gold": {"utterances": 40, "aligned": 40, "failed": 0, "failure_reasons": {}, "oov_words": 0},
        "kaldi-asr": {
            "utterances": 40,
            "aligned": 37,
            "failed": 3,
            "failure_reasons": {"audio too short for its transcript": 2, "no alignable word": 1},
            "oov_words": 4,
        },
    }


def test_frontend_summary_counts() -> None:
    manifest = pd.DataFrame(
        {
            "utt_id": list("abcde"),
            "session": [1, 1, 2, 2, 2],
            "speaker": list("xxyyz"),
            "label": ["ang", "hap", None, "hap", "sad"],
        }
    )
    stores = {"mfcc39": {"version": "abc123def456", "meta": {"counts": {"stored": 4, "dropped": 0}}}}
    summary = frontend_summary("demo", manifest, fake_wer(), "faster-whisper-tiny.en", fake_alignments(), stores)
    assert summary["manifest"] == {"utterances": 5, "labelled": 4, "classes": {"ang": 1, "hap": 2, "sad": 1},
                                   "sessions": 2, "speakers": 3}  # fmt: skip
    assert summary["asr"]["wer"] == 0.2 and summary["asr"]["per_session"] == {"1": 0.16, "2": 0.24}
    assert summary["align"]["kaldi-asr"]["failed"] == 3
    assert summary["align"]["kaldi-asr"]["failure_reasons"]["no alignable word"] == 1
    assert summary["features"]["mfcc39"] == {
        "version": "abc123def456",
        "stored": 4,
        "dropped": 0,
        "dropped_by_reason": {},
    }


PATTERNS = {
    "folds": "logs/{corpus,demo|tess}/folds.benchmark.tsv",
    "train": r"logs/{corpus,demo|tess}/train/{model,wise|wise_audio}/{protocol,loso_session}/fold{fold,\d+}"
    ".benchmark.tsv",
    "fold_index": "logs/{corpus,demo|tess}/train/{protocol,loso_session|loso_speaker}.folds.benchmark.tsv",
    "evaluate": "logs/{corpus,demo|tess}/evaluate/{model,wise|wise_audio}.benchmark.tsv",
    "catch_all": "logs/{corpus,demo|tess}/{anything}.benchmark.tsv",
}


def test_benchmark_files_are_named_by_their_rule() -> None:
    files = [
        "logs/demo/folds.benchmark.tsv",
        "logs/demo/train/wise/loso_session/fold1.benchmark.tsv",
        "logs/demo/train/wise_audio/loso_session/fold2.benchmark.tsv",
        "logs/demo/train/loso_session.folds.benchmark.tsv",
        "logs/demo/evaluate/wise.benchmark.tsv",
        "logs/tess/folds.benchmark.tsv",
        "logs/demo/odd/thing.benchmark.tsv",
    ]
    matched = match_benchmarks(files, PATTERNS, corpus="demo")
    assert matched["train"] == files[1:3]
    assert matched["fold_index"] == ["logs/demo/train/loso_session.folds.benchmark.tsv"]
    assert matched["folds"] == ["logs/demo/folds.benchmark.tsv"]  # not tess's, and not the catch-all
    assert matched["catch_all"] == ["logs/demo/odd/thing.benchmark.tsv"]


def write_benchmark(path: Path, seconds: list[float], rss: str = "120.5") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"]
    lines += [f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t0\t{s / 2}" for s in seconds]
    path.write_text("\n".join(lines) + "\n")


def test_benchmark_table_sums_jobs_per_rule(tmp_path: Path) -> None:
    write_benchmark(tmp_path / "a.tsv", [10.0])
    write_benchmark(tmp_path / "b.tsv", [4.0, 6.0], rss="300")  # two repeats: one job of 5 s
    write_benchmark(tmp_path / "c.tsv", [1.0], rss="-")
    table = benchmark_table({"train": [tmp_path / "a.tsv", tmp_path / "b.tsv"], "folds": [tmp_path / "c.tsv"]})
    assert list(table["rule"]) == ["train", "folds"]
    train = table.iloc[0]
    assert (train["jobs"], train["total_s"], train["max_s"], train["max_rss_mb"]) == (2, 15.0, 10.0, 300.0)
    assert np.isnan(table.iloc[1]["max_rss_mb"])


# --------------------------------------------------------------------------------- figures


def test_every_figure_is_drawn_from_small_inputs(tmp_path: Path) -> None:
    results = [fake_result("wise", 0.70, 0.72), fake_result("wise_text", 0.55, 0.50)]
    figures = load_paper_figures(PAPER_FIGURES)
    rows, folds = summary_rows(results, figures), fold_rows(results)
    write_history(tmp_path / "fold1/history.tsv", epochs=5)
    write_history(tmp_path / "fold2/history.tsv", epochs=3)
    history = read_histories([tmp_path / "fold1/history.tsv", tmp_path / "fold2/history.tsv"])
    write_benchmark(tmp_path / "bench.tsv", [3.0])
    runtime = benchmark_table({"train": [tmp_path / "bench.tsv"], "manifest": [tmp_path / "bench.tsv"]})
    out = tmp_path / "plots"
    plots.plot_scores(rows, folds, out / "scores.png", "scores", 4, show_paper=True)
    plots.plot_folds(folds, out / "folds.png", "folds", 4)
    plots.plot_confusion(results[0]["confusion"], LABELS, out / "confusion.png", "confusion")
    plots.plot_curves(history, out / "curves.png", "curves")
    plots.plot_wer(fake_wer(), out / "wer.png", "wer")
    plots.plot_alignment(fake_alignments(), out / "alignment.png", "alignment")
    plots.plot_alignment({"kaldi-gold": fake_alignments()["kaldi-gold"]}, out / "no_failures.png", "alignment")
    plots.plot_runtime(runtime, out / "runtime.png", "runtime")
    plots.plot_runtime(benchmark_table({}), out / "runtime_empty.png", "runtime")
    plots.plot_scores([], [], out / "scores_empty.png", "scores", 4)
    for name in ("scores", "folds", "confusion", "curves", "wer", "alignment", "no_failures", "runtime"):
        data = (out / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 10_000, name
    for name in ("runtime_empty", "scores_empty"):
        assert (out / f"{name}.png").read_bytes().startswith(PNG)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave nothing behind


def test_same_inputs_give_the_same_png_bytes(tmp_path: Path) -> None:
    confusion = fake_result("wise", 0.7, 0.7)["confusion"]
    plots.plot_confusion(confusion, LABELS, tmp_path / "a.png", "confusion")
    plots.plot_confusion(confusion, LABELS, tmp_path / "b.png", "confusion")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert b"Matplotlib" not in (tmp_path / "a.png").read_bytes()  # no software-version metadata


def test_a_random_init_stand_in_is_labelled_in_the_summary() -> None:
    """WavFusion's offline wav2vec 2.0 is a tiny random-init model: its row and a note say so (fold_fit records it)."""
    stand_in = fake_result("wavfusion", 0.46, 0.45)
    encoder = {"random_init": True, "model": "random-init wav2vec 2.0 (test stand-in, not facebook/wav2vec2-base)"}
    for fold in stand_in["folds"]:
        fold["fold_fit"] = {"audio_encoder": encoder}
    results = [fake_result("wise", 0.70, 0.72), stand_in]
    figures = load_paper_figures()
    rows = summary_rows(results, figures)
    assert [r["stand_in"] for r in rows] == ["", encoder["model"]]
    markdown = summary_markdown(rows, results, DEMO, figures)
    assert "| `wavfusion` (random-init) |" in markdown and "| `wise` |" in markdown
    assert f"- `wavfusion`: {encoder['model']}" in markdown
