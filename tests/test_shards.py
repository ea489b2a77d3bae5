"""The feature shard store: round trip, versions, atomicity, integrity, bad values, PyTorch batches, bare readers."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import serflow.io
from serflow.shards import (
    CREATED_KEY,
    FeatureSet,
    FeatureSpec,
    FeatureValueError,
    IncompleteStoreError,
    ShardIntegrityError,
    ShardWriter,
    StoreError,
    add_table,
    feature_version,
    finalize,
    hash_file,
    hash_strings,
    is_complete,
    read_shard_info,
    write_shard,
)

SPEC = FeatureSpec(
    feature="mfcc",
    params={"n_mfcc": 13, "deltas": [1, 2], "hop_s": 0.01, "window": {"kind": "hann", "length_s": 0.025}},
    extractor="librosa.mfcc",
    extractor_version="1",
    input_hashes={"manifest": "0f" * 32},
)
DIMS = 39


def _utterances(n: int, seed: int = 0, dims: int = DIMS) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (f"Ses01F_impro01_F{i:03d}", rng.standard_normal((int(rng.integers(1, 60)), dims)).astype(np.float32))
        for i in range(n)
    ]


def _write_store(root: Path, items: list[tuple[str, np.ndarray]], n_shards: int = 3, **meta: object) -> Path:
    """The workflow's way: one write_shard call per shard (as separate jobs would), then finalize from disk."""
    directory = SPEC.directory(root)
    for k, part in enumerate(np.array_split(np.arange(len(items)), n_shards)):
        write_shard(directory, k, [items[i] for i in part])
    finalize(directory, SPEC, meta=meta or {"model": "test", "random_init": True}, n_shards=n_shards)
    return directory


@pytest.fixture(scope="module")
def items() -> list[tuple[str, np.ndarray]]:
    return _utterances(40)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, items: list[tuple[str, np.ndarray]]) -> Path:
    return _write_store(tmp_path_factory.mktemp("store"), items)


# --- round trip -----------------------------------------------------------------------------------------


def test_round_trip(store: Path, items: list[tuple[str, np.ndarray]]) -> None:
    fs = FeatureSet(store)
    assert len(fs) == len(items)
    assert fs.ids == [u for u, _ in items]
    assert fs.dims == DIMS
    assert store.name == SPEC.version and fs.version == SPEC.version and fs.feature == "mfcc"
    assert fs.meta["meta"] == {"model": "test", "random_init": True}
    assert fs.meta["params"] == json.loads(json.dumps(SPEC.params))
    assert fs.meta["extractor"] == {"name": "librosa.mfcc", "version": "1"}
    assert fs.meta["inputs"] == dict(SPEC.input_hashes)
    assert [s["file"] for s in fs.meta["shards"]] == [f"shard-0000{k}.safetensors" for k in range(3)]
    assert sum(s["utterances"] for s in fs.meta["shards"]) == len(items)
    assert fs.meta["frames"] == sum(len(a) for _, a in items)
    assert set(fs.meta["packages"]) >= {"numpy", "pyarrow", "safetensors", "python"}
    for utt_id, arr in items:
        assert utt_id in fs
        got = fs[utt_id]
        assert got.dtype == np.float32 and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    assert "nope" not in fs
    with pytest.raises(KeyError, match="nope"):
        fs["nope"]


def test_load_all(store: Path, items: list[tuple[str, np.ndarray]]) -> None:
    for threads in (1, 2):
        data, offsets, ids = FeatureSet(store).load_all(threads=threads)
        assert ids == [u for u, _ in items]
        assert data.shape == (sum(len(a) for _, a in items), DIMS) and data.flags.writeable
        assert offsets.dtype == np.int64 and offsets[0] == 0 and offsets[-1] == len(data)
        for i, (_, arr) in enumerate(items):
            np.testing.assert_array_equal(data[offsets[i] : offsets[i + 1]], arr)


def test_utterance_level_vectors_and_tables(tmp_path: Path) -> None:
    """Frames == 1 is the utterance-level case; word-level data goes into Parquet tables beside it."""
    spec = FeatureSpec("egemaps", {"set": "eGeMAPSv02"}, "opensmile", "2.5")
    vectors = [(f"u{i}", np.full((1, 88), i, dtype=np.float64)) for i in range(5)]  # float64 is converted
    words = pa.table({"utt_id": ["u0", "u0"], "word": ["hi", "there"], "phone_spans": [[[0, 2]], [[2, 5], [5, 6]]]})
    with ShardWriter(tmp_path, spec) as writer:
        for utt_id, vec in vectors:
            writer.add(utt_id, vec)
        writer.add_table("words", words)
        manifest = writer.finalize(meta={"model": "opensmile"})
    fs = FeatureSet(spec.directory(tmp_path))
    assert fs.frames.tolist() == [1] * 5 and fs.dims == 88
    np.testing.assert_array_equal(fs["u3"], np.full((1, 88), 3, dtype=np.float32))
    assert fs.tables == ["words"] and manifest["tables"]["words"]["rows"] == 2
    assert fs.table("words").equals(words)


def test_shard_writer_cuts_shards_by_size(tmp_path: Path, items: list[tuple[str, np.ndarray]]) -> None:
    with ShardWriter(tmp_path, SPEC, shard_bytes=20_000) as writer:
        for utt_id, arr in items:
            writer.add(utt_id, arr)
        manifest = writer.finalize()
    assert len(manifest["shards"]) > 3
    fs = FeatureSet(SPEC.directory(tmp_path))
    assert fs.ids == [u for u, _ in items]
    np.testing.assert_array_equal(fs[items[-1][0]], items[-1][1])
    with pytest.raises(FileExistsError):
        ShardWriter(tmp_path, SPEC)


def test_shard_writer_needs_finalize(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="without finalize"), ShardWriter(tmp_path, SPEC) as writer:
        writer.add("u0", np.ones((2, 3)))
    assert not is_complete(SPEC.directory(tmp_path))


def test_pickled_feature_set_reopens(store: Path, items: list[tuple[str, np.ndarray]]) -> None:
    fs = FeatureSet(store)
    fs[items[0][0]]  # opens (and verifies) shard 0
    clone = pickle.loads(pickle.dumps(fs))
    np.testing.assert_array_equal(clone[items[-1][0]], items[-1][1])


# --- versions -------------------------------------------------------------------------------------------


def _version(**changes: object) -> str:
    args = {
        "feature": SPEC.feature,
        "params": SPEC.params,
        "extractor_version": SPEC.extractor_version,
        "input_hashes": SPEC.input_hashes,
    }
    args.update(changes)
    return feature_version(**args)  # type: ignore[arg-type]


def test_version_is_stable() -> None:
    version = _version()
    assert version == _version() == SPEC.version
    assert len(version) == 12 and int(version, 16) >= 0
    # pinned to the documented canonical text: a change here renames every stored feature
    text = b'{"extractor_version":"1","feature":"f","format":"serflow-features/1","inputs":{"in":"x"},"params":{"a":1}}'
    assert feature_version("f", {"a": 1}, "1", {"in": "x"}) == hashlib.sha256(text).hexdigest()[:12]


def test_version_ignores_key_order() -> None:
    params = dict(reversed(list(SPEC.params.items())))
    params["window"] = {"length_s": 0.025, "kind": "hann"}
    inputs = {"b": "2", "a": "1"}
    assert _version(params=params) == _version()
    assert _version(input_hashes=inputs) == _version(input_hashes={"a": "1", "b": "2"})


@pytest.mark.parametrize(
    "change",
    [
        {"feature": "mfcc2"},
        {"params": {**SPEC.params, "n_mfcc": 20}},
        {"params": {**SPEC.params, "hop_s": 0.02}},
        {"params": {**SPEC.params, "deltas": [2, 1]}},
        {"params": {**SPEC.params, "window": {"kind": "hamming", "length_s": 0.025}}},
        {"params": {**SPEC.params, "extra": None}},
        {"params": {**SPEC.params, "n_mfcc": 13.0}},
        {"extractor_version": "2"},
        {"input_hashes": {"manifest": "1f" * 32}},
        {"input_hashes": {**SPEC.input_hashes, "wav2vec": "abcdef012345"}},
    ],
)
def test_version_changes_with_every_input(change: dict[str, object]) -> None:
    assert _version(**change) != _version()


def test_version_refuses_unstable_values() -> None:
    with pytest.raises(ValueError, match=r"params\.x"):
        _version(params={"x": float("nan")})
    with pytest.raises(TypeError, match="path"):
        _version(params={"lexicon": Path("/tmp/lexicon.txt")})
    with pytest.raises(TypeError, match="non-string key"):
        _version(params={1: "a"})
    assert _version(params={"x": np.int64(3)}) == _version(params={"x": 3})


def test_hash_helpers(tmp_path: Path) -> None:
    assert hash_strings(["ab", "c"]) != hash_strings(["a", "bc"])
    assert hash_strings(["a", "b"]) != hash_strings(["b", "a"])
    assert hash_strings(iter(["x"])) == hash_strings(["x"])
    with pytest.raises(TypeError):
        hash_strings(["a", 1])  # type: ignore[list-item]
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3_000_000)
    assert hash_file(path) == hashlib.sha256(b"x" * 3_000_000).hexdigest()


# --- atomicity ------------------------------------------------------------------------------------------


def test_failed_rename_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(serflow.io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_shard(tmp_path, 0, _utterances(3))
    assert list(tmp_path.iterdir()) == []


def test_bad_utterance_leaves_nothing(tmp_path: Path) -> None:
    items = _utterances(3)
    items[2][1][0, 0] = np.nan
    with pytest.raises(FeatureValueError):
        write_shard(tmp_path, 0, items)
    assert list(tmp_path.iterdir()) == []


def test_crash_before_finalize_leaves_no_manifest(tmp_path: Path) -> None:
    directory = SPEC.directory(tmp_path)
    items = _utterances(6)
    write_shard(directory, 0, items[:3])
    write_shard(directory, 1, items[3:])
    assert not is_complete(directory)
    assert sorted(p.name for p in directory.iterdir()) == ["shard-00000.safetensors", "shard-00001.safetensors"]
    with pytest.raises(IncompleteStoreError, match=r"no manifest\.json"):
        FeatureSet(directory)
    with pytest.raises(IncompleteStoreError, match="no such feature store"):
        FeatureSet(tmp_path / "missing")


def test_rewriting_a_shard_makes_the_store_incomplete(tmp_path: Path) -> None:
    directory = _write_store(tmp_path, _utterances(6))
    assert is_complete(directory)
    write_shard(directory, 1, _utterances(2, seed=5))
    assert not is_complete(directory)


def test_finalize_checks_the_shard_set(tmp_path: Path) -> None:
    directory = SPEC.directory(tmp_path)
    items = _utterances(6)
    write_shard(directory, 0, items[:3])
    write_shard(directory, 2, items[3:])
    with pytest.raises(StoreError, match="shard-00001"):  # a shard job failed
        finalize(directory, SPEC)
    write_shard(directory, 1, [])  # an empty shard (all its utterances quarantined) is fine
    with pytest.raises(StoreError, match="unexpected files"):  # stale shard from a run with more shards
        finalize(directory, SPEC, n_shards=2)
    finalize(directory, SPEC, n_shards=3)
    assert FeatureSet(directory).ids == [u for u, _ in items]
    wrong = tmp_path / "mfcc" / "000000000000"
    write_shard(wrong, 0, items)
    with pytest.raises(ValueError, match=SPEC.version):
        finalize(wrong, SPEC)


def test_duplicate_across_shards_is_refused(tmp_path: Path) -> None:
    directory = SPEC.directory(tmp_path)
    items = _utterances(4)
    write_shard(directory, 0, items[:3])
    write_shard(directory, 1, items[2:])
    with pytest.raises(FeatureValueError, match=items[2][0]):
        finalize(directory, SPEC)


# --- integrity ------------------------------------------------------------------------------------------


def _corrupt(path: Path, offset_from_end: int = 5) -> None:
    raw = bytearray(path.read_bytes())
    raw[-offset_from_end] ^= 0x40
    path.write_bytes(bytes(raw))


def test_corrupted_shard_is_refused_naming_the_path(tmp_path: Path) -> None:
    items = _utterances(9)
    directory = _write_store(tmp_path, items)
    shard = directory / "shard-00002.safetensors"
    _corrupt(shard)
    fs = FeatureSet(directory)
    np.testing.assert_array_equal(fs[items[0][0]], items[0][1])  # other shards still read
    with pytest.raises(ShardIntegrityError, match=re.escape(str(shard))):
        fs[items[-1][0]]
    with pytest.raises(ShardIntegrityError, match=re.escape(str(shard))):
        FeatureSet(directory).load_all()
    assert FeatureSet(directory, verify=False)[items[-1][0]].shape == items[-1][1].shape


def test_a_verified_shard_is_not_hashed_again_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serflow.shards import reader

    monkeypatch.setattr(reader, "RACY_NS", 0)  # the files were just written: allow remembering them at once
    items = _utterances(9)
    directory = _write_store(tmp_path, items)
    FeatureSet(directory).load_all()
    memo = json.loads((directory / ".verified.json").read_text())
    assert {"index.parquet", "shard-00000.safetensors"} <= set(memo)

    hashed: list[int] = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(reader.hashlib, "sha256", lambda *a: hashed.append(1) or real_sha256(*a))
    FeatureSet(directory).load_all()
    assert hashed == []  # every file trusted from the memo

    # Same size, same mtime restored by hand: ctime still moves, so the change is caught.
    shard = directory / "shard-00002.safetensors"
    stat = shard.stat()
    _corrupt(shard)
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(ShardIntegrityError, match=re.escape(str(shard))):
        FeatureSet(directory).load_all()


def test_truncated_or_missing_shard_is_refused(tmp_path: Path) -> None:
    items = _utterances(6)
    directory = _write_store(tmp_path, items, n_shards=2)
    shard = directory / "shard-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(ShardIntegrityError, match=re.escape(str(shard))):
        FeatureSet(directory, verify=False).load_all()
    shard.unlink()
    with pytest.raises(ShardIntegrityError, match=re.escape(str(shard))):
        FeatureSet(directory)[items[-1][0]]


def test_corrupted_index_or_table_is_refused(tmp_path: Path) -> None:
    directory = _write_store(tmp_path, _utterances(6), n_shards=2)
    add_table(directory, "words", pa.table({"utt_id": ["a"]}))
    finalize(directory, SPEC, n_shards=2)
    _corrupt(directory / "words.parquet", 30)
    with pytest.raises(ShardIntegrityError, match=r"words\.parquet"):
        FeatureSet(directory).table("words")
    _corrupt(directory / "index.parquet", 30)
    with pytest.raises(ShardIntegrityError, match=r"index\.parquet"):
        FeatureSet(directory)


# --- bad values -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "kind"), [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf"), (1e300, "inf")])
def test_non_finite_values_name_the_utterance(tmp_path: Path, value: float, kind: str) -> None:
    items = [(u, a.astype(np.float64)) for u, a in _utterances(3)]
    items[1][1][-1, 4] = value
    with pytest.raises(FeatureValueError, match=rf"{items[1][0]}.*{kind}.*dim 4"):
        write_shard(tmp_path, 0, items)


def test_zero_frames_names_the_utterance(tmp_path: Path) -> None:
    items = [*_utterances(2), ("Ses05M_script03_M042", np.zeros((0, DIMS), np.float32))]
    with pytest.raises(FeatureValueError, match=r"Ses05M_script03_M042.*zero frames"):
        write_shard(tmp_path, 0, items)


def test_ragged_dims_and_bad_shapes_are_refused(tmp_path: Path) -> None:
    items = [*_utterances(2), ("odd", np.zeros((4, DIMS + 1), np.float32))]
    with pytest.raises(FeatureValueError, match=f"'odd' has {DIMS + 1} dims, expected {DIMS}"):
        write_shard(tmp_path, 0, items)
    with pytest.raises(FeatureValueError, match=r"'flat'.*\[1, dims\]"):
        write_shard(tmp_path, 0, [("flat", np.zeros(DIMS, np.float32))])
    with pytest.raises(FeatureValueError, match="twice"):
        write_shard(tmp_path, 0, [("a", np.ones((1, 2))), ("a", np.ones((1, 2)))])
    assert list(tmp_path.iterdir()) == []


# --- PyTorch --------------------------------------------------------------------------------------------


def test_dataset_and_collate(tmp_path: Path, store: Path, items: list[tuple[str, np.ndarray]]) -> None:
    import torch

    from serflow.shards import FeatureDataset, collate_padded

    # a second, utterance-level feature over the same utterances
    spec = FeatureSpec("xvector", {"dim": 8}, "toy", "1")
    with ShardWriter(tmp_path, spec) as writer:
        for i, (utt_id, _) in enumerate(items):
            writer.add(utt_id, np.full((1, 8), i, np.float32))
        writer.finalize()
    sets = {"mfcc": FeatureSet(store), "xvector": FeatureSet(spec.directory(tmp_path))}
    chosen = [items[i][0] for i in (5, 0, 17)]
    ds = FeatureDataset(sets, chosen, labels=[2, 0, 3])
    assert len(ds) == 3
    item = ds[0]
    assert item["utt_id"] == chosen[0] and item["mfcc"].dtype == torch.float32 and item["label"].item() == 2

    batch = collate_padded([ds[i] for i in range(3)])
    lengths = [len(items[i][1]) for i in (5, 0, 17)]
    assert batch["utt_id"] == chosen
    assert batch["mfcc"].shape == (3, max(lengths), DIMS)
    assert batch["lengths"]["mfcc"].dtype == torch.int64 and batch["lengths"]["mfcc"].tolist() == lengths
    assert batch["xvector"].shape == (3, 1, 8) and batch["lengths"]["xvector"].tolist() == [1, 1, 1]
    assert batch["label"].tolist() == [2, 0, 3] and batch["label"].dtype == torch.int64
    for b, i in enumerate((5, 0, 17)):
        n = lengths[b]
        np.testing.assert_array_equal(batch["mfcc"][b, :n].numpy(), items[i][1])
        assert not batch["mfcc"][b, n:].any()  # zero padding

    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_padded)
    assert [b["mfcc"].shape[0] for b in loader] == [2, 1]
    with pytest.raises(KeyError, match="lacks 1 utterances"):
        FeatureDataset(sets, [*chosen, "missing"])
    regression = FeatureDataset(sets, chosen, labels={u: [0.5, 1.0, 2.0] for u in chosen})
    assert collate_padded([regression[0], regression[1]])["label"].shape == (2, 3)


# --- format ---------------------------------------------------------------------------------------------


def test_readable_with_safetensors_and_pyarrow_alone(store: Path, items: list[tuple[str, np.ndarray]]) -> None:
    from safetensors import safe_open
    from safetensors.numpy import load_file

    expected = dict(items)
    manifest = json.loads((store / "manifest.json").read_text())
    index = pq.read_table(store / "index.parquet").to_pandas()
    assert list(index.columns) == ["utt_id", "shard", "position", "frames", "dims"]
    for k, entry in enumerate(manifest["shards"]):
        path = store / entry["file"]
        tensors = load_file(str(path))
        with safe_open(str(path), framework="numpy") as f:
            ids = json.loads(f.metadata()["utt_ids"])
        data, offsets = tensors["data"], tensors["offsets"]
        assert data.dtype == np.float32 and offsets.dtype == np.int64 and len(offsets) == len(ids) + 1
        rows = index[index["shard"] == k]
        assert rows["utt_id"].tolist() == ids and rows["position"].tolist() == list(range(len(ids)))
        for i, utt_id in enumerate(ids):
            np.testing.assert_array_equal(data[offsets[i] : offsets[i + 1]], expected[utt_id])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


def test_bytes_are_deterministic(tmp_path: Path, items: list[tuple[str, np.ndarray]]) -> None:
    a = _write_store(tmp_path / "a", items)
    b = _write_store(tmp_path / "b", items)
    assert sorted(p.name for p in a.iterdir()) == sorted(p.name for p in b.iterdir())
    for path in a.iterdir():
        if path.name != "manifest.json":
            assert path.read_bytes() == (b / path.name).read_bytes(), path.name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert CREATED_KEY in ma
    ma.pop(CREATED_KEY), mb.pop(CREATED_KEY)
    assert ma == mb
    assert read_shard_info(a / "shard-00001.safetensors").sha256 == ma["shards"][1]["sha256"]
