"""Which of a fold's outputs differ from the sha256 its job recorded: shared by the fold job (which keeps the intact
outputs of an identical job) and the evaluation (:func:`serflow.train.evaluate.check_fold`), in a module of its own so
that the fold job's code identity (:mod:`serflow.provenance`) does not take in the evaluation's code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from serflow.shards.version import hash_file


def fold_damage(fold_dir: str | os.PathLike[str], record: Mapping[str, Any]) -> list[Path]:
    """The fold's outputs that are missing or differ from the sha256 its job recorded in ``metrics.json``."""
    fold_dir = Path(fold_dir)
    damaged = []
    for name, sha in record.get("files", {}).items():
        path = fold_dir / name
        if not path.is_file() or hash_file(path) != sha:
            damaged.append(path)
    return damaged
