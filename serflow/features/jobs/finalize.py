"""Finalize a sharded store: verify every shard against its job's record, merge the parts, index, manifest."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from serflow.features.jobs.common import counts, part_path
from serflow.features.stores import UTT_SUFFIX, Plan
from serflow.features.text.choice import text_model_choice
from serflow.io import quarantine, write_parquet
from serflow.shards.version import hash_file
from serflow.shards.writer import (
    MANIFEST_NAME,
    ShardInfo,
    ShardIntegrityError,
    StoreError,
    finalize,
    read_shard_record,
    record_path,
    verify_shard,
)

log = logging.getLogger(__name__)


def verified_shards(directory: Path, n_shards: int) -> list[ShardInfo]:
    """Every shard of the store, checked byte for byte against the sha256 its own job recorded.

    A shard that differs (a flipped bit, a truncated copy, a file replaced after its job ended) is never
    re-certified: it is moved to ``.damaged/`` and its record removed, so the next run of the workflow rebuilds
    exactly that shard (Snakemake sees its outputs missing), and this job fails naming every damaged file.
    """
    infos, damaged = [], []
    missing = [record_path(directory, k) for k in range(n_shards) if not record_path(directory, k).is_file()]
    if missing:
        raise StoreError(f"{directory}: no record of shard(s) {[p.name for p in missing]}: did a shard job fail?")
    for k in range(n_shards):
        record = record_path(directory, k)
        info = read_shard_record(record)
        try:
            verify_shard(directory, info)
        except ShardIntegrityError as exc:
            damaged.append(_set_aside(directory / info.file, record, str(exc)))
            continue
        infos.append(info)
    if damaged:
        raise ShardIntegrityError(
            f"{len(damaged)} damaged shard(s), not finalized: " + "; ".join(damaged) + ". Run the workflow again: it "
            "rebuilds only these shards, then this store"
        )
    return infos


def _set_aside(shard: Path, record: Path, reason: str) -> str:
    (shard.parent / MANIFEST_NAME).unlink(missing_ok=True)
    where = quarantine(shard, reason) if shard.exists() else None
    record.unlink()
    log.error("%s (moved to %s)", reason, where)
    return f"{reason} (moved to {where})" if where else reason


def finalize_store(directory: Path, plan: Plan, n_shards: int, inputs: dict[str, Path]) -> dict[str, Any]:
    """Verify the shards, merge the shard jobs' parts, then write ``index.parquet`` and ``manifest.json``."""
    directory = Path(directory)
    infos = verified_shards(directory, n_shards)
    parts = {}
    for name in ("utterances", "dropped"):
        tables = [pq.read_table(part_path(directory, name, k)) for k in range(n_shards)]
        parts[name] = pa.concat_tables(tables).combine_chunks()
        write_parquet(parts[name], directory / f"{name}.parquet")
    dropped = list(zip(*(parts["dropped"].column(c).to_pylist() for c in ("utt_id", "reason")), strict=True))
    stored = parts["utterances"].num_rows
    meta: dict[str, Any] = {
        "counts": counts(stored + len(dropped), stored, dropped),
        "input_files": {k: hash_file(v) for k, v in sorted(inputs.items())},
    }
    utt = parts["utterances"].to_pandas()
    if plan.kind == "acoustic":
        meta["converted"] = {
            "resampled": int(utt["resampled_from"].notna().sum()),
            "downmixed": int(utt["downmixed_from"].notna().sum()),
        }
        packages: tuple[str, ...] = ("librosa", "torch", "soxr", "opensmile")
    else:
        choice = text_model_choice(plan.feature.removesuffix(UTT_SUFFIX), plan.params["model"], plan.params["path"])
        meta["model"] = choice.as_meta()
        meta["truncated_words"] = int(utt["truncated_words"].sum())
        packages = ("torch", "transformers", "tokenizers")
    return finalize(
        directory,
        plan.spec(),
        meta=meta,
        packages=packages,
        n_shards=n_shards,
        shard_infos=infos,
        provenance=plan.provenance(),
    )
