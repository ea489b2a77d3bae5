"""One shard of a transformer store: per-word vectors and their per-utterance mean, written to two stores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.features.jobs.common import (
    aligned_words,
    dropped_table,
    labelled_utterances,
    part_path,
    shard_job,
    shard_rows,
    storable,
)
from serflow.features.stores import UTT_SUFFIX, Plan
from serflow.io import write_parquet
from serflow.shards.writer import record_path, write_shard, write_shard_record


def transformer_shard(
    manifest_path: Path,
    words_path: Path,
    failures_path: Path | None,
    plan: Plan,
    shard: int,
    n_shards: int,
    directories: tuple[Path, Path],
    *,
    cache_dir: Path,
    device: str = "auto",
    batch_size: int = 32,
) -> dict[str, int]:
    """Per-word and per-utterance vectors of one shard, into the word store and its ``_utt`` companion.

    An utterance whose vectors are not finite (a float16 overflow on a GPU, say) is dropped from both stores with
    the reason, so the two stores always hold the same utterances. Runs under the shard's lock (:func:`shard_job`).
    """
    return shard_job(
        directories,
        shard,
        lambda: _transformer_shard(
            manifest_path, words_path, failures_path, plan, shard, n_shards, directories, cache_dir, device, batch_size
        ),
    )


def _transformer_shard(
    manifest_path: Path,
    words_path: Path,
    failures_path: Path | None,
    plan: Plan,
    shard: int,
    n_shards: int,
    directories: tuple[Path, Path],
    cache_dir: Path,
    device: str,
    batch_size: int,
) -> dict[str, int]:
    from serflow.features.text.transformer import TransformerEncoder, resolve_text_model, utterance_words

    kind = plan.feature.removesuffix(UTT_SUFFIX)
    rows = shard_rows(labelled_utterances(pd.read_parquet(manifest_path)), shard, n_shards)
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    name_or_path, _ = resolve_text_model(kind, plan.params["model"], plan.params["path"], cache_dir)
    encoder = TransformerEncoder(
        name_or_path, device=device, batch_size=batch_size, max_length=plan.params["max_length"]
    )
    encoded = encoder.encode_words(utterance_words(words)) if len(words) else {}
    dims = encoder.hidden_size
    both = [(u, np.concatenate([w, v.reshape(1, -1)])) for u, (w, v) in encoded.items()]
    finite = {u for u, _ in storable(both, dims, dropped)}
    encoded = {u: wv for u, wv in encoded.items() if u in finite}
    word_items = [(u, w) for u, (w, _) in encoded.items()]
    utt_items = [(u, v.reshape(1, -1)) for u, (_, v) in encoded.items()]
    report = encoder.last_report.as_dict() if encoder.last_report else {}
    truncated = report.get("truncated", {})
    info = pa.table(
        {
            "utt_id": list(encoded),
            "words": [int(w.shape[0]) for w, _ in encoded.values()],
            "truncated_words": [int(truncated.get(u, 0)) for u in encoded],
        }
    )
    provenance = {"provenance": plan.provenance()}
    for directory, items in zip(directories, (word_items, utt_items), strict=True):
        written = write_shard(directory, shard, items, dims=dims)
        write_shard_record(written, record_path(directory, shard), provenance)
        write_parquet(info, part_path(directory, "utterances", shard))
        write_parquet(dropped_table(dropped), part_path(directory, "dropped", shard))
    return {"selected": len(rows), "stored": len(encoded), "dropped": len(dropped)}
