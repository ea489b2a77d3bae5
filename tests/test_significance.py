"""t-tests between models and their family's reference models (serflow/report/significance.py), on fake results."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re

import pytest
from scipy import stats

from serflow.io import write_json
from serflow.report.figures import load_paper_figures
from serflow.report.significance import (
    family_references,
    reference_tests,
    run_scores,
    significance_marks,
    significance_report,
    t_test,
)
from serflow.report.summary import summary_csv, summary_html, summary_markdown, summary_rows

LABELS = ["ang", "hap", "neu", "sad"]
DEMO = {"format": "iemocap", "synth": {"utterances": 100}, "labels": LABELS}
REFS = {"cnn14": ("cnn14", "bert"), "bert": ("cnn14", "bert")}


def result(model: str, family: str, ua: list[float], protocol: str = "loso_session", **extra: object) -> dict:
    """A results file with one run per UA value (WA and macro-F1 shifted from it), enough for the summary."""
    runs = [
        {"seed": s, "wa": u + 0.02, "ua": u, "macro_f1": u - 0.01, **copy.deepcopy(extra)} for s, u in enumerate(ua)
    ]
    mean = sum(ua) / len(ua)
    sd = stats.tstd(ua) if len(ua) > 1 else 0.0
    return {
        "corpus": "demo",
        "model": model,
        "family": family,
        "protocol": protocol,
        "text_source": "gold",
        "labels": LABELS,
        "label_merge": {"exc": "hap"},
        "n_folds": 3,
        "seeds": list(range(len(ua))),
        "folds": [{"fold": 1, "test_group": "Session1", "n": 20, "wa": mean, "ua": mean, "macro_f1": mean}],
        "per_seed": runs,
        "wa": mean + 0.02,
        "ua": mean,
        "macro_f1": mean - 0.01,
        "wa_std": sd,
        "ua_std": sd,
        "fold_std": {"wa": 0.01, "ua": 0.01, "macro_f1": 0.01},
        "utterances": {"used": 60, "dropped": 0},
    }


CNN14 = [0.55, 0.57, 0.56, 0.54, 0.58]
BERT = [0.71, 0.70, 0.72, 0.71, 0.69]
SFCNN14 = [0.64, 0.65, 0.63, 0.64, 0.66]  # differs from both
MFCNN14 = [0.70, 0.73, 0.71, 0.69, 0.72]  # differs from cnn14 only


def paper_like() -> list[dict]:
    return [
        result("cnn14", "cnn14", CNN14),
        result("bert", "bert", BERT),
        result("sfcnn14", "cnn14", SFCNN14),
        result("mfcnn14", "cnn14", MFCNN14),
    ]


def student_p(a: list[float], b: list[float]) -> float:
    """Student's two-sided p from its formula (scipy's ttest_ind warns on a constant sample)."""
    na, nb, ma, mb = len(a), len(b), sum(a) / len(a), sum(b) / len(b)
    pooled = (sum((x - ma) ** 2 for x in a) + sum((x - mb) ** 2 for x in b)) / (na + nb - 2)
    t = (ma - mb) / math.sqrt(pooled * (1 / na + 1 / nb))
    return 2 * stats.t.sf(abs(t), na + nb - 2)


def pair(tests: list[dict], model: str, reference: str) -> dict:
    (found,) = [t for t in tests if t["model"] == model and t["reference"] == reference]
    return found


# --------------------------------------------------------------------------------- the test itself


@pytest.mark.parametrize("test, equal_var", [("student", True), ("welch", False)])
def test_t_test_agrees_with_scipy(test: str, equal_var: bool) -> None:
    a, b = [0.61, 0.64, 0.60, 0.66, 0.63], [0.58, 0.59, 0.50, 0.62, 0.55, 0.57]
    out = t_test(a, b, test)
    expected = stats.ttest_ind(a, b, equal_var=equal_var)
    assert out["t"] == pytest.approx(expected.statistic, rel=1e-12)
    assert out["p"] == pytest.approx(expected.pvalue, rel=1e-12)
    assert out["df"] == pytest.approx(expected.df, rel=1e-12)
    assert (out["n_model"], out["n_reference"]) == (5, 6)
    assert out["mean_model"] == pytest.approx(sum(a) / 5) and out["direction"] == "higher"
    assert out["significant"] is bool(expected.pvalue < 0.05) is True and out["reason"] is None
    assert out["scores_model"] == a and out["scores_reference"] == b


def test_t_by_hand_for_a_tiny_case() -> None:
    # means 2 and 5, both sample variances 1: pooled sd 1, t = (2 - 5) / sqrt(1/3 + 1/3) = -3 * sqrt(3/2), df 4
    out = t_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    t = -3 * math.sqrt(1.5)
    assert out["t"] == pytest.approx(t, rel=1e-12) and out["df"] == 4
    # Student's t with 4 df has a closed-form CDF: F(t) = 1/2 + (3/8) u (1 - u^2 / 3) with u = t / sqrt(t^2 + 4) * 2
    # written here as P(|T| > |t|) = 1 - s (3 - s^2) / 2 with s = |t| / sqrt(t^2 + 4)
    s = abs(t) / math.sqrt(t * t + 4)
    assert out["p"] == pytest.approx(1 - s * (3 - s * s) / 2, rel=1e-9)
    assert out["significant"] is True and out["direction"] == "lower"
    assert t_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], alpha=0.01)["significant"] is False  # p is about 0.021


def test_fewer_than_two_runs_is_not_a_test() -> None:
    for a, b in (([0.6], [0.5, 0.55, 0.52]), ([0.6, 0.62], [0.5]), ([], [0.5, 0.6])):
        out = t_test(a, b)
        assert out["t"] is None and out["p"] is None and out["significant"] is None
        assert "fewer than 2 runs" in out["reason"]
    one = t_test([0.6], [0.5, 0.55, 0.52])
    assert one["mean_model"] == 0.6 and one["sd_model"] is None and one["direction"] == "higher"
    assert t_test([], [0.5, 0.6])["mean_model"] is None and t_test([], [0.5, 0.6])["direction"] is None


def test_constant_runs() -> None:
    same = t_test([0.7] * 5, [0.7] * 5)
    assert (same["t"], same["p"], same["significant"], same["direction"]) == (0.0, 1.0, False, "equal")
    assert same["reason"] is None and "constant" in same["note"] and same["sd_model"] == 0.0
    apart = t_test([0.7] * 5, [0.6] * 3)
    assert (apart["t"], apart["p"], apart["significant"], apart["direction"]) == (None, 0.0, True, "higher")
    assert "infinite" in apart["note"]
    # one side constant is an ordinary case
    assert t_test([0.5] * 3, [0.6, 0.65, 0.62])["p"] == pytest.approx(student_p([0.5] * 3, [0.6, 0.65, 0.62]))


def test_unknown_test_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown test"):
        t_test([1, 2], [3, 4], "mann-whitney")
    with pytest.raises(ValueError, match="unknown test"):
        reference_tests([], test="paired")


# --------------------------------------------------------------------------------- which pairs


def test_every_model_against_its_references() -> None:
    tests = reference_tests(paper_like(), references=REFS)
    pairs = [(t["model"], t["reference"], t["mark"]) for t in tests]
    # a reference model is tested against the other reference model, never against itself
    assert pairs == [
        ("cnn14", "bert", "†"),
        ("bert", "cnn14", "*"),
        ("sfcnn14", "cnn14", "*"),
        ("sfcnn14", "bert", "†"),
        ("mfcnn14", "cnn14", "*"),
        ("mfcnn14", "bert", "†"),
    ]
    sf_bert = pair(tests, "sfcnn14", "bert")
    assert list(sf_bert["metrics"]) == ["wa", "ua", "macro_f1"]
    ua = sf_bert["metrics"]["ua"]
    assert ua["p"] == pytest.approx(stats.ttest_ind(SFCNN14, BERT).pvalue)
    assert ua["significant"] and ua["direction"] == "lower" and sf_bert["test"] == "student"
    assert pair(tests, "mfcnn14", "bert")["metrics"]["ua"]["significant"] is False
    assert sf_bert["seeds_model"] == sf_bert["seeds_reference"] == [0, 1, 2, 3, 4]
    welch = pair(reference_tests(paper_like(), test="welch", references=REFS), "sfcnn14", "bert")
    assert welch["metrics"]["ua"]["p"] == pytest.approx(stats.ttest_ind(SFCNN14, BERT, equal_var=False).pvalue)


def test_catalogue_references() -> None:
    refs = family_references()
    assert refs["cnn14"] == ("cnn14", "bert") and refs["gban"] == ("gban_speech", "gban_text")
    assert refs["wise"] == ("wise_audio", "wise_text")
    assert pair(reference_tests(paper_like()), "sfcnn14", "bert")["position"] == 2


def test_absent_reference_is_recorded() -> None:
    tests = reference_tests([result("cnn14", "cnn14", CNN14), result("sfcnn14", "cnn14", SFCNN14)], references=REFS)
    missing = pair(tests, "sfcnn14", "bert")
    assert missing["metrics"] == {} and "no result of reference model 'bert'" in missing["reason"]
    assert missing["seeds_reference"] is None
    assert pair(tests, "sfcnn14", "cnn14")["reason"] is None


def test_other_protocol_text_or_labels_are_not_compared() -> None:
    results = [
        result("cnn14", "cnn14", CNN14, protocol="loso_speaker"),
        result("bert", "bert", BERT),
        result("sfcnn14", "cnn14", SFCNN14),
        {**result("mfcnn14", "cnn14", MFCNN14), "text_source": "asr"},
        {**result("bert", "bert", BERT), "labels": ["ang", "hap", "neu"]},
        {**result("bert", "bert", BERT), "task": {"name": "vad", "outputs": ["arousal"]}},
    ]
    tests = reference_tests(results, references=REFS)
    assert pair(tests, "sfcnn14", "cnn14")["reason"] and pair(tests, "sfcnn14", "bert")["reason"] is None
    assert all(t["reason"] for t in tests if t["model"] == "mfcnn14")  # no asr-text results of the references
    assert pair(tests, "cnn14", "bert")["protocol"] == "loso_speaker" and pair(tests, "cnn14", "bert")["reason"]
    # a result naming the categorical task over its labels is the same setting as an older one naming none
    named = {**result("sfcnn14", "cnn14", SFCNN14), "task": {"name": "categorical", "outputs": LABELS, "loss": "ce"}}
    (both,) = reference_tests([result("cnn14", "cnn14", CNN14), named], references={"cnn14": ("cnn14",)})
    assert both["reason"] is None and both["metrics"]["ua"]["significant"]


def test_a_model_twice_in_one_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="two results of model 'bert'"):
        reference_tests([result("bert", "bert", BERT), result("bert", "bert", BERT)], references=REFS)


def test_shared_scores_only_and_nested_ccc() -> None:
    a = result("sfcnn14", "cnn14", SFCNN14, ccc={"arousal": 0.6, "valence": 0.5}, ccc_dominance=0.4)
    a["per_seed"][0]["ccc"]["arousal"] = 0.65  # some spread
    b = result("cnn14", "cnn14", CNN14, ccc={"arousal": 0.5}, ccc_dominance=None)
    assert set(run_scores(a)) == {"wa", "ua", "macro_f1", "ccc.arousal", "ccc.valence", "ccc_dominance"}
    assert "ccc_dominance" not in run_scores(b) and "seed" not in run_scores(b)
    (test,) = reference_tests([a, b], references={"cnn14": ("cnn14",)})
    assert list(test["metrics"]) == ["wa", "ua", "macro_f1", "ccc.arousal"]
    assert test["metrics"]["ccc.arousal"]["p"] == pytest.approx(student_p([0.65, 0.6, 0.6, 0.6, 0.6], [0.5] * 5))


# --------------------------------------------------------------------------------- summary and JSON


def test_summary_marks_and_legend() -> None:
    results = paper_like()
    figures = load_paper_figures()
    rows = summary_rows(results, figures)
    tests = reference_tests(results, references=REFS)
    markdown = summary_markdown(rows, results, DEMO, figures, tests)
    table = {line.split(" | ")[0]: line.split(" | ") for line in markdown.splitlines() if line.startswith("| `")}
    assert table["| `sfcnn14`"][5].endswith(")*†") and table["| `mfcnn14`"][5].endswith(")*")
    assert table["| `cnn14`"][5].endswith(")†") and table["| `bert`"][5].endswith(")*")
    wa_marks = significance_marks(tests, metric="wa")  # WA carries the marks of its own test, not UA's
    for model in ("cnn14", "sfcnn14", "mfcnn14", "bert"):
        assert table[f"| `{model}`"][4].endswith(")" + wa_marks.get(model, ""))
    assert "Significance (WA and UA): a mark after WA and UA" in markdown
    assert "two-sided Student's independent-samples t-test" in markdown and "p < 0.05" in markdown
    assert "(n = 5 per model)" in markdown and "no correction for multiple comparisons" in markdown
    assert "`results/demo_significance.json`" in markdown
    assert "`sfcnn14`, `mfcnn14`: * `cnn14`, † `bert`" in markdown
    assert "No UA test" not in markdown
    assert "Significance" not in summary_markdown(rows, results, DEMO, figures)  # without tests, as before
    page = summary_html(rows, [], results, DEMO, figures, tests)
    assert re.search(r"<td>0\.644 ± [0-9.]+ \([0-9.]+\)\*†</td>", page) and "Student" in page

    welch = summary_markdown(rows, results, DEMO, figures, reference_tests(results, 0.01, "welch", REFS))
    assert "Welch's" in welch and "p < 0.01" in welch


def test_summary_says_why_there_is_no_test() -> None:
    results = [result("cnn14", "cnn14", [0.55]), result("sfcnn14", "cnn14", [0.6])]
    figures = load_paper_figures()
    tests = reference_tests(results, references=REFS)
    markdown = summary_markdown(summary_rows(results, figures), results, DEMO, figures, tests)
    assert "*" not in "".join(line for line in markdown.splitlines() if line.startswith("| `"))
    assert "(n = 1 per model)" in markdown
    assert "`sfcnn14` vs `cnn14` (fewer than 2 runs" in markdown
    assert "`cnn14` vs `bert`, `sfcnn14` vs `bert` (no result of reference model 'bert'" in markdown
    nothing = summary_markdown(summary_rows(results, figures), results, DEMO, figures, [])
    assert "no model of these results has a reference model" in nothing


def test_csv_has_the_p_values() -> None:
    results = paper_like()
    rows = summary_rows(results, load_paper_figures())
    tests = reference_tests(results, references=REFS)
    table = {r["model"]: r for r in csv.DictReader(io.StringIO(summary_csv(rows, tests)))}
    sf = table["sfcnn14"]
    assert (sf["ref1"], sf["ref2"]) == ("cnn14", "bert")
    assert float(sf["ref2_p_ua"]) == pytest.approx(stats.ttest_ind(SFCNN14, BERT).pvalue, rel=1e-5)
    assert float(sf["ref1_p_wa"]) == pytest.approx(pair(tests, "sfcnn14", "cnn14")["metrics"]["wa"]["p"], rel=1e-5)
    assert table["cnn14"]["ref1"] == "" and table["cnn14"]["ref2"] == "bert" and table["cnn14"]["ref1_p_ua"] == ""
    assert list(table["bert"])[-8:] == [
        "ref1",
        "ref1_p_wa",
        "ref1_p_ua",
        "ref1_p_macro_f1",
        "ref2",
        "ref2_p_wa",
        "ref2_p_ua",
        "ref2_p_macro_f1",
    ]
    assert "ref1" not in next(csv.reader(io.StringIO(summary_csv(rows))))


def test_json_holds_everything_to_recompute(tmp_path) -> None:
    results = [*paper_like(), result("mfcnn14", "cnn14", [0.7], protocol="loso_speaker")]
    tests = reference_tests(results, references=REFS)
    path = tmp_path / "demo_significance.json"
    write_json(significance_report(tests, "demo"), path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "serflow-significance/1" and data["corpus"] == "demo"
    assert (data["test"], data["alpha"], data["sides"], data["correction"]) == ("student", 0.05, 2, None)
    assert data["marks"] == {"1": "*", "2": "†", "3": "‡", "4": "§"}
    assert len(data["tests"]) == 8
    for entry in data["tests"]:
        for got in entry["metrics"].values():
            if got["p"] is None:
                continue
            again = stats.ttest_ind(got["scores_model"], got["scores_reference"])
            assert got["p"] == pytest.approx(again.pvalue, rel=1e-12) and got["t"] == pytest.approx(again.statistic)
            assert got["n_model"] == len(got["scores_model"]) and got["df"] == got["n_model"] + got["n_reference"] - 2
    lone = [e for e in data["tests"] if e["protocol"] == "loso_speaker"]
    assert [e["reference"] for e in lone] == ["cnn14", "bert"] and all(e["reason"] for e in lone)
