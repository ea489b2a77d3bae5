"""One shard of an acoustic store: load each utterance's audio, extract its frames in batches, write the shard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.features.jobs.common import (
    chunks,
    dropped_table,
    labelled_utterances,
    part_path,
    shard_job,
    shard_rows,
    storable,
)
from serflow.features.stores import Plan
from serflow.io import write_parquet
from serflow.shards.writer import record_path, write_shard, write_shard_record

EXTRACT_BATCH = 16  # utterances per extractor call: enough to amortise the FFT set-up, small in memory
INFO_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("frames", pa.int64()),
        ("samples", pa.int64()),
        ("resampled_from", pa.int64()),
        ("downmixed_from", pa.int64()),
    ]
)


def acoustic_shard(manifest_path: Path, plan: Plan, shard: int, n_shards: int, directory: Path) -> dict[str, int]:
    """Extract ``plan.feature`` for one shard of the labelled utterances; return the shard's counts.

    Writes the shard, then its record (``parts/shard-NNNNN.json``: the sha256 this job wrote, and the code that
    wrote it), then the utterance and dropped parts; under the shard's lock (:func:`shard_job`).
    """
    return shard_job([directory], shard, lambda: _acoustic_shard(manifest_path, plan, shard, n_shards, directory))


def _acoustic_shard(manifest_path: Path, plan: Plan, shard: int, n_shards: int, directory: Path) -> dict[str, int]:
    from serflow.corpora.audio import AudioError
    from serflow.features.acoustic import get_extractor
    from serflow.features.audio import load_audio

    rows = shard_rows(labelled_utterances(pd.read_parquet(manifest_path)), shard, n_shards)
    extractor = get_extractor(plan.feature, **plan.params)
    items: list[tuple[str, np.ndarray]] = []
    info_rows: list[dict[str, Any]] = []
    dropped: list[tuple[str, str]] = []
    for chunk in chunks(list(rows.itertuples(index=False)), EXTRACT_BATCH):
        loaded = []
        for row in chunk:
            try:
                signal, info = load_audio(row.audio_path, extractor.sample_rate)
            except AudioError as exc:
                dropped.append((row.utt_id, f"{row.audio_path}: {exc}"))
                continue
            loaded.append((row, signal, info))
        results = extract_robust(extractor, [signal for _, signal, _ in loaded])
        for (row, signal, info), result in zip(loaded, results, strict=True):
            if isinstance(result, str):
                dropped.append((row.utt_id, f"{row.audio_path}: {result}"))
                continue
            kept = storable([(row.utt_id, result)], extractor.dims, dropped)
            items += kept
            info_rows += [audio_info(row.utt_id, signal, result, info)] if kept else []
    shard_info = write_shard(directory, shard, items, dims=extractor.dims)
    write_shard_record(shard_info, record_path(directory, shard), {"provenance": plan.provenance()})
    write_parquet(pa.Table.from_pylist(info_rows, schema=INFO_SCHEMA), part_path(directory, "utterances", shard))
    write_parquet(dropped_table(dropped), part_path(directory, "dropped", shard))
    return {"selected": len(rows), "stored": len(items), "dropped": len(dropped)}


def extract_robust(extractor: Any, signals: list[np.ndarray]) -> list[np.ndarray | str]:
    """``extract_batch`` over ``signals``; a signal it refuses gets its reason instead, the rest go on."""
    from serflow.features.acoustic.base import FeatureError

    out: list[np.ndarray | str] = ["not extracted"] * len(signals)
    pending = list(range(len(signals)))
    while pending:
        try:
            feats = extractor.extract_batch([signals[i] for i in pending])
        except FeatureError as exc:
            if exc.index is None:
                raise
            out[pending.pop(exc.index)] = str(exc)
            continue
        for i, arr in zip(pending, feats, strict=True):
            out[i] = arr
        break
    return out


def audio_info(utt_id: str, signal: np.ndarray, feats: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "utt_id": utt_id,
        "frames": int(feats.shape[0]),
        "samples": int(signal.shape[0]),
        "resampled_from": info.get("resampled_from"),
        "downmixed_from": info.get("downmixed_from"),
    }
