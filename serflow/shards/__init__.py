"""The versioned feature shard store: ``features/{corpus}/{feature}/{version}/``.

Models read their inputs from here, and a feature already stored under its version is never recomputed.
Writing: :func:`write_shard` per job, then :func:`finalize` (or :class:`ShardWriter` in one process).
Reading: :class:`FeatureSet`; for PyTorch :class:`FeatureDataset` and :func:`collate_padded`. The file
format (safetensors + Parquet + JSON, readable without serflow) is described in ``features/README.md``.

"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serflow.shards.dataset import FeatureDataset, collate_padded
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

# Every name loads its module on first access: a job that only writes shards does not import the reader (nor
# torch, which the dataset needs), and the code identity of a job (serflow.provenance) follows what it really runs.
_LAZY = {
    "FeatureDataset": "dataset",
    "collate_padded": "dataset",
    "FeatureSet": "reader",
    "STORE_FORMAT": "version",
    "VERSION_LENGTH": "version",
    "canonical_json": "version",
    "feature_version": "version",
    "hash_file": "version",
    "hash_strings": "version",
    "CREATED_KEY": "writer",
    "INDEX_NAME": "writer",
    "MANIFEST_NAME": "writer",
    "FeatureSpec": "writer",
    "FeatureValueError": "writer",
    "IncompleteStoreError": "writer",
    "ShardInfo": "writer",
    "ShardIntegrityError": "writer",
    "ShardWriter": "writer",
    "StoreError": "writer",
    "add_table": "writer",
    "check_utterance": "writer",
    "finalize": "writer",
    "is_complete": "writer",
    "package_versions": "writer",
    "read_shard_info": "writer",
    "shard_name": "writer",
    "write_shard": "writer",
}
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


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
