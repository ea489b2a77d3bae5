"""The comparison of every model on the same test utterances (serflow/report/comparison.py), on small fake results
and prediction tables written in the training job's own formats: fast, no workflow run."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from test_report import PNG, fake_result

from serflow.cli import main
from serflow.io import write_json, write_parquet
from serflow.report import comparison as cmp
from serflow.report.significance import holm, paired_test
from serflow.train.metrics import classification_metrics, confusion_matrix, mean_std
from serflow.train.run import _predictions_table
from serflow.train.tasks import make_task

LABELS = ["ang", "hap", "neu", "sad"]
TASK = make_task("categorical", LABELS)
PER_FOLD = 12  # test utterances per fold, 3 per class
WER = {"overall": {"wer": 0.25, "utterances": 36, "reference_words": 300}}


def truth(fold: int) -> dict[str, int]:
    """The fold's test utterances and their class index."""
    return {f"f{fold}_u{i:02d}": i % len(LABELS) for i in range(PER_FOLD)}


def guesses(fold: int, seed: int, accuracy: float, key: int) -> dict[str, int]:
    """Deterministic predictions, right with probability ``accuracy`` (``key`` makes models differ)."""
    rng = np.random.default_rng([fold, seed, key])
    out = {}
    for utt, y in truth(fold).items():
        out[utt] = y if rng.random() < accuracy else int((y + rng.integers(1, len(LABELS))) % len(LABELS))
    return out


def write_model(
    root: Path,
    run: str,
    model: str,
    family: str,
    *,
    protocol: str = "loso_session",
    folds: tuple[int, ...] = (1, 2, 3),
    seeds: tuple[int, ...] = (0, 1),
    accuracy: float = 0.6,
    key: int = 0,
    drops: dict[int, set[str]] | None = None,
    text_source: str = "gold",
    features: tuple[str, ...] = ("mfcc39",),
    elapsed: float = 10.0,
) -> Path:
    """``models/demo/{model}/{protocol}/fold{k}/`` (predictions.parquet as the train job writes it, run.json) and
    ``results/demo_{run}.json`` with the scores the training code computes from those predictions."""
    drops = drops or {}
    folder = root / "models" / "demo" / run.split("~")[0] / protocol
    fold_entries, per_seed = [], {s: [] for s in seeds}
    for fold in folds:
        utts = [u for u in truth(fold) if u not in drops.get(fold, set())]
        y = np.array([truth(fold)[u] for u in utts])
        runs = []
        for seed in seeds:
            guess = guesses(fold, seed, accuracy, key)
            logits = np.eye(len(LABELS), dtype=np.float32)[[guess[u] for u in utts]] * 4.0
            runs.append({"record": {"seed": seed}, "logits": logits})
        write_parquet(_predictions_table(runs, TASK, utts, y), folder / f"fold{fold}" / "predictions.parquet")
        write_json({"elapsed_s": elapsed}, folder / f"fold{fold}" / "run.json")
        scores = []
        for seed, r in zip(seeds, runs, strict=True):
            m = classification_metrics(confusion_matrix(y, r["logits"].argmax(1), len(LABELS)), LABELS)
            scores.append(m)
            per_seed[seed].append(m)
        fold_entries.append(
            {
                "fold": fold,
                "test_group": f"{protocol}{fold}",
                "n": len(utts),
                **{k: float(np.mean([m[k] for m in scores])) for k in cmp.METRICS},
                "dropped": {"train": 0, "valid": 0, "test": PER_FOLD - len(utts)},
            }
        )
    result = fake_result(model, 0.0, 0.0, len(seeds))
    seed_scores = [
        {"seed": s, **{k: float(np.mean([m[k] for m in ms])) for k in cmp.METRICS}} for s, ms in per_seed.items()
    ]
    result.update(
        format="serflow-results/1",
        corpus="demo",
        family=family,
        protocol=protocol,
        text_source=text_source,
        n_folds=len(folds),
        seeds=list(seeds),
        folds=fold_entries,
        per_seed=seed_scores,
        features={store: {"version": "0" * 12} for store in features},
        parameters={"total": 1000 + key, "trainable": 1000 + key},
        speaker_independent=True,
        utterances={"used": sum(f["n"] for f in fold_entries), "dropped": sum(len(d) for d in drops.values())},
    )
    for k in cmp.METRICS:
        result[k], result[f"{k}_std"] = mean_std([s[k] for s in seed_scores])
    path = root / "results" / f"demo_{run}.json"
    write_json(result, path)
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> list[Path]:
    """loso_session: five models, a text model dropping utterances for each transcript, a gold and an ASR run of
    one model, an exact twin of the best; loso_speaker: two models trained with different seeds."""
    gold_drops = {1: {"f1_u00", "f1_u01"}, 3: {"f3_u05"}}
    return [
        write_model(tmp_path, "wise", "wise", "wise", accuracy=0.9, key=1, features=("glove", "mfcc39")),
        write_model(tmp_path, "wise_twin", "wise_im_hr", "wise", accuracy=0.9, key=1, features=("glove", "mfcc39")),
        write_model(tmp_path, "wise_audio", "wise_audio", "wise", accuracy=0.25, key=2),
        write_model(tmp_path, "bert", "bert", "bert", accuracy=0.7, key=3, drops=gold_drops, features=("bert_tokens",)),
        # an ASR run of bert under a file name that says nothing of it: the result's text_source decides
        write_model(
            tmp_path,
            "bert_x",
            "bert",
            "bert",
            accuracy=0.6,
            key=4,
            drops={2: {"f2_u03"}},
            text_source="asr",
            features=("bert_tokens",),
        ),
        write_model(
            tmp_path,
            "wise_audio~loso_speaker",
            "wise_audio",
            "wise",
            protocol="loso_speaker",
            folds=(1, 2),
            accuracy=0.5,
            key=5,
        ),
        write_model(
            tmp_path,
            "wise~loso_speaker",
            "wise",
            "wise",
            protocol="loso_speaker",
            folds=(1, 2),
            seeds=(7, 8),
            accuracy=0.8,
            key=6,
        ),
    ]


def report_of(paths: list[Path], **kwargs: object) -> dict:
    entries, skipped = cmp.load_entries(paths, paths[0].parent.parent / "models")
    return cmp.compare(entries, wer=cmp.asr_wer(WER, "faster-whisper-tiny.en"), skipped=skipped, **kwargs)


def group(report: dict, protocol: str) -> dict:
    (found,) = [g for g in report["groups"] if g["protocol"] == protocol]
    return found


def row(g: dict, run: str) -> dict:
    (found,) = [r for r in g["rows"] if r["run"] == run]
    return found


def predictions_of(root: Path, run: str, protocol: str) -> pd.DataFrame:
    folder = root / "models" / "demo" / run.split("~")[0] / protocol
    frames = []
    for path in sorted(folder.glob("fold*/predictions.parquet")):
        frame = pd.read_parquet(path)
        frame.insert(0, "fold", int(path.parent.name.removeprefix("fold")))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def sklearn_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """WA, UA, macro-F1 per (fold, seed) by scikit-learn, independently of serflow.train.metrics."""
    rows = []
    for (fold, seed), g in frame.groupby(["fold", "seed"]):
        rows.append(
            {
                "fold": fold,
                "seed": seed,
                "wa": accuracy_score(g["label"], g["prediction"]),
                "ua": balanced_accuracy_score(g["label"], g["prediction"]),
                "macro_f1": f1_score(g["label"], g["prediction"], labels=LABELS, average="macro", zero_division=0),
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------- common set and counts


def test_common_set_and_every_count_reconcile(corpus: list[Path]) -> None:
    g = group(report_of(corpus), "loso_session")
    assert g["common"]["n"] == 3 * PER_FOLD - 4  # bert (gold) dropped 3, bert (asr) 1, different ones
    assert g["common"]["per_fold"] == {"1": 10, "2": 11, "3": 11}
    assert g["common"]["scored_by_any"] == 3 * PER_FOLD
    excluded = {(e["fold"], e["utt_id"]): e["missing_from"] for e in g["common"]["excluded"]}
    assert excluded == {
        (1, "f1_u00"): ["bert"],
        (1, "f1_u01"): ["bert"],
        (3, "f3_u05"): ["bert"],
        (2, "f2_u03"): ["bert_x"],
    }
    expected = {
        "wise": (36, 0, 4),
        "wise_twin": (36, 0, 4),
        "wise_audio": (36, 0, 4),
        "bert": (33, 3, 1),
        "bert_x": (35, 1, 3),
    }
    for run, (own, dropped, not_common) in expected.items():
        r = row(g, run)
        assert (r["own_n"], r["dropped"], r["not_common"], r["common_n"]) == (own, dropped, not_common, 32)
        assert r["own_n"] == r["common_n"] + r["not_common"]  # nothing scored goes uncounted
        assert r["test_utterances"] == r["own_n"] + r["dropped"] == 3 * PER_FOLD  # nor anything dropped
    assert g["warnings"] == []


def test_scores_equal_sklearn_on_the_common_and_on_the_own_utterances(corpus: list[Path]) -> None:
    root = corpus[0].parent.parent
    g = group(report_of(corpus), "loso_session")
    frames = {r["run"]: predictions_of(root, r["run"], "loso_session") for r in g["rows"]}
    keys = [set(zip(f["fold"], f["utt_id"], strict=True)) for f in frames.values()]
    common = set.intersection(*keys)
    assert len(common) == g["common"]["n"]
    for r in g["rows"]:
        frame = frames[r["run"]]
        on_common = frame[[k in common for k in zip(frame["fold"], frame["utt_id"], strict=True)]]
        for prefix, data in (("", on_common), ("own_", frame)):
            scores = sklearn_scores(data)
            for m in cmp.METRICS:
                by_seed = scores.groupby("seed")[m].mean()
                assert r[prefix + m] == pytest.approx(by_seed.mean(), abs=1e-12), (r["run"], prefix, m)
                if not prefix:
                    assert r[m + "_seed_std"] == pytest.approx(by_seed.std(ddof=1), abs=1e-12)
                    assert r[m + "_fold_std"] == pytest.approx(scores.groupby("fold")[m].mean().std(ddof=1), abs=1e-12)
        result = json.loads((root / "results" / f"demo_{r['run']}.json").read_text())
        assert r["own_ua"] == pytest.approx(result["ua"], abs=1e-12)  # the result's own score, recomputed
        assert r["train_s"] == pytest.approx(30.0)
        assert r["parameters"] == result["parameters"]["total"]


# --------------------------------------------------------------------------------- which differences are real


def test_paired_test_against_scipy() -> None:
    a = [0.61, 0.58, 0.66, 0.70, 0.52, 0.63, 0.59]
    b = [0.55, 0.57, 0.60, 0.61, 0.50, 0.66, 0.52]
    out = paired_test(a, b)
    ref = stats.ttest_rel(a, b)
    assert out["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert out["t"] == pytest.approx(ref.statistic, rel=1e-12)
    assert out["df"] == 6 and out["n"] == 7 and out["direction"] == "higher"
    assert out["significant"] == (ref.pvalue < 0.05)
    assert out["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    few = paired_test(a[:5], b[:5])
    assert few["wilcoxon_p"] is None and "6 pairs" in few["wilcoxon_reason"]
    assert few["p"] == pytest.approx(stats.ttest_rel(a[:5], b[:5]).pvalue, rel=1e-12)


def test_paired_test_undefined_and_constant_cases() -> None:
    one = paired_test([0.5], [0.4])
    assert one["p"] is None and one["significant"] is None and "fewer than 2 pairs" in one["reason"]
    same = paired_test([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert (same["t"], same["p"], same["significant"]) == (0.0, 1.0, False)
    shifted = paired_test([0.6, 0.7], [0.5, 0.6])
    assert shifted["p"] == 0.0 and shifted["t"] is None and shifted["significant"] and shifted["note"]
    with pytest.raises(ValueError, match="one length"):
        paired_test([0.1, 0.2], [0.1])


def test_holm_by_hand() -> None:
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([]) == []
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_best_is_tested_against_every_model_and_marked(corpus: list[Path]) -> None:
    root = corpus[0].parent.parent
    report = report_of(corpus)
    g = group(report, "loso_session")
    assert [r["rank"] for r in g["rows"]] == [1, 2, 3, 4, 5]
    best = g["rows"][0]
    assert best["run"] == g["best"] == "wise" and best["vs_best"] == cmp.BEST  # tie with its twin: by name
    frames = [predictions_of(root, r["run"], "loso_session") for r in g["rows"]]
    common = set.intersection(*(set(zip(f["fold"], f["utt_id"], strict=True)) for f in frames))

    def ua(run: str) -> pd.Series:
        frame = predictions_of(root, run, "loso_session")
        frame = frame[[k in common for k in zip(frame["fold"], frame["utt_id"], strict=True)]]
        return sklearn_scores(frame).set_index(["fold", "seed"])["ua"].sort_index()

    raw = {}
    for r in g["rows"][1:]:
        expected = stats.ttest_rel(ua(r["run"]), ua("wise"))
        if r["run"] == "wise_twin":  # the same predictions: every difference 0, p = 1 by definition
            assert r["p_vs_best"] == 1.0
        else:
            assert r["p_vs_best"] == pytest.approx(expected.pvalue, rel=1e-9)
        assert r["pairing"] == "fold, seed" and r["pairs_vs_best"] == 6
        raw[r["run"]] = r["p_vs_best"]
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    for r in g["rows"][1:]:
        assert r["p_vs_best_adjusted"] == pytest.approx(adjusted[r["run"]])
        assert r["vs_best"] == (cmp.LOWER if adjusted[r["run"]] < 0.05 else cmp.SAME)
    assert row(g, "wise_twin")["vs_best"] == cmp.SAME
    assert row(g, "wise_audio")["vs_best"] == cmp.LOWER
    # without the correction the marks follow the raw p-values
    plain = group(report_of(corpus, correction="none"), "loso_session")
    for r in plain["rows"][1:]:
        assert r["p_vs_best_adjusted"] == r["p_vs_best"]
    # every pair, every metric, unadjusted
    assert len(g["pairs"]) == 10
    (pair,) = [p for p in g["pairs"] if {p["model"], p["reference"]} == {"wise", "bert"}]
    assert pair["ua"]["p"] == pytest.approx(stats.ttest_rel(ua(pair["model"]), ua(pair["reference"])).pvalue, rel=1e-9)


def test_one_run_each_is_no_test(tmp_path: Path) -> None:
    paths = [
        write_model(
            tmp_path, "a", "wise", "wise", protocol="random_split", folds=(1,), seeds=(0,), accuracy=0.8, key=1
        ),
        write_model(
            tmp_path, "b", "gban", "gban", protocol="random_split", folds=(1,), seeds=(0,), accuracy=0.5, key=2
        ),
    ]
    g = report_of(paths)["groups"][0]
    assert [r["vs_best"] for r in g["rows"]] == [cmp.BEST, cmp.UNTESTED]
    assert g["rows"][1]["p_vs_best"] is None and g["rows"][1]["pairs_vs_best"] == 1
    assert "no test (n = 1)" in cmp.comparison_markdown(report_of(paths))


# --------------------------------------------------------------------------------- protocols, text sources


def test_grouped_by_protocol_with_their_own_common_sets(corpus: list[Path]) -> None:
    root = corpus[0].parent.parent
    report = report_of(corpus)
    assert [g["protocol"] for g in report["groups"]] == ["loso_session", "loso_speaker"]
    speaker = group(report, "loso_speaker")
    assert {r["run"] for r in speaker["rows"]} == {"wise~loso_speaker", "wise_audio~loso_speaker"}
    assert all(r["protocol"] == "loso_speaker" for r in speaker["rows"])
    assert speaker["common"]["n"] == 2 * PER_FOLD and speaker["folds"] == [1, 2]
    # seeds 7, 8 against 0, 1: no run in common, so the folds are paired, each over its seeds' mean
    other = speaker["rows"][1]
    assert other["pairing"] == "fold" and other["pairs_vs_best"] == 2
    per_fold = {
        run: sklearn_scores(predictions_of(root, run, "loso_speaker")).groupby("fold")["ua"].mean()
        for run in ("wise~loso_speaker", "wise_audio~loso_speaker")
    }
    expected = stats.ttest_rel(per_fold["wise_audio~loso_speaker"], per_fold["wise~loso_speaker"]).pvalue
    assert other["p_vs_best"] == pytest.approx(expected, rel=1e-9)


def test_text_source_comes_from_the_result_with_the_wer_beside_asr(corpus: list[Path]) -> None:
    report = report_of(corpus)
    g = group(report, "loso_session")
    gold, asr = row(g, "bert"), row(g, "bert_x")
    assert (gold["model"], gold["text_source"], gold["asr_wer"]) == ("bert", "gold", None)
    assert (asr["model"], asr["text_source"], asr["asr_wer"]) == ("bert", "asr", 0.25)
    assert (gold["label"], asr["label"]) == ("bert (gold)", "bert (asr)")
    audio = row(g, "wise_audio")
    assert audio["reads_text"] is False and audio["asr_wer"] is None and row(g, "wise")["reads_text"] is True
    markdown = cmp.comparison_markdown(report)
    assert "Gold against ASR transcripts" in markdown
    line = next(x for x in markdown.splitlines() if x.startswith("| `bert` |"))
    assert f"{gold['ua']:.3f} | {asr['ua']:.3f}" in line and "0.250" in line
    assert "word error rate, 0.250" in markdown
    no_wer = cmp.compare(cmp.load_entries(corpus, corpus[0].parent.parent / "models")[0])
    assert row(group(no_wer, "loso_session"), "bert_x")["asr_wer"] is None
    assert "not available" in cmp.comparison_markdown(no_wer)


def test_late_fusion_reads_text_through_its_components() -> None:
    assert cmp.reads_text({"model": "lf", "features": {}})
    assert not cmp.reads_text({"model": "cnn14", "features": {"logmel64": {}}})
    assert cmp.reads_text({"model": "wise_audio", "features": {"mfcc39": {}, "spans_mfcc39": {}}})


def test_other_json_and_dimensional_runs_are_left_out(corpus: list[Path]) -> None:
    results = corpus[0].parent
    write_json({"format": "serflow-significance/1", "corpus": "demo", "tests": []}, results / "demo_significance.json")
    dimensional = json.loads(corpus[0].read_text())
    dimensional.update(model="wise@vad", task={"name": "vad", "outputs": ["valence", "arousal", "dominance"]})
    write_json(dimensional, results / "demo_wise@vad.json")
    paths = [*corpus, results / "demo_significance.json", results / "demo_wise@vad.json"]
    entries, skipped = cmp.load_entries(paths, results.parent / "models")
    assert len(entries) == len(corpus)
    assert [s["run"] for s in skipped] == ["wise@vad"]  # a summary's JSON is no result, not worth listing
    assert "`wise@vad`" in cmp.comparison_markdown(cmp.compare(entries, skipped=skipped))


def test_different_classes_in_one_protocol_are_refused(corpus: list[Path]) -> None:
    entries, _ = cmp.load_entries(corpus, corpus[0].parent.parent / "models")
    entries[1].result = {**entries[1].result, "labels": ["ang", "hap", "neu"]}
    with pytest.raises(ValueError, match="different labels"):
        cmp.compare(entries)


def test_workflow_predictions_must_be_the_jobs_inputs(corpus: list[Path]) -> None:
    models = corpus[0].parent.parent / "models"
    with pytest.raises(ValueError, match="not inputs of this job"):
        cmp.load_entries(corpus[:1], models, available=[])


# --------------------------------------------------------------------------------- files


def test_files_are_written_atomically_and_read_by_pandas(corpus: list[Path], tmp_path: Path, monkeypatch) -> None:
    import serflow.io

    replaced = []
    real_replace = serflow.io.os.replace
    monkeypatch.setattr(
        serflow.io.os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst))
    )
    report = report_of(corpus)
    out = tmp_path / "out"
    paths = [out / "demo_comparison.md", out / "demo_comparison.csv", out / "demo_comparison.json"]
    cmp.write_comparison(report, *paths)
    assert {Path(dst) for _, dst in replaced} == set(paths)
    assert all(Path(src).name.startswith(f".{Path(dst).name}.") for src, dst in replaced)  # a temporary sibling
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # nothing left behind

    table = pd.read_csv(paths[1])
    assert list(table.columns) == list(cmp.COLUMNS)
    assert len(table) == 7 and set(table["protocol"]) == {"loso_session", "loso_speaker"}
    assert table.loc[table["run"] == "bert_x", "asr_wer"].item() == 0.25
    data = json.loads(paths[2].read_text())
    assert data["format"] == cmp.COMPARISON_FORMAT and data["settings"]["test"] == "paired_t"
    rows = pd.json_normalize(data["groups"], record_path="rows", meta="protocol", meta_prefix="group_")
    assert len(rows) == 7 and rows["ua"].tolist() == pytest.approx(table["ua"].tolist(), abs=1e-5)
    lines = [x for x in paths[0].read_text().splitlines() if x.startswith("| ") and "---" not in x]
    first = next(i for i, x in enumerate(lines) if "model" in x and "UA" in x)
    md = pd.read_csv(io.StringIO("\n".join(lines[first : first + 6])), sep="|", skipinitialspace=True)
    assert len(md) == 5 and md.iloc[0, 2].strip() == "`wise`" and "best" in md.iloc[0, 1]


def test_leaderboard_plot_and_html(corpus: list[Path], tmp_path: Path) -> None:
    from serflow.report.plots import plot_leaderboard

    report = report_of(corpus)
    plot_leaderboard(cmp.leaderboard_rows(report), tmp_path / "a.png", "demo", len(LABELS))
    plot_leaderboard(cmp.leaderboard_rows(report), tmp_path / "b.png", "demo", len(LABELS))
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    plot_leaderboard([], tmp_path / "empty.png", "demo", len(LABELS))
    page = cmp.comparison_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<table>" in page and "bert (asr)" in page


def test_cli_compare(corpus: list[Path], tmp_path: Path, capsys) -> None:
    wer = tmp_path / "tiny.wer.json"
    write_json(WER, wer)
    prefix = tmp_path / "cli" / "demo_comparison"
    assert main(["compare", *map(str, corpus), "--out", str(prefix), "--wer", str(wer)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# demo: every model on the same test utterances")
    for ext in ("md", "csv", "json", "png"):
        assert Path(f"{prefix}.{ext}").stat().st_size > 0
    data = json.loads(Path(f"{prefix}.json").read_text())
    assert data["asr_wer"] == {"name": "tiny", "utterances": 36, "wer": 0.25}
    # default prefix: beside the results; the models folder beside results/
    assert main(["compare", *map(str, corpus[:3])]) == 0
    assert (corpus[0].parent / "demo_comparison.md").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--help"])
    assert exit_info.value.code == 0
    assert "RESULTS_JSON" in capsys.readouterr().out


def test_report_json_has_no_nan(corpus: list[Path]) -> None:
    text = cmp.comparison_json(report_of(corpus))
    assert "NaN" not in text and not any(isinstance(v, float) and math.isnan(v) for v in json.loads(text).values())
