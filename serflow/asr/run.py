"""Transcribe a manifest shard by shard, and merge the shards into one table.

Shards let the workflow run several transcription jobs (each loads the model once). The split depends
only on the sorted utterance ids, so a shard's content - and its output bytes - is the same on every run.

With packing (``asr.packing``, :mod:`serflow.asr.packing`) the windows are planned over the whole manifest
(sorted ids, the manifest's durations) and the shards take every ``n_shards``-th window: an utterance's
neighbours in its window, which its text may depend on, are the same whatever the number of shards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from serflow.asr.backends import TranscribeResult, WhisperBackend
from serflow.asr.packed_run import Item, transcribe_windows
from serflow.asr.packing import PackingSettings, plan_windows
from serflow.io import write_parquet

log = logging.getLogger(__name__)

WORD_TYPE = pa.struct(
    [
        ("word", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("probability", pa.float64()),
    ]
)
ASR_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("text", pa.string()),
        # "element" is the item name Parquet uses; with it a table read back equals the one written
        ("words", pa.list_(pa.field("element", WORD_TYPE))),
        ("language", pa.string()),
        ("avg_logprob", pa.float64()),
        ("no_speech_prob", pa.float64()),
        ("packed", pa.bool_()),  # decoded in a window shared with other utterances (asr.packing)
    ]
)
FAILURE_COLUMNS = ("utt_id", "audio_path", "reason")
SETTINGS_KEY = b"serflow.asr"


def select_shard(manifest: pd.DataFrame, shard: int = 0, n_shards: int = 1) -> pd.DataFrame:
    """Rows of shard ``shard``: after sorting by ``utt_id``, every ``n_shards``-th row starting at ``shard``.

    Striding (rather than cutting into blocks) spreads sessions and lengths evenly over the shards.
    """
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise ValueError(
            f"shard must be in 0..{n_shards - 1} with n_shards >= 1 (got shard={shard}, n_shards={n_shards})"
        )
    if manifest["utt_id"].duplicated().any():
        dup = manifest.loc[manifest["utt_id"].duplicated(), "utt_id"].iloc[0]
        raise ValueError(f"manifest has duplicate utt_id {dup!r}")
    ordered = manifest.sort_values("utt_id", kind="stable").reset_index(drop=True)
    return ordered.iloc[shard::n_shards].reset_index(drop=True)


def _items(rows: pd.DataFrame) -> list[Item]:
    return list(zip(rows["utt_id"].astype(str), rows["audio_path"].astype(str), strict=True))


def _durations(rows: pd.DataFrame) -> list[float]:
    """Seconds per utterance for planning windows: the manifest's ``duration``, else the wav header's (0 for a file
    that cannot be read: it becomes a failure when it is read, and 0 s cannot crowd out its neighbours)."""
    if "duration" in rows.columns:
        return [float(d) if pd.notna(d) else 0.0 for d in rows["duration"]]
    durations = []
    for path in rows["audio_path"].astype(str):
        try:
            durations.append(float(sf.info(path).duration))
        except (RuntimeError, sf.LibsndfileError):
            durations.append(0.0)
    return durations


def shard_windows(
    manifest: pd.DataFrame, settings: PackingSettings, shard: int = 0, n_shards: int = 1
) -> list[list[Item]]:
    """Shard ``shard``'s windows: planned over the whole manifest (sorted by ``utt_id``), every ``n_shards``-th.

    A window holds one speaker's utterances only (the manifest's ``speaker`` column, where there is one): under
    leave-one-speaker-out or leave-one-session-out folds no test utterance's text then depends on a training
    utterance's audio. (Under ``random_split`` one window can hold both.)
    """
    ordered = select_shard(manifest, 0, 1)
    select_shard(manifest, shard, n_shards)  # the same argument checks as without packing
    items = _items(ordered)
    groups = ordered["speaker"].astype(str).tolist() if "speaker" in ordered.columns else None
    windows = plan_windows(_durations(ordered), settings, groups)
    return [[items[i] for i in window] for window in windows[shard::n_shards]]


def transcribe_manifest(
    manifest: pd.DataFrame,
    backend: WhisperBackend,
    shard: int = 0,
    n_shards: int = 1,
    packing: PackingSettings | None = None,
) -> tuple[pa.Table, pd.DataFrame]:
    """Transcribe one shard of ``manifest`` (columns ``utt_id``, ``audio_path``; ``duration`` used for packing).

    Returns the results as an :data:`ASR_SCHEMA` table sorted by ``utt_id`` (the backend's settings and the
    packing settings in the schema metadata) and the utterances whose audio could not be read, with the reason.
    ``packing``: None or disabled = each utterance decoded alone.
    """
    settings = packing or PackingSettings(enabled=False)
    outcome = _transcribe(manifest, backend, shard, n_shards, settings)
    records = sorted((asdict(r) for r in outcome.results), key=lambda r: r["utt_id"])
    table = pa.Table.from_pylist(records, schema=ASR_SCHEMA)
    recorded = {**backend.settings, "packing": settings.as_params()}
    table = table.replace_schema_metadata({SETTINGS_KEY: json.dumps(recorded, sort_keys=True).encode()})
    failures = pd.DataFrame([asdict(f) for f in outcome.failures], columns=list(FAILURE_COLUMNS))
    return table, failures.sort_values("utt_id", kind="stable").reset_index(drop=True)


def _transcribe(
    manifest: pd.DataFrame, backend: WhisperBackend, shard: int, n_shards: int, settings: PackingSettings
) -> TranscribeResult:
    if not settings.enabled:
        return backend.transcribe(_items(select_shard(manifest, shard, n_shards)))
    outcome, report = transcribe_windows(backend, shard_windows(manifest, settings, shard, n_shards), settings)
    log.info(report.summary())
    return outcome


def merge_shards(paths: Sequence[Path | str], out: Path | str) -> None:
    """Concatenate shard tables into ``out`` (sorted by ``utt_id``), atomically.

    Refuses shards made with different settings (model, backend, ...) or overlapping utterances, which
    would mean shards of two different runs are being mixed.
    """
    if not paths:
        raise ValueError("merge_shards needs at least one shard")
    tables = [pq.read_table(p) for p in paths]
    settings = {(t.schema.metadata or {}).get(SETTINGS_KEY) for t in tables}
    if len(settings) > 1:
        raise ValueError(f"shards were transcribed with different settings: {sorted(s or b'' for s in settings)}")
    merged = pa.concat_tables([t.cast(ASR_SCHEMA) for t in tables])
    ids = merged.column("utt_id").to_pandas()
    if ids.duplicated().any():
        raise ValueError(f"utterance {ids[ids.duplicated()].iloc[0]!r} occurs in more than one shard")
    merged = merged.sort_by("utt_id")
    metadata = {SETTINGS_KEY: settings.pop()} if None not in settings else None
    write_parquet(merged.replace_schema_metadata(metadata), out)
