"""Load a whole IEMOCAP-sized feature set: the shard store against one ``.npy`` file per utterance.

    .venv/bin/python benchmarks/bench_shards.py [--runs 5] [--utterances 5531] [--dims 39] [--no-cold] [--keep]

The issue's target: "Loading a whole feature set for training at least 10x faster than one ``.npy`` per
utterance". Builds, in a temporary folder under /tmp, 5,531 utterances of about 300 frames x 39 dims
(variable lengths, ~260 MB of float32) three ways: a finalized shard store, one ``.npy`` per utterance,
and (for information) a Parquet table with one list column. Then, in one process, each way of loading
everything is timed ``--runs`` times, in turns:

- ``npy loop``: ``np.load`` per utterance (a list of arrays), and the same plus ``np.concatenate`` (one
  array, which is what ``load_all`` returns);
- ``load_all``: a fresh ``FeatureSet`` (manifest and index read) and ``load_all()``: hashing every shard
  (``trust_verified=False``: what the first use of a store pays), verifying as training does (shards
  hashed once are trusted while their inode, size, mtime and ctime are unchanged; see
  ``serflow/shards/reader.py``), and without verification (the raw read);
- ``fs[utt]``: a fresh ``FeatureSet`` and a copy of every utterance through ``__getitem__``;
- ``parquet``: ``pyarrow.parquet.read_table`` and the list column's values as one NumPy array.

Warm: the files were just written, so the page cache holds them. Cold: before every timed run each file
is dropped from the page cache with ``posix_fadvise(DONTNEED)`` (no root needed; on tmpfs it does
nothing). Times are the best of the runs, with the median beside it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.shards import FeatureSet, FeatureSpec, ShardWriter

TARGET_RATIO = 10.0


def _lengths(n: int, seed: int) -> np.ndarray:
    """Frame counts like IEMOCAP turns at 100 frames/s: a skewed spread around 300 (about 0.5 s to 20 s)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(260), 0.55, n), 50, 2000).astype(np.int64)


def build(root: Path, n: int, dims: int, seed: int = 0) -> tuple[Path, list[Path], Path]:
    """Write the same synthetic features as a store, as one .npy per utterance and as one Parquet table."""
    rng = np.random.default_rng(seed)
    lengths = _lengths(n, seed)
    ids = [f"Ses{1 + i % 5:02d}F_impro{i // 100:02d}_F{i:05d}" for i in range(n)]
    spec = FeatureSpec("mfcc", {"n_mfcc": 13, "deltas": [1, 2]}, "bench", "1", {"manifest": "synthetic"})
    npy_dir = root / "npy"
    npy_dir.mkdir(parents=True)
    npy_paths, parts = [], []
    with ShardWriter(root / "store", spec) as writer:
        for utt_id, frames in zip(ids, lengths.tolist(), strict=True):
            arr = rng.standard_normal((frames, dims), dtype=np.float32)
            writer.add(utt_id, arr)
            path = npy_dir / f"{utt_id}.npy"
            np.save(path, arr)
            npy_paths.append(path)
            parts.append(arr.reshape(-1))
        writer.finalize()
    flat = np.concatenate(parts)
    list_offsets = np.concatenate([[0], np.cumsum(lengths * dims)]).astype(np.int32)
    features = pa.ListArray.from_arrays(pa.array(list_offsets), pa.array(flat))
    table = pa.table({"utt_id": ids, "frames": lengths, "features": features})
    parquet_path = root / "features.parquet"
    pq.write_table(table, parquet_path, compression="none")
    os.sync()  # written pages must be clean before they can be dropped from the page cache
    return spec.directory(root / "store"), npy_paths, parquet_path


def drop_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def npy_loop(paths: list[Path]) -> int:
    arrays = [np.load(p) for p in paths]
    return sum(a.shape[0] for a in arrays)


def npy_concat(paths: list[Path]) -> int:
    return np.concatenate([np.load(p) for p in paths]).shape[0]


def load_all(store: Path, verify: bool, trust_verified: bool = True) -> int:
    data, _, _ = FeatureSet(store, verify=verify, trust_verified=trust_verified).load_all()
    return data.shape[0]


def per_utterance(store: Path, verify: bool) -> int:
    fs = FeatureSet(store, verify=verify)
    arrays = [np.array(fs[u]) for u in fs.ids]  # copy: the frames are really read, as np.load reads them
    return sum(a.shape[0] for a in arrays)


def parquet_lists(path: Path) -> int:
    table = pq.read_table(path)
    values = table.column("features").combine_chunks().flatten().to_numpy()
    return len(values)


def measure(
    methods: dict[str, Callable[[], int]], files: dict[str, list[Path]], runs: int, cold: bool
) -> dict[str, list[float]]:
    """Time every method ``runs`` times, in turns, so drift in the machine affects them all alike."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(runs):
        for name, fn in methods.items():
            if cold:
                drop_cache(files[name])
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str) -> None:
    base = min(times[baseline])
    print(f"\n{title}  (best of {len(times[baseline])}, median in brackets; ratio = {baseline} / method)")
    for name, values in times.items():
        best = min(values)
        print(f"  {name:32s} {best * 1000:9.1f} ms  ({statistics.median(values) * 1000:8.1f})  x{base / best:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--utterances", type=int, default=5531)
    parser.add_argument("--dims", type=int, default=39)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold page-cache runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench_shards_", dir="/tmp"))
    try:
        t0 = time.perf_counter()
        store, npy_paths, parquet_path = build(root, args.utterances, args.dims)
        shards = sorted(store.glob("shard-*.safetensors"))
        fs = FeatureSet(store)
        size_mb = sum(p.stat().st_size for p in shards) / 1e6
        print(
            f"built in {time.perf_counter() - t0:.1f} s under {root}: {len(fs)} utterances, "
            f"{int(fs.frames.sum())} frames x {fs.dims} dims (mean {fs.frames.mean():.0f} frames), "
            f"{size_mb:.0f} MB in {len(shards)} shards; {len(npy_paths)} .npy files; "
            f"{os.cpu_count()} CPUs, threads for load_all: {min(len(shards), os.cpu_count() or 1)}"
        )
        store_files = [*shards, store / "index.parquet", store / "manifest.json"]
        files = {
            "npy loop (list of arrays)": npy_paths,
            "npy loop + concatenate": npy_paths,
            "FeatureSet.load_all hash every shard": store_files,
            "FeatureSet.load_all verify": store_files,
            "FeatureSet.load_all no verify": store_files,
            "FeatureSet[utt] copy, verify": store_files,
            "FeatureSet[utt] copy, no verify": store_files,
            "parquet list column": [parquet_path],
        }
        methods: dict[str, Callable[[], int]] = {
            "npy loop (list of arrays)": lambda: npy_loop(npy_paths),
            "npy loop + concatenate": lambda: npy_concat(npy_paths),
            "FeatureSet.load_all hash every shard": lambda: load_all(store, True, trust_verified=False),
            "FeatureSet.load_all verify": lambda: load_all(store, True),
            "FeatureSet.load_all no verify": lambda: load_all(store, False),
            "FeatureSet[utt] copy, verify": lambda: per_utterance(store, True),
            "FeatureSet[utt] copy, no verify": lambda: per_utterance(store, False),
            "parquet list column": lambda: parquet_lists(parquet_path),
        }
        frames = {name: fn() for name, fn in methods.items() if "parquet" not in name}
        if set(frames.values()) != {int(fs.frames.sum())}:
            raise SystemExit(f"the methods read different amounts of data: {frames}")
        report("warm page cache", measure(methods, files, args.runs, cold=False), "npy loop (list of arrays)")
        if not args.no_cold:
            report("cold page cache", measure(methods, files, args.runs, cold=True), "npy loop (list of arrays)")
        print(f"\nthe issue's target: load_all at least x{TARGET_RATIO:.0f} faster than the npy loop")
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
