"""What the seed papers report (``paper_figures.yaml``), for the results files and the summaries to put beside ours.

Only figures printed in the papers, copied as printed; a test checks each against the seed paper's text.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PAPER_FIGURES = Path(__file__).with_name("paper_figures.yaml")
CODE_RESOURCES = ("paper_figures.yaml",)  # part of the code identity of every job that reads it


def load_paper_figures(path: str | os.PathLike[str] = PAPER_FIGURES) -> dict[str, Any]:
    """``{"sources": {...}, "models": {run: {wa, ua, ccc, row, source, table, note?}}}``, checked.

    A figure is a number in [0, 1] as printed, or absent; every entry names a known source and a table.
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    sources, models = data.get("sources") or {}, data.get("models") or {}
    for model, entry in models.items():
        for key in ("source", "table", "row"):
            if not entry.get(key):
                raise ValueError(f"{path}: models.{model} has no {key!r}")
        if entry["source"] not in sources:
            raise ValueError(f"{path}: models.{model}.source {entry['source']!r} is not under sources")
        for key in ("wa", "ua"):
            value = entry.get(key)
            if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"{path}: models.{model}.{key} = {value!r} is not a fraction")
        for key in ("ccc", "ccc_sd"):
            values = entry.get(key) or {}
            if not all(isinstance(v, int | float) and -1 <= v <= 1 for v in values.values()):
                raise ValueError(f"{path}: models.{model}.{key} holds a value outside [-1, 1]")
        folds = entry.get("folds_wa") or []
        if not all(isinstance(v, int | float) and 0 <= v <= 1 for v in folds):
            raise ValueError(f"{path}: models.{model}.folds_wa holds a value that is not a fraction")
    return {"sources": sources, "models": models}


def comparable(corpus_spec: Mapping[str, Any], source: Mapping[str, Any]) -> bool:
    """Whether our corpus is the data set a paper reports on (a synthetic corpus never is)."""
    return not corpus_spec.get("synth") and str(corpus_spec.get("format", "")).lower() == str(
        source.get("dataset", "")
    ).lower().replace("-", "")


@functools.cache
def _figures() -> dict[str, Any]:
    return load_paper_figures()


def paper_entry(model: str, corpus_spec: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The paper's figures for ``model`` with where they come from (for a results file), or None; ``comparable``
    says whether ``corpus_spec`` is the paper's own data set (a synthetic corpus never is)."""
    figures = _figures()
    entry = figures["models"].get(model)
    if entry is None:
        return None
    source = figures["sources"][entry["source"]]
    keys = ("wa", "ua", "ua_sd", "ccc", "ccc_sd", "folds_wa", "row", "table", "note")
    out = {key: entry[key] for key in keys if entry.get(key) is not None}
    out.update(paper=source["paper"], dataset=source["dataset"], protocol=source["protocol"], labels=source["labels"])
    if entry.get("protocol"):  # the figure is of this protocol only (the summary shows it beside that one's row)
        out["for_protocol"] = entry["protocol"]
    if corpus_spec is not None:
        out["comparable"] = comparable(corpus_spec, source)
    return out
