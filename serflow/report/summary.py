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
)
FOLD_COLUMNS = ("model", "fold", "test_group", "n", "wa", "ua", "macro_f1", "paper_wa")
HISTORY_COLUMNS = ("train_loss", "val_loss", "val_wa", "val_ua")


# --------------------------------------------------------------------------------- paper figures


# --------------------------------------------------------------------------------- per model


def summary_rows(results: Sequence[Mapping[str, Any]], figures: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per result file, in the order given, with the paper's figure where there is one."""
    rows = []
    for r in results:
        paper = figures["models"].get(r["model"], {})
        source = figures["sources"].get(paper.get("source"), {})
        rows.append(
            {
                "model": r["model"],
                "family": r["family"],
                "text_source": r["text_source"],
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
                "reduced": ", ".join(f"{k}={v}" for k, v in sorted((r.get("reduced") or {}).items())),
            }
        )
    return rows


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


def summary_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV (4 decimals; an empty cell where a paper gives no figure)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    writer.writerows([_cell(row[c]) for c in SUMMARY_COLUMNS] for row in rows)
    return out.getvalue()


def summary_markdown(
    rows: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    corpus_spec: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> str:
    """A Markdown page: what was run, the table, and where each paper figure comes from."""
    if not results:
        raise ValueError("no result files to summarise")
    first = results[0]
    corpus = first["corpus"]
    merge = ", ".join(f"{k} -> {v}" for k, v in (first.get("label_merge") or {}).items()) or "none"
    lines = [
        f"# {corpus}: WA / UA per model",
        "",
        f"Protocol `{first['protocol']}` ({first['n_folds']} folds), classes {', '.join(first['labels'])} "
        f"(merge: {merge}), seeds {', '.join(map(str, first['seeds']))}. WA = overall accuracy, UA = mean "
        "per-class recall: means over folds (and seeds), ± the standard deviation over folds; over seeds in "
        "brackets when there are several. Definitions: `docs/results.md`.",
        "",
    ]
    sources_used = {figures["models"][r["model"]]["source"] for r in rows if r["model"] in figures["models"]}
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

    header = ["model", "text", "folds x seeds", "n", "WA", "UA", "macro-F1", "paper WA", "paper UA", "paper"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        paper = f"{row['paper_dataset']}, {row['paper_row']}" if row["paper_source"] else ""
        cells = [
            f"`{row['model']}`" + (" (reduced)" if row["reduced"] else ""),
            row["text_source"],
            f"{row['folds']} x {row['seeds']}",
            str(row["n"]) + (f" ({row['dropped']} dropped)" if row["dropped"] else ""),
            score(row, "wa"),
            score(row, "ua"),
            f"{row['macro_f1']:.3f}",
            _cell(row["paper_wa"], row["paper_decimals"]),
            _cell(row["paper_ua"], row["paper_decimals"]),
            paper,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _fold_comparison(results, figures)
    for key in sorted(sources_used):
        source = figures["sources"][key]
        details = "; ".join(filter(None, (source.get("dataset"), source.get("labels"), source.get("protocol"))))
        lines += ["", f"Paper figures from {source['paper']} ({details}; `serflow/report/paper_figures.yaml`):"]
        for row in rows:
            entry = figures["models"].get(row["model"])
            if entry and entry["source"] == key:
                note = f"; {entry['note']}" if entry.get("note") else ""
                lines.append(f'- `{row["model"]}`: {entry["table"]}, row "{entry["row"]}"{note}.')
    reduced = [row for row in rows if row["reduced"]]
    if reduced:
        lines += ["", "Reduced settings (this corpus's, not the paper's; `corpora.<corpus>.families` in the config):"]
        lines += [f"- `{row['model']}`: {row['reduced']}" for row in reduced]
    missing = [row["model"] for row in rows if not row["paper_source"]]
    if missing:
        lines += ["", "No paper figure for: " + ", ".join(f"`{m}`" for m in missing) + "."]
    return "\n".join(lines) + "\n"


def summary_html(
    rows: Sequence[Mapping[str, Any]],
    folds: Sequence[Mapping[str, Any]],
    results: Sequence[Mapping[str, Any]],
    corpus_spec: Mapping[str, Any],
    figures: Mapping[str, Any],
) -> str:
    """A small self-contained HTML page for the report: the summary, then WA / UA per fold."""
    markdown = summary_markdown(rows, results, corpus_spec, figures).splitlines()
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
    for line in markdown[1:]:
        if line.startswith("> "):
            parts.append(f'<p class="note">{_inline(line[2:])}</p>')
        elif line and not line.startswith(("|", "- ", "Paper figures from ", "No paper figure")):
            parts.append(f"<p>{_inline(line)}</p>")
    header = ["model", "text", "folds x seeds", "n", "WA", "± fold std", "UA", "± fold std", "macro-F1"]
    header += ["paper WA", "paper UA", "paper row"]
    parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [
            row["model"],
            row["text_source"],
            f"{row['folds']} x {row['seeds']}",
            str(row["n"]),
            f"{row['wa']:.3f}",
            f"{row['wa_fold_std']:.3f}",
            f"{row['ua']:.3f}",
            f"{row['ua_fold_std']:.3f}",
            f"{row['macro_f1']:.3f}",
        ]
        paper = [_cell(row["paper_wa"], 3), _cell(row["paper_ua"], 3)]
        paper.append(f"{row['paper_dataset']}: {row['paper_row']}" if row["paper_source"] else "")
        parts.append(
            "<tr>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + "".join(f'<td class="paper">{html.escape(c)}</td>' for c in paper)
            + "</tr>"
        )
    parts.append("</table>")
    in_list = False
    for line in markdown:
        if line.startswith("Paper figures from ") or line.startswith("No paper figure"):
            parts.append(("</ul>" if in_list else "") + f"<p>{_inline(line)}</p>")
            in_list = False
        elif line.startswith("- "):
            parts.append(("" if in_list else "<ul>") + f"<li>{_inline(line[2:])}</li>")
            in_list = True
    if in_list:
        parts.append("</ul>")
    table = pd.DataFrame(folds)
    if not table.empty:
        groups = table[["fold", "test_group"]].drop_duplicates().sort_values("fold")
        parts.append("<h3>Per test fold (WA / UA)</h3><table><tr><th>model</th>")
        parts += [f"<th>{g.fold}: {html.escape(str(g.test_group))}</th>" for g in groups.itertuples()]
        parts.append("</tr>")
        for model in dict.fromkeys(table["model"]):
            mine = table[table["model"] == model].set_index("fold")
            cells = [
                f"{mine.at[f, 'wa']:.3f} / {mine.at[f, 'ua']:.3f}" if f in mine.index else "" for f in groups["fold"]
            ]
            parts.append(f"<tr><td>{html.escape(model)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Markdown's `code` and **bold** as HTML, everything else escaped."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def fold_rows(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """WA / UA / macro-F1 (means over seeds) per model and fold, and the paper's WA of that fold where printed."""
    rows = []
    for r in results:
        paper = ((r.get("paper") or {}).get("folds_wa")) or []
        for f in r["folds"]:
            rows.append(
                {
                    "model": r["model"],
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
    """Per epoch: the mean over the runs (folds x seeds) that reached it, and how many did (``runs``).

    Early stopping ends runs at different epochs, so late epochs average fewer runs.
    """
    grouped = history.groupby("epoch", sort=True)
    table = grouped[list(HISTORY_COLUMNS)].mean()
    table.insert(0, "runs", grouped.size())
    return table.reset_index()


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
