"""Writing a feature store: shards one at a time, then one ``finalize`` that makes the store complete.

The workflow runs one job per shard of utterances (:func:`write_shard`) and then one job that calls
:func:`finalize`, which re-reads what the shard jobs wrote and writes ``index.parquet`` and, last,
``manifest.json``. A store is complete exactly when ``manifest.json`` exists: every file is written
atomically (temporary name, fsync, rename; :mod:`serflow.io`), a crash leaves at most whole shards
without a manifest, and writing a shard into a finished store first removes its manifest.

Shards are safetensors files written here rather than by the safetensors library, for two reasons:
the utterances are streamed into the file one by one (no second, concatenated copy of a shard in
memory, which matters for 768-dimensional features), and the header's key order is fixed, so the
same input gives the same bytes (the library writes its metadata map in random order). The tests
check that the files load with ``safetensors`` itself. The layout is in ``features/README.md``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.io import atomic_path, write_json, write_parquet
from serflow.shards.version import STORE_FORMAT, canonical, feature_version, hash_file

SHARD_FORMAT = "serflow-shard/1"
MANIFEST_NAME = "manifest.json"
INDEX_NAME = "index.parquet"
SHARD_GLOB = "shard-*.safetensors"
SHARD_RE = re.compile(r"^shard-(\d{5})\.safetensors$")
TABLE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DATA_KEY, OFFSETS_KEY, IDS_KEY = "data", "offsets", "utt_ids"
DTYPE = np.dtype("<f4")
OFFSET_DTYPE = np.dtype("<i8")
CREATED_KEY = "created_at"  # the one manifest key that differs between identical runs
DEFAULT_SHARD_BYTES = 64 << 20
MAX_HEADER_BYTES = 100_000_000  # safetensors refuses larger headers
INDEX_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("shard", pa.int64()),
        ("position", pa.int64()),
        ("frames", pa.int64()),
        ("dims", pa.int64()),
    ]
)
BASE_PACKAGES = ("numpy", "pyarrow", "safetensors")


class StoreError(Exception):
    """Base class of the feature store's errors."""


class FeatureValueError(StoreError, ValueError):
    """An utterance's features cannot be stored (NaN/inf, no frames, wrong shape): the message names it."""


class ShardIntegrityError(StoreError):
    """A stored file is not what the manifest says (hash, size, header): the message names the path.

    ``path`` is the damaged file where one is to blame (so the workflow can set it aside and rebuild it).
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class IncompleteStoreError(StoreError, FileNotFoundError):
    """The store has no ``manifest.json``: its shards were never finalized (or are being rewritten)."""


def shard_name(index: int) -> str:
    if not 0 <= index <= 99_999:
        raise ValueError(f"shard index must be in 0..99999, got {index}")
    return f"shard-{index:05d}.safetensors"


def is_complete(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a finished store (the workflow's "already computed, skip" test)."""
    return (Path(directory) / MANIFEST_NAME).is_file()


@dataclass(frozen=True)
class FeatureSpec:
    """Everything that names a feature store: what the version is computed from, plus the extractor's name."""

    feature: str
    params: Mapping[str, Any]
    extractor: str
    extractor_version: str
    input_hashes: Mapping[str, str] = field(default_factory=dict)
    # The name the version is computed under, when not ``feature``: a companion store written by the
    # same job (``bert_utt`` beside ``bert``) shares its version, so one job's outputs share one folder name.
    version_of: str | None = None

    @property
    def version(self) -> str:
        return feature_version(self.version_of or self.feature, self.params, self.extractor_version, self.input_hashes)

    def directory(self, root: str | os.PathLike[str]) -> Path:
        """``root/{feature}/{version}``; ``root`` is the corpus folder, e.g. ``features/iemocap``."""
        return Path(root) / self.feature / self.version


@dataclass(frozen=True)
class ShardInfo:
    """One written shard: what the manifest records about it, and what the index is built from."""

    index: int
    file: str
    sha256: str
    dims: int
    utt_ids: tuple[str, ...]
    lengths: tuple[int, ...]  # frames per utterance, in position order

    @property
    def utterances(self) -> int:
        return len(self.utt_ids)

    @property
    def frames(self) -> int:
        return sum(self.lengths)

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "utterances": self.utterances,
            "frames": self.frames,
            "dims": self.dims,
        }


# --- validation ---------------------------------------------------------------------------------------


def check_utterance(utt_id: object, array: object, dims: int | None = None) -> np.ndarray:
    """``array`` as a C-contiguous little-endian float32 ``[T, D]`` array, or an error naming ``utt_id``.

    Integers and other float widths are converted; the finiteness check runs after the conversion, so a
    float64 value too large for float32 is caught as inf. A 1-D array is refused rather than guessed
    (``[T]`` of a 1-dimensional feature and ``[D]`` of an utterance-level vector look alike): pass
    ``[T, 1]`` or ``[1, D]``.
    """
    if not isinstance(utt_id, str) or not utt_id:
        raise FeatureValueError(f"utterance id must be a non-empty string, got {utt_id!r}")
    arr = np.asarray(array)
    if arr.dtype.kind not in "fiu":
        raise FeatureValueError(f"utterance {utt_id!r}: features must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise FeatureValueError(
            f"utterance {utt_id!r}: expected a [frames, dims] array, got shape {arr.shape} "
            "(an utterance-level vector is [1, dims])"
        )
    if arr.shape[0] == 0:
        raise FeatureValueError(f"utterance {utt_id!r} has zero frames")
    if arr.shape[1] == 0 or (dims is not None and arr.shape[1] != dims):
        expected = f"{dims}" if dims is not None else "at least 1"
        raise FeatureValueError(f"utterance {utt_id!r} has {arr.shape[1]} dims, expected {expected}")
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the next line reports by name
        arr = np.ascontiguousarray(arr, dtype=DTYPE)
    if not np.isfinite(arr).all():
        _raise_non_finite(utt_id, arr)
    return arr


def _raise_non_finite(utt_id: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    frame, dim = (int(i[0]) for i in np.nonzero(bad))
    kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in arr[bad][:1000]})
    raise FeatureValueError(
        f"utterance {utt_id!r} has {int(bad.sum())} non-finite values ({'/'.join(kinds)}), "
        f"first at frame {frame}, dim {dim}"
    )


def _check_items(items: Iterable[tuple[str, object]], dims: int | None) -> list[tuple[str, np.ndarray]]:
    checked: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    for utt_id, array in items:
        arr = check_utterance(utt_id, array, dims)
        if utt_id in seen:
            raise FeatureValueError(f"utterance {utt_id!r} appears twice in one shard")
        seen.add(utt_id)
        dims = arr.shape[1] if dims is None else dims
        checked.append((utt_id, arr))
    return checked


# --- shard files ----------------------------------------------------------------------------------------


def _header_bytes(utt_ids: Sequence[str], frames: int, dims: int) -> bytes:
    """The safetensors header: ``offsets`` (int64) first, then ``data`` (float32), no gaps.

    Key order is fixed here (safetensors readers accept any order), padded with spaces to a multiple of 8
    bytes as safetensors does, so both tensors start 8-byte aligned for memory mapping.
    """
    offsets_bytes = (len(utt_ids) + 1) * OFFSET_DTYPE.itemsize
    data_bytes = frames * dims * DTYPE.itemsize
    header = {
        "__metadata__": {
            "format": SHARD_FORMAT,
            IDS_KEY: json.dumps(list(utt_ids), separators=(",", ":"), ensure_ascii=True),
        },
        OFFSETS_KEY: {"dtype": "I64", "shape": [len(utt_ids) + 1], "data_offsets": [0, offsets_bytes]},
        DATA_KEY: {
            "dtype": "F32",
            "shape": [frames, dims],
            "data_offsets": [offsets_bytes, offsets_bytes + data_bytes],
        },
    }
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:
        raise FeatureValueError(f"{len(utt_ids)} utterance ids make a shard header over 100 MB: use more shards")
    return len(text).to_bytes(8, "little") + text


def _stream_shard(fh: IO[bytes], checked: Sequence[tuple[str, np.ndarray]], dims: int) -> str:
    """Write header, offsets and each utterance's frames to ``fh``; return the sha256 of what was written."""
    lengths = np.array([arr.shape[0] for _, arr in checked], dtype=OFFSET_DTYPE)
    offsets = np.concatenate([np.zeros(1, OFFSET_DTYPE), np.cumsum(lengths, dtype=OFFSET_DTYPE)])
    digest = hashlib.sha256()
    pieces: list[bytes | memoryview] = [
        _header_bytes([u for u, _ in checked], int(offsets[-1]), dims),
        memoryview(offsets).cast("B"),
    ]
    pieces.extend(memoryview(arr).cast("B") for _, arr in checked)
    for piece in pieces:
        fh.write(piece)
        digest.update(piece)
    return digest.hexdigest()


def _invalidate(directory: Path) -> None:
    """Remove ``manifest.json``: a store whose files are being (re)written is incomplete until finalized."""
    (directory / MANIFEST_NAME).unlink(missing_ok=True)


def write_shard(
    directory: str | os.PathLike[str],
    shard_index: int,
    items: Iterable[tuple[str, object]],
    *,
    dims: int | None = None,
) -> ShardInfo:
    """Write ``items`` (``(utt_id, [T, D] array)``, in order) as ``shard-{shard_index:05d}.safetensors``.

    Every item is checked before anything is written, so a bad utterance leaves no file behind. ``dims``
    (optional) is enforced on every item and gives an empty shard (allowed: a job whose utterances were
    all quarantined) its width; without it an empty shard is ``[0, 0]``.
    """
    checked = _check_items(items, dims)
    return _write_checked(Path(directory), shard_index, checked, dims)


def _write_checked(
    directory: Path, shard_index: int, checked: Sequence[tuple[str, np.ndarray]], dims: int | None
) -> ShardInfo:
    width = checked[0][1].shape[1] if checked else (dims or 0)
    name = shard_name(shard_index)
    directory.mkdir(parents=True, exist_ok=True)
    _invalidate(directory)
    with atomic_path(directory / name) as tmp, open(tmp, "wb") as fh:
        sha = _stream_shard(fh, checked, width)
    return ShardInfo(
        index=shard_index,
        file=name,
        sha256=sha,
        dims=width,
        utt_ids=tuple(u for u, _ in checked),
        lengths=tuple(int(a.shape[0]) for _, a in checked),
    )


@dataclass(frozen=True)
class ShardHeader:
    """A parsed shard header: where the two tensors lie in the file."""

    utt_ids: tuple[str, ...]
    frames: int
    dims: int
    offsets_start: int  # absolute byte positions in the file
    data_start: int
    file_size: int


def read_shard_header(path: str | os.PathLike[str]) -> ShardHeader:
    """Parse and check a shard's header (two small reads); any deviation is a :class:`ShardIntegrityError`."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        prefix = fh.read(8)
        n = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise ShardIntegrityError(f"{path}: not a safetensors file (header length {n}, file size {size})", path)
        raw = fh.read(n)
    try:
        header = json.loads(raw)
        return _check_header(header, 8 + n, size)
    except (ValueError, KeyError, TypeError) as exc:
        raise ShardIntegrityError(f"{path}: bad shard header: {exc}", path) from exc


def _check_header(header: dict[str, Any], base: int, size: int) -> ShardHeader:
    if set(header) != {"__metadata__", OFFSETS_KEY, DATA_KEY}:
        raise ValueError(f"expected tensors {OFFSETS_KEY!r} and {DATA_KEY!r}, got {sorted(header)}")
    utt_ids = json.loads(header["__metadata__"][IDS_KEY])
    offsets, data = header[OFFSETS_KEY], header[DATA_KEY]
    if offsets["dtype"] != "I64" or data["dtype"] != "F32" or len(data["shape"]) != 2:
        raise ValueError(f"expected I64 offsets and a 2-D F32 data tensor, got {offsets} and {data}")
    if not isinstance(utt_ids, list) or offsets["shape"] != [len(utt_ids) + 1]:
        raise ValueError(f"{len(utt_ids)} utterance ids but offsets of shape {offsets['shape']}")
    frames, dims = (int(x) for x in data["shape"])
    o_begin, o_end = offsets["data_offsets"]
    d_begin, d_end = data["data_offsets"]
    if (o_begin, o_end, d_begin) != (0, (len(utt_ids) + 1) * 8, o_end) or d_end - d_begin != frames * dims * 4:
        raise ValueError(f"tensor byte ranges {offsets['data_offsets']} and {data['data_offsets']} do not fit")
    if base + d_end != size:
        raise ValueError(f"file is {size} bytes, the header describes {base + d_end}")
    return ShardHeader(tuple(utt_ids), frames, dims, base, base + d_begin, size)


# --- the shard job's record of what it wrote -----------------------------------------------------------------

RECORD_FORMAT = "serflow-shard-record/1"


def record_path(directory: str | os.PathLike[str], shard_index: int) -> Path:
    """``parts/shard-NNNNN.json``: the record a shard job writes beside its shard."""
    return Path(directory) / "parts" / f"shard-{shard_index:05d}.json"


def write_shard_record(info: ShardInfo, path: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> None:
    """Record what a shard job wrote: file, sha256, size, ids and lengths (+ ``extra``, e.g. the code provenance).

    Written atomically right after the shard by the same job, so the bytes are fixed by the job that produced
    them: :func:`verify_shard` holds later steps to this record instead of re-hashing (re-certifying) whatever is
    on disk.
    """
    record = {
        "format": RECORD_FORMAT,
        "index": info.index,
        "file": info.file,
        "sha256": info.sha256,
        "dims": info.dims,
        "utt_ids": list(info.utt_ids),
        "lengths": list(info.lengths),
        **dict(extra or {}),
    }
    write_json(record, path)


def read_shard_record(path: str | os.PathLike[str]) -> ShardInfo:
    """The :class:`ShardInfo` a shard job recorded (:func:`write_shard_record`); a bad record names its path."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("format") != RECORD_FORMAT:
            raise ValueError(f"format {record.get('format')!r}, expected {RECORD_FORMAT!r}")
        info = ShardInfo(
            index=int(record["index"]),
            file=str(record["file"]),
            sha256=str(record["sha256"]),
            dims=int(record["dims"]),
            utt_ids=tuple(record["utt_ids"]),
            lengths=tuple(int(n) for n in record["lengths"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShardIntegrityError(f"{path}: not a readable shard record: {exc}") from exc
    if info.file != shard_name(info.index) or len(info.utt_ids) != len(info.lengths):
        raise ShardIntegrityError(f"{path}: inconsistent shard record (file {info.file!r}, index {info.index})")
    return info


def verify_shard(directory: str | os.PathLike[str], info: ShardInfo) -> None:
    """Check that the shard on disk is byte for byte what its job recorded; :class:`ShardIntegrityError` if not.

    The message names the file and says what differs (missing, header, sha256), so the caller can quarantine it.
    """
    path = Path(directory) / info.file
    if not path.is_file():
        raise ShardIntegrityError(f"{path}: missing (its job recorded sha256 {info.sha256[:12]}...)", path)
    actual = hash_file(path)
    if actual != info.sha256:
        raise ShardIntegrityError(
            f"{path}: sha256 {actual[:12]}... differs from {info.sha256[:12]}... recorded by the job that wrote it: "
            "the file changed after it was written",
            path,
        )


def read_shard_info(path: str | os.PathLike[str]) -> ShardInfo:
    """Re-read a shard written by another job: its hash (one streamed pass), ids and lengths (header + offsets)."""
    path = Path(path)
    match = SHARD_RE.match(path.name)
    if match is None:
        raise ValueError(f"{path}: not a shard file name (shard-NNNNN.safetensors)")
    header = read_shard_header(path)
    with open(path, "rb") as fh:
        fh.seek(header.offsets_start)
        offsets = np.frombuffer(fh.read(header.data_start - header.offsets_start), dtype=OFFSET_DTYPE)
    lengths = np.diff(offsets)
    if offsets[0] != 0 or offsets[-1] != header.frames or (lengths <= 0).any():
        raise ShardIntegrityError(f"{path}: offsets do not describe {header.frames} frames of non-empty utterances")
    return ShardInfo(
        index=int(match.group(1)),
        file=path.name,
        sha256=hash_file(path),
        dims=header.dims,
        utt_ids=header.utt_ids,
        lengths=tuple(int(x) for x in lengths),
    )


# --- tables ---------------------------------------------------------------------------------------------


def add_table(directory: str | os.PathLike[str], name: str, table: pa.Table) -> Path:
    """Store a Parquet table beside the tensors (e.g. ``words`` with per-word phone and frame spans).

    Written atomically as ``{name}.parquet``; :func:`finalize` records every such table with its hash.
    """
    if not TABLE_NAME_RE.match(name) or name == Path(INDEX_NAME).stem or name.endswith(".parquet"):
        raise ValueError(f"bad table name {name!r}: use letters, digits, '_', '.', '-', not 'index'")
    if not isinstance(table, pa.Table):
        raise TypeError(f"table {name!r} must be a pyarrow.Table, got {type(table).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _invalidate(directory)
    path = directory / f"{name}.parquet"
    write_parquet(table, path)
    return path


# --- finalize -------------------------------------------------------------------------------------------


def _discover_shards(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob(SHARD_GLOB) if SHARD_RE.match(p.name))


def _check_shard_set(directory: Path, infos: Sequence[ShardInfo], n_shards: int | None) -> list[ShardInfo]:
    """Shards numbered 0..n-1 without gaps, matching the files on disk exactly (no stale extras)."""
    infos = sorted(infos, key=lambda s: s.index)
    on_disk = {p.name for p in _discover_shards(directory)}
    count = n_shards if n_shards is not None else max((s.index + 1 for s in infos), default=0)
    expected = [shard_name(i) for i in range(count)]
    missing = [n for n in expected if n not in on_disk or n not in {s.file for s in infos}]
    extra = sorted((on_disk | {s.file for s in infos}) - set(expected))
    if missing:
        raise StoreError(f"{directory}: {len(expected)} shards expected, missing {missing} (did a shard job fail?)")
    if extra:
        raise StoreError(f"{directory}: unexpected files {extra} beyond {count} shards (stale from an earlier run?)")
    return infos


def _check_dims(directory: Path, infos: Sequence[ShardInfo]) -> int:
    widths = {s.dims for s in infos if s.utterances}
    if len(widths) > 1:
        per_shard = {s.file: s.dims for s in infos if s.utterances}
        raise FeatureValueError(f"{directory}: shards disagree on dims: {per_shard}")
    return widths.pop() if widths else max((s.dims for s in infos), default=0)


def _index_table(directory: Path, infos: Sequence[ShardInfo], dims: int) -> pa.Table:
    owner: dict[str, str] = {}
    for info in infos:
        for utt_id in info.utt_ids:
            if utt_id in owner:
                raise FeatureValueError(f"{directory}: utterance {utt_id!r} is in both {owner[utt_id]} and {info.file}")
            owner[utt_id] = info.file
    columns = {
        "utt_id": [u for s in infos for u in s.utt_ids],
        "shard": np.repeat([s.index for s in infos], [s.utterances for s in infos]).astype(np.int64),
        "position": np.concatenate([np.arange(s.utterances) for s in infos] or [np.zeros(0)]).astype(np.int64),
        "frames": np.array([n for s in infos for n in s.lengths], dtype=np.int64),
    }
    columns["dims"] = np.full(len(columns["utt_id"]), dims, dtype=np.int64)
    return pa.Table.from_pydict(columns, schema=INDEX_SCHEMA)


def _tables_entry(directory: Path) -> dict[str, dict[str, Any]]:
    entries = {}
    for path in sorted(directory.glob("*.parquet")):
        if path.name == INDEX_NAME:
            continue
        entries[path.stem] = {
            "file": path.name,
            "sha256": hash_file(path),
            "rows": pq.read_metadata(path).num_rows,
        }
    return entries


def package_versions(extra: Iterable[str] = ()) -> dict[str, str | None]:
    """Versions of the packages that shaped the bytes (always numpy, pyarrow, safetensors; plus ``extra``)."""
    from serflow import __version__

    versions: dict[str, str | None] = {"python": platform.python_version(), "serflow": __version__}
    for name in (*BASE_PACKAGES, *extra):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def finalize(
    directory: str | os.PathLike[str],
    spec: FeatureSpec,
    *,
    meta: Mapping[str, Any] | None = None,
    packages: Iterable[str] = (),
    n_shards: int | None = None,
    shard_infos: Sequence[ShardInfo] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``index.parquet`` and then ``manifest.json``, making the store in ``directory`` complete.

    ``shard_infos`` are what the writers recorded (the workflow passes the shard jobs' records after checking the
    files against them: :func:`verify_shard`); without them every shard file is re-read and hashed, which is only
    right when this process wrote them. ``provenance`` (the code that wrote the store) goes into the manifest.
    ``n_shards``, when given, must match the shard files exactly, so a failed shard job or a
    stale shard from an earlier run with more shards is an error instead of a silently different store.
    The directory must be named ``spec.version``: the version is a promise about the bytes inside.
    Returns the manifest.
    """
    directory = Path(directory)
    if directory.name != spec.version:
        raise ValueError(f"{directory}: a store of these parameters must be in a folder named {spec.version}")
    if shard_infos is None:
        shard_infos = [read_shard_info(p) for p in _discover_shards(directory)]
    if not shard_infos and not n_shards:
        raise StoreError(f"{directory}: no shard files to finalize")
    infos = _check_shard_set(directory, shard_infos, n_shards)
    dims = _check_dims(directory, infos)
    index = _index_table(directory, infos, dims)
    write_parquet(index, directory / INDEX_NAME)
    manifest = {
        "format": STORE_FORMAT,
        "shard_format": SHARD_FORMAT,
        "feature": spec.feature,
        "version": spec.version,
        "params": canonical(spec.params, "params"),
        "extractor": {"name": spec.extractor, "version": spec.extractor_version},
        "inputs": canonical(spec.input_hashes, "input_hashes"),
        "packages": package_versions(packages),
        "dtype": "float32",
        "dims": dims,
        "utterances": index.num_rows,
        "frames": sum(s.frames for s in infos),
        "shards": [s.manifest_entry() for s in infos],
        "index": {"file": INDEX_NAME, "sha256": hash_file(directory / INDEX_NAME), "rows": index.num_rows},
        "tables": _tables_entry(directory),
        "meta": canonical(dict(meta or {}), "meta"),
        "provenance": canonical(dict(provenance or {}), "provenance"),
        CREATED_KEY: datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(manifest, directory / MANIFEST_NAME)
    return manifest


# --- one-process convenience ---------------------------------------------------------------------------


class ShardWriter:
    """Write a whole store from one process: add utterances one by one; shards are cut by size.

    For the workflow's one-job-per-shard layout use :func:`write_shard` and :func:`finalize` directly.
    On entry, leftovers of an earlier unfinished attempt in the version folder are removed (a complete
    store is refused unless ``overwrite``); if the ``with`` block raises, no manifest is written.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        spec: FeatureSpec,
        *,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        overwrite: bool = False,
    ) -> None:
        self.spec = spec
        self.directory = spec.directory(root)
        self.shard_bytes = shard_bytes
        if is_complete(self.directory) and not overwrite:
            raise FileExistsError(f"{self.directory} is already a complete store (pass overwrite=True to replace)")
        self._clear()
        self._pending: list[tuple[str, np.ndarray]] = []
        self._pending_bytes = 0
        self._infos: list[ShardInfo] = []
        self._seen: set[str] = set()
        self._dims: int | None = None
        self._finalized = False

    def _clear(self) -> None:
        if not self.directory.is_dir():
            return
        _invalidate(self.directory)
        for path in [*_discover_shards(self.directory), *self.directory.glob("*.parquet")]:
            path.unlink()

    def add(self, utt_id: str, array: object) -> None:
        """Check one utterance now (errors name it) and buffer it; write a shard once enough is buffered."""
        arr = check_utterance(utt_id, array, self._dims)
        if utt_id in self._seen:
            raise FeatureValueError(f"utterance {utt_id!r} was added twice")
        self._seen.add(utt_id)
        self._dims = arr.shape[1]
        self._pending.append((utt_id, arr))
        self._pending_bytes += arr.nbytes
        if self._pending_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> ShardInfo | None:
        """Write the buffered utterances as the next shard (nothing if none are buffered)."""
        if not self._pending:
            return None
        info = _write_checked(self.directory, len(self._infos), self._pending, self._dims)
        self._infos.append(info)
        self._pending, self._pending_bytes = [], 0
        return info

    def add_table(self, name: str, table: pa.Table) -> Path:
        return add_table(self.directory, name, table)

    def finalize(
        self,
        meta: Mapping[str, Any] | None = None,
        packages: Iterable[str] = (),
        provenance: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        self.flush()
        if not self._infos:  # an empty feature set is still a store: one empty shard
            self._infos.append(write_shard(self.directory, 0, [], dims=self._dims))
        manifest = finalize(
            self.directory, self.spec, meta=meta, packages=packages, shard_infos=self._infos, provenance=provenance
        )
        self._finalized = True
        return manifest

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None and not self._finalized:
            raise StoreError(f"{self.directory}: ShardWriter closed without finalize(); the store is incomplete")
        self._pending = []  # an exception leaves whole shards but no manifest: an incomplete store
