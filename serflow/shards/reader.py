"""Reading a feature store: one utterance at a time (memory-mapped) or everything at once for training.

:class:`FeatureSet` trusts nothing it has not checked: the store must have its ``manifest.json`` (else it
is incomplete), and each shard's sha256 is compared with the manifest the first time that shard is
used, so a shard changed after finalizing is refused (:class:`ShardIntegrityError`, naming the path)
instead of silently feeding a model different numbers. Verification reads each shard once; pass
``verify=False`` only where that cost matters more than the check (e.g. a benchmark of the raw read).

Hashing costs as much as reading, so, as git's index and DVC's state do, a file that was verified once
is remembered in the store's ``.verified.json`` with its inode, size, mtime and ctime (nanoseconds):
while all four are unchanged it is not hashed again. Any write to the file changes its mtime and ctime
(and ``touch -d`` to restore an old mtime still changes ctime), so a changed shard is always re-hashed
and refused; ``trust_verified=False`` re-hashes everything regardless.

Single utterances are read-only views into a memory map of the shard: no copy, no per-utterance file
open. :meth:`FeatureSet.load_all` reads each shard file sequentially straight into one preallocated
array, hashing as it goes, with the shards spread over threads (file reads and hashing release the GIL).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.shards.version import STORE_FORMAT, hash_file
from serflow.shards.writer import (
    DTYPE,
    INDEX_NAME,
    MANIFEST_NAME,
    OFFSET_DTYPE,
    IncompleteStoreError,
    ShardHeader,
    ShardIntegrityError,
    read_shard_header,
)

RACY_NS = 2_000_000_000  # files changed less than 2 s ago are hashed every time (see _VerifiedMemo.remember)
READ_CHUNK = 4 << 20  # read-then-hash in chunks that are still in cache when hashed


@dataclass(frozen=True)
class _OpenShard:
    mm: mmap.mmap
    data: np.ndarray  # [frames, dims], read-only view of the map


class FeatureSet:
    """A finished feature store ``features/{corpus}/{feature}/{version}/``, indexed by utterance id."""

    def __init__(self, path: str | os.PathLike[str], *, verify: bool = True, trust_verified: bool = True) -> None:
        self.path = Path(path)
        self.verify = verify
        self.meta: dict[str, Any] = _read_manifest(self.path)
        self._memo = _VerifiedMemo(self.path, enabled=verify and trust_verified)
        index = self._read_index()
        self.ids: list[str] = index.column("utt_id").to_pylist()
        self.frames: np.ndarray = index.column("frames").to_numpy().astype(np.int64)
        shard = index.column("shard").to_numpy().astype(np.int64)
        self._check_index(shard, index.column("position").to_numpy())
        self._row = {utt_id: i for i, utt_id in enumerate(self.ids)}
        if len(self._row) != len(self.ids):
            raise ShardIntegrityError(f"{self.path / INDEX_NAME}: duplicate utterance ids")
        # rows of shard k are index rows [bounds[k], bounds[k+1]); frame ranges are within the shard
        self._bounds = np.searchsorted(shard, np.arange(len(self.meta["shards"]) + 1)).tolist()
        ends = np.cumsum(self.frames)
        base = np.concatenate([[0], ends])[self._bounds[:-1]]
        within_end = ends - np.repeat(base, np.diff(self._bounds))
        self._loc = list(zip(shard.tolist(), (within_end - self.frames).tolist(), within_end.tolist(), strict=True))
        self._shards: dict[int, _OpenShard] = {}
        self._verified: set[int] = set()

    # --- checks ---------------------------------------------------------------------------------------

    def _read_index(self) -> pa.Table:
        entry = self.meta["index"]
        path = self.path / entry["file"]
        if self.verify and not self._memo.trusts(path, entry["sha256"]):
            _check_digest(path, _hash_or_refuse(path), entry["sha256"])
            self._memo.remember(path, entry["sha256"])
        return pq.read_table(path)

    def _check_index(self, shard: np.ndarray, position: np.ndarray) -> None:
        """Index rows are shard-major in position order, as finalize writes them; the counts match the manifest."""
        counts = [s["utterances"] for s in self.meta["shards"]]
        expected_shard = np.repeat(np.arange(len(counts)), counts)
        expected_position = np.concatenate([np.arange(n) for n in counts] or [np.zeros(0, np.int64)])
        if not (np.array_equal(shard, expected_shard) and np.array_equal(position, expected_position)):
            raise ShardIntegrityError(f"{self.path / INDEX_NAME}: rows do not match the shards in {MANIFEST_NAME}")

    def _shard_path(self, k: int) -> Path:
        return self.path / self.meta["shards"][k]["file"]

    def _header(self, k: int) -> ShardHeader:
        """The shard's header, checked against the index: same ids in the same order, same dims."""
        path = self._shard_path(k)
        try:
            header = read_shard_header(path)
        except OSError as exc:
            raise ShardIntegrityError(f"{path}: cannot read the shard: {exc}", path) from exc
        lo, hi = self._bounds[k], self._bounds[k + 1]
        if list(header.utt_ids) != self.ids[lo:hi] or (hi > lo and header.dims != self.dims):
            raise ShardIntegrityError(f"{path}: utterance ids or dims differ from {INDEX_NAME}", path)
        return header

    def _check_offsets(self, k: int, offsets: np.ndarray) -> None:
        lo, hi = self._bounds[k], self._bounds[k + 1]
        if offsets[0] != 0 or not np.array_equal(np.diff(offsets), self.frames[lo:hi]):
            path = self._shard_path(k)
            raise ShardIntegrityError(f"{path}: frame offsets differ from {INDEX_NAME}", path)

    # --- single utterances ----------------------------------------------------------------------------

    def _open(self, k: int) -> _OpenShard:
        header = self._header(k)
        path = self._shard_path(k)
        with open(path, "rb") as fh:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        if self._needs_hash(k):
            _check_digest(path, hashlib.sha256(mm).hexdigest(), self.meta["shards"][k]["sha256"])
            self._mark_verified(k)
        n_offsets = len(header.utt_ids) + 1
        self._check_offsets(k, np.frombuffer(mm, OFFSET_DTYPE, count=n_offsets, offset=header.offsets_start))
        count = header.frames * header.dims
        data = np.frombuffer(mm, DTYPE, count=count, offset=header.data_start).reshape(header.frames, header.dims)
        shard = _OpenShard(mm, data)
        self._shards[k] = shard
        return shard

    def __getitem__(self, utt_id: str) -> np.ndarray:
        """The ``[frames, dims]`` float32 features of ``utt_id``: a read-only view (copy it to modify)."""
        try:
            k, start, end = self._loc[self._row[utt_id]]
        except KeyError:
            raise KeyError(f"utterance {utt_id!r} is not in {self.path}") from None
        shard = self._shards.get(k) or self._open(k)
        return shard.data[start:end]

    def __contains__(self, utt_id: object) -> bool:
        return utt_id in self._row

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    # --- everything at once ---------------------------------------------------------------------------

    def load_all(self, threads: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """All features as one writable ``[total_frames, dims]`` array, int64 ``offsets`` and the ids.

        Utterance ``ids[i]`` is ``data[offsets[i]:offsets[i + 1]]``; the order is the index order.
        """
        offsets = np.concatenate([np.zeros(1, np.int64), np.cumsum(self.frames)])
        data = np.empty((int(offsets[-1]), self.dims), DTYPE)
        starts = offsets[self._bounds].tolist()
        jobs = [(k, data[starts[k] : starts[k + 1]]) for k in range(len(self.meta["shards"]))]
        workers = max(1, min(len(jobs), threads or _usable_cpus()))
        if workers == 1:
            for job in jobs:
                self._read_into(*job)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(lambda job: self._read_into(*job), jobs))
        return data, offsets, list(self.ids)

    def _read_into(self, k: int, out: np.ndarray) -> None:
        """Read shard ``k`` in one sequential pass: header and offsets, then the data straight into ``out``."""
        header = self._header(k)
        path = self._shard_path(k)
        digest = hashlib.sha256() if self._needs_hash(k) else None
        with open(path, "rb", buffering=0) as fh:
            head = _read_exact(fh, header.data_start, path)
            if digest is not None:
                digest.update(head)
            if out.nbytes:
                _read_into_hashing(fh, memoryview(out).cast("B"), digest, path)
        if digest is not None:
            _check_digest(path, digest.hexdigest(), self.meta["shards"][k]["sha256"])
            self._mark_verified(k)
        n_offsets = len(header.utt_ids) + 1
        self._check_offsets(k, np.frombuffer(head, OFFSET_DTYPE, count=n_offsets, offset=header.offsets_start))

    def _needs_hash(self, k: int) -> bool:
        if not self.verify or k in self._verified:
            return False
        if self._memo.trusts(self._shard_path(k), self.meta["shards"][k]["sha256"]):
            self._verified.add(k)
            return False
        return True

    def _mark_verified(self, k: int) -> None:
        self._verified.add(k)
        self._memo.remember(self._shard_path(k), self.meta["shards"][k]["sha256"])

    # --- the rest -------------------------------------------------------------------------------------

    @property
    def dims(self) -> int:
        return int(self.meta["dims"])

    @property
    def feature(self) -> str:
        return str(self.meta["feature"])

    @property
    def version(self) -> str:
        return str(self.meta["version"])

    @property
    def tables(self) -> list[str]:
        return sorted(self.meta.get("tables", {}))

    def table(self, name: str) -> pa.Table:
        """A Parquet table stored beside the tensors (see :func:`serflow.shards.add_table`), hash-checked."""
        entries = self.meta.get("tables", {})
        if name not in entries:
            raise KeyError(f"{self.path} has no table {name!r} (it has {sorted(entries)})")
        path = self.path / entries[name]["file"]
        if self.verify:
            _check_digest(path, _hash_or_refuse(path), entries[name]["sha256"])
        return pq.read_table(path)

    def close(self) -> None:
        """Forget the memory maps; each is unmapped once no array returned by ``[]`` still uses it."""
        self._shards.clear()

    def __enter__(self) -> FeatureSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by "spawn" receive a pickled copy: maps are reopened there, while
        # shards already verified in the parent are not hashed again
        state = self.__dict__.copy()
        state["_shards"] = {}
        return state

    def __repr__(self) -> str:
        return (
            f"FeatureSet({str(self.path)!r}: {len(self)} utterances x {self.dims} dims, {len(self._bounds) - 1} shards)"
        )


class _VerifiedMemo:
    """``.verified.json``: files of this store already hashed, keyed by their stat (see module docstring).

    Best effort: a store on a read-only file system is simply verified again each time.
    """

    NAME = ".verified.json"

    def __init__(self, store: Path, enabled: bool) -> None:
        self.path = store / self.NAME
        self.enabled = enabled
        self._entries: dict[str, dict[str, Any]] = {}
        if enabled:
            try:
                self._entries = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._entries = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: Path) -> list[int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]

    def trusts(self, path: Path, sha256: str) -> bool:
        if not self.enabled:
            return False
        entry = self._entries.get(path.name)
        return bool(entry) and entry["sha256"] == sha256 and entry["stat"] == self._key(path)

    def remember(self, path: Path, sha256: str) -> None:
        key = self._key(path)
        # As "racy git": a file changed within the last moments may change again within the same
        # timestamp tick (file systems stamp at jiffy resolution), so only settled files are remembered.
        if not self.enabled or key is None or time.time_ns() - key[3] < RACY_NS:
            return
        with self._lock:
            self._entries[path.name] = {"sha256": sha256, "stat": key}
            try:
                tmp = self.path.with_name(f"{self.NAME}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(self._entries, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError:
                self.enabled = False


def _usable_cpus() -> int:
    """CPUs this process may run on (respects pinning, unlike ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest = path / MANIFEST_NAME
    if not manifest.is_file():
        if not path.is_dir():
            raise IncompleteStoreError(f"{path}: no such feature store")
        raise IncompleteStoreError(
            f"{path}: no {MANIFEST_NAME}, so the store is incomplete (its shards were never finalized, "
            "or a job is rewriting them); run the workflow to finish it"
        )
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    if meta.get("format") != STORE_FORMAT:
        raise ShardIntegrityError(f"{manifest}: format {meta.get('format')!r}, this reader knows {STORE_FORMAT!r}")
    return meta


def _hash_or_refuse(path: Path) -> str:
    try:
        return hash_file(path)
    except OSError as exc:
        raise ShardIntegrityError(f"{path}: cannot read it: {exc}", path) from exc


def _check_digest(path: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise ShardIntegrityError(
            f"{path}: sha256 {actual[:16]}... does not match {MANIFEST_NAME} ({expected[:16]}...): the file changed "
            "after the store was finalized",
            path,
        )


def _read_exact(fh: IO[bytes], n: int, path: Path) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise ShardIntegrityError(f"{path}: truncated ({len(data)} of {n} bytes)", path)
    return data


def _read_into_hashing(fh: IO[bytes], view: memoryview, digest: Any, path: Path) -> None:
    pos = 0
    while pos < len(view):
        n = fh.readinto(view[pos : pos + READ_CHUNK])
        if not n:
            raise ShardIntegrityError(f"{path}: truncated ({pos} of {len(view)} data bytes)", path)
        if digest is not None:
            digest.update(view[pos : pos + n])
        pos += n


def set_aside_damaged(store: str | os.PathLike[str], error: ShardIntegrityError) -> str:
    """Make a store whose file ``error`` blames rebuildable by the workflow's next run; returns what was done.

    The damaged file goes to ``.damaged/`` (:func:`serflow.io.quarantine`); for a shard, its job's record goes too,
    so Snakemake reruns that shard job alone; and ``manifest.json`` goes, so the store is incomplete until it is
    finalized again. A store written by one job (glove, spans) is then rebuilt whole by that job.
    """
    from serflow.io import quarantine
    from serflow.shards.writer import SHARD_RE, record_path

    store = Path(store)
    done = []
    if error.path is not None and Path(error.path).exists():
        moved = quarantine(error.path, str(error))
        done.append(f"moved {error.path} to {moved}")
        match = SHARD_RE.match(Path(error.path).name)
        if match is not None:
            record_path(store, int(match.group(1))).unlink(missing_ok=True)
    (store / MANIFEST_NAME).unlink(missing_ok=True)
    done.append(f"removed {store / MANIFEST_NAME}: run the workflow again to rebuild what is missing")
    return "; ".join(done)
