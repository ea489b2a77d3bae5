"""Train / validation / test leakage of one fold: the same audio in two splits, by content or by file name.

The MultiModal-ER report loaded every TESS file twice (the nested copy some downloads hold) and split at random,
so identical recordings sat in training and test (``shared/reference/seed-models.md`` 3.7). Every fold job checks
its own splits, whatever the protocol: utterances whose audio file is byte-identical (sha256) to, or has the same
file name as, an utterance of another split are counted and recorded in ``metrics.json`` and in the results
(``leakage``; ``docs/results.md``). After the TESS reader's de-duplication both counts are 0; they are not 0 when
the same recording is listed twice (tests/test_leakage.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from serflow.shards.version import hash_file

SPLIT_ORDER = ("train", "valid", "test")
EXAMPLES = 5  # shared keys listed per kind, for a reader to look at


def split_leakage(audio_paths: Mapping[str, str], assignment: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Counts of cross-split duplicates among the fold's utterances (``audio_paths``: utt_id -> audio file).

    For each kind (``identical_audio``: the file's sha256; ``same_name``: its base name) and each pair of splits
    (``train/valid``, ``train/test``, ``valid/test``), the number of keys found in both; ``utterances``: the
    utterances whose key is also in another split; ``examples``: a few of those keys (names, or hashes' prefixes).
    """
    splits = [name for name in SPLIT_ORDER if assignment.get(name)]
    readable = {u for u, path in audio_paths.items() if Path(path).is_file()}
    members = {name: [u for u in assignment[name] if u in readable] for name in splits}
    digests: dict[str, str] = {}
    keys = {
        "identical_audio": lambda u: digests.setdefault(audio_paths[u], hash_file(audio_paths[u])),
        "same_name": lambda u: Path(audio_paths[u]).name,
    }
    listed = sum(len(assignment[name]) for name in splits)
    checked = sum(len(m) for m in members.values())
    out: dict[str, Any] = {"checked": checked, "not_checked": listed - checked, "splits": splits}
    for kind, key_of in keys.items():
        by_split = {name: {key_of(u): u for u in members[name]} for name in splits}
        pairs = {f"{a}/{b}": len(by_split[a].keys() & by_split[b].keys()) for a, b in combinations(splits, 2)}
        shared = set()
        for a, b in combinations(splits, 2):
            shared |= by_split[a].keys() & by_split[b].keys()
        utterances = sum(1 for name in splits for u in members[name] if key_of(u) in shared)
        examples = sorted(k if kind == "same_name" else k[:16] for k in shared)[:EXAMPLES]
        out[kind] = {"pairs": pairs, "keys": len(shared), "utterances": utterances, "examples": examples}
    return out


def leakage_total(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The folds' checks together: per kind, the largest number of leaking utterances in any fold, and per fold."""
    per_fold = [{"fold": r["fold"], **{k: r["leakage"][k]["utterances"] for k in ("identical_audio", "same_name")}}
                for r in records if r.get("leakage")]  # fmt: skip
    return {
        "identical_audio": max((f["identical_audio"] for f in per_fold), default=None),
        "same_name": max((f["same_name"] for f in per_fold), default=None),
        "folds": per_fold,
    }
