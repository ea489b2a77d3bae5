"""The report's figures (matplotlib, Agg backend: no display needed). Each function writes one PNG.

The PNGs carry no timestamp or software-version metadata, so the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from serflow.io import atomic_path

DPI = 110
WA_COLOR, UA_COLOR = "#4C72B0", "#DD8452"
FOLD_COLORS = plt.get_cmap("tab10").colors


def _figure(*args: Any, **kwargs: Any) -> Any:
    return plt.subplots(*args, layout="constrained", **kwargs)


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _no_data(path: str | os.PathLike[str], title: str, message: str) -> None:
    fig, ax = _figure(figsize=(6, 2))
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="0.3", transform=ax.transAxes)
    _save(fig, path)


# --------------------------------------------------------------------------------- scores


def plot_scores(
    rows: Sequence[Mapping[str, Any]],
    folds: Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    title: str,
    n_classes: int,
    show_paper: bool = False,
) -> None:
    """WA and UA per model: bars = means over folds, whiskers = ± std over folds, dots = single folds.

    ``show_paper``: also mark the papers' figures (only where they are on the same data set).
    """
    if not rows:
        _no_data(path, title, "no results")
        return
    models = [r.get("label", r["model"]) for r in rows]  # "bert (asr)" beside "bert (gold)"
    x = np.arange(len(models))
    width = 0.38
    fig, ax = _figure(figsize=(max(6.0, 1.15 * len(models) + 2), 4.6))
    for offset, key, color, label in ((-width / 2, "wa", WA_COLOR, "WA"), (width / 2, "ua", UA_COLOR, "UA")):
        means = [r[key] for r in rows]
        stds = [r[f"{key}_fold_std"] for r in rows]
        ax.bar(x + offset, means, width, yerr=stds, capsize=3, color=color, alpha=0.85, label=f"{label} ± fold std")
        for i, model in enumerate(models):
            values = [f[key] for f in folds if f.get("label", f["model"]) == model]
            jitter = np.linspace(-width / 4, width / 4, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(x[i] + offset + np.asarray(jitter), values, s=9, color="0.15", zorder=3, linewidths=0)
            ax.annotate(f"{means[i]:.2f}", (x[i] + offset, 0.02), ha="center", va="bottom", fontsize=7, color="white")
        if show_paper:
            paper = [r.get(f"paper_{key}") for r in rows]
            px = [x[i] + offset for i, v in enumerate(paper) if v is not None]
            py = [v for v in paper if v is not None]
            if py:
                ax.scatter(px, py, marker="_", s=260, linewidths=2.2, color="black", zorder=4, label=f"paper {label}")
    ax.axhline(1 / n_classes, color="0.4", linestyle=":", linewidth=1, label=f"chance ({1 / n_classes:.2f})")
    ax.set_xticks(x, models, rotation=25, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (mean over folds)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncols=2, frameon=False)
    _save(fig, path)


def plot_folds(folds: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str, n_classes: int) -> None:
    """Heat maps of WA and UA per model (rows) and test fold (columns), values written in the cells."""
    if not folds:
        _no_data(path, title, "no results")
        return
    table = pd.DataFrame(folds)
    if "label" not in table:
        table["label"] = table["model"]
    models = list(dict.fromkeys(table["label"]))
    # columns by test group, so folds of different protocols (Ses01 / Ses01F) stay apart
    columns = table[["fold", "test_group"]].drop_duplicates("test_group").sort_values(["test_group", "fold"])
    labels = [str(group) for group in columns["test_group"]]
    fig, axes = _figure(1, 2, figsize=(max(7.0, 1.7 * len(labels) + 3), 0.45 * len(models) + 2.0))
    for ax, key in zip(axes, ("wa", "ua"), strict=True):
        grid = table.pivot_table(index="label", columns="test_group", values=key).reindex(index=models)
        grid = grid.reindex(columns=labels)
        image = ax.imshow(grid.to_numpy(), cmap="YlGnBu", vmin=1 / n_classes, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(grid.to_numpy()):
            if not np.isnan(value):
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if value > 0.7 else "black",
                )
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(models)), models if key == "wa" else [""] * len(models), fontsize=8)
        ax.set_title(key.upper() + " per test fold", fontsize=10)
    fig.colorbar(image, ax=list(axes), shrink=0.9, label="score")
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


# --------------------------------------------------------------------------------- per model


def plot_confusion(
    confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike[str], title: str
) -> None:
    """The confusion matrix (rows: true class, columns: predicted), coloured by row share (recall)."""
    counts = np.asarray(confusion, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 1.0 + 0.9 * len(labels)
    fig, ax = _figure(figsize=(size + 1.2, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(counts):
        ax.text(
            j,
            i,
            f"{int(value)}\n{share[i, j]:.0%}",
            ha="center",
            va="center",
            fontsize=8,
            color="white" if share[i, j] > 0.55 else "black",
        )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), [f"{c} ({int(t)})" for c, t in zip(labels, totals[:, 0], strict=True)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (utterances)")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    _save(fig, path)


def plot_curves(history: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Training curves of every fold (and seed): losses, and the validation score the epoch is selected on (UA;
    the mean CCC for a regression) with the kept epoch starred.

    ``history``: the concatenated ``history.tsv`` files with a ``fold`` column.
    """
    if history.empty:
        _no_data(path, title, "no training history")
        return
    score, name_of_score = ("val_ua", "UA") if "val_ua" in history else ("val_ccc", "mean CCC")
    regression = score == "val_ccc"
    fig, (loss_ax, ua_ax) = _figure(1, 2, figsize=(11, 4))
    runs = history.groupby(["fold", "seed"], sort=True)
    for k, ((fold, seed), run) in enumerate(runs):
        color = FOLD_COLORS[k % len(FOLD_COLORS)]
        name = f"fold {fold}" + (f" seed {seed}" if history["seed"].nunique() > 1 else "")
        loss_ax.plot(run["epoch"], run["train_loss"], color=color, linestyle="--", linewidth=1, alpha=0.8)
        loss_ax.plot(run["epoch"], run["val_loss"], color=color, linewidth=1.4, label=name)
        ua_ax.plot(run["epoch"], run[score], color=color, linewidth=1.2, alpha=0.85, label=name)
        best = run[run["best"].astype(str).str.lower() == "true"]
        ua_ax.scatter(best["epoch"], best[score], marker="*", s=90, color=color, edgecolors="black", zorder=3)
    mean = history.groupby("epoch")[score].mean()
    ua_ax.plot(mean.index, mean.to_numpy(), color="black", linewidth=2.2, label="mean")
    loss_ax.set_title("loss (solid: validation, dashed: training)", fontsize=10)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (MSE or 1 - mean CCC)" if regression else "cross-entropy")
    ua_ax.set_title(f"validation {name_of_score} (★ the epoch kept)", fontsize=10)
    ua_ax.set_xlabel("epoch")
    ua_ax.set_ylim(-1 if regression and history[score].min() < 0 else 0, 1)
    for ax in (loss_ax, ua_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ua_ax.legend(fontsize=7, loc="lower right", ncols=2, frameon=False)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def plot_regression(predictions: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Predicted against true value per dimension (one panel each; every test utterance and seed, all folds), the
    identity line, and the pooled CCC. ``predictions``: columns ``dimension``, ``actual``, ``predicted``."""
    from serflow.train.tasks import ccc

    if predictions.empty:
        _no_data(path, title, "no predictions")
        return
    dims = list(dict.fromkeys(predictions["dimension"]))
    fig, axes = _figure(1, len(dims), figsize=(3.8 * len(dims) + 0.6, 4.0), squeeze=False)
    for ax, dim in zip(axes[0], dims, strict=True):
        rows = predictions[predictions["dimension"] == dim]
        x, y = rows["actual"].to_numpy(float), rows["predicted"].to_numpy(float)
        ax.scatter(x, y, s=6, alpha=0.35, color=UA_COLOR, linewidths=0)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", linestyle=":", linewidth=1)
        ax.set_title(f"{dim}: CCC {ccc(y, x):.3f} (pooled, n={len(rows)})", fontsize=10)
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def plot_dimensions(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str) -> None:
    """CCC per run (groups) and dimension (bars): means over folds and seeds, whiskers ± std over folds, the
    paper's CCC as a dash where it prints one. ``rows``: :func:`serflow.report.summary.dimension_rows`."""
    if not rows:
        _no_data(path, title, "no dimensional results (train.tasks has only the categorical task)")
        return
    runs = list(dict.fromkeys(r.get("label", r["model"]) for r in rows))
    dims = list(dict.fromkeys(r["dimension"] for r in rows))
    width = 0.8 / len(dims)
    fig, ax = _figure(figsize=(max(6.0, 1.0 * len(runs) + 2), 4.4))
    for k, dim in enumerate(dims):
        mine = {r.get("label", r["model"]): r for r in rows if r["dimension"] == dim}
        xs = [i + (k - (len(dims) - 1) / 2) * width for i, run in enumerate(runs) if run in mine]
        values = [mine[run] for run in runs if run in mine]
        ax.bar(
            xs,
            [r["ccc"] for r in values],
            width,
            yerr=[r["ccc_fold_std"] for r in values],
            capsize=2,
            color=FOLD_COLORS[k],
            alpha=0.85,
            label=dim,
        )
        paper = [(x, r["paper_ccc"]) for x, r in zip(xs, values, strict=True) if r["paper_ccc"] is not None]
        if paper:
            ax.scatter(*zip(*paper, strict=True), marker="_", s=200, linewidths=2, color="black", zorder=4)
    ax.axhline(0, color="0.4", linewidth=0.8)
    ax.set_xticks(range(len(runs)), runs, rotation=25, ha="right")
    ax.set_ylim(min(0.0, min(r["ccc"] - r["ccc_fold_std"] for r in rows) - 0.05), 1)
    ax.set_ylabel("CCC (mean over folds; — the paper's)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", ncols=3, frameon=False)
    _save(fig, path)


# --------------------------------------------------------------------------------- speech front-end


def plot_wer(wer: Mapping[str, Any], path: str | os.PathLike[str], title: str) -> None:
    """WER per session, split into substitutions, deletions and insertions; the overall WER as a line."""
    sessions = wer.get("per_session") or {}
    if not sessions:
        _no_data(path, title, "no WER per session")
        return
    names = sorted(sessions, key=lambda s: (len(s), s))
    fig, ax = _figure(figsize=(max(5.5, 0.8 * len(names) + 2.5), 3.8))
    bottom = np.zeros(len(names))
    for key, color in (("substitutions", "#C44E52"), ("deletions", "#8172B3"), ("insertions", "#CCB974")):
        values = np.array([sessions[s][key] / max(sessions[s]["reference_words"], 1) for s in names])
        ax.bar(names, values, bottom=bottom, color=color, label=key)
        bottom += values
    for i, s in enumerate(names):
        ax.annotate(f"{sessions[s]['wer']:.2f}", (i, bottom[i]), ha="center", va="bottom", fontsize=8)
    overall = wer["overall"]["wer"]
    ax.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.3f}")
    ax.set_xlabel("session")
    ax.set_ylabel("errors / reference words")
    ax.set_ylim(0, max(bottom.max(), overall) * 1.2 + 0.01)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_alignment(align: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str], title: str) -> None:
    """Per alignment (backend-text): aligned vs failed utterances, and the failures by reason."""
    if not align:
        _no_data(path, title, "no alignments")
        return
    names = list(align)
    reasons = sorted({r for a in align.values() for r in a.get("failure_reasons", {})})
    fig, (count_ax, reason_ax) = _figure(
        1, 2, figsize=(11, 1.4 + 0.6 * max(len(names), len(reasons), 2)), width_ratios=[1, 1.3]
    )
    y = np.arange(len(names))
    aligned = np.array([align[n]["aligned"] for n in names])
    failed = np.array([align[n]["failed"] for n in names])
    count_ax.barh(y, aligned, color="#55A868", label="aligned")
    count_ax.barh(y, failed, left=aligned, color="#C44E52", label="failed")
    for i, n in enumerate(names):
        count_ax.annotate(
            f"{aligned[i]} aligned, {failed[i]} failed, {align[n].get('oov_words', 0)} OOV words",
            (0.02 * max(aligned.max(), 1), i),
            va="center",
            fontsize=8,
            color="white",
        )
    count_ax.set_yticks(y, names)
    count_ax.set_xlabel("utterances")
    count_ax.set_xlim(0, max((aligned + failed).max(), 1))
    count_ax.set_title("utterances aligned (green) and failed (red)", fontsize=10)
    if reasons:
        height = 0.8 / len(names)
        ry = np.arange(len(reasons))
        for k, n in enumerate(names):
            values = [align[n].get("failure_reasons", {}).get(r, 0) for r in reasons]
            bars = reason_ax.barh(ry + k * height, values, height, label=n, color=FOLD_COLORS[k % len(FOLD_COLORS)])
            reason_ax.bar_label(bars, fontsize=8, padding=2)
        reason_ax.set_yticks(ry + height * (len(names) - 1) / 2, reasons, fontsize=8)
        reason_ax.set_xlabel("failed utterances")
        reason_ax.xaxis.get_major_locator().set_params(integer=True)
        reason_ax.legend(fontsize=8, frameon=False)
    else:
        reason_ax.set_axis_off()
        reason_ax.text(0.5, 0.5, "no failures", ha="center", va="center", fontsize=11, transform=reason_ax.transAxes)
    reason_ax.set_title("failures by reason", fontsize=10)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


# --------------------------------------------------------------------------------- runtime


def plot_runtime(table: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Wall time per rule (summed over its jobs; log scale) and its peak memory, slowest rule first."""
    if table.empty:
        _no_data(path, title, "no benchmark files")
        return
    table = table.iloc[::-1]  # slowest at the top
    y = np.arange(len(table))
    fig, (time_ax, mem_ax) = _figure(1, 2, figsize=(11, 0.9 + 0.38 * len(table)), sharey=True, width_ratios=[1.6, 1])
    bars = time_ax.barh(y, table["total_s"], color=WA_COLOR)
    labels = [
        f"{_duration(t)}  ({j} job{'s' if j != 1 else ''})"
        for t, j in zip(table["total_s"], table["jobs"], strict=True)
    ]
    time_ax.bar_label(bars, labels, fontsize=8, padding=3)
    time_ax.set_xscale("log")
    time_ax.set_xlim(max(table["total_s"].min() / 2, 0.01), table["total_s"].max() * 30)
    time_ax.set_yticks(y, table["rule"])
    time_ax.set_xlabel("wall time, summed over jobs (s, log scale)")
    rss = table["max_rss_mb"].fillna(0)
    mem_bars = mem_ax.barh(y, rss, color=UA_COLOR)
    mem_ax.bar_label(mem_bars, [f"{v:,.0f} MB" if v else "n/a" for v in rss], fontsize=8, padding=3)
    mem_ax.set_xlim(0, max(rss.max(), 1) * 1.35)
    mem_ax.set_xlabel("peak memory of one job (max RSS, MB)")
    for ax in (time_ax, mem_ax):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=11)
    _save(fig, path)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


# --------------------------------------------------------------------------------- the comparison


def plot_leaderboard(
    rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], title: str, n_classes: int
) -> None:
    """UA on each protocol's common test set, one bar per model (best first), whiskers ± std over folds, coloured by
    family; above the bars, ★ the best, ≈ not distinguishable from it, ? no test. One panel per protocol.

    ``rows``: :func:`serflow.report.comparison.leaderboard_rows`."""
    rows = [r for r in rows if r.get("ua") is not None]
    if not rows:
        _no_data(path, title, "no categorical results")
        return
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    families = sorted({str(r["family"]) for r in rows})
    colors = {f: FOLD_COLORS[k % len(FOLD_COLORS)] for k, f in enumerate(families)}
    sizes = [sum(r["protocol"] == p for r in rows) for p in protocols]
    fig, axes = _figure(
        1, len(protocols), figsize=(max(6.0, 0.55 * sum(sizes) + 2.5 * len(protocols)), 4.8), squeeze=False,
        width_ratios=[max(n, 2) for n in sizes],
    )  # fmt: skip
    marks = {"best": "★", "not distinguishable": "≈", "no test": "?"}
    for ax, protocol in zip(axes[0], protocols, strict=True):
        mine = [r for r in rows if r["protocol"] == protocol]
        x = np.arange(len(mine))
        ua = np.array([r["ua"] for r in mine], dtype=float)
        std = np.array([r["ua_fold_std"] or 0.0 for r in mine], dtype=float)
        same = [r["vs_best"] in ("best", "not distinguishable") for r in mine]
        ax.bar(
            x,
            ua,
            0.75,
            yerr=std,
            capsize=3,
            color=[colors[str(r["family"])] for r in mine],
            edgecolor=["black" if s else "none" for s in same],  # no alpha: it would make "none" edges black
            linewidth=1.6,
        )
        for i, r in enumerate(mine):
            ax.annotate(
                marks.get(r["vs_best"], ""), (x[i], min(ua[i] + std[i], 0.95) + 0.015), ha="center", fontsize=11
            )
            ax.annotate(f"{ua[i]:.2f}", (x[i], 0.02), ha="center", va="bottom", fontsize=7, color="white")
        ax.axhline(1 / n_classes, color="0.4", linestyle=":", linewidth=1)
        labels = [_bar_label(r) for r in mine]
        ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{protocol}: n = {mine[0]['common_n']} common utterances", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("UA on the common test set (± std over folds)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[f]) for f in families]
    handles += [plt.Line2D([], [], color="0.4", linestyle=":")]
    names = [*families, f"chance ({1 / n_classes:.2f})"]
    fig.legend(handles, names, fontsize=8, loc="outside lower center", ncols=min(len(names), 7), frameon=False)
    fig.suptitle(title + "\n★ best, ≈ not distinguishable from it (outlined), ? no test", fontsize=10)
    _save(fig, path)


def _bar_label(row: Mapping[str, Any]) -> str:
    """The model's name, with the transcripts it read (gold / asr) when it reads any."""
    label = str(row.get("label") or row["model"])
    if row.get("reads_text") and f"({row['text_source']})" not in label:
        label += f" ({row['text_source']})"
    return label
