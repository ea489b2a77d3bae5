"""The whole ``word_ids`` store in one job: each aligned word's id in the corpus's table of word types.

The rows are exactly those of the ``glove`` store (the same alignment table, labelled utterances and order), so
row ``i`` of both is the same word. The types are the lower-cased words of every stored utterance; ids ``0..V-1``
follow their sorted (code point) order, so the table depends only on the set of words, never on the order in which
utterances were read. Models build their own vocabularies from the ids of their training split.

The store's one parameter, ``normalise`` (set per model family: ``models.<family>.stores.word_ids``), says what a
word type is: ``lower`` (the default, left out of the version) the aligned word lower-cased; ``letters`` the
MultiModal-ER code's tokens, lower-cased with every character other than a-z removed (``it's`` -> ``its``), a word
left empty dropped (the rows then differ from ``glove``'s).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.features.jobs.common import aligned_words, counts, dropped_table, labelled_utterances, storable
from serflow.features.stores import Plan
from serflow.shards.version import hash_file
from serflow.shards.writer import ShardWriter

NORMALISATIONS = ("lower", "letters")
MAX_TYPES = 2**24  # every id up to this is an exact float32


def word_ids_store(
    manifest_path: Path, words_path: Path, failures_path: Path | None, plan: Plan, root: Path
) -> dict[str, Any]:
    """One id per aligned word, ``[N, 1]`` float32, and the ``vocabulary`` table; returns the manifest's ``meta``."""
    rows = labelled_utterances(pd.read_parquet(manifest_path))
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    normalise = plan.params.get("normalise", "lower")
    words, emptied = normalised_words(words, normalise)
    dropped += emptied
    vocabulary, ids = word_types(words)
    utts = words["utt_id"].to_numpy(dtype=object)
    items = storable(_split_sorted(utts, ids.astype(np.float32).reshape(-1, 1)), 1, dropped)
    with ShardWriter(root, plan.spec(), overwrite=True) as writer:
        for utt_id, block in items:
            writer.add(utt_id, block)
        writer.add_table("vocabulary", vocabulary)
        writer.add_table("words", pa.Table.from_pandas(words.assign(id=ids), preserve_index=False))
        writer.add_table("dropped", dropped_table(sorted(dropped)))
        n = counts(len(rows), len(items), dropped)
        n.update(words=len(words), types=vocabulary.num_rows)
        inputs = {"manifest": manifest_path, "words": words_path}
        meta = {
            "counts": n,
            "vocabulary": {
                "table": "vocabulary",
                "size": vocabulary.num_rows,
                "case": "lower",
                "normalise": normalise,
                "order": "sorted",
            },
            "input_files": {k: hash_file(v) for k, v in sorted(inputs.items())},
        }
        writer.finalize(meta=meta, provenance=plan.provenance())
    return meta


def normalised_words(words: pd.DataFrame, normalise: str) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The words as ``normalise`` defines them (see the module docstring), and ``(utt_id, reason)`` for each
    utterance left without any word."""
    if normalise not in NORMALISATIONS:
        raise ValueError(f"word_ids normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    if normalise == "lower" or words.empty:
        return words, []
    kept = words.assign(word=[re.sub(r"[^a-z]", "", str(w).lower()) for w in words["word"].tolist()])
    kept = kept.loc[kept["word"] != ""].reset_index(drop=True)
    gone = sorted(set(words["utt_id"]) - set(kept["utt_id"]))
    return kept, [(u, "no word left with letters a-z (normalise: letters)") for u in gone]


def word_types(words: pd.DataFrame) -> tuple[pa.Table, np.ndarray]:
    """The table ``id, word, count`` of the lower-cased word types (ids in sorted order) and each word's id."""
    missing = words["word"].isna()
    if missing.any():
        utt_id = words.loc[missing, "utt_id"].iloc[0]
        raise ValueError(f"the alignment's words table has {int(missing.sum())} empty word(s), first in {utt_id!r}")
    lowered = np.array([w.lower() for w in words["word"].tolist()], dtype=object)
    if len(lowered) == 0:
        types, ids, frequency = np.array([], dtype=object), np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    else:
        types, ids, frequency = np.unique(lowered, return_inverse=True, return_counts=True)
    if len(types) > MAX_TYPES:
        raise ValueError(f"{len(types)} word types: ids above {MAX_TYPES} are not exact in float32")
    table = pa.table(
        {
            "id": pa.array(np.arange(len(types)), pa.int64()),
            "word": pa.array(types.tolist(), pa.string()),
            "count": pa.array(frequency, pa.int64()),
        }
    )
    return table, ids.astype(np.int64).reshape(-1)


def _split_sorted(keys: np.ndarray, values: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    """``(key, rows)`` for each run of equal ``keys`` (already grouped), in order."""
    if len(keys) == 0:
        return
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(keys)]])
    for start, end in pairwise(bounds.tolist()):
        yield str(keys[start]), values[start:end]
