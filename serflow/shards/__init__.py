"""The versioned feature shard store: ``features/{corpus}/{feature}/{version}/``.

Models read their inputs from here, and a feature already stored under its version is never recomputed.
Writing: :func:`write_shard` per job, then :func:`finalize` (or :class:`ShardWriter` in one process).
Reading: :class:`FeatureSet`; for PyTorch :class:`FeatureDataset` and :func:`collate_padded`. The file
format (safetensors + Parquet + JSON, readable without serflow) is described in ``features/README.md``.

``FeatureDataset``/``collate_padded`` import torch, so they are loaded only when first used.
"""

from __future__ import annotations

from typing import Any

from serflow.shards.reader import FeatureSet
from serflow.shards.version import (
    STORE_FORMAT,
    VERSION_LENGTH,
    canonical_json,
    feature_version,
    hash_file,
    hash_strings,
)
from serflow.shards.writer import (
    CREATED_KEY,
    INDEX_NAME,
    MANIFEST_NAME,
    FeatureSpec,
    FeatureValueError,
    IncompleteStoreError,
    ShardInfo,
    ShardIntegrityError,
    ShardWriter,
    StoreError,
    add_table,
    check_utterance,
    finalize,
    is_complete,
    package_versions,
    read_shard_info,
    shard_name,
    write_shard,
)

__all__ = [
    "CREATED_KEY",
    "INDEX_NAME",
    "MANIFEST_NAME",
    "STORE_FORMAT",
    "VERSION_LENGTH",
    "FeatureDataset",
    "FeatureSet",
    "FeatureSpec",
    "FeatureValueError",
    "IncompleteStoreError",
    "ShardInfo",
    "ShardIntegrityError",
    "ShardWriter",
    "StoreError",
    "add_table",
    "canonical_json",
    "check_utterance",
    "collate_padded",
    "feature_version",
    "finalize",
    "hash_file",
    "hash_strings",
    "is_complete",
    "package_versions",
    "read_shard_info",
    "shard_name",
    "write_shard",
]

_TORCH_NAMES = {"FeatureDataset", "collate_padded"}


def __getattr__(name: str) -> Any:
    # torch takes seconds to import; the workflow's parse-time feature_version calls must not pay for it
    if name in _TORCH_NAMES:
        from serflow.shards import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'serflow.shards' has no attribute {name!r}")
