"""A side-by-side table of result files (``results/{corpus}_{model}.json``), for people and for reports."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

COLUMNS = ("model", "text", "folds x seeds", "WA", "UA", "UA fold std", "n", "dropped")


def load_results(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """The categorical result files, sorted by corpus, then UA (best first); other JSON beside them (the summaries'
    ``{corpus}_significance.json``) and dimensional runs (no UA: ``results/{corpus}_dimensions.csv``) are skipped."""
    results = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    results = [r for r in results if isinstance(r, dict) and {"model", "corpus", "ua"} <= r.keys()]
    return sorted(results, key=lambda r: (r["corpus"], -r["ua"], r["model"]))


def _row(r: dict[str, Any]) -> tuple[str, ...]:
    def score(key: str) -> str:
        spread = f" ± {r[key + '_std']:.3f}" if len(r["seeds"]) > 1 else ""
        return f"{r[key]:.3f}{spread}"

    return (
        r["model"],
        r["text_source"],
        f"{r['n_folds']} x {len(r['seeds'])}",
        score("wa"),
        score("ua"),
        f"{r['fold_std']['ua']:.3f}",
        str(r["utterances"]["used"]),
        str(r["utterances"]["dropped"]),
    )


def results_table(results: list[dict[str, Any]], markdown: bool = False) -> str:
    """WA / UA per model (means over folds, ± std over seeds when there are several), one block per corpus."""
    lines: list[str] = []
    for corpus in dict.fromkeys(r["corpus"] for r in results):
        mine = [r for r in results if r["corpus"] == corpus]
        protocols = list(dict.fromkeys(r["protocol"] for r in mine))
        several = len(protocols) > 1  # a protocol column (a model under several: train.protocols)
        columns = (COLUMNS[0], "protocol", *COLUMNS[1:]) if several else COLUMNS
        rows = [(row[0], r["protocol"], *row[1:]) if several else row for r, row in ((r, _row(r)) for r in mine)]
        first = mine[0]
        title = f"{corpus}: {' / '.join(protocols)}, labels {', '.join(first['labels'])}"
        if first.get("label_merge"):
            title += " (" + ", ".join(f"{k} -> {v}" for k, v in first["label_merge"].items()) + ")"
        lines.append(title)
        widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(columns)]
        if markdown:
            lines += ["", "| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
        else:
            lines.append("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
            lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
