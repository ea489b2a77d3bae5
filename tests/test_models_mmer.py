"""MultiModal-ER (serflow.models.mmer): Appendix A parameter counts, the attention pooling against a plain loop,
the report's padding and the masked setting, the per-fold vocabulary, truncation counts and empty transcripts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from serflow.models.mmer import EMPTY, FEATURES, PAD, UNK, VARIANTS, AttentiveBiLSTM, MultiModalER, build

NAMES = sorted(VARIANTS)
SMALL = {"hidden": 8, "embedding_dim": 6}  # fast models for everything but the exact sizes


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_sample(rng: np.random.Generator, n_frames: int, words: list[int]) -> dict[str, np.ndarray]:
    """One utterance as the stores hold it: mfcc120 [T, 120], word_ids [N, 1] (float32, exact integers)."""
    return {
        "mfcc120": rng.standard_normal((n_frames, 120)).astype(np.float32),
        "word_ids": np.array(words, dtype=np.float32).reshape(-1, 1),
    }


@pytest.fixture(scope="module")
def samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        make_sample(rng, 37, [3, 7, 9]),
        make_sample(rng, 120, [3, 7, 11, 4, 4]),
        make_sample(rng, 5, [8]),
        make_sample(rng, 200, [3, 7, 12, 4]),
    ]


def make_model(name: str, samples: list[dict[str, np.ndarray]], n_outputs: int = 4, seed: int = 0, **hp: object):
    """A model of variant ``name`` with its vocabulary from ``samples`` (as the trainer will do per fold)."""
    flags = VARIANTS[name][1]
    probe = build(n_outputs, **SMALL, **hp, **flags)
    prepared = [probe.prepare({k: s[k] for k in probe.features})[0] for s in samples]
    torch.manual_seed(seed)
    model = build(n_outputs, **SMALL, **hp, **flags, **probe.fold_hparams(prepared))
    model.init_fold(prepared)
    return model.eval()


def batch_of(model: MultiModalER, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return model.collate([model.prepare({k: s[k] for k in model.features})[0] for s in samples])


# ---------------------------------------------------------------------- sizes, settings, structure
@pytest.mark.parametrize(
    ("name", "count"), [("mmer_speech", 718_600), ("mmer_text", 684_488), ("mmer_fusion", 1_501_129)]
)
def test_parameter_counts_match_appendix_a(name: str, count: int) -> None:
    model = build(7, vocab_size=363, **VARIANTS[name][1])
    assert sum(p.numel() for p in model.parameters()) == count
    if model.use_text:
        assert model.embedding.weight.shape == (363, 64)  # 23,232


def test_features_and_variants() -> None:
    assert set(FEATURES) == set(VARIANTS) == {"mmer_speech", "mmer_text", "mmer_fusion"}
    for name, (_, flags) in VARIANTS.items():
        assert build(7, **flags).features == FEATURES[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_variant_builds_on_meta(name: str) -> None:
    with torch.device("meta"):
        model = build(7, audio_dim=8, **VARIANTS[name][1])  # the workflow's parse-time check (placeholder dims)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_unknown_and_bad_hparams() -> None:
    with pytest.raises(TypeError, match=r"\['bogus', 'hiden'\]"):
        build(7, hiden=10, bogus=1, dropout=0.1)
    with pytest.raises(ValueError, match="vocabulary must be one of"):
        build(7, vocabulary="dev")
    with pytest.raises(ValueError, match="at least one modality"):
        build(7, speech=False, text=False)


def test_layer_order_and_dropout_placement_follow_the_code() -> None:
    fusion = build(7)
    kinds = [type(m) for m in [*fusion.fusion, *fusion.classifier]]
    assert kinds == [nn.Linear, nn.ReLU, nn.LayerNorm, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert [
        (m.in_features, m.out_features) for m in [fusion.fusion[0], fusion.classifier[0], fusion.classifier[3]]
    ] == [
        (512, 256),
        (256, 128),
        (128, 7),
    ]
    for flags in (VARIANTS["mmer_speech"][1], VARIANTS["mmer_text"][1]):
        head = build(7, **flags).classifier  # the unimodal models: dropout on the pooled vector first
        assert [type(m) for m in head] == [nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    lstm = fusion.speech_encoder.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional, lstm.dropout) == (
        120,
        128,
        2,
        True,
        0.3,
    )
    assert fusion.text_encoder.lstm.input_size == 64
    assert torch.all(fusion.embedding.weight[PAD] == 0)


# ---------------------------------------------------------------------- attention pooling
def loop_pool(enc: AttentiveBiLSTM, h: torch.Tensor, lengths: list[int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """s_t = w2 . tanh(W1 h_t + b1) + b2, alpha = softmax over the first n steps, c = sum alpha_t h_t."""
    w1, b1 = enc.attention[0].weight, enc.attention[0].bias
    w2, b2 = enc.attention[2].weight[0], enc.attention[2].bias[0]
    pooled, weights = [], []
    for b in range(h.shape[0]):
        n = h.shape[1] if lengths is None else lengths[b]
        s = torch.stack([w2 @ torch.tanh(w1 @ h[b, t] + b1) + b2 for t in range(n)])
        a = torch.exp(s - s.max())
        a = a / a.sum()
        pooled.append(sum(a[t] * h[b, t] for t in range(n)))
        weights.append(torch.cat([a, a.new_zeros(h.shape[1] - n)]))
    return torch.stack(pooled), torch.stack(weights)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_pooling_against_loop(masked: bool) -> None:
    torch.manual_seed(1)
    enc = AttentiveBiLSTM(5, 6, 2, 0.0)
    h = torch.randn(3, 7, 12)
    lengths = [7, 2, 4]
    valid = torch.arange(7)[None, :] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        pooled, alpha = enc.pool(h, valid if masked else None)
        expected, expected_alpha = loop_pool(enc, h, lengths if masked else None)
    torch.testing.assert_close(pooled, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(alpha, expected_alpha, atol=1e-6, rtol=0)
    assert torch.all((alpha[~valid] == 0) if masked else (alpha > 0))


@pytest.mark.parametrize("mask_padding", [False, True])
def test_encoder_against_unbatched_computation(mask_padding: bool) -> None:
    """Report mode: each utterance zero-padded to T through the LSTM, all T pooled. Masked: only its own frames."""
    torch.manual_seed(2)
    enc = AttentiveBiLSTM(4, 5, 2, 0.3).eval()
    lengths = [9, 3, 6]
    x = torch.randn(3, 9, 4) * (torch.arange(9)[None, :, None] < torch.tensor(lengths)[:, None, None])
    with torch.no_grad():
        got, _ = enc(x, torch.tensor(lengths), pack=mask_padding, mask=mask_padding)
        for b, n in enumerate(lengths):
            steps = n if mask_padding else 9
            h = enc.norm(enc.lstm(x[b : b + 1, :steps])[0])
            torch.testing.assert_close(got[b : b + 1], loop_pool(enc, h, None)[0], atol=1e-5, rtol=0)
        if not mask_padding:  # the report's padding changes a short utterance's output
            alone = loop_pool(enc, enc.norm(enc.lstm(x[1:2, :3])[0]), None)[0]
            assert not torch.allclose(got[1:2], alone, atol=1e-3)


def test_fusion_head_against_explicit_computation(samples: list[dict[str, np.ndarray]]) -> None:
    """S003 A.4-A.5: fused = LN(relu(W_f [s; t] + b_f)); logits = W_2 relu(W_1 fused + b_1) + b_2 (eval: no dropout)."""
    model = make_model("mmer_fusion", samples, n_outputs=3)
    batch = batch_of(model, samples)
    with torch.no_grad():
        reps = model.representations(batch)
        speech, _ = model.speech_encoder(batch["frames"], batch["n_frames"], pack=False, mask=False)
        torch.testing.assert_close(reps["speech"], speech, atol=0, rtol=0)
        lin_f, norm, lin_1, lin_2 = model.fusion[0], model.fusion[2], model.classifier[0], model.classifier[3]
        z = torch.relu(torch.cat([reps["speech"], reps["text"]], 1) @ lin_f.weight.T + lin_f.bias)
        fused = (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + norm.eps)
        fused = fused * norm.weight + norm.bias
        torch.testing.assert_close(reps["fused"], fused, atol=1e-5, rtol=0)
        logits = torch.relu(fused @ lin_1.weight.T + lin_1.bias) @ lin_2.weight.T + lin_2.bias
        torch.testing.assert_close(model(batch), logits, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------- shapes, padding
@pytest.mark.parametrize("mask_padding", [False, True])
def test_batch_layout_and_shapes(mask_padding: bool, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model("mmer_fusion", samples, n_outputs=5, mask_padding=mask_padding)
    batch = batch_of(model, samples[:3])
    assert batch["frames"].shape == (3, 120 if mask_padding else 200, 120)
    assert batch["words"].shape == (3, 5 if mask_padding else 20)
    assert batch["n_frames"].tolist() == [37, 120, 5] and batch["n_words"].tolist() == [3, 5, 1]
    assert torch.all(batch["frames"][0, 37:] == 0)
    with torch.no_grad():
        assert model(batch).shape == (3, 5)
        reps = model.representations(batch)
    assert {k: tuple(v.shape) for k, v in reps.items()} == {"speech": (3, 16), "text": (3, 16), "fused": (3, 16)}
    speech_only = make_model("mmer_speech", samples)
    assert set(speech_only.representations(batch_of(speech_only, samples[:2]))) == {"speech"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mask_padding", [False, True])
def test_padding_does_not_change_outputs(name: str, mask_padding: bool, samples: list[dict[str, np.ndarray]]) -> None:
    """With the mask, nothing of the padding reaches the output; the report's fixed lengths are batch-invariant."""
    model = make_model(name, samples, mask_padding=mask_padding)
    short = samples[2]  # 5 frames, 1 word, batched with longer utterances
    with torch.no_grad():
        alone = model(batch_of(model, [short]))  # with the mask: no padding at all
        batched = model(batch_of(model, [samples[1], short, samples[3]]))
    torch.testing.assert_close(batched[1:2], alone, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_every_parameter(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(name, samples, dropout=0.0).train()
    loss = nn.functional.cross_entropy(model(batch_of(model, samples)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    if model.use_text:
        assert torch.all(model.embedding.weight.grad[PAD] == 0)


# ---------------------------------------------------------------------- vocabulary
def test_vocabulary_from_training_samples_only(samples: list[dict[str, np.ndarray]]) -> None:
    train, test = samples[:3], samples[3:]  # word 12 occurs only in the test utterance
    model = make_model("mmer_text", train)
    assert model.vocabulary_splits == ("train",)
    assert model.vocab_size == 2 + 6  # 3, 4, 7, 8, 9, 11
    # rows by training frequency: 3, 7, 4 (twice each), then 9, 11, 8; word 12 is unknown -> UNK
    rows = model.word_rows(batch_of(model, test)["words"], torch.tensor([4]))
    assert rows.tolist() == [[2, 3, UNK, 4] + [PAD] * 16]
    assert model.oov_stats([model.prepare({"word_ids": s["word_ids"]})[0] for s in test]) == {
        "tokens": 4,
        "oov_tokens": 1,
        "oov_rate": 0.25,
    }
    everything = make_model("mmer_text", samples, vocabulary="all")  # the report's: built on every split
    assert everything.vocabulary_splits == ("train", "valid", "test") and everything.vocab_size == 2 + 7
    assert UNK not in everything.word_rows(torch.tensor([[12]]), torch.tensor([1])).tolist()[0]


def test_vocabulary_rows_by_frequency_and_stats(samples: list[dict[str, np.ndarray]]) -> None:
    model = build(4, text=False)
    assert model.fold_hparams([]) == {} and model.init_fold([]) == {}  # speech only: no vocabulary
    text = build(4, speech=False, **SMALL)
    prepared = [text.prepare({"word_ids": s["word_ids"]})[0] for s in samples]
    text = build(4, speech=False, **SMALL, **text.fold_hparams(prepared))
    stats = text.init_fold(prepared)
    assert stats == {
        "vocabulary": "train",
        "vocabulary_splits": ["train"],
        "vocab_size": 9,
        "word_types": 7,
        "tokens": 13,
        "empty_transcripts": 0,
    }
    # counts: 3 x3, 7 x3, 4 x3, then 9, 11, 8, 12 once each; ties by first occurrence
    order = [3, 7, 4, 9, 11, 8, 12]
    rows = text.word_rows(torch.tensor([[*order, 99, -1]]), torch.tensor([9]))[0]
    assert rows.tolist() == [2, 3, 4, 5, 6, 7, 8, UNK, UNK]
    with pytest.raises(ValueError, match="built with vocab_size=9"):
        text.init_fold(prepared[:2])


def test_vocabulary_survives_a_checkpoint(samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model("mmer_fusion", samples)
    batch = batch_of(model, samples)
    fresh = build(4, **SMALL, **VARIANTS["mmer_fusion"][1], vocab_size=model.vocab_size)
    with pytest.raises(RuntimeError, match="init_fold"):
        fresh(batch)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(batch), model(batch), atol=0, rtol=0)


# ---------------------------------------------------------------------- prepare: truncation, refusals
def test_truncation_counts() -> None:
    rng = np.random.default_rng(3)
    model = build(4)
    long = make_sample(rng, 250, list(range(25)))
    out, counts = model.prepare(long)
    assert counts == {
        "frames_truncated": 50,
        "utterances_truncated": 1,
        "utterances_padded": 0,
        "words_truncated": 5,
        "transcripts_truncated": 1,
        "empty_transcripts": 0,
    }
    np.testing.assert_array_equal(out["mfcc120"], long["mfcc120"][:200])
    assert out["word_ids"].dtype == np.int64 and out["word_ids"].tolist() == list(range(20))
    _, counts = model.prepare(make_sample(rng, 200, [1, 2]))
    assert counts["utterances_padded"] == counts["utterances_truncated"] == counts["frames_truncated"] == 0
    _, counts = model.prepare(make_sample(rng, 30, [1, 2]))
    assert counts["utterances_padded"] == 1 and counts["words_truncated"] == 0


@pytest.mark.parametrize("mask_padding", [False, True])
def test_empty_transcript_is_one_unk(mask_padding: bool, samples: list[dict[str, np.ndarray]]) -> None:
    rng = np.random.default_rng(4)
    empty = make_sample(rng, 20, [])
    model = make_model("mmer_fusion", samples, mask_padding=mask_padding)
    out, counts = model.prepare(empty)
    assert out["word_ids"].tolist() == [EMPTY] and counts["empty_transcripts"] == 1
    assert model.prepare({**empty, "word_ids": np.zeros((0,), np.float32)})[0]["word_ids"].tolist() == [EMPTY]
    batch = batch_of(model, [empty, samples[0]])
    assert model.word_rows(batch["words"], batch["n_words"])[0, 0] == UNK
    with torch.no_grad():
        assert torch.isfinite(model(batch)).all()
        assert all(torch.isfinite(r).all() for r in model.representations(batch).values())
    assert model.oov_stats([out])["tokens"] == 0  # the placeholder is not a token


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mfcc120", np.zeros((0, 120), np.float32), r"expected \[frames >= 1, 120\]"),
        ("mfcc120", np.zeros((10, 39), np.float32), r"mfcc120 has shape \(10, 39\)"),
        ("mfcc120", np.full((3, 120), np.nan, np.float32), "non-finite"),
        ("word_ids", np.array([[1.5]], np.float32), "integer word ids"),
        ("word_ids", np.array([[-2.0]], np.float32), "integer word ids"),
        ("word_ids", np.zeros((2, 3), np.float32), r"expected \[words, 1\]"),
    ],
)
def test_prepare_refuses_malformed_input(key: str, value: np.ndarray, message: str) -> None:
    sample = {"mfcc120": np.zeros((10, 120), np.float32), "word_ids": np.array([[1.0]], np.float32), key: value}
    with pytest.raises(ValueError, match=message):
        build(4).prepare(sample)


@pytest.mark.parametrize("missing", ["mfcc120", "word_ids"])
def test_prepare_needs_the_declared_stores(missing: str) -> None:
    sample = {"mfcc120": np.zeros((10, 120), np.float32), "word_ids": np.array([[1.0]], np.float32)}
    with pytest.raises(KeyError, match=missing):
        build(4).prepare({k: v for k, v in sample.items() if k != missing})


# ---------------------------------------------------------------------- learning
def test_text_model_learns_informative_words() -> None:
    """On TESS the words carry no emotion (the report's 15 %); when they do, the text model learns them."""
    rng = np.random.default_rng(5)
    data = [make_sample(rng, 2, [5, 6, 20 + k % 4]) for k in range(8)]
    labels = torch.tensor([k % 4 for k in range(8)])
    model = make_model("mmer_text", data, dropout=0.0, mask_padding=True).train()
    batch = batch_of(model, data)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = nn.functional.cross_entropy(model(batch), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert (model(batch).argmax(1) == labels).all()
