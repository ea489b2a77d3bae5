"""The feature jobs: from the manifest and the alignment to the stores of :mod:`serflow.shards`.

One function per kind of job (the workflow scripts are thin wrappers around them):

* :func:`acoustic_shard` / :func:`transformer_shard`: one shard of utterances (a contiguous block of
  the labelled utterances in ``utt_id`` order), written as ``shard-NNNNN.safetensors`` plus two small
  Parquet parts (``parts/utterances-NNNNN``, ``parts/dropped-NNNNN``) that :func:`finalize_store` merges;
* :func:`glove_store` and :func:`spans_store`: a whole store in one job (vectorised, seconds for IEMOCAP).

Nothing is lost silently: every labelled utterance of the manifest is either stored or listed in the
store's ``dropped.parquet`` with the reason (unreadable audio, too short for one frame, no aligned words,
...), and the manifest's ``meta.counts`` reconciles ``selected = stored + dropped``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.features.plan import SPANS_PREFIX, UTT_SUFFIX, Plan, text_model_choice
from serflow.io import write_parquet
from serflow.shards import INDEX_NAME, ShardWriter, finalize, hash_file, write_shard

log = logging.getLogger(__name__)

PARTS = "parts"
DROPPED_SCHEMA = pa.schema([("utt_id", pa.string()), ("reason", pa.string())])
EXTRACT_BATCH = 16  # utterances per extractor call: enough to amortise the FFT set-up, small in memory


# --------------------------------------------------------------------------------- selection


def labelled_utterances(manifest: pd.DataFrame) -> pd.DataFrame:
    """The utterances models can use (a label in the corpus's classes), in ``utt_id`` order."""
    rows = manifest.loc[manifest["label"].notna()]
    return rows.sort_values("utt_id", kind="stable").reset_index(drop=True)


def shard_rows(rows: pd.DataFrame, shard: int, n_shards: int) -> pd.DataFrame:
    """Block ``shard`` of ``n_shards`` nearly equal contiguous blocks (empty when there are fewer rows)."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    bounds = np.linspace(0, len(rows), n_shards + 1).round().astype(int)
    return rows.iloc[bounds[shard] : bounds[shard + 1]]


def part_path(directory: Path, name: str, shard: int) -> Path:
    return Path(directory) / PARTS / f"{name}-{shard:05d}.parquet"


def _dropped_table(dropped: Sequence[tuple[str, str]]) -> pa.Table:
    return pa.table(
        {"utt_id": [u for u, _ in dropped], "reason": [r for _, r in dropped]},
        schema=DROPPED_SCHEMA,
    )


# --------------------------------------------------------------------------------- acoustic


def acoustic_shard(manifest_path: Path, plan: Plan, shard: int, n_shards: int, directory: Path) -> dict[str, int]:
    """Extract ``plan.feature`` for one shard of the labelled utterances; return the shard's counts."""
    from serflow.corpora.audio import AudioError
    from serflow.features.acoustic import get_extractor
    from serflow.features.audio import load_audio

    rows = shard_rows(labelled_utterances(pd.read_parquet(manifest_path)), shard, n_shards)
    extractor = get_extractor(plan.feature, **plan.params)
    items: list[tuple[str, np.ndarray]] = []
    info_rows: list[dict[str, Any]] = []
    dropped: list[tuple[str, str]] = []
    for chunk in _chunks(list(rows.itertuples(index=False)), EXTRACT_BATCH):
        loaded = []
        for row in chunk:
            try:
                signal, info = load_audio(row.audio_path, extractor.sample_rate)
            except AudioError as exc:
                dropped.append((row.utt_id, f"{row.audio_path}: {exc}"))
                continue
            loaded.append((row, signal, info))
        results = _extract_robust(extractor, [signal for _, signal, _ in loaded])
        for (row, signal, info), result in zip(loaded, results, strict=True):
            if isinstance(result, str):
                dropped.append((row.utt_id, f"{row.audio_path}: {result}"))
                continue
            items.append((row.utt_id, result))
            info_rows.append(_audio_info(row.utt_id, signal, result, info))
    write_shard(directory, shard, items, dims=extractor.dims)
    write_parquet(_info_table(info_rows), part_path(directory, "utterances", shard))
    write_parquet(_dropped_table(dropped), part_path(directory, "dropped", shard))
    return {"selected": len(rows), "stored": len(items), "dropped": len(dropped)}


def _chunks(seq: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _extract_robust(extractor: Any, signals: list[np.ndarray]) -> list[np.ndarray | str]:
    """``extract_batch`` over ``signals``; a signal it refuses gets its reason instead, the rest go on."""
    from serflow.features.acoustic import FeatureError

    out: list[np.ndarray | str] = ["not extracted"] * len(signals)
    pending = list(range(len(signals)))
    while pending:
        try:
            feats = extractor.extract_batch([signals[i] for i in pending])
        except FeatureError as exc:
            if exc.index is None:
                raise
            out[pending.pop(exc.index)] = str(exc)
            continue
        for i, arr in zip(pending, feats, strict=True):
            out[i] = arr
        break
    return out


def _audio_info(utt_id: str, signal: np.ndarray, feats: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    return {
        "utt_id": utt_id,
        "frames": int(feats.shape[0]),
        "samples": int(signal.shape[0]),
        "resampled_from": info.get("resampled_from"),
        "downmixed_from": info.get("downmixed_from"),
    }


def _info_table(rows: list[dict[str, Any]]) -> pa.Table:
    schema = pa.schema(
        [
            ("utt_id", pa.string()),
            ("frames", pa.int64()),
            ("samples", pa.int64()),
            ("resampled_from", pa.int64()),
            ("downmixed_from", pa.int64()),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


# --------------------------------------------------------------------------------- text


def aligned_words(words_path: Path, failures_path: Path | None, utt_ids: Sequence[str]) -> tuple[pd.DataFrame, list]:
    """The alignment's words of ``utt_ids`` and ``(utt_id, reason)`` for each of them without any word."""
    words = pd.read_parquet(words_path, columns=["utt_id", "word_index", "word", "start", "end"])
    wanted = set(utt_ids)
    words = words.loc[words["utt_id"].isin(wanted)].sort_values(["utt_id", "word_index"], kind="stable")
    reasons = _failure_reasons(failures_path)
    have = set(words["utt_id"].unique())
    dropped = [(u, f"no aligned words ({reasons.get(u, 'empty transcript')})") for u in utt_ids if u not in have]
    return words.reset_index(drop=True), dropped


def _failure_reasons(path: Path | None) -> dict[str, str]:
    if path is None or not Path(path).is_file():
        return {}
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    return dict(zip(table["utt_id"], "alignment failed: " + table["reason"], strict=True))


def transformer_shard(
    manifest_path: Path,
    words_path: Path,
    failures_path: Path | None,
    plan: Plan,
    shard: int,
    n_shards: int,
    directories: tuple[Path, Path],
    *,
    cache_dir: Path,
    device: str = "auto",
    batch_size: int = 32,
) -> dict[str, int]:
    """Per-word and per-utterance vectors of one shard, into the word store and its ``_utt`` companion."""
    from serflow.features.text.transformer import TransformerEncoder, resolve_text_model, utterance_words

    kind = plan.feature.removesuffix(UTT_SUFFIX)
    rows = shard_rows(labelled_utterances(pd.read_parquet(manifest_path)), shard, n_shards)
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    name_or_path, _ = resolve_text_model(kind, plan.params["model"], plan.params["path"], cache_dir)
    encoder = TransformerEncoder(
        name_or_path, device=device, batch_size=batch_size, max_length=plan.params["max_length"]
    )
    encoded = encoder.encode_words(utterance_words(words)) if len(words) else {}
    word_dir, utt_dir = directories
    write_shard(word_dir, shard, ((u, w) for u, (w, _) in encoded.items()), dims=encoder.hidden_size)
    write_shard(utt_dir, shard, ((u, v.reshape(1, -1)) for u, (_, v) in encoded.items()), dims=encoder.hidden_size)
    report = encoder.last_report.as_dict() if encoder.last_report else {}
    truncated = report.get("truncated", {})
    info = pa.table(
        {
            "utt_id": list(encoded),
            "words": [int(w.shape[0]) for w, _ in encoded.values()],
            "truncated_words": [int(truncated.get(u, 0)) for u in encoded],
        }
    )
    for directory in directories:
        write_parquet(info, part_path(directory, "utterances", shard))
        write_parquet(_dropped_table(dropped), part_path(directory, "dropped", shard))
    return {"selected": len(rows), "stored": len(encoded), "dropped": len(dropped)}


def glove_store(
    manifest_path: Path, words_path: Path, failures_path: Path | None, plan: Plan, root: Path
) -> dict[str, Any]:
    """The whole ``glove`` store in one job: one vector per aligned word, OOV rows by the configured policy."""
    from serflow.features.text.glove import GloveVectors, glove_features

    rows = labelled_utterances(pd.read_parquet(manifest_path))
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    p = plan.params
    vectors = GloveVectors.load(p["path"] or p["source"], cache_dir=Path(root).parent / ".cache" / "glove")
    arrays, stats = glove_features(words, vectors, p["oov"], p["seed"])
    oov = vectors.rows(words["word"]) < 0  # the lookup glove_features used, row -1 = out of vocabulary
    with ShardWriter(root, plan.spec(), overwrite=True) as writer:
        for utt_id, matrix in arrays.items():
            if matrix.shape[0] == 0:  # skip policy removed every word
                dropped.append((utt_id, "every word is out of GloVe's vocabulary (oov policy 'skip')"))
                continue
            writer.add(utt_id, matrix)
        writer.add_table("words", pa.Table.from_pandas(words.assign(oov=oov), preserve_index=False))
        writer.add_table("dropped", _dropped_table(sorted(dropped)))
        counts = _counts(len(rows), len(arrays) - _n_empty(arrays), dropped)
        meta = {"counts": counts, "oov": _json_ready(stats), "vectors": vectors.source}
        writer.finalize(meta=meta, packages=())
    return meta


def _n_empty(arrays: dict[str, np.ndarray]) -> int:
    return sum(1 for a in arrays.values() if a.shape[0] == 0)


def _json_ready(stats: dict[str, Any]) -> dict[str, Any]:
    out = dict(stats)
    oov_words = out.pop("oov_words", {})
    out["oov_words_top"] = dict(list(oov_words.items())[:50])  # the full list is in the words table
    return out


# --------------------------------------------------------------------------------- spans


def spans_store(
    manifest_path: Path,
    words_path: Path,
    phones_path: Path,
    failures_path: Path | None,
    frames_dir: Path,
    plan: Plan,
    frame_params: dict[str, Any],
    root: Path,
) -> dict[str, Any]:
    """Word -> phone -> frame spans over the frames of ``frames_dir`` (WISE's hierarchy), in one job.

    Per utterance the tensor is ``[phones, 3]``: ``word_index, frame_start, frame_end`` (end exclusive),
    phones in order and grouped by word. A phone covers the frames whose centre lies in ``[start, end)``;
    a phone (or word) with no frame centre inside gets the frame nearest its midpoint, and is marked
    ``repaired`` in the ``phones`` table, so every word has at least one phone and one frame.
    """
    from serflow.features.acoustic import get_extractor

    rows = labelled_utterances(pd.read_parquet(manifest_path))
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    frames_index = pq.read_table(Path(frames_dir) / INDEX_NAME, columns=["utt_id", "frames"]).to_pandas()
    n_frames = dict(zip(frames_index["utt_id"], frames_index["frames"], strict=True))
    frame_reasons = _dropped_reasons(Path(frames_dir))
    no_frames = sorted(set(words["utt_id"]) - set(n_frames))
    frames_name = plan.feature.removeprefix(SPANS_PREFIX)
    dropped += [(u, f"no {frames_name} frames ({frame_reasons.get(u, 'not in the store')})") for u in no_frames]
    words = words.loc[~words["utt_id"].isin(no_frames)].reset_index(drop=True)

    phones = _phones_of(pd.read_parquet(phones_path), words)
    centres = get_extractor(frames_name, **frame_params).frame_times(2)
    phones = _frame_spans(phones, n_frames, float(centres[0]), float(centres[1] - centres[0]))
    words = _word_spans(words, phones)
    with ShardWriter(root, plan.spec(), overwrite=True) as writer:
        values = phones[["word_index", "frame_start", "frame_end"]].to_numpy(dtype=np.float32)
        utts = phones["utt_id"].to_numpy(dtype=object)
        for utt_id, block in _split_sorted(utts, values):
            writer.add(utt_id, block)
        writer.add_table("words", pa.Table.from_pandas(words, preserve_index=False))
        writer.add_table("phones", pa.Table.from_pandas(phones, preserve_index=False))
        writer.add_table("dropped", _dropped_table(sorted(dropped)))
        counts = _counts(len(rows), words["utt_id"].nunique(), dropped)
        counts.update(
            phones=len(phones),
            words=len(words),
            repaired_phones=int(phones["repaired"].sum()),
            words_without_phones=int(phones["synthetic"].sum()),
        )
        meta = {"counts": counts, "frames": {"feature": frames_name, "first_centre_s": centres[0].item()}}
        writer.finalize(meta=meta)
    return meta


def _dropped_reasons(store: Path) -> dict[str, str]:
    path = store / "dropped.parquet"
    if not path.is_file():
        return {}
    table = pd.read_parquet(path)
    return dict(zip(table["utt_id"], table["reason"], strict=True))


def _phones_of(phones: pd.DataFrame, words: pd.DataFrame) -> pd.DataFrame:
    """The phones of ``words``; a word the aligner gave no phone gets one spanning the whole word."""
    keys = ["utt_id", "word_index"]
    phones = phones.merge(words[keys], on=keys, how="inner")
    phones = phones[["utt_id", "word_index", "phone_index", "phone", "start", "end"]].assign(synthetic=False)
    bare = words.merge(phones[keys].drop_duplicates(), on=keys, how="left", indicator=True)
    bare = bare.loc[bare["_merge"] == "left_only", [*keys, "word", "start", "end"]]
    filler = bare.assign(phone_index=0, phone="<word>", synthetic=True).drop(columns="word")
    out = pd.concat([phones, filler[phones.columns]], ignore_index=True)
    out["phone_index"] = out["phone_index"].astype("int32")
    out["word_index"] = out["word_index"].astype("int32")
    return out.sort_values([*keys, "phone_index"], kind="stable").reset_index(drop=True)


def _frame_spans(phones: pd.DataFrame, n_frames: dict[str, int], first: float, step: float) -> pd.DataFrame:
    """``frame_start``/``frame_end`` per phone: frames whose centre lies in ``[start, end)``, clipped."""
    n = phones["utt_id"].map(n_frames).to_numpy(dtype=np.int64)
    # Alignment times are on a 10 ms grid: round before ceil so 0.0425/0.015 does not become 2.0000001.
    start = np.ceil(np.round((phones["start"].to_numpy() - first) / step, 6)).astype(np.int64)
    end = np.ceil(np.round((phones["end"].to_numpy() - first) / step, 6)).astype(np.int64)
    start, end = np.clip(start, 0, n), np.clip(end, 0, n)
    empty = end <= start
    mid = (phones["start"].to_numpy() + phones["end"].to_numpy()) / 2
    nearest = np.clip(np.floor((mid - first) / step + 0.5).astype(np.int64), 0, n - 1)
    start = np.where(empty, nearest, start)
    end = np.where(empty, nearest + 1, end)
    return phones.assign(frame_start=start, frame_end=end, repaired=empty)


def _word_spans(words: pd.DataFrame, phones: pd.DataFrame) -> pd.DataFrame:
    keys = ["utt_id", "word_index"]
    agg = phones.groupby(keys, sort=False).agg(
        phones=("phone_index", "size"), frame_start=("frame_start", "min"), frame_end=("frame_end", "max")
    )
    return words.merge(agg.reset_index(), on=keys, how="left")


def _split_sorted(keys: np.ndarray, values: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """``(key, rows)`` for each run of equal ``keys`` (already grouped), in order."""
    if len(keys) == 0:
        return
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(keys)]])
    for s, e in zip(starts, ends, strict=True):
        yield str(keys[s]), values[s:e]


# --------------------------------------------------------------------------------- finalize


def _counts(selected: int, stored: int, dropped: Sequence[tuple[str, str]]) -> dict[str, Any]:
    if selected != stored + len(dropped):
        raise RuntimeError(f"counts do not reconcile: {selected} selected, {stored} stored, {len(dropped)} dropped")
    by_reason = Counter(_reason_kind(r) for _, r in dropped)
    return {"selected": selected, "stored": stored, "dropped": len(dropped), "dropped_by_reason": dict(by_reason)}


def _reason_kind(reason: str) -> str:
    """The reason without the path or numbers that make each one unique, for a count per kind."""
    text = reason.split(": ", 1)[1] if reason.startswith(("/", ".")) or ".wav: " in reason else reason
    return text.split(" (")[0]


def finalize_store(directory: Path, plan: Plan, n_shards: int, inputs: dict[str, Path]) -> dict[str, Any]:
    """Merge the shard jobs' parts, then write ``index.parquet`` and ``manifest.json`` (the store is done)."""
    directory = Path(directory)
    parts = {}
    for name in ("utterances", "dropped"):
        tables = [pq.read_table(part_path(directory, name, k)) for k in range(n_shards)]
        parts[name] = pa.concat_tables(tables).combine_chunks()
        write_parquet(parts[name], directory / f"{name}.parquet")
    dropped = list(zip(*(parts["dropped"].column(c).to_pylist() for c in ("utt_id", "reason")), strict=True))
    counts = _counts(parts["utterances"].num_rows + len(dropped), parts["utterances"].num_rows, dropped)
    meta: dict[str, Any] = {"counts": counts, "input_files": {k: hash_file(v) for k, v in sorted(inputs.items())}}
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
    return finalize(directory, plan.spec(), meta=meta, packages=packages, n_shards=n_shards)
