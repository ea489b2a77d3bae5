"""The report of dimensional runs (model@task): the CCC table beside the categorical one, its CSV and figure, the
scatter data from regression predictions, training curves on the mean CCC, significance against the reference
model's run of the same task, and the DVC parameters of such runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_report import DEMO, PNG, fake_result

from serflow.report import plots
from serflow.report.figures import load_paper_figures
from serflow.report.significance import reference_tests
from serflow.report.summary import (
    dimension_rows,
    fold_rows,
    mean_history,
    regression_pairs,
    summary_html,
    summary_markdown,
    summary_rows,
)

DIMS = ("valence", "arousal", "dominance")


def fake_dimensional(model: str, task: str, level: float, seeds: int = 3, family: str = "cnn14") -> dict:
    """A results file of a dimensional run, in evaluate_model's schema (docs/results.md)."""
    dims = DIMS if task == "vad" else (task,)
    per_seed = [
        {"seed": s, "ccc": level + 0.01 * s, **{f"ccc_{d}": level + 0.01 * s for d in dims}} for s in range(seeds)
    ]
    out = {
        "corpus": "demo",
        "model": f"{model}@{task}",
        "family": family,
        "protocol": "loso_speaker",
        "text_source": "gold",
        "labels": ["ang", "hap", "neu", "sad"],
        "label_merge": {"exc": "hap"},
        "task": {"name": task, "outputs": list(dims), "loss": "ccc" if task == "vad" else "mse", "scale": [1, 5]},
        "n_folds": 2,
        "seeds": list(range(seeds)),
        "folds": [{"fold": k, "test_group": f"Ses0{k}F", "n": 30, "ccc": level} for k in (1, 2)],
        "per_seed": per_seed,
        "ccc": level,
        "ccc_std": 0.01,
        "fold_std": {"ccc": 0.02, **{f"ccc_{d}": 0.02 for d in dims}},
        "pooled": {"ccc": level - 0.01, **{f"ccc_{d}": level - 0.01 for d in dims}},
        "utterances": {"used": 60, "dropped": 1},
    }
    for d in dims:
        out.update({f"ccc_{d}": level, f"ccc_{d}_std": 0.01, f"pearson_{d}": level + 0.05, f"mse_{d}": 0.5})
    return out


def test_dimension_rows_one_per_dimension_with_the_paper_beside() -> None:
    figures = load_paper_figures()
    results = [
        fake_result("wise", 0.7, 0.7),
        fake_dimensional("cnn14", "vad", 0.4),
        fake_dimensional("cnn14", "arousal", 0.5),
    ]
    rows = dimension_rows(results, figures)
    assert [(r["model"], r["dimension"]) for r in rows] == [
        ("cnn14@vad", "valence"),
        ("cnn14@vad", "arousal"),
        ("cnn14@vad", "dominance"),
        ("cnn14@arousal", "arousal"),
    ]
    arousal = rows[-1]
    assert (arousal["ccc"], arousal["pearson"], arousal["mse"], arousal["pooled_ccc"]) == (0.5, 0.55, 0.5, 0.49)
    assert (arousal["paper_ccc"], arousal["paper_ccc_sd"]) == (0.618, 0.010)  # Table 2, CNN14 trained on IEMOCAP
    assert rows[0]["paper_ccc"] is None  # the paper's multi-task model is on MSP-Podcast only
    # the categorical table and the per-fold table leave the dimensional runs out
    assert [r["model"] for r in summary_rows(results, figures)] == ["wise"]
    assert {r["model"] for r in fold_rows(results)} == {"wise"}


def test_summary_shows_both_tables_and_marks_the_mean_ccc() -> None:
    figures = load_paper_figures()
    results = [
        fake_result("wise", 0.7, 0.7),
        fake_dimensional("cnn14", "arousal", 0.50),
        fake_dimensional("mfcnn14", "arousal", 0.70),
    ]
    tests = reference_tests(results)
    pair = next(t for t in tests if t["model"] == "mfcnn14@arousal" and t["reference"] == "cnn14@arousal")
    assert pair["metrics"]["ccc"]["significant"], pair  # tested against the reference's run of the same task
    assert not any(t["reference"] == "cnn14" for t in tests if t["model"].endswith("@arousal"))
    page = summary_markdown(summary_rows(results, figures), results, DEMO, figures, tests)
    assert "## Emotion dimensions" in page and "| `wise` |" in page
    line = next(ln for ln in page.splitlines() if ln.startswith("| `mfcnn14@arousal`"))
    assert "*" in line.split("|")[1] and "0.700 ± 0.020 (0.010)" in line and "0.628 (0.005)" in line
    assert "`loso_session` / `loso_speaker` (per row)" in page  # two protocols: said so, folds per row
    html = summary_html(summary_rows(results, figures), fold_rows(results), results, DEMO, figures, tests)
    assert html.count("<table>") == 3  # categorical, dimensional, per test fold
    assert "<h3>Emotion dimensions</h3>" in html and "<td><code>mfcnn14@arousal</code>" in html


def test_regression_pairs_and_figures(tmp_path) -> None:
    table = pd.DataFrame(
        {
            "utt_id": ["b", "a"],
            "seed": [0, 0],
            "true_valence": [1.0, 2.0],
            "pred_valence": [1.5, 2.5],
            "true_arousal": [3.0, 4.0],
            "pred_arousal": [3.0, 3.5],
        }
    )
    table.to_parquet(tmp_path / "predictions.parquet")
    pairs = regression_pairs([tmp_path / "predictions.parquet"])
    assert list(pairs.columns) == ["dimension", "actual", "predicted"]
    assert pairs.values.tolist() == [
        ["arousal", 4.0, 3.5],
        ["arousal", 3.0, 3.0],
        ["valence", 2.0, 2.5],
        ["valence", 1.0, 1.5],
    ]
    plots.plot_regression(pairs, tmp_path / "scatter.png", "scatter")
    rows = dimension_rows([fake_dimensional("cnn14", "vad", 0.4)], load_paper_figures())
    plots.plot_dimensions(rows, tmp_path / "dims.png", "dims")
    plots.plot_dimensions([], tmp_path / "none.png", "none")  # a corpus without dimensional runs: a note, no crash
    assert all((tmp_path / f).read_bytes().startswith(PNG) for f in ("scatter.png", "dims.png", "none.png"))
    with pytest.raises(ValueError, match="no regression predictions"):
        regression_pairs([])


def test_curves_and_mean_history_of_a_regression(tmp_path) -> None:
    history = pd.DataFrame(
        {
            "fold": [1, 1, 2, 2],
            "seed": 0,
            "epoch": [1, 2, 1, 2],
            "train_loss": [1.0, 0.8, 1.1, 0.9],
            "val_loss": [0.9, 0.7, 1.0, 0.95],
            "val_ccc": [0.1, 0.3, 0.2, 0.1],
            "val_ccc_arousal": [0.1, 0.3, 0.2, 0.1],
            "best": [False, True, True, False],
        }
    )
    mean = mean_history(history)
    assert list(mean.columns) == ["epoch", "runs", "train_loss", "val_loss", "val_ccc", "val_ccc_arousal"]
    assert mean["val_ccc"].tolist() == pytest.approx([0.15, 0.2])
    plots.plot_curves(history, tmp_path / "curves.png", "curves")
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)


def test_dvc_keys_of_dimensional_and_fused_runs() -> None:
    import yaml

    from serflow.dvc_pipeline import model_param_keys

    config = yaml.safe_load(Path("config/config.yaml").read_text(encoding="utf-8"))
    assert model_param_keys(config, "demo", "cnn14@vad") == model_param_keys(config, "demo", "cnn14")
    fused = model_param_keys(config, "demo", "lf")
    assert "models.cnn14" in fused and "models.bert" in fused and "models.late_fusion" in fused
    assert "features.acoustic.logmel64" in fused and "features.bert_tokens" in fused
