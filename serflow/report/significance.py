"""Whether a model's scores differ from its family's reference models: t-tests over runs (``docs/results.md``).

The CNN14 paper (seed 002) marks each model whose UAR differs from a unimodal baseline by a two-sided
independent-samples t-test over 5 runs at p < 0.05, with ``*`` for the first baseline and ``†`` for the second.
:func:`reference_tests` does the same for every family of :mod:`serflow.models.catalog` that names reference
models (``Family.reference``), on the runs of ``results/{corpus}_{model}.json``:

* a **run** is one seed's cross-validated score (``per_seed``: the mean over folds of that seed's fold scores),
  so ``n`` is the number of seeds a model was trained with; the runs of two models are independent samples;
* the test is Student's (pooled variance, ``test="student"``, the paper's) or Welch's (``test="welch"``), two-sided,
  on every score both results have per run (WA, UA, macro-F1; a regression result's CCC per dimension when its
  ``per_seed`` entries hold one, as ``ccc_arousal`` or ``{"ccc": {"arousal": ...}}``);
* only results of the same corpus, protocol, label set (and merge), text source and task are compared;
* no correction for multiple comparisons (the paper applies none).

Undefined cases are recorded, never guessed: fewer than 2 runs on either side gives ``t``, ``p`` and ``significant``
``None`` with a ``reason``; a reference model without a result under the same setting gives a pair with ``reason``
and no metrics. Zero variance on both sides: equal constants give ``t = 0``, ``p = 1`` (not significant); different
constants give ``t = None`` (it is infinite; JSON holds no infinity), ``p = 0`` (significant), with a ``note``.

The summary (:mod:`serflow.report.summary`) marks WA and UA with :data:`MARKS` and adds the p-values to its CSV
(:func:`significance_columns`); :func:`significance_report` is the content of ``results/{corpus}_significance.json``.
scipy is imported where the test runs, so the report's other jobs do not need it.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from serflow.train.tasks import run_name

SIGNIFICANCE_FORMAT = "serflow-significance/1"
TESTS = {
    "student": "two-sided Student's independent-samples t-test (pooled variance)",
    "welch": "two-sided Welch's independent-samples t-test (unequal variances)",
}
ALPHA = 0.05
MARKS = ("*", "†", "‡", "§")  # the first, second, ... reference model of a family (the paper's * and †)
MARKED_METRIC = "ua"
SCORE_ORDER = ("wa", "ua", "macro_f1")  # listed first, then any other shared score by name
NOT_SCORES = frozenset({"seed", "best_epoch", "epochs_run", "fold", "n"})
CSV_SLOTS = 2  # reference columns in the summary CSV at least (every family of the catalogue has at most two)


def family_references() -> dict[str, tuple[str, ...]]:
    """``{family: its reference models}`` of the catalogue's families that name some."""
    from serflow.models.catalog import FAMILIES

    return {family.name: tuple(family.reference) for family in FAMILIES if family.reference}


def run_scores(result: Mapping[str, Any]) -> dict[str, list[float]]:
    """Per score, its value in each run (``per_seed``, in seed order); a run without a value is left out.

    Scores are the numbers of a ``per_seed`` entry other than its ``seed``; a nested mapping of numbers
    (``{"ccc": {"arousal": .7}}``) gives one score per key (``ccc.arousal``).
    """
    scores: dict[str, list[float]] = {}
    for run in result.get("per_seed") or []:
        for key, value in run.items():
            if key in NOT_SCORES:
                continue
            items = value.items() if isinstance(value, Mapping) else [(None, value)]
            for sub, number in items:
                if _is_number(number) and math.isfinite(number):
                    scores.setdefault(key if sub is None else f"{key}.{sub}", []).append(float(number))
    return scores


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered(keys: Iterable[str]) -> list[str]:
    keys = set(keys)
    return [k for k in SCORE_ORDER if k in keys] + sorted(keys - set(SCORE_ORDER))


def t_test(model: Sequence[float], reference: Sequence[float], test: str = "student", alpha: float = ALPHA) -> dict:
    """A two-sided independent-samples t-test of ``model``'s runs against ``reference``'s.

    Returns ``n_*``, ``mean_*``, ``sd_*`` (sample, ddof 1), the scores, ``t``, ``df``, ``p``, ``significant``
    (p < alpha), ``direction`` (the model's mean ``higher`` / ``lower`` / ``equal``), ``reason`` (why there is no
    p) and ``note`` (the constant case); see the module's docstring for the undefined and constant cases.
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}: one of {sorted(TESTS)}")
    a, b = np.asarray(model, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    out: dict[str, Any] = {
        "n_model": int(a.size),
        "n_reference": int(b.size),
        "mean_model": float(a.mean()) if a.size else None,
        "mean_reference": float(b.mean()) if b.size else None,
        "sd_model": float(a.std(ddof=1)) if a.size > 1 else None,
        "sd_reference": float(b.std(ddof=1)) if b.size > 1 else None,
        "scores_model": [float(x) for x in a],
        "scores_reference": [float(x) for x in b],
        "t": None,
        "df": None,
        "p": None,
        "significant": None,
        "direction": None,
        "reason": None,
        "note": None,
    }
    if a.size and b.size:
        diff = out["mean_model"] - out["mean_reference"]
        out["direction"] = "higher" if diff > 0 else "lower" if diff < 0 else "equal"
    if a.size < 2 or b.size < 2:
        out["reason"] = f"fewer than 2 runs (n = {a.size} and {b.size}): the t-test is not defined"
        return out
    if np.all(a == a[0]) and np.all(b == b[0]):
        out["df"] = float(a.size + b.size - 2) if test == "student" else None
        if a[0] == b[0]:
            out.update(t=0.0, p=1.0, significant=False, note="the same constant score in every run of both")
        else:
            out.update(p=0.0, significant=True, note="a constant score on each side, different: t is infinite")
        return out
    from scipy import stats  # here, so that importing this module needs no scipy

    with warnings.catch_warnings():
        if np.all(a == a[0]) or np.all(b == b[0]):  # exactly constant, so exactly 0: scipy's warning does not apply
            warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        result = stats.ttest_ind(a, b, equal_var=test == "student")
    out.update(t=float(result.statistic), df=float(result.df), p=float(result.pvalue))
    out["significant"] = bool(out["p"] < alpha)
    return out


def _setting(result: Mapping[str, Any]) -> tuple[Any, ...]:
    """What two results must share to be compared: corpus, protocol, labels (and their merge), text source, and the
    task's name and outputs where the result names a task (older results: the categorical task over the labels)."""
    merge = json.dumps(result.get("label_merge") or {}, sort_keys=True)
    labels = tuple(result.get("labels") or ())
    task = result.get("task") or {}
    scored = (task.get("name", "categorical"), tuple(task.get("outputs") or labels))
    return result.get("corpus"), result.get("protocol"), labels, merge, result.get("text_source"), scored


def _text_free(
    by_setting: Mapping[tuple[Any, ...], Mapping[str, Mapping[str, Any]]], result: Mapping[str, Any], name: str
) -> Mapping[str, Any] | None:
    """The result of model ``name`` in ``result``'s setting but for the text source, where ``name`` reads no text
    (cnn14 is the reference of mfcnn14 on gold and on ASR transcripts alike); else None."""
    from serflow.report.comparison import reads_text

    setting = _setting(result)
    for other, models in by_setting.items():
        found = models.get(name)
        if found is not None and other[:4] + other[5:] == setting[:4] + setting[5:] and not reads_text(found):
            return found
    return None


def reference_tests(
    results: Sequence[Mapping[str, Any]],
    alpha: float = ALPHA,
    test: str = "student",
    references: Mapping[str, Sequence[str]] | None = None,
) -> list[dict[str, Any]]:
    """Every model against each reference model of its family, per shared score (see the module's docstring).

    ``references``: ``{family: reference models}`` (default: the catalogue's, :func:`family_references`). One
    entry per (model, reference model) pair, in the order of ``results`` and of the family's references: the
    models, the setting, ``position`` (1 = the family's first reference model) and ``mark``, the test and alpha,
    ``metrics`` (``{score: t_test(...)}``) and ``reason`` where the reference model has no comparable result.
    A model is not tested against itself.
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}: one of {sorted(TESTS)}")
    references = family_references() if references is None else references
    by_setting: dict[tuple[Any, ...], dict[str, Mapping[str, Any]]] = {}
    for r in results:
        same = by_setting.setdefault(_setting(r), {})
        if r["model"] in same:
            raise ValueError(
                f"two results of model {r['model']!r} with the same corpus, protocol, labels, text and task"
            )
        same[r["model"]] = r
    tests = []
    for r in results:
        task = (r.get("task") or {}).get("name", "categorical")
        for position, ref_model in enumerate(references.get(r.get("family"), ()), start=1):
            ref_name = run_name(ref_model, task)  # the reference model's run of the same task (cnn14@vad)
            if ref_name == r["model"]:
                continue
            entry: dict[str, Any] = {
                "model": r["model"],
                "family": r.get("family"),
                "reference": ref_name,
                "position": position,
                "mark": MARKS[position - 1] if position <= len(MARKS) else f"[{position}]",
                "corpus": r.get("corpus"),
                "protocol": r.get("protocol"),
                "text_source": r.get("text_source"),
                "test": test,
                "alpha": alpha,
                "seeds_model": list(r.get("seeds") or []),
                "seeds_reference": None,
                "metrics": {},
                "reason": None,
            }
            ref = by_setting[_setting(r)].get(ref_name) or _text_free(by_setting, r, ref_name)
            if ref is None:
                entry["reason"] = (
                    f"no result of reference model {ref_name!r} with the same corpus, protocol, labels, text and task"
                )
            else:
                entry["seeds_reference"] = list(ref.get("seeds") or [])
                mine, theirs = run_scores(r), run_scores(ref)
                for key in _ordered(set(mine) & set(theirs)):
                    entry["metrics"][key] = t_test(mine[key], theirs[key], test, alpha)
                if not entry["metrics"]:
                    entry["reason"] = "no score per run that both results have (per_seed)"
            tests.append(entry)
    return tests


# --------------------------------------------------------------------------------- for the summary


def significance_marks(tests: Iterable[Mapping[str, Any]], metric: str = MARKED_METRIC) -> dict[str, str]:
    """``{model: marks}``: the mark of each reference model ``metric`` differs from (p < alpha), in order."""
    marks: dict[str, list[tuple[int, str]]] = {}
    for entry in tests:
        result = entry["metrics"].get(metric)
        if result and result["significant"]:
            marks.setdefault(entry.get("label", entry["model"]), []).append((entry["position"], entry["mark"]))
    return {model: "".join(mark for _, mark in sorted(found)) for model, found in marks.items()}


def significance_legend(
    tests: Sequence[Mapping[str, Any]], corpus: str, metric: str = MARKED_METRIC, marked: Sequence[str] = ()
) -> list[str]:
    """The summary's paragraphs (each a line) saying what the marks mean: the test, alpha, n, the references.

    ``metric`` is the score whose missing tests are listed; ``marked`` the scores that carry marks (default: it)."""
    if not tests:
        return ["Significance: no model of these results has a reference model (`Family.reference`) to test against."]
    first = tests[0]
    name = _score_name(metric)
    marked_names = " and ".join(_score_name(m) for m in (marked or (metric,)))
    ns = sorted({m[k] for e in tests for m in e["metrics"].values() for k in ("n_model", "n_reference")})
    n = "no runs" if not ns else f"{ns[0]}" if len(ns) == 1 else f"{ns[0]} to {ns[-1]}"
    refs: dict[tuple[str, ...], list[str]] = {}
    for entry in tests:
        # one model's references once, also when it ran under several protocols (train.protocols)
        key = tuple(dict.fromkeys(f"{e['mark']} `{e['reference']}`" for e in tests if e["model"] == entry["model"]))
        refs.setdefault(key, [])
        if entry["model"] not in refs[key]:
            refs[key].append(entry["model"])
    lines = [
        f"Significance ({marked_names}): a mark after {marked_names} says the model differs (higher or lower) in that "
        "score from its family's "
        f"first (`*`) or second (`†`) reference model by a {TESTS[first['test']]} over runs, "
        f"p < {first['alpha']:g}; a run is one seed's cross-validated score (n = {n} per model); no correction "
        f"for multiple comparisons. Every test, of every score, in `results/{corpus}_significance.json`.",
        "",
        "Reference models: "
        + "; ".join(f"{', '.join(f'`{m}`' for m in models)}: {', '.join(key)}" for key, models in refs.items())
        + ".",
    ]
    reasons: dict[str, list[str]] = {}
    for e in tests:
        reason = e["reason"] or (e["metrics"][metric]["reason"] if metric in e["metrics"] else f"no {name} per run")
        pair = f"`{e['model']}` vs `{e['reference']}`"
        if reason and pair not in reasons.get(reason, []):
            reasons.setdefault(reason, []).append(pair)
    if reasons:
        lines += ["", f"No {name} test: " + "; ".join(f"{', '.join(p)} ({r})" for r, p in reasons.items()) + "."]
    return lines


def _score_name(metric: str) -> str:
    return metric.upper() if metric in SCORE_ORDER else "mean CCC" if metric == "ccc" else metric


def significance_columns(
    tests: Sequence[Mapping[str, Any]], slots: int = CSV_SLOTS
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The summary CSV's extra columns and ``{model: {column: value}}``: per reference position k, ``ref{k}``
    (the model) and ``ref{k}_p_{score}`` (the p-value; empty where the test is not defined)."""
    slots = max([slots, *(e["position"] for e in tests)])
    metrics = _ordered({k for e in tests for k in e["metrics"]} | set(SCORE_ORDER))
    columns = [c for k in range(1, slots + 1) for c in (f"ref{k}", *(f"ref{k}_p_{m}" for m in metrics))]
    values: dict[str, dict[str, Any]] = {}
    for entry in tests:
        row = values.setdefault(entry.get("label", entry["model"]), {})
        k = entry["position"]
        row[f"ref{k}"] = entry["reference"]
        for m in metrics:
            p = entry["metrics"].get(m, {}).get("p")
            row[f"ref{k}_p_{m}"] = None if p is None else format(p, ".6g")
    return columns, values


def significance_report(
    tests: Sequence[Mapping[str, Any]], corpus: str, alpha: float = ALPHA, test: str = "student"
) -> dict[str, Any]:
    """The content of ``results/{corpus}_significance.json``: the settings, and every test with its scores."""
    return {
        "format": SIGNIFICANCE_FORMAT,
        "corpus": corpus,
        "test": test,
        "description": TESTS[test],
        "alpha": alpha,
        "sides": 2,
        "correction": None,
        "run": "one seed's cross-validated score (results per_seed: the mean over folds)",
        "marked_metric": MARKED_METRIC,
        "marks": {str(k): mark for k, mark in enumerate(MARKS, start=1)},
        "tests": list(tests),
    }


# --------------------------------------------------------------------------------- paired tests (the comparison)

PAIRED_TESTS = {
    "paired_t": "two-sided paired t-test over matched (fold, seed) scores",
}
WILCOXON_MIN_PAIRS = 6  # fewer pairs: the two-sided exact Wilcoxon p can never fall below 0.05 (2 / 2**5 = 0.0625)


def paired_test(
    model: Sequence[float], reference: Sequence[float], alpha: float = ALPHA, wilcoxon: bool = True
) -> dict[str, Any]:
    """A two-sided paired t-test of ``model`` against ``reference``, paired by position, with the Wilcoxon
    signed-rank test beside it where there are :data:`WILCOXON_MIN_PAIRS` pairs or more (and ``wilcoxon``).

    The t-test decides ``significant`` (p < alpha); the Wilcoxon test is reported only, because with the few folds
    of a cross-validation it often cannot reach alpha at all. The undefined cases follow :func:`t_test`: fewer than
    2 pairs gives no p and a ``reason``; differences that are all the same constant give ``t = 0``, ``p = 1`` (all
    zero) or ``t = None``, ``p = 0`` (a constant non-zero difference: t is infinite), with a ``note``.
    """
    a, b = np.asarray(model, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two 1-D sequences of one length, got {a.shape} and {b.shape}")
    d = a - b
    out: dict[str, Any] = {
        "n": int(d.size),
        "mean_model": float(a.mean()) if d.size else None,
        "mean_reference": float(b.mean()) if d.size else None,
        "mean_difference": float(d.mean()) if d.size else None,
        "sd_difference": float(d.std(ddof=1)) if d.size > 1 else None,
        "t": None,
        "df": None,
        "p": None,
        "significant": None,
        "direction": None,
        "wilcoxon_w": None,
        "wilcoxon_p": None,
        "wilcoxon_reason": None,
        "reason": None,
        "note": None,
    }
    if d.size:
        mean = out["mean_difference"]
        out["direction"] = "higher" if mean > 0 else "lower" if mean < 0 else "equal"
    if d.size < 2:
        out["reason"] = f"fewer than 2 pairs (n = {d.size}): the paired t-test is not defined"
        out["wilcoxon_reason"] = out["reason"]
        return out
    out["df"] = float(d.size - 1)
    if np.all(d == d[0]):
        if d[0] == 0:
            out.update(t=0.0, p=1.0, significant=False, note="the same score in every pair")
        else:
            out.update(p=0.0, significant=True, note="the same non-zero difference in every pair: t is infinite")
        out["wilcoxon_reason"] = "every difference the same: no ranks to test"
        return out
    from scipy import stats  # here, so that importing this module needs no scipy

    result = stats.ttest_rel(a, b)
    out.update(t=float(result.statistic), p=float(result.pvalue))
    out["significant"] = bool(out["p"] < alpha)
    if not wilcoxon:
        out["wilcoxon_reason"] = "not asked for"
    elif d.size < WILCOXON_MIN_PAIRS:
        out["wilcoxon_reason"] = f"fewer than {WILCOXON_MIN_PAIRS} pairs: its p cannot fall below 0.05"
    elif np.count_nonzero(d) < WILCOXON_MIN_PAIRS:
        out["wilcoxon_reason"] = f"fewer than {WILCOXON_MIN_PAIRS} non-zero differences"
    else:
        w = stats.wilcoxon(a, b)
        out.update(wilcoxon_w=float(w.statistic), wilcoxon_p=float(w.pvalue))
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (``None``: no test, left out of the family and kept).

    The adjusted p of the k-th smallest of m p-values is ``max_{j <= k} min(1, (m - j + 1) p_(j))``; comparing it
    with alpha keeps the chance of any false "different" in the family at most alpha, whatever their dependence.
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted
