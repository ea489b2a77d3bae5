"""The report's tables, computed from the workflow's outputs (never from anything else).

* :func:`summary_rows`: one row per model (``results/{corpus}_{model}.json``) with WA, UA, their
  standard deviations over folds and over seeds, and the paper's figure beside it where a paper gives one
  (``paper_figures.yaml``), written by :func:`summary_markdown` / :func:`summary_csv`;
* :func:`fold_rows`: WA / UA / macro-F1 per model and fold;
* :func:`frontend_summary`: manifest counts, ASR WER, alignment failures, feature stores;
* :func:`benchmark_table`: runtime and memory per rule from the ``benchmark:`` files;
* :func:`mean_history` and :func:`prediction_pairs`: the data files ``dvc plots`` draws.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from serflow.report.figures import comparable
from serflow.report.significance import significance_columns, significance_legend, significance_marks

SUMMARY_COLUMNS = (
    "model",
    "family",
    "text_source",
    "folds",
    "seeds",
    "n",
    "dropped",
    "wa",
    "wa_fold_std",
    "wa_seed_std",
    "ua",
    "ua_fold_std",
    "ua_seed_std",
    "macro_f1",
    "paper_wa",
    "paper_ua",
    "paper_dataset",
    "paper_row",
    "paper_source",
    "reduced",
    "stand_in",
)
FOLD_COLUMNS = ("model", "text_source", "protocol", "fold", "test_group", "n", "wa", "ua", "macro_f1", "paper_wa")
DIMENSION_COLUMNS = (
    "model",
    "text_source",
    "task",
    "loss",
    "dimension",
    "protocol",
    "folds",
    "seeds",
    "n",
    "dropped",
    "ccc",
    "ccc_fold_std",
    "ccc_seed_std",
    "pearson",
    "mse",
    "pooled_ccc",
    "paper_ccc",
    "paper_ccc_sd",
    "paper_source",
    "reduced",
)
HISTORY_COLUMNS = ("train_loss", "val_loss", "val_wa", "val_ua")


# --------------------------------------------------------------------------------- paper figures


# --------------------------------------------------------------------------------- per model


def is_dimensional(result: Mapping[str, Any]) -> bool:
    """Whether a result is a regression of emotion dimensions (``model@task``) rather than the categorical task."""
    return (result.get("task") or {}).get("name", "categorical") != "categorical"


def _reduced(result: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((result.get("reduced") or {}).items()))


def stand_ins(result: Mapping[str, Any]) -> str:
    """The random-init stand-ins a result ran on instead of the pretrained model it names (offline builds, e.g.
    WavFusion's tiny wav2vec 2.0: ``fold_fit.<part>.random_init``), comma-separated; "" when none. Its numbers are
    the pipeline's, not the model's."""
    found = {
        str(record.get("model") or part)
        for fold in result.get("folds") or []
        for part, record in (fold.get("fold_fit") or {}).items()
        if isinstance(record, Mapping) and record.get("random_init")
    }
    return ", ".join(sorted(found))


def paper_figure(figures: Mapping[str, Any], result: Mapping[str, Any]) -> Mapping[str, Any]:
    """The paper's entry for a result (``{}`` if none): an entry that names its ``protocol`` (MultiModal-ER's random
    split) stands beside that protocol's row only."""
    paper = figures["models"].get(result["model"], {})
    if paper.get("protocol") and paper["protocol"] != result.get("protocol"):
        return {}
    return paper


def run_labels(results: Iterable[Mapping[str, Any]]) -> set[str]:
    """The models that have results on more than one text source (a gold and an ASR run, train.text_sources):
    their rows, marks and plot labels say which (:func:`run_label`)."""
    sources: dict[str, set[Any]] = {}
    for r in results:
        sources.setdefault(r["model"], set()).add(r.get("text_source"))
    return {model for model, found in sources.items() if len(found) > 1}


def run_label(model: str, text_source: Any, twice: set[str]) -> str:
    """``bert`` where the model has one text source in these results, ``bert (asr)`` where it has two."""
    return f"{model} ({text_source})" if model in twice else model


def label_tests(tests: Iterable[Mapping[str, Any]], results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The significance entries with the ``label`` of their model's row (:func:`run_label`), which the marks and
    the CSV's columns are keyed by: a gold and an ASR run of one model keep their own marks."""
    twice = run_labels(results)
    return [{**t, "label": run_label(t["model"], t.get("text_source"), twice)} for t in tests]


def summary_rows(results: Sequence[Mapping[str, Any]], figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per categorical result file, in the order given, with the paper's figure where there is one
    (the dimensional results: :func:`dimension_rows`)."""
    rows = []
    twice = run_labels(results)
    for r in results:
        if is_dimensional(r):
            continue
        paper = paper_figure(figures, r)
        source = figures["sources"].get(paper.get("source"), {})
        rows.append(
            {
                "model": r["model"],
                "label": run_label(r["model"], r["text_source"], twice),
                "family": r["family"],
                "text_source": r["text_source"],
                "protocol": r["protocol"],
                "folds": r["n_folds"],
                "seeds": len(r["seeds"]),
                "n": r["utterances"]["used"],
                "dropped": r["utterances"]["dropped"],
                "wa": r["wa"],
                "wa_fold_std": r["fold_std"]["wa"],
                "wa_seed_std": r["wa_std"],
                "ua": r["ua"],
                "ua_fold_std": r["fold_std"]["ua"],
                "ua_seed_std": r["ua_std"],
                "macro_f1": r["macro_f1"],
                "paper_wa": paper.get("wa"),
                "paper_ua": paper.get("ua"),
                "paper_dataset": source.get("dataset"),
                "paper_row": paper.get("row"),
                "paper_source": f"{source['paper']}, {paper['table']}" if paper else None,
                "paper_decimals": source.get("decimals", 3),
                "reduced": _reduced(r),
                "stand_in": stand_ins(r),
            }
        )
    return rows


def dimension_rows(results: Sequence[Mapping[str, Any]], figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per dimension of each dimensional result (``model@task``): CCC (mean over folds and seeds, its std
    over folds and over seeds), Pearson's r, MSE, the CCC of all folds' predictions pooled, the paper's CCC."""
    rows = []
    twice = run_labels(results)
    for r in results:
        if not is_dimensional(r):
            continue
        paper = figures["models"].get(r["model"], {})
        source = figures["sources"].get(paper.get("source"), {})
        task = r["task"]
        for dim in task["outputs"]:
            rows.append(
                {
                    "model": r["model"],
                    "label": run_label(r["model"], r.get("text_source"), twice),
                    "text_source": r.get("text_source"),
                    "family": r["family"],
                    "task": task["name"],
                    "loss": task["loss"],
                    "dimension": dim,
                    "protocol": r["protocol"],
                    "folds": r["n_folds"],
                    "seeds": len(r["seeds"]),
                    "n": r["utterances"]["used"],
                    "dropped": r["utterances"]["dropped"],
                    "ccc": r[f"ccc_{dim}"],
                    "ccc_fold_std": r["fold_std"][f"ccc_{dim}"],
                    "ccc_seed_std": r[f"ccc_{dim}_std"],
                    "pearson": r[f"pearson_{dim}"],
                    "mse": r[f"mse_{dim}"],
                    "pooled_ccc": r["pooled"][f"ccc_{dim}"],
                    "paper_ccc": (paper.get("ccc") or {}).get(dim),
                    "paper_ccc_sd": (paper.get("ccc_sd") or {}).get(dim),
                    "paper_source": f"{source['paper']}, {paper['table']}" if paper else None,
                    "reduced": _reduced(r),
                }
            )
    return rows


def dimensions_markdown(
    rows: Sequence[Mapping[str, Any]], significance: Sequence[Mapping[str, Any]] | None
) -> list[str]:
    """The dimensional table: one line per run and dimension, CCC ± std over folds (over seeds in brackets)."""
    if not rows:
        return []
    marks = significance_marks(significance or [], metric="ccc")
    several_seeds = any(row["seeds"] > 1 for row in rows)
    lines = [
        "",
        "## Emotion dimensions",
        "",
        "CCC per dimension (mean over folds and seeds ± std over folds; over seeds in brackets), Pearson's r, MSE "
        "on the corpus's scale, and the CCC of all test predictions pooled. `@vad`: one model for the three "
        "dimensions, mean-CCC loss; `@arousal` etc.: one model per dimension, MSE loss. Marks on a run's mean CCC.",
        "",
    ]
    header = ["run", "dimension", "protocol: folds x seeds", "n", "CCC", "r", "MSE", "pooled CCC", "paper CCC"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        ccc = f"{row['ccc']:.3f} ± {row['ccc_fold_std']:.3f}" + (
            f" ({row['ccc_seed_std']:.3f})" if several_seeds else ""
        )
        paper = "" if row["paper_ccc"] is None else f"{row['paper_ccc']:.3f} ({row['paper_ccc_sd']:.3f})"
        cells = [
            f"`{row['label']}`" + (" (reduced)" if row["reduced"] else "") + marks.get(row["label"], ""),
            row["dimension"],
            f"{row['protocol']}: {row['folds']} x {row['seeds']}",
            str(row["n"]) + (f" ({row['dropped']} dropped)" if row["dropped"] else ""),
            ccc,
            f"{row['pearson']:.3f}",
            f"{row['mse']:.3f}",
            f"{row['pooled_ccc']:.3f}",
            paper,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _protocol_notes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """What the summary says about the protocols: a split that is not speaker-independent, and the leakage check of
    every fold (the same audio, by sha256 or by file name, in two of train / validation / test)."""
    lines: list[str] = []
    dependent = sorted({r["protocol"] for r in results if r.get("speaker_independent") is False})
    if dependent:
        lines += [
            "",
            f"> {', '.join(f'`{p}`' for p in dependent)}: **not speaker-independent** (the same speakers, on TESS the "
            "same words too, in training and test), so its scores are optimistic; a speaker-independent protocol's "
            "rows beside it say by how much.",
        ]
    checked = [r for r in results if (r.get("leakage") or {}).get("identical_audio") is not None]
    if checked:
        counts = sorted({(r["protocol"], r["leakage"]["identical_audio"], r["leakage"]["same_name"]) for r in checked})
        shown = "; ".join(f"`{p}`: {a} identical audio, {n} same name" for p, a, n in counts)
        lines += [
            "",
            "Leakage check (utterances of a fold whose audio is byte-identical to, or has the file name of, one in "
            f"another of its splits; the most in any fold): {shown}.",
        ]
    return lines


def _fold_comparison(results: Sequence[Mapping[str, Any]], figures: Mapping[str, Any]) -> list[str]:
    """WA per fold, ours beside the paper's, for the models whose paper prints them (GBAN's Tables 1-2)."""
    lines: list[str] = []
    for r in results:
        entry = figures["models"].get(r["model"]) or {}
        paper = entry.get("folds_wa")
        if not paper:
            continue
        if not lines:
            lines = ["", "WA per fold, ours / the paper's (the paper prints these for its own folds):", ""]
            n = max(len(x["folds"]) for x in results)
            lines += ["| model | " + " | ".join(f"fold {k}" for k in range(1, n + 1)) + " |"]
            lines += ["|" + "|".join("---" for _ in range(n + 1)) + "|"]
        ours = {f["fold"]: f["wa"] for f in r["folds"]}
        cells = [f"{ours[k]:.3f} / {v:.4f}" if k in ours else f"- / {v:.4f}" for k, v in enumerate(paper, start=1)]
        lines.append(f"| `{r['model']}` | " + " | ".join(cells) + " |")
    return lines


def _cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_csv(rows: Sequence[Mapping[str, Any]], significance: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The rows as CSV (4 decimals; an empty cell where a paper gives no figure); with ``significance``
    (:func:`serflow.report.significance.reference_tests`), each reference model and its p-values after them."""
    extra, values = significance_columns(significance) if significance is not None else ([], {})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*SUMMARY_COLUMNS, *extra])
    for row in rows:
        mine = values.get(row.get("label", row["model"]), {})
        writer.writerow([_cell(row[c]) for c in SUMMARY_COLUMNS] + [_cell(mine.get(c)) for c in extra])
    return out.getvalue()


def summary_markdown(
    rows: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    corpus_spec: Mapping[str, Any],
    figures: Mapping[str, Any],
    significance: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """A Markdown page: what was run, the table, and where each paper figure comes from; with ``significance``
    (:func:`serflow.report.significance.reference_tests`), WA and UA (a dimensional run's mean CCC) marked where
    they differ from a reference model. ``rows``: :func:`summary_rows`; the dimensional results' table comes after."""
    if not results:
        raise ValueError("no result files to summarise")
    first = results[0]
    corpus = first["corpus"]
    merge = ", ".join(f"{k} -> {v}" for k, v in (first.get("label_merge") or {}).items()) or "none"
    protocols = sorted({r["protocol"] for r in results})
    seeds = sorted({len(r["seeds"]) for r in results})
    lines = [
        f"# {corpus}: WA / UA per model",
        "",
        f"Protocol {' / '.join(f'`{p}`' for p in protocols)}"
        + (f" ({first['n_folds']} folds)" if len(protocols) == 1 else " (per row)")
        + f", classes {', '.join(first['labels'])} (merge: {merge}), "
        + (f"seeds {', '.join(map(str, first['seeds']))}" if len(seeds) == 1 else "seeds per row")
        + ". WA = overall accuracy, UA = mean per-class recall: means over folds (and seeds), ± the standard "
        "deviation over folds; over seeds in brackets when there are several. Definitions: `docs/results.md`.",
        "",
    ]
    dims = dimension_rows(results, figures)
    runs = list(dict.fromkeys(r["model"] for r in results))  # a model under several protocols: once
    sources_used = {figures["models"][m]["source"] for m in runs if m in figures["models"]}
    if corpus_spec.get("synth"):
        lines += [
            f"> **Not comparable with the papers.** `{corpus}` is the synthetic demo corpus (espeak-ng speech); "
            "the paper columns are the papers' own figures on their data set (named in the table), shown "
            "for reference only.",
            "",
        ]
    elif any(not comparable(corpus_spec, figures["sources"][s]) for s in sources_used):
        lines += ["> The paper columns are on the data set named in the table, not necessarily this corpus.", ""]
    several_seeds = any(row["seeds"] > 1 for row in rows)

    def score(row: Mapping[str, Any], key: str) -> str:
        text = f"{row[key]:.3f} ± {row[key + '_fold_std']:.3f}"
        return text + (f" ({row[key + '_seed_std']:.3f})" if several_seeds else "")

    def marks_of(metric: str) -> dict[str, dict[str, str]]:
        """``{protocol: {model: marks}}`` of one score (one protocol: every test, however it is labelled)."""
        tests = list(significance or [])
        if len(protocols) == 1:
            return {p: significance_marks(tests, metric=metric) for p in protocols}
        return {p: significance_marks((t for t in tests if t.get("protocol") == p), metric=metric) for p in protocols}

    wa_marks, ua_marks = marks_of("wa"), marks_of("ua")
    header = ["model", "text", "folds x seeds", "n", "WA", "UA", "macro-F1", "paper WA", "paper UA", "paper"]
    if rows:
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        paper = f"{row['paper_dataset']}, {row['paper_row']}" if row["paper_source"] else ""
        cells = [
            f"`{row['model']}`"
            + (" (reduced)" if row["reduced"] else "")
            + (" (random-init)" if row["stand_in"] else ""),
            row["text_source"],
            (f"{row['protocol']}: " if len(protocols) > 1 else "") + f"{row['folds']} x {row['seeds']}",
            str(row["n"]) + (f" ({row['dropped']} dropped)" if row["dropped"] else ""),
            score(row, "wa") + wa_marks[row["protocol"]].get(row["label"], ""),
            score(row, "ua") + ua_marks[row["protocol"]].get(row["label"], ""),
            f"{row['macro_f1']:.3f}",
            _cell(row["paper_wa"], row["paper_decimals"]),
            _cell(row["paper_ua"], row["paper_decimals"]),
            paper,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _protocol_notes(results)
    lines += dimensions_markdown(dims, significance)
    if significance is not None:  # the categorical runs' marks are on WA and UA, the dimensional runs' on the mean CCC
        dimensional = {r["model"] for r in results if is_dimensional(r)}
        categorical_tests = [t for t in significance if t["model"] not in dimensional]
        dimension_tests = [t for t in significance if t["model"] in dimensional]
        if categorical_tests or not dimension_tests:
            lines += ["", *significance_legend(categorical_tests, corpus, marked=("wa", "ua"))]
        if dimension_tests:
            lines += ["", *significance_legend(dimension_tests, corpus, metric="ccc")]
    lines += _fold_comparison([r for r in results if not is_dimensional(r)], figures)
    for key in sorted(sources_used):
        source = figures["sources"][key]
        details = "; ".join(filter(None, (source.get("dataset"), source.get("labels"), source.get("protocol"))))
        lines += ["", f"Paper figures from {source['paper']} ({details}; `serflow/report/paper_figures.yaml`):"]
        for run in runs:
            entry = figures["models"].get(run)
            if entry and entry["source"] == key:
                note = f"; {entry['note']}" if entry.get("note") else ""
                lines.append(f'- `{run}`: {entry["table"]}, row "{entry["row"]}"{note}.')
    random_init = {r["model"]: stand_ins(r) for r in results if stand_ins(r)}
    if random_init:
        lines += [
            "",
            "Random-init stand-ins (no pretrained weights offline: these rows test the pipeline, not the model):",
        ]
        lines += [f"- `{run}`: {text}" for run, text in random_init.items()]
    reduced = {r["model"]: _reduced(r) for r in results if r.get("reduced")}
    if reduced:
        lines += ["", "Reduced settings (this corpus's, not the paper's; `corpora.<corpus>.families` in the config):"]
        lines += [f"- `{run}`: {text}" for run, text in reduced.items()]
    missing = [run for run in runs if run not in figures["models"]]
    if missing:
        lines += ["", "No paper figure for: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(lines) + "\n"


def summary_html(
    rows: Sequence[Mapping[str, Any]],
    folds: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    corpus_spec: Mapping[str, Any],
    figures: Mapping[str, Any],
    significance: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """A small self-contained HTML page for the report: the summary, then WA / UA per fold."""
    markdown = summary_markdown(rows, results, corpus_spec, figures, significance).splitlines()
    title = markdown[0].removeprefix("# ")
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>' + html.escape(title) + "</title><style>",
        "body{font-family:sans-serif;font-size:14px;margin:1.2em;color:#222}",
        "table{border-collapse:collapse;margin:0.6em 0 1.2em}",
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}",
        "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}",
        ".note{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px}",
        ".paper{color:#555}",
        "</style></head><body>",
        f"<h2>{html.escape(title)}</h2>",
    ]
    parts += markdown_html(markdown[1:])
    table = pd.DataFrame(folds)
    if not table.empty:
        groups = sorted(table["test_group"].astype(str).unique())  # protocols' folds apart (Ses01 / Ses01F)
        parts.append("<h3>Per test fold (WA / UA)</h3><table><tr><th>model</th>")
        parts += [f"<th>{html.escape(g)}</th>" for g in groups]
        parts.append("</tr>")
        for model in dict.fromkeys(table["label"]):  # a gold and an ASR run of one model: two rows
            mine = table[table["label"] == model].set_index("test_group")
            cells = [f"{mine.at[g, 'wa']:.3f} / {mine.at[g, 'ua']:.3f}" if g in mine.index else "" for g in groups]
            parts.append(f"<tr><td>{html.escape(model)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def markdown_html(lines: Sequence[str]) -> list[str]:
    """The summary's Markdown as HTML: headings, notes (``>``), tables (``|``), lists (``-``) and paragraphs."""
    parts: list[str] = []
    block: str | None = None  # the open element: "table" or "ul"
    for line in lines:
        kind = "table" if line.startswith("|") else "ul" if line.startswith("- ") else None
        if block and kind != block:
            parts.append(f"</{block}>")
            block = None
        if kind == "table":
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            tag = "td" if block else "th"
            if not block:
                parts.append("<table>")
                block = "table"
            parts.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in cells) + "</tr>")
        elif kind == "ul":
            if not block:
                parts.append("<ul>")
                block = "ul"
            parts.append(f"<li>{_inline(line[2:])}</li>")
        elif line.startswith("## "):
            parts.append(f"<h3>{_inline(line[3:])}</h3>")
        elif line.startswith("> "):
            parts.append(f'<p class="note">{_inline(line[2:])}</p>')
        elif line:
            parts.append(f"<p>{_inline(line)}</p>")
    if block:
        parts.append(f"</{block}>")
    return parts


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML, everything else escaped."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def fold_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """WA / UA / macro-F1 (means over seeds) per categorical model and fold, and the paper's WA of that fold where
    printed."""
    rows = []
    results = list(results)
    twice = run_labels(results)
    for r in results:
        if is_dimensional(r):
            continue
        paper = ((r.get("paper") or {}).get("folds_wa")) or []
        for f in r["folds"]:
            rows.append(
                {
                    "model": r["model"],
                    "label": run_label(r["model"], r.get("text_source"), twice),
                    "text_source": r.get("text_source"),
                    "protocol": r["protocol"],
                    "fold": f["fold"],
                    "test_group": f["test_group"],
                    "n": f["n"],
                    "wa": f["wa"],
                    "ua": f["ua"],
                    "macro_f1": f["macro_f1"],
                    "paper_wa": paper[f["fold"] - 1] if 0 < f["fold"] <= len(paper) else None,
                }
            )
    return rows


def rows_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_cell(row[c]) for c in columns] for row in rows)
    return out.getvalue()


# --------------------------------------------------------------------------------- training curves, predictions


def read_histories(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Every fold's ``history.tsv``, with a ``fold`` column taken from the ``fold{k}`` folder name."""
    frames = []
    for path in paths:
        match = re.search(r"fold(\d+)$", Path(path).parent.name)
        frame = pd.read_csv(path, sep="\t")
        frame.insert(0, "fold", int(match[1]) if match else len(frames))
        frames.append(frame)
    if not frames:
        raise ValueError("no history.tsv files")
    return pd.concat(frames, ignore_index=True)


def mean_history(history: pd.DataFrame) -> pd.DataFrame:
    """Per epoch: the mean over the runs (folds x seeds) that reached it, and how many did (``runs``), of the
    losses and validation scores (UA, WA; a regression's CCC per dimension and their mean).

    Early stopping ends runs at different epochs, so late epochs average fewer runs.
    """
    grouped = history.groupby("epoch", sort=True)
    columns = [c for c in HISTORY_COLUMNS if c in history] + [
        c for c in history.columns if c.startswith("val_ccc") and c not in HISTORY_COLUMNS
    ]
    table = grouped[columns].mean()
    table.insert(0, "runs", grouped.size())
    return table.reset_index()


def regression_pairs(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """``dimension, actual, predicted`` per test utterance, seed and dimension over all folds (a regression run's
    ``predictions.parquet`` holds ``true_<dim>`` and ``pred_<dim>``), what ``dvc plots`` draws as a scatter."""
    frames = []
    for path in paths:
        table = pd.read_parquet(path)
        for dim in (c.removeprefix("true_") for c in table.columns if c.startswith("true_")):
            frames.append(
                pd.DataFrame(
                    {
                        "utt_id": table["utt_id"],
                        "seed": table["seed"],
                        "dimension": dim,
                        "actual": table[f"true_{dim}"].astype(float),
                        "predicted": table[f"pred_{dim}"].astype(float),
                    }
                )
            )
    if not frames:
        raise ValueError("no regression predictions (true_<dimension> columns)")
    table = pd.concat(frames, ignore_index=True).sort_values(["dimension", "utt_id", "seed"], kind="stable")
    return table[["dimension", "actual", "predicted"]].reset_index(drop=True)


def prediction_pairs(paths: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """``actual, predicted`` per test utterance and seed, over all folds (what DVC's confusion template counts)."""
    frames = [pd.read_parquet(p, columns=["utt_id", "seed", "label", "prediction"]) for p in paths]
    if not frames:
        raise ValueError("no predictions.parquet files")
    table = pd.concat(frames, ignore_index=True).sort_values(["utt_id", "seed"], kind="stable")
    return table.rename(columns={"label": "actual", "prediction": "predicted"})[["actual", "predicted"]]


# --------------------------------------------------------------------------------- speech front-end


def frontend_summary(
    corpus: str,
    manifest: pd.DataFrame,
    wer: Mapping[str, Any],
    asr_name: str,
    alignments: Mapping[str, Mapping[str, Any]],
    stores: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Counts of the stages before training, small enough to diff (DVC metrics) and to plot.

    ``alignments``: ``{"kaldi-gold": summary.json, ...}``; ``stores``: ``{feature: manifest.json}``.
    """
    labelled = manifest["label"].dropna()
    align = {}
    for name, s in alignments.items():
        align[name] = {
            "utterances": s["utterances"],
            "aligned": s["aligned"],
            "failed": s["failed"],
            "failure_reasons": dict(sorted((s.get("failure_reasons") or {}).items())),
            "oov_words": s.get("oov_words", 0),
            "words": s.get("words"),
            "phones": s.get("phones"),
        }
    features = {}
    for feature, m in stores.items():
        counts = m.get("meta", {}).get("counts", {})
        features[feature] = {
            "version": m.get("version"),
            "stored": counts.get("stored"),
            "dropped": counts.get("dropped"),
            "dropped_by_reason": dict(sorted((counts.get("dropped_by_reason") or {}).items())),
        }
    return {
        "corpus": corpus,
        "manifest": {
            "utterances": len(manifest),
            "labelled": len(labelled),
            "classes": {str(k): int(v) for k, v in sorted(labelled.value_counts().items())},
            "sessions": int(manifest["session"].nunique()) if "session" in manifest else None,
            "speakers": int(manifest["speaker"].nunique()) if "speaker" in manifest else None,
        },
        "asr": {
            "name": asr_name,
            "wer": wer["overall"]["wer"],
            "utterances": wer["overall"]["utterances"],
            "reference_words": wer["overall"]["reference_words"],
            "per_session": {str(k): v["wer"] for k, v in sorted(wer.get("per_session", {}).items())},
        },
        "align": align,
        "features": features,
    }


# --------------------------------------------------------------------------------- runtime


_WILDCARD = re.compile(r"\{\s*(?P<name>\w+?)\s*(?:,\s*(?P<constraint>(?:[^{}]+|\{\d+(?:,\d*)?\})*))?\s*\}")


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A Snakemake file pattern (``logs/{corpus,demo|tess}/x{n,\\d+}.tsv``) as a regex with named groups.

    As Snakemake reads it: a wildcard without constraint matches ``.+``; a repeated wildcard must match the
    same text again.
    """
    parts, seen, last = [], set(), 0
    for m in _WILDCARD.finditer(pattern):
        parts.append(re.escape(pattern[last : m.start()]))
        name = m["name"]
        if name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>{m['constraint'] or '.+'})")
        last = m.end()
    parts.append(re.escape(pattern[last:]))
    return re.compile("".join(parts))


def match_benchmarks(
    files: Iterable[str], patterns: Mapping[str, str], corpus: str | None = None
) -> dict[str, list[str]]:
    """``{rule: [benchmark files]}``: each file matched to the rule whose ``benchmark:`` pattern it fits.

    ``patterns`` are the rules' benchmark patterns (wildcard constraints included, as Snakemake stores
    them). With ``corpus``, only files whose ``{corpus}`` wildcard is that corpus. A file two patterns fit
    goes to the more specific one (more literal characters); files no pattern fits are left out.
    """
    compiled = sorted(
        ((rule, _pattern_regex(p), len(_WILDCARD.sub("", p))) for rule, p in patterns.items()),
        key=lambda x: (-x[2], x[0]),
    )
    matched: dict[str, list[str]] = {}
    for file in sorted(files):
        for rule, regex, _ in compiled:
            m = regex.fullmatch(file)
            if m is None:
                continue
            if corpus is not None and m.groupdict().get("corpus", corpus) != corpus:
                continue
            matched.setdefault(rule, []).append(file)
            break
    return matched


def benchmark_table(by_rule: Mapping[str, Sequence[str | os.PathLike[str]]]) -> pd.DataFrame:
    """Per rule: jobs, total / mean / max wall seconds, CPU seconds and peak memory (MB), slowest first.

    A benchmark file holds one row per repeat; a job counts once, with the mean over its repeats.
    """
    rows = []
    for rule, paths in by_rule.items():
        jobs = []
        for path in paths:
            table = pd.read_csv(path, sep="\t", na_values=["-", "NA"])
            if table.empty:
                continue
            jobs.append(
                {
                    "s": float(table["s"].mean()),
                    "cpu_time": _column(table, "cpu_time").mean(),
                    "max_rss": _column(table, "max_rss").max(),
                }
            )
        if not jobs:
            continue
        frame = pd.DataFrame(jobs)
        rows.append(
            {
                "rule": rule,
                "jobs": len(frame),
                "total_s": frame["s"].sum(),
                "mean_s": frame["s"].mean(),
                "max_s": frame["s"].max(),
                "cpu_s": frame["cpu_time"].sum(min_count=1),
                "max_rss_mb": frame["max_rss"].max(),
            }
        )
    columns = ["rule", "jobs", "total_s", "mean_s", "max_s", "cpu_s", "max_rss_mb"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["total_s", "rule"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _column(table: pd.DataFrame, name: str) -> pd.Series:
    """A numeric benchmark column; NaN where Snakemake could not measure it (or an older file lacks it)."""
    if name not in table:
        return pd.Series([math.nan] * len(table), dtype=float)
    return pd.to_numeric(table[name], errors="coerce")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
