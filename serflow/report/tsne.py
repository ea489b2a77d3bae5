"""t-SNE maps of a model's test-set representations (the MultiModal-ER report's figures, S003 C.4).

The fold jobs of models with ``representations()`` (MultiModal-ER: the pooled ``speech`` and ``text`` vectors and the
``fused`` one) write ``checkpoints/seed{s}.representations.safetensors`` for the test split
(:func:`serflow.train.run.save_representations`). :func:`plot_tsne` embeds each fold's vectors of the first seed in 2-D
with scikit-learn's TSNE (perplexity 30 as the report, lowered to (n - 1) / 3 for a small test split; PCA start,
``random_state`` 42: the same picture every run) and colours them by the true class: one row per fold, one column
per representation.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPRESENTATION_FAMILIES = ("mmer",)  # families whose fold jobs store test-set representations
KINDS = ("speech", "text", "fused")
SEED = 42
PERPLEXITY = 30.0


def representation_file(checkpoints: str | os.PathLike[str]) -> Path:
    """The first seed's representations file in a fold's checkpoints folder."""
    found = sorted(
        Path(checkpoints).glob("seed*.representations.safetensors"), key=lambda p: int(p.name[4:].split(".")[0])
    )
    if not found:
        raise FileNotFoundError(
            f"{checkpoints}: no seed*.representations.safetensors (a model without representations?)"
        )
    return found[0]


def read_representations(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """``({kind: [N, d]}, utt_ids, labels)`` of one representations file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as fh:
        meta = fh.metadata() or {}
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    return arrays, json.loads(meta.get("utt_ids", "[]")), json.loads(meta.get("labels", "[]"))


def embed(vectors: np.ndarray, seed: int = SEED, perplexity: float = PERPLEXITY) -> np.ndarray:
    """2-D t-SNE of ``vectors [N, d]`` (N >= 2); perplexity at most (N - 1) / 3."""
    from sklearn.manifold import TSNE

    n = len(vectors)
    if n < 2:
        return np.zeros((n, 2))
    perplexity = max(1.0, min(perplexity, (n - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        np.asarray(vectors, np.float64)
    )


def plot_tsne(
    folds: Sequence[tuple[str, str | os.PathLike[str]]],
    classes: Sequence[str],
    path: str | os.PathLike[str],
    title: str,
) -> dict[str, Any]:
    """One PNG: per fold (``(test group, representations file)``) a row of t-SNE maps; returns what was drawn."""
    from serflow.report.plots import FOLD_COLORS, _figure, _save

    loaded = [(group, *read_representations(file)) for group, file in folds]
    kinds = [k for k in KINDS if any(k in arrays for _, arrays, _, _ in loaded)]
    fig, axes = _figure(len(loaded), len(kinds), figsize=(3.6 * len(kinds), 3.3 * len(loaded)), squeeze=False)
    drawn = []
    for row, (group, arrays, _, labels) in enumerate(loaded):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            points = embed(arrays[kind])
            for k, name in enumerate(classes):
                mask = np.array([lab == name for lab in labels], bool)
                ax.scatter(points[mask, 0], points[mask, 1], s=10, color=FOLD_COLORS[k % len(FOLD_COLORS)], label=name)
            ax.set_title(f"{kind}: test {group} (n={len(points)})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            drawn.append({"fold": group, "kind": kind, "n": len(points)})
    axes[0][-1].legend(fontsize=7, markerscale=1.5, loc="best")
    fig.suptitle(title)
    _save(fig, path)
    return {"maps": drawn}
