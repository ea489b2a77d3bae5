"""The whole ``glove`` store in one job: one vector per aligned word (lookups are vectorised)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from serflow.features.jobs.common import aligned_words, counts, dropped_table, labelled_utterances, storable
from serflow.features.stores import Plan
from serflow.shards.writer import ShardWriter


def glove_store(
    manifest_path: Path, words_path: Path, failures_path: Path | None, plan: Plan, root: Path
) -> dict[str, Any]:
    """One vector per aligned word, OOV rows by the configured policy; returns the manifest's ``meta``."""
    from serflow.features.text.glove import GloveVectors, glove_features

    rows = labelled_utterances(pd.read_parquet(manifest_path))
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    p = plan.params
    vectors = GloveVectors.load(p["path"] or p["source"], cache_dir=Path(root).parent / ".cache" / "glove")
    arrays, stats = glove_features(words, vectors, p["oov"], p["seed"])
    oov = vectors.rows(words["word"]) < 0  # the lookup glove_features used, row -1 = out of vocabulary
    for utt_id in [u for u, matrix in arrays.items() if matrix.shape[0] == 0]:  # skip policy removed every word
        dropped.append((utt_id, "every word is out of GloVe's vocabulary (oov policy 'skip')"))
    items = storable(((u, m) for u, m in arrays.items() if m.shape[0]), vectors.dim, dropped)
    with ShardWriter(root, plan.spec(), overwrite=True) as writer:
        for utt_id, matrix in items:
            writer.add(utt_id, matrix)
        writer.add_table("words", pa.Table.from_pandas(words.assign(oov=oov), preserve_index=False))
        writer.add_table("dropped", dropped_table(sorted(dropped)))
        meta = {"counts": counts(len(rows), len(items), dropped), "oov": _json_ready(stats), "vectors": vectors.source}
        writer.finalize(meta=meta, packages=(), provenance=plan.provenance())
    return meta


def _json_ready(stats: dict[str, Any]) -> dict[str, Any]:
    out = dict(stats)
    oov_words = out.pop("oov_words", {})
    out["oov_words_top"] = dict(list(oov_words.items())[:50])  # the full list is in the words table
    return out
