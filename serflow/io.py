"""Atomic file writing: every artifact appears whole or not at all.

Writers produce a temporary sibling, fsync it, then ``os.replace`` it onto the final name, so a
crash or a killed job never leaves a half-written Parquet file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync it and rename it onto ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write ``table`` atomically; no timestamps or writer-dependent metadata, so bytes are reproducible."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(data: bytes, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", path)


QUARANTINE_DIR = ".damaged"


def quarantine(path: str | os.PathLike[str], reason: str) -> Path:
    """Move a damaged artifact out of the way, so that the workflow rebuilds it on its next run.

    The file goes to ``.damaged/<name>.<unix time>`` beside it (kept as evidence, never read again), with the
    reason in a ``.reason.txt`` next to it. Returns the new path.
    """
    path = Path(path)
    folder = path.parent / QUARANTINE_DIR
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.name}.{time.time_ns()}"
    os.replace(path, target)
    write_text(reason + "\n", target.with_name(target.name + ".reason.txt"))
    return target
