"""The ``spans_{acoustic}`` store in one job: word -> phone -> frame spans over an acoustic store's frames."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.features.jobs.common import aligned_words, dropped_table, labelled_utterances
from serflow.features.jobs.common import counts as count_utterances
from serflow.features.stores import SPANS_PREFIX, Plan
from serflow.shards.writer import INDEX_NAME, ShardWriter


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
    frame_reasons = dropped_reasons(Path(frames_dir))
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
        writer.add_table("dropped", dropped_table(sorted(dropped)))
        counts = count_utterances(len(rows), words["utt_id"].nunique(), dropped)
        counts.update(
            phones=len(phones),
            words=len(words),
            repaired_phones=int(phones["repaired"].sum()),
            words_without_phones=int(phones["synthetic"].sum()),
        )
        meta = {"counts": counts, "frames": {"feature": frames_name, "first_centre_s": centres[0].item()}}
        writer.finalize(meta=meta, provenance=plan.provenance())
    return meta


def dropped_reasons(store: Path) -> dict[str, str]:
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
