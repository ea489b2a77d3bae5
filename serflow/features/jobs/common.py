"""What every feature job shares: which utterances, which shard, the parts' layout, dropped utterances and counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.locks import once
from serflow.shards.writer import (
    FeatureValueError,
    ShardIntegrityError,
    check_utterance,
    read_shard_record,
    record_path,
    verify_shard,
)

PARTS = "parts"
DROPPED_SCHEMA = pa.schema([("utt_id", pa.string()), ("reason", pa.string())])


def labelled_utterances(manifest: pd.DataFrame) -> pd.DataFrame:
    """The utterances models can use (a label in the corpus's classes), in ``utt_id`` order."""
    rows = manifest.loc[manifest["label"].notna()]
    return rows.sort_values("utt_id", kind="stable").reset_index(drop=True)


def shard_rows(rows: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """Block ``shard`` of ``n_shards`` nearly equal contiguous blocks (empty when there are fewer rows)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    bounds = np.linspace(0, len(rows), n_shards + 1).round().astype(int)
    return rows.iloc[bounds[shard] : bounds[shard + 1]]


def part_path(directory: Path, name: str, shard: int) -> Path:
    return Path(directory) / PARTS / f"{name}-{shard:05d}.parquet"


def dropped_table(dropped: Sequence[tuple[str, str]]) -> pa.Table:
    return pa.table({"utt_id": [u for u, _ in dropped], "reason": [r for _, r in dropped]}, schema=DROPPED_SCHEMA)


def chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def storable(
    items: Iterable[tuple[str, np.ndarray]], dims: int | None, dropped: list[tuple[str, str]]
) -> list[tuple[str, np.ndarray]]:
    """The items the store accepts; any other (NaN or infinite values, wrong shape) goes to ``dropped`` with the
    reason, so one bad utterance (a float16 overflow in a text encoder, say) never costs the whole shard."""
    kept = []
    for utt_id, array in items:
        try:
            kept.append((utt_id, check_utterance(utt_id, array, dims)))
        except FeatureValueError as exc:
            dropped.append((utt_id, f"features not stored: {exc}"))
    return kept


def aligned_words(words_path: Path, failures_path: Path | None, utt_ids: Sequence[str]) -> tuple[pd.DataFrame, list]:
    """The alignment's words of ``utt_ids`` and ``(utt_id, reason)`` for each of them without any word."""
    words = pd.read_parquet(words_path, columns=["utt_id", "word_index", "word", "start", "end"])
    wanted = set(utt_ids)
    words = words.loc[words["utt_id"].isin(wanted)].sort_values(["utt_id", "word_index"], kind="stable")
    reasons = failure_reasons(failures_path)
    have = set(words["utt_id"].unique())
    dropped = [(u, f"no aligned words ({reasons.get(u, 'empty transcript')})") for u in utt_ids if u not in have]
    return words.reset_index(drop=True), dropped


def failure_reasons(path: Path | None) -> dict[str, str]:
    if path is None or not Path(path).is_file():
        return {}
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return dict(zip(table["utt_id"], "alignment failed: " + table["reason"], strict=True))


def counts(selected: int, stored: int, dropped: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``selected = stored + dropped``, checked, with the dropped utterances counted per kind of reason."""
    if selected != stored + len(dropped):
        raise RuntimeError(f"counts do not reconcile: {selected} selected, {stored} stored, {len(dropped)} dropped")
    by_reason = Counter(reason_kind(r) for _, r in dropped)
    return {"selected": selected, "stored": stored, "dropped": len(dropped), "dropped_by_reason": dict(by_reason)}


def reason_kind(reason: str) -> str:
    """The reason without the path or numbers that make each one unique, for a count per kind."""
    text = reason.split(": ", 1)[1] if reason.startswith(("/", ".")) or ".wav: " in reason else reason
    return text.split(" (")[0]


def shard_job(directories: Sequence[Path], shard: int, work: Callable[[], dict[str, int]]) -> dict[str, int]:
    """Run a shard job under the shard's lock (:func:`serflow.locks.once`): two processes never write one shard at
    once, and one that waited keeps the shard another process finished meanwhile (record present, bytes intact)."""
    lock = Path(directories[0]) / PARTS / f".shard-{shard:05d}.lock"
    return once(lock, lambda: completed_shard(directories, shard), work, what=f"shard {shard} of {directories[0]}")


def completed_shard(directories: Sequence[Path], shard: int) -> dict[str, int] | None:
    """The counts of a shard whose every output is present and whose bytes match its record, else None."""
    try:
        for directory in directories:
            verify_shard(directory, read_shard_record(record_path(directory, shard)))
        utterances = pq.read_metadata(part_path(directories[0], "utterances", shard)).num_rows
        dropped = pq.read_metadata(part_path(directories[0], "dropped", shard)).num_rows
    except (OSError, ShardIntegrityError):
        return None
    return {"selected": utterances + dropped, "stored": utterances, "dropped": dropped}
