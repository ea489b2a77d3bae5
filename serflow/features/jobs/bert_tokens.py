"""The whole ``bert_tokens`` store in one job: the WordPiece ids the fine-tuned BERT model reads.

Per utterance ``[L, 1]`` float32 ids ``[CLS] ... [SEP]`` of its aligned words joined by single spaces (the text the
``bert`` store encodes), from the tokenizer of the configured BERT, resolved as the ``bert`` store resolves it
(offline: the packaged all-MiniLM-L6-v2, whose vocabulary is bert-base-uncased's). A sequence longer than
``max_tokens`` keeps ``[CLS]``, the first ``max_tokens - 2`` tokens and the final ``[SEP]`` (what the tokenizer's
own truncation gives); truncated utterances and tokens are counted. ``meta.model`` says which tokenizer ran
(label, requested name, vocabulary size and hash) so the training job can check its model uses the same one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from serflow.features.jobs.common import aligned_words, counts, dropped_table, labelled_utterances, storable
from serflow.features.stores import Plan
from serflow.shards.version import hash_file
from serflow.shards.writer import ShardWriter

TRUNCATION_KEYS = ("utterances_truncated", "tokens_truncated")  # the names the bert model counts its own cuts by


def bert_tokens_store(
    manifest_path: Path,
    words_path: Path,
    failures_path: Path | None,
    plan: Plan,
    root: Path,
    *,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Token ids per utterance and the ``utterances`` table; returns the manifest's ``meta``."""
    from transformers import AutoTokenizer

    from serflow.features.text.choice import text_model_choice
    from serflow.features.text.transformer import resolve_text_model, utterance_words

    p = plan.params
    rows = labelled_utterances(pd.read_parquet(manifest_path))
    words, dropped = aligned_words(words_path, failures_path, rows["utt_id"].tolist())
    source, resolved = resolve_text_model("bert", p["model"], p["path"], cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(source)
    utterances = utterance_words(words)
    tokens, full_lengths = token_ids(tokenizer, [w for _, w in utterances], p["max_tokens"])
    arrays = [(u, ids.astype(np.float32).reshape(-1, 1)) for (u, _), ids in zip(utterances, tokens, strict=True)]
    items = storable(arrays, 1, dropped)
    kept = {u for u, _ in items}
    info = pd.DataFrame(
        {
            "utt_id": [u for u, _ in utterances],
            "words": [len(w) for _, w in utterances],
            "tokens": [len(ids) for ids in tokens],
            "truncated_tokens": [full - len(ids) for full, ids in zip(full_lengths, tokens, strict=True)],
        }
    )
    info = info.loc[info["utt_id"].isin(kept)].reset_index(drop=True)
    with ShardWriter(root, plan.spec(), overwrite=True) as writer:
        for utt_id, block in items:
            writer.add(utt_id, block)
        writer.add_table("utterances", pa.Table.from_pandas(info, preserve_index=False))
        writer.add_table("dropped", dropped_table(sorted(dropped)))
        n = counts(len(rows), len(items), dropped)
        n.update(
            words=int(info["words"].sum()),
            tokens=int(info["tokens"].sum()),
            utterances_truncated=int((info["truncated_tokens"] > 0).sum()),
            tokens_truncated=int(info["truncated_tokens"].sum()),
            utterances_without_word_tokens=int((info["tokens"] + info["truncated_tokens"] <= 2).sum()),
        )
        choice = text_model_choice("bert", p["model"], p["path"]).as_meta()
        inputs = {"manifest": manifest_path, "words": words_path}
        meta = {
            "counts": n,
            "max_tokens": p["max_tokens"],
            "model": {**choice, **resolved, **tokenizer_identity(tokenizer)},
            "input_files": {k: hash_file(v) for k, v in sorted(inputs.items())},
        }
        writer.finalize(meta=meta, packages=("transformers", "tokenizers"), provenance=plan.provenance())
    return meta


def token_ids(
    tokenizer: Any, utterances: Sequence[Sequence[str]], max_tokens: int
) -> tuple[list[np.ndarray], list[int]]:
    """Each utterance's ids ``[CLS] ... [SEP]`` (int64, at most ``max_tokens``) and its length before truncation.

    ValueError for a ``max_tokens`` below 2 or above the tokenizer's limit, or a tokenizer that does not wrap a text
    in ``[CLS]`` and ``[SEP]`` (the BERT model's input format).
    """
    limit = int(tokenizer.model_max_length)
    if not 2 <= max_tokens <= limit:
        raise ValueError(f"max_tokens must be in 2..{limit} (the tokenizer's limit), got {max_tokens}")
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if cls is None or sep is None:
        raise ValueError(f"{tokenizer.name_or_path}: not a BERT-style tokenizer (no [CLS] or [SEP] token)")
    texts = [" ".join(words) for words in utterances]
    encoded = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"] if texts else []
    out, lengths = [], []
    for ids in encoded:
        if len(ids) < 2 or ids[0] != cls or ids[-1] != sep:
            raise ValueError(f"{tokenizer.name_or_path}: a text is not encoded as [CLS] ... [SEP]: {ids[:4]}...")
        lengths.append(len(ids))
        if len(ids) > max_tokens:
            ids = [*ids[: max_tokens - 1], sep]
        out.append(np.asarray(ids, dtype=np.int64))
    return out, lengths


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    """The vocabulary size, its hash (tokens in id order) and the special ids, to compare with the model's."""
    vocab = tokenizer.get_vocab()
    ordered = "\n".join(token for token, _ in sorted(vocab.items(), key=lambda item: item[1]))
    return {
        "tokenizer": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "vocab_sha256": hashlib.sha256(ordered.encode("utf-8")).hexdigest(),
        "cls_id": int(tokenizer.cls_token_id),
        "sep_id": int(tokenizer.sep_token_id),
        "pad_id": None if tokenizer.pad_token_id is None else int(tokenizer.pad_token_id),
        "lowercase": bool(getattr(tokenizer, "do_lower_case", False)),
    }
