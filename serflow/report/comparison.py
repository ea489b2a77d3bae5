"""One comparison of every model of a corpus: the same folds, the same test utterances, and which differences are
real (``results/{corpus}_comparison.{md,csv,json}``; method and assumptions: ``docs/comparison.md``).

Each categorical result (``results/{corpus}_{run}.json``) is read with its folds' test predictions
(``models/{corpus}/{model}/{protocol}/fold{k}/predictions.parquet``, one row per test utterance and seed) and the
folds' ``run.json`` (training time). Per protocol:

* the **common set** is, per fold, the test utterances every compared model scored: a text model drops an
  utterance without words, an audio model does not, so their own scores are over different utterances;
* every model is scored again on the common set, per (fold, seed), by :mod:`serflow.train.metrics` (WA, UA,
  macro-F1), and aggregated as the results are (a seed's score is the mean over its folds; the headline the mean over
  seeds); its own-n scores, from all the utterances it scored, stay beside them;
* every utterance is accounted for: ``test_utterances = own n + dropped`` (by the model itself) and
  ``own n = common n + not_common`` (scored by it, dropped by another model);
* two models are compared by :func:`serflow.report.significance.paired_test` over their matched (fold, seed) scores
  on the common set (per fold, over the seeds' means, when they share no seed); the leaderboard marks every model
  the best one (highest common-set UA) cannot be told apart from, after Holm's adjustment over its comparisons.

The text column is the result's own ``text_source`` (never its file name), so a gold and an ASR run of one model
sit side by side, with the corpus's ASR WER beside the ASR rows.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from serflow.report.significance import ALPHA, PAIRED_TESTS, WILCOXON_MIN_PAIRS, holm, paired_test
from serflow.report.summary import _reduced, is_dimensional, markdown_html, paper_figure, stand_ins
from serflow.train.metrics import classification_metrics, confusion_matrix, mean_std
from serflow.train.tasks import split_protocol, split_run

COMPARISON_FORMAT = "serflow-comparison/1"
RESULTS_FORMAT = "serflow-results/1"
METRICS = ("wa", "ua", "macro_f1")
RANKED_BY = "ua"  # the papers' main metric: the leaderboard's order and the score the marks are about
CORRECTIONS = {"holm": "Holm's step-down adjustment", "none": "no correction for multiple comparisons"}
PREDICTION_COLUMNS = ("utt_id", "seed", "label", "prediction")
# what the leaderboard says of each model against the best one (UA on the common set)
BEST, SAME, LOWER, UNTESTED = "best", "not distinguishable", "lower", "no test"
COLUMNS = (
    "protocol",
    "rank",
    "model",
    "run",
    "label",
    "family",
    "text_source",
    "reads_text",
    "asr_wer",
    "folds",
    "seeds",
    "pairing",
    "common_n",
    *(f"{m}{s}" for m in METRICS for s in ("", "_fold_std", "_seed_std")),
    "own_n",
    *(f"own_{m}" for m in METRICS),
    "test_utterances",
    "dropped",
    "not_common",
    "vs_best",
    "pairs_vs_best",
    "p_vs_best",
    "p_vs_best_adjusted",
    "wilcoxon_p_vs_best",
    "parameters",
    "train_s",
    "paper_wa",
    "paper_ua",
    "paper_source",
    "paper_comparable",
    "reduced",
    "stand_in",
)


# --------------------------------------------------------------------------------- reading


@dataclass
class Entry:
    """One result to compare: ``run`` (its name in ``results/{corpus}_{run}.json``, unique in a corpus), the
    result, its test predictions (``fold, utt_id, seed, label, prediction``) and its training time in seconds."""

    run: str
    result: Mapping[str, Any]
    predictions: pd.DataFrame
    train_s: float | None = None
    warnings: list[str] = field(default_factory=list)


def run_of(path: str | os.PathLike[str], result: Mapping[str, Any]) -> str:
    """The run name of a results file: its stem without ``{corpus}_`` (``mmer_fusion~loso_speaker``), the result's
    ``model`` where the file is named otherwise."""
    stem, prefix = Path(path).stem, f"{result['corpus']}_"
    return stem.removeprefix(prefix) if stem.startswith(prefix) else result["model"]


def fold_dirs(
    path: str | os.PathLike[str], result: Mapping[str, Any], models_root: str | os.PathLike[str]
) -> dict[int, Path]:
    """``{fold: models/{corpus}/{model}/{protocol}/fold{k}}`` of a results file, as the workflow lays them out (the
    folder is named after the run, like the result file; the protocol is the result's own)."""
    name = split_protocol(run_of(path, result))[0]
    folder = Path(models_root) / result["corpus"] / name / result["protocol"]
    return {int(f["fold"]): folder / f"fold{f['fold']}" for f in result["folds"]}


def read_predictions(folders: Mapping[int, Path]) -> pd.DataFrame:
    """Every fold's categorical ``predictions.parquet`` with a ``fold`` column."""
    frames = []
    for fold, folder in sorted(folders.items()):
        table = pd.read_parquet(folder / "predictions.parquet")
        missing = [c for c in PREDICTION_COLUMNS if c not in table]
        if missing:
            raise ValueError(f"{folder / 'predictions.parquet'}: no column {', '.join(missing)} (not categorical?)")
        table = table[list(PREDICTION_COLUMNS)].astype({"utt_id": str, "label": str, "prediction": str, "seed": int})
        table.insert(0, "fold", fold)
        frames.append(table)
    if not frames:
        raise ValueError("a result without folds")
    return pd.concat(frames, ignore_index=True)


def training_seconds(folders: Iterable[Path]) -> float | None:
    """The fold jobs' wall time summed (``run.json`` ``elapsed_s``: every seed of the fold); None where any fold
    lacks it, since a partial sum would look like a fast model."""
    total = 0.0
    for folder in folders:
        run = folder / "run.json"
        elapsed = json.loads(run.read_text(encoding="utf-8")).get("elapsed_s") if run.exists() else None
        if not isinstance(elapsed, int | float):
            return None
        total += float(elapsed)
    return total


def load_entries(
    paths: Sequence[str | os.PathLike[str]],
    models_root: str | os.PathLike[str],
    available: Iterable[str | os.PathLike[str]] | None = None,
) -> tuple[list[Entry], list[dict[str, str]]]:
    """The categorical results of ``paths`` with their predictions, and ``[{run, reason}]`` of those left out (the
    dimensional runs: their own table is the summary's). ``available``: the predictions files a workflow job was
    given; a result whose predictions are not among them is an error (its job would not have waited for them)."""
    given = None if available is None else {os.path.normpath(p) for p in available}
    entries, skipped = [], []
    for path in paths:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        if not _is_result(result):  # a summary's JSON in the same folder (results/*.json): not a model's result
            logging.getLogger(__name__).info("%s: not a model's results file, skipped", path)
            continue
        run = run_of(path, result)
        if is_dimensional(result):
            skipped.append({"run": run, "reason": "a dimensional task: see the summary's emotion dimensions table"})
            continue
        folders = fold_dirs(path, result, models_root)
        if given is not None:
            missing = [str(f / "predictions.parquet") for f in folders.values()]
            missing = [p for p in missing if os.path.normpath(p) not in given]
            if missing:
                raise ValueError(f"{path}: its predictions are not inputs of this job: {', '.join(missing)}")
        entries.append(Entry(run, result, read_predictions(folders), training_seconds(folders.values())))
    return entries, skipped


def _is_result(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and data.get("format", RESULTS_FORMAT) == RESULTS_FORMAT
        and {"corpus", "model", "protocol", "folds", "labels"} <= data.keys()
    )


def reads_text(result: Mapping[str, Any]) -> bool:
    """Whether the model reads anything made from a transcript (every store but the acoustic frames: words, tokens,
    WISE's word and phone spans). The stores are the result's; a late fusion records none, so its components'."""
    from serflow.features.stores import kind_of

    stores = list(result.get("features") or {})
    if stores:
        return any(kind_of(store) != "acoustic" for store in stores)
    from serflow.models import MODELS
    from serflow.models.registry import reads_transcripts

    name = split_run(result["model"])[0]  # a dimensional run's model: lf@vad is lf
    return name in MODELS and reads_transcripts(name)


def asr_wer(wer: Mapping[str, Any] | None, name: str | None = None) -> dict[str, Any] | None:
    """``{name, wer, utterances}`` of a ``*.wer.json`` (``overall``), or None without one."""
    if not wer:
        return None
    overall = wer.get("overall") or {}
    return {"name": name, "wer": overall.get("wer"), "utterances": overall.get("utterances")}


# --------------------------------------------------------------------------------- scoring


def fold_seed_scores(
    predictions: pd.DataFrame, labels: Sequence[str], keep: set[tuple[int, str]] | None = None
) -> list[dict[str, Any]]:
    """WA, UA and macro-F1 per (fold, seed) of ``predictions`` (only the ``(fold, utt_id)`` in ``keep`` when given),
    from one confusion matrix each (:mod:`serflow.train.metrics`: UA over the classes present); a fold with no
    utterance left gives no score."""
    table = predictions
    if keep is not None:
        index = pd.MultiIndex.from_arrays([table["fold"], table["utt_id"]])
        table = table[index.isin(list(keep))]
    # class indices once for the whole table (per-group mapping of strings is what would take the time)
    truth = pd.Categorical(table["label"], categories=list(labels)).codes
    guess = pd.Categorical(table["prediction"], categories=list(labels)).codes
    if (truth < 0).any() or (guess < 0).any():
        raise ValueError(f"a label or prediction that is not one of the classes {list(labels)}")
    scores = []
    for (fold, seed), rows in sorted(table.groupby(["fold", "seed"]).indices.items()):
        metrics = classification_metrics(confusion_matrix(truth[rows], guess[rows], len(labels)), labels)
        scores.append({"fold": int(fold), "seed": int(seed), "n": metrics["n"], **{m: metrics[m] for m in METRICS}})
    return scores


def aggregate(scores: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The results' aggregation (``docs/results.md``): a seed's score is the mean over its folds; the headline the
    mean over seeds, ``*_seed_std`` their sample std (0 with one seed), ``*_fold_std`` the sample std over folds of
    the folds' means over seeds."""
    if not scores:
        return {**{m: None for m in METRICS}, **{f"{m}_{s}_std": None for m in METRICS for s in ("fold", "seed")}}
    table = pd.DataFrame(scores)
    out: dict[str, Any] = {}
    for m in METRICS:
        out[m], out[f"{m}_seed_std"] = mean_std(table.groupby("seed")[m].mean().tolist())
        out[f"{m}_fold_std"] = mean_std(table.groupby("fold")[m].mean().tolist())[1]
    return out


def matched(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], metric: str) -> tuple[str, list, list]:
    """The pairing of two models' per-(fold, seed) scores: ``("fold, seed", xs, ys)`` over the pairs both have, or,
    when they share no seed (models trained with other seed lists), ``("fold", ...)`` over each fold's mean over the
    model's seeds: the folds are the same test sets, the seeds are not the same runs."""
    mine = {(s["fold"], s["seed"]): s[metric] for s in a}
    theirs = {(s["fold"], s["seed"]): s[metric] for s in b}
    shared = sorted(set(mine) & set(theirs))
    if shared or not mine or not theirs:
        return "fold, seed", [mine[k] for k in shared], [theirs[k] for k in shared]
    by_fold = [pd.Series(x).groupby(level=0).mean() for x in (mine, theirs)]
    folds = sorted(set(by_fold[0].index) & set(by_fold[1].index))
    return "fold", [float(by_fold[0][f]) for f in folds], [float(by_fold[1][f]) for f in folds]


# --------------------------------------------------------------------------------- one protocol


def _group_key(result: Mapping[str, Any]) -> str:
    return result["protocol"]


def common_set(entries: Sequence[Entry]) -> dict[int, set[str]]:
    """Per fold, the test utterances every entry scored (a model scores the same ones with each of its seeds)."""
    common: dict[int, set[str]] = {}
    folds = sorted({int(f) for e in entries for f in e.predictions["fold"].unique()})
    for fold in folds:
        sets = [set(e.predictions.loc[e.predictions["fold"] == fold, "utt_id"]) for e in entries]
        common[fold] = set.intersection(*sets) if sets else set()
    return common


def _test_drops(result: Mapping[str, Any]) -> dict[int, int]:
    """Per fold, the test utterances the model itself dropped (no features, no label, refused by prepare())."""
    return {int(f["fold"]): int((f.get("dropped") or {}).get("test", 0)) for f in result["folds"]}


def _model_row(entry: Entry, common: Mapping[int, set[str]], figures: Mapping[str, Any], wer: Mapping | None) -> dict:
    """One model's row before ranking: its scores on the common set and on its own utterances, and the counts."""
    r, preds = entry.result, entry.predictions
    own = {(int(f), u) for f, u in zip(preds["fold"], preds["utt_id"], strict=True)}
    keep = {(f, u) for f, utts in common.items() for u in utts}
    common_scores = fold_seed_scores(preds, r["labels"], keep)
    own_scores = fold_seed_scores(preds, r["labels"])
    own_agg = aggregate(own_scores)
    for m in METRICS:  # the predictions are what the result was computed from: a difference is worth a warning
        if own_agg[m] is not None and not math.isclose(own_agg[m], r[m], rel_tol=1e-9, abs_tol=1e-12):
            entry.warnings.append(
                f"{entry.run}: {m} recomputed from its predictions {own_agg[m]:.6f} != result's {r[m]:.6f}"
            )
    dropped = sum(_test_drops(r).values())
    paper = paper_figure(figures, r) if figures else {}
    source = (figures or {}).get("sources", {}).get(paper.get("source"), {})
    text = reads_text(r)
    params = r.get("parameters")
    return {
        "protocol": r["protocol"],
        "model": r["model"],
        "run": entry.run,
        "family": r.get("family"),
        "text_source": r.get("text_source"),
        "reads_text": text,
        "asr_wer": (wer or {}).get("wer") if text and r.get("text_source") == "asr" else None,
        "folds": r["n_folds"],
        "seeds": len(r["seeds"]),
        "common_n": len(keep),
        **aggregate(common_scores),
        "own_n": len(own),
        **{f"own_{m}": own_agg[m] for m in METRICS},
        "test_utterances": len(own) + dropped,
        "dropped": dropped,
        "not_common": len(own - keep),
        "parameters": params.get("total") if isinstance(params, Mapping) else params,
        "train_s": entry.train_s,
        "paper_wa": paper.get("wa"),
        "paper_ua": paper.get("ua"),
        "paper_source": f"{source['paper']}, {paper['table']}, row {paper['row']}" if paper and source else None,
        "paper_comparable": (r.get("paper") or {}).get("comparable") if paper else None,
        "reduced": _reduced(r),
        "stand_in": stand_ins(r),
        "scores": common_scores,
        "own_scores": own_scores,
    }


def compare_protocol(
    entries: Sequence[Entry],
    figures: Mapping[str, Any] | None = None,
    wer: Mapping[str, Any] | None = None,
    alpha: float = ALPHA,
    correction: str = "holm",
) -> dict[str, Any]:
    """The comparison of the entries of one protocol: the common set and its counts, one row per model ranked by
    common-set UA, each against the best (``vs_best``), and every pair of models by a paired test per metric."""
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}: one of {sorted(CORRECTIONS)}")
    _check_same_setting(entries)
    common = common_set(entries)
    rows = [_model_row(e, common, figures or {}, wer) for e in entries]
    rows.sort(key=lambda row: (-(row[RANKED_BY] if row[RANKED_BY] is not None else -math.inf), row["run"]))
    _label(rows)
    best = rows[0]
    vs_best = {row["run"]: _test(row, best, alpha) for row in rows[1:]}
    adjusted = dict(zip(vs_best, _adjust([t["p"] for t in vs_best.values()], correction), strict=True))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
        test = vs_best.get(row["run"])
        row["pairing"] = test["pairing"] if test else None
        row["pairs_vs_best"] = test["n"] if test else None
        row["p_vs_best"] = test["p"] if test else None
        row["p_vs_best_adjusted"] = adjusted.get(row["run"])
        row["wilcoxon_p_vs_best"] = test["wilcoxon_p"] if test else None
        row["vs_best"] = BEST if row is best else _verdict(adjusted[row["run"]], alpha)
    first = entries[0].result
    union = {(f, u) for e in entries for f, u in zip(e.predictions["fold"], e.predictions["utt_id"], strict=True)}
    keep = {(f, u) for f, utts in common.items() for u in utts}
    return {
        "protocol": first["protocol"],
        "speaker_independent": first.get("speaker_independent"),
        "labels": list(first["labels"]),
        "folds": sorted(common),
        "common": {
            "n": len(keep),
            "per_fold": {str(f): len(u) for f, u in sorted(common.items())},
            "scored_by_any": len(union),
            "excluded": _excluded(entries, union - keep),
        },
        "best": best["run"],
        "rows": rows,
        "pairs": _all_pairs(rows, alpha),
        "warnings": [w for e in entries for w in e.warnings] + _count_warnings(rows),
    }


def _label(rows: list[dict[str, Any]]) -> None:
    """A row's name in the tables and the plot: the model, with its text source where the protocol has the model
    twice (a gold and an ASR run); the run name where even that is not unique."""
    counts: dict[tuple[str, ...], int] = {}
    for row in rows:
        for key in ((row["model"],), (row["model"], str(row["text_source"]))):
            counts[key] = counts.get(key, 0) + 1
    for row in rows:
        if counts[(row["model"],)] == 1:
            row["label"] = row["model"]
        elif counts[(row["model"], str(row["text_source"]))] == 1:
            row["label"] = f"{row['model']} ({row['text_source']})"
        else:
            row["label"] = row["run"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _check_same_setting(entries: Sequence[Entry]) -> None:
    """One protocol's results must share the classes, their merge, and one result per run."""
    if not entries:
        raise ValueError("no results to compare")
    first = entries[0].result
    for e in entries[1:]:
        for key in ("labels", "label_merge"):
            if (e.result.get(key) or None) != (first.get(key) or None):
                raise ValueError(f"{e.run} and {entries[0].run}: different {key}, not comparable")
    runs = [e.run for e in entries]
    twice = sorted({r for r in runs if runs.count(r) > 1})
    if twice:
        raise ValueError(f"two results named {', '.join(twice)}")


def _test(row: Mapping[str, Any], best: Mapping[str, Any], alpha: float) -> dict[str, Any]:
    pairing, xs, ys = matched(row["scores"], best["scores"], RANKED_BY)
    return {"pairing": pairing, **paired_test(xs, ys, alpha)}


def _adjust(pvalues: Sequence[float | None], correction: str) -> list[float | None]:
    return holm(pvalues) if correction == "holm" else list(pvalues)


def _verdict(p: float | None, alpha: float) -> str:
    if p is None:
        return UNTESTED
    return LOWER if p < alpha else SAME


def _all_pairs(rows: Sequence[Mapping[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Every pair (higher-ranked model first), per metric: the paired test, unadjusted (read each as one test)."""
    pairs = []
    for a, b in itertools.combinations(rows, 2):
        entry: dict[str, Any] = {"model": a["run"], "reference": b["run"]}
        for m in METRICS:
            pairing, xs, ys = matched(a["scores"], b["scores"], m)
            test = paired_test(xs, ys, alpha, wilcoxon=m == RANKED_BY)  # Wilcoxon's is slow: the ranked score only
            entry[m] = {k: test[k] for k in ("n", "mean_difference", "t", "df", "p", "significant", "wilcoxon_p")}
            entry["pairing"] = pairing
        pairs.append(entry)
    return pairs


def _excluded(entries: Sequence[Entry], left_out: set[tuple[int, str]]) -> list[dict[str, Any]]:
    """Each utterance left out of the common set: its fold and the models that did not score it."""
    scored = {e.run: set(zip(e.predictions["fold"], e.predictions["utt_id"], strict=True)) for e in entries}
    return [
        {"fold": int(f), "utt_id": u, "missing_from": [run for run, s in scored.items() if (f, u) not in s]}
        for f, u in sorted(left_out)
    ]


def _count_warnings(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Models of one protocol must have had the same test utterances (scored + dropped), fold by fold."""
    sizes = {row["run"]: row["test_utterances"] for row in rows}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{run} {n}" for run, n in sizes.items())
        return [f"test utterances (scored + dropped) differ between models of one protocol: {shown}"]
    return []


# --------------------------------------------------------------------------------- the whole corpus


def compare(
    entries: Sequence[Entry],
    figures: Mapping[str, Any] | None = None,
    wer: Mapping[str, Any] | None = None,
    alpha: float = ALPHA,
    correction: str = "holm",
    skipped: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The content of ``results/{corpus}_comparison.json``: the settings, the ASR WER, one group per protocol
    (:func:`compare_protocol`; protocols in order of first appearance) and the results left out."""
    if not entries:
        raise ValueError("no categorical results to compare")
    corpora = sorted({e.result["corpus"] for e in entries})
    if len(corpora) > 1:
        raise ValueError(f"results of several corpora ({', '.join(corpora)}): compare one corpus at a time")
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(_group_key(e.result), []).append(e)
    return {
        "format": COMPARISON_FORMAT,
        "corpus": corpora[0],
        "settings": {
            "metric": RANKED_BY,
            "test": "paired_t",
            "description": PAIRED_TESTS["paired_t"],
            "also": f"Wilcoxon signed-rank (two-sided) where there are {WILCOXON_MIN_PAIRS} pairs or more, reported",
            "alpha": alpha,
            "sides": 2,
            "correction": correction,
            "correction_description": CORRECTIONS[correction],
        },
        "asr_wer": dict(wer) if wer else None,
        "groups": [compare_protocol(g, figures, wer, alpha, correction) for g in groups.values()],
        "not_compared": list(skipped),
    }


def leaderboard_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every group's rows, flat (the CSV's rows, the plot's bars), without the per-(fold, seed) scores."""
    return [{k: v for k, v in row.items() if k in COLUMNS} for g in report["groups"] for row in g["rows"]]


# --------------------------------------------------------------------------------- writing


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


def comparison_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([_cell(row.get(c)) for c in COLUMNS] for row in leaderboard_rows(report))
    return out.getvalue()


def comparison_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _score(row: Mapping[str, Any], m: str, several_seeds: bool) -> str:
    if row[m] is None:
        return "—"
    text = f"{row[m]:.3f} ± {row[m + '_fold_std']:.3f}"
    return text + (f" ({row[m + '_seed_std']:.3f})" if several_seeds else "")


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min" if value < 7200 else f"{value / 3600:.1f} h"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.3g}"


MARK = {BEST: "**best**", SAME: "≈", LOWER: "", UNTESTED: "?"}


def _group_markdown(group: Mapping[str, Any], settings: Mapping[str, Any]) -> list[str]:
    rows = group["rows"]
    common = group["common"]
    several_seeds = any(row["seeds"] > 1 for row in rows)
    independent = "" if group["speaker_independent"] is not False else "; **not speaker-independent**"
    per_fold = ", ".join(map(str, common["per_fold"].values()))
    lines = [
        "",
        f"## Protocol `{group['protocol']}` ({_plural(len(group['folds']), 'fold')}{independent})",
        "",
        f"Common test set: **{common['n']}** utterances (per fold: {per_fold}) that all {len(rows)} models scored, "
        f"of {common['scored_by_any']} that any model scored; {len(common['excluded'])} left out because some model "
        "dropped them (listed in the JSON, with the models that lacked each).",
        "",
    ]
    header = [
        "",
        "model",
        "family",
        "text",
        "WER",
        "folds x seeds",
        "n",
        "WA",
        "UA",
        "macro-F1",
        "vs best: p (adj.)",
        "own n",
        "own UA",
        "dropped",
        "not common",
        "params",
        "train time",
        "paper WA / UA",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        text = row["text_source"] if row["reads_text"] else f"— ({row['text_source']})"
        test = "" if row["vs_best"] == BEST else f"{_p(row['p_vs_best'])} ({_p(row['p_vs_best_adjusted'])})"
        if row["vs_best"] == UNTESTED:
            test = f"no test (n = {row['pairs_vs_best']})"
        paper = " / ".join("—" if row[k] is None else f"{row[k]:.3f}" for k in ("paper_wa", "paper_ua"))
        paper = "" if paper == "— / —" else paper
        cells = [
            f"{row['rank']} {MARK[row['vs_best']]}".strip(),
            f"`{row['label']}`"
            + (" (reduced)" if row["reduced"] else "")
            + (" (random-init)" if row["stand_in"] else ""),
            row["family"] or "",
            text,
            "" if row["asr_wer"] is None else f"{row['asr_wer']:.3f}",
            f"{row['folds']} x {row['seeds']}",
            str(row["common_n"]),
            _score(row, "wa", several_seeds),
            _score(row, "ua", several_seeds),
            _score(row, "macro_f1", several_seeds),
            test,
            str(row["own_n"]),
            "—" if row["own_ua"] is None else f"{row['own_ua']:.3f}",
            str(row["dropped"]),
            str(row["not_common"]),
            "" if row["parameters"] is None else f"{row['parameters']:,}",
            _seconds(row["train_s"]),
            paper,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    alpha = settings["alpha"]
    same = [f"`{r['label']}`" for r in rows if r["vs_best"] == SAME]
    untested = [f"`{r['label']}`" for r in rows if r["vs_best"] == UNTESTED]
    lower = [f"`{r['label']}`" for r in rows if r["vs_best"] == LOWER]
    tied = [f"`{r['label']}`" for r in rows[1:] if r["ua"] is not None and r["ua"] == rows[0]["ua"]]
    tie = f" (tied with {', '.join(tied)}; first by run name)" if tied else ""
    sentences = [f"Best on the common set (UA): `{rows[0]['label']}`{tie}."]
    sentences += [f"Not distinguishable from it (≈, adjusted p ≥ {alpha:g}): {', '.join(same)}."] if same else []
    sentences += [f"Lower than it (adjusted p < {alpha:g}): {', '.join(lower)}."] if lower else []
    sentences += [f"No test (?, fewer than 2 matched pairs): {', '.join(untested)}."] if untested else []
    lines += ["", " ".join(sentences)]
    lines += _text_pairs(group)
    if group["warnings"]:
        lines += ["", *(f"> Warning: {w}" for w in group["warnings"])]
    return lines


def _text_pairs(group: Mapping[str, Any]) -> list[str]:
    """Gold and ASR runs of one model, side by side, with the paired test of their UA."""
    by_model: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in group["rows"]:
        if row["reads_text"]:
            by_model.setdefault(row["model"], {})[row["text_source"]] = row
    both = {m: s for m, s in by_model.items() if {"gold", "asr"} <= set(s)}
    if not both:
        return []
    pairs = {(p["model"], p["reference"]): p for p in group["pairs"]}
    lines = ["", "Gold against ASR transcripts (UA on the common set; p: paired t-test, unadjusted):", ""]
    lines += ["| model | gold UA | ASR UA | ASR − gold | WER | p |", "|---|---|---|---|---|---|"]
    for model, sources in both.items():
        gold, asr = sources["gold"], sources["asr"]
        pair = pairs.get((gold["run"], asr["run"])) or pairs.get((asr["run"], gold["run"])) or {}
        wer = "" if asr["asr_wer"] is None else f"{asr['asr_wer']:.3f}"
        lines.append(
            f"| `{model}` | {gold['ua']:.3f} | {asr['ua']:.3f} | {asr['ua'] - gold['ua']:+.3f} | {wer} | "
            f"{_p((pair.get('ua') or {}).get('p'))} |"
        )
    return lines


def comparison_markdown(report: Mapping[str, Any]) -> str:
    """The Markdown page: what was compared and how, then one leaderboard per protocol."""
    s = report["settings"]
    corpus = report["corpus"]
    wer = report.get("asr_wer")
    lines = [
        f"# {corpus}: every model on the same test utterances",
        "",
        "Per protocol, every model is scored again on the test utterances that all its models scored (the common "
        "set), from its per-fold, per-seed test predictions: WA, UA and macro-F1 are means over folds (and seeds) "
        "± the standard deviation over folds (over seeds in brackets when there are several); `own n` and `own UA` "
        "are its score on all the utterances it scored. `dropped`: test utterances the model dropped itself; "
        "`not common`: utterances it scored that another model dropped (own n = n + not common).",
        "",
        f"Which differences are real: a {s['description']} on UA (matched by fold alone where two models share no "
        f"seed), each model against the best, with {s['correction_description']} over those comparisons, alpha "
        f"{s['alpha']:g}. **best**: the highest UA; ≈: not distinguishable from the best; ?: no test possible. "
        f"Every pair and metric, with the Wilcoxon signed-rank test where there are {WILCOXON_MIN_PAIRS} pairs or "
        f"more, in `results/{corpus}_comparison.json`; method and assumptions: `docs/comparison.md`.",
        "",
        "Text: the transcripts the model read (`gold` or `asr`, the result's `text_source`); `— (asr)`: the model "
        "reads no text. WER: "
        + (
            f"the corpus's ASR ({wer.get('name') or 'Whisper'}) word error rate, {wer['wer']:.3f}, beside ASR rows."
            if wer and wer.get("wer") is not None
            else "not available (no `*.wer.json` was given), so the column is empty."
        ),
    ]
    papers = [r for r in leaderboard_rows(report) if r["paper_wa"] is not None or r["paper_ua"] is not None]
    if any(not r["paper_comparable"] for r in papers):
        lines += ["", "> Paper WA / UA: the papers' own figures on their data set, not comparable with this corpus."]
    for group in report["groups"]:
        lines += _group_markdown(group, s)
    if report["not_compared"]:
        lines += [
            "",
            "Not compared here: " + ", ".join(f"`{x['run']}` ({x['reason']})" for x in report["not_compared"]),
        ]
    return "\n".join(lines) + "\n"


def comparison_html(report: Mapping[str, Any]) -> str:
    """The Markdown page as a self-contained HTML page for ``snakemake --report``."""
    markdown = comparison_markdown(report).splitlines()
    title = markdown[0].removeprefix("# ")
    return (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html><head><meta charset="utf-8"><title>' + html.escape(title) + "</title><style>",
                "body{font-family:sans-serif;font-size:14px;margin:1.2em;color:#222}",
                "table{border-collapse:collapse;margin:0.6em 0 1.2em}",
                "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}",
                "th{background:#f0f0f0}td:nth-child(2),th:nth-child(2){text-align:left}",
                ".note{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px}",
                "</style></head><body>",
                f"<h2>{html.escape(title)}</h2>",
                *markdown_html(markdown[1:]),
                "</body></html>",
            ]
        )
        + "\n"
    )


def write_comparison(report: Mapping[str, Any], markdown: Path, table: Path, data: Path) -> None:
    """The three files, each written atomically (:mod:`serflow.io`)."""
    from serflow.io import write_text

    write_text(comparison_markdown(report), markdown)
    write_text(comparison_csv(report), table)
    write_text(comparison_json(report), data)
