"""WISE and its ablations (serflow.models.wise): shapes, the packed hierarchy against a plain loop, the
paper's truncation, masking, the interaction matrix as documented, and a small overfit run."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from serflow.models import MODELS, get_spec
from serflow.models.wise import VARIANTS, Wise, build, word_audio_loop

VARIANT_NAMES = sorted(VARIANTS)
AUDIO = ("mfcc39", "spans_mfcc39")


def make_sample(
    rng: np.random.Generator,
    n_words: int,
    phones: tuple[int, int] = (1, 5),
    frames: tuple[int, int] = (1, 12),
    text_dim: int = 50,
) -> dict[str, np.ndarray]:
    """One utterance as the stores hold it: mfcc39 [T, 39], spans_mfcc39 [P, 3] float32, glove [N, D]."""
    rows, t = [], int(rng.integers(0, 4))
    for w in range(n_words):
        for _ in range(int(rng.integers(phones[0], phones[1] + 1))):
            n = int(rng.integers(frames[0], frames[1] + 1))
            rows.append((w, t, t + n))
            t += n
        t += int(rng.integers(0, 4))  # silence between words
    n_frames = t + int(rng.integers(0, 5))
    return {
        "mfcc39": rng.standard_normal((n_frames, 39)).astype(np.float32),
        "spans_mfcc39": np.array(rows, dtype=np.float32),
        "glove": rng.standard_normal((n_words, text_dim)).astype(np.float32),
    }


def make_model(name: str, n_classes: int = 4, seed: int = 0, **hparams: object) -> Wise:
    torch.manual_seed(seed)
    model = get_spec(name).create(n_classes, **hparams)
    assert isinstance(model, Wise)
    return model.eval()


def batch_of(model: Wise, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return model.collate([model.prepare({k: s[k] for k in model.features})[0] for s in samples])


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [make_sample(rng, n) for n in (3, 7, 1, 12, 5)]


# ---------------------------------------------------------------------- registry
def test_registry_names_families_and_features() -> None:
    assert {n for n in MODELS if n.startswith("wise")} == set(VARIANTS)
    for name in VARIANTS:
        spec = get_spec(name)
        assert spec.family == "wise"
        assert spec.builder() is build  # one class, variants by flags
    assert get_spec("wise_audio").features == AUDIO
    assert get_spec("wise_text").features == ("glove",)
    for name in ("wise", "wise_im_dmf", "wise_hr_dmf", "wise_im_hr", "wise_hr_minus"):
        assert get_spec(name).features == (*AUDIO, "glove")


def test_unknown_model_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'wyse'") as err:
        get_spec("wyse")
    for name in VARIANTS:
        assert name in str(err.value)


def test_unknown_hparams_are_named() -> None:
    with pytest.raises(TypeError, match=r"\['bogus', 'hiden'\]"):
        get_spec("wise").create(4, hiden=10, bogus=1, dropout=0.1)


def test_variant_flags_override_config() -> None:
    model = get_spec("wise_hr_dmf").create(4, interaction=True)  # the name decides the architecture
    assert not model.use_interaction and not hasattr(model, "interaction")


# ---------------------------------------------------------------------- shapes, features
@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_shapes_per_variant(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(name, n_classes=5)
    batch = batch_of(model, samples)
    assert batch["n_words"].tolist() == [3, 7, 1, 12, 5]
    logits = model(batch)
    assert logits.shape == (5, 5) and torch.isfinite(logits).all()
    if model.use_audio:
        a = model.word_audio(batch)
        assert a.shape == (28, 39 if name == "wise_im_dmf" else 100)
    if model.use_text:
        assert batch["text"].shape == (5, 12, 50)


def test_input_dims_are_hyperparameters() -> None:
    rng = np.random.default_rng(1)
    s = [make_sample(rng, 4, text_dim=300), make_sample(rng, 2, text_dim=300)]
    model = make_model("wise", text_dim=300)
    assert model(batch_of(model, s)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"glove has shape \(4, 300\); expected \[words >= 1, 50\]"):
        make_model("wise").prepare(s[0])


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_variants_read_the_features_they_declare(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(name)
    declared = get_spec(name).features
    assert model.features == declared
    prepared, _ = model.prepare({k: samples[0][k] for k in declared})  # nothing else is needed
    assert set(prepared) == set(declared)
    batch = model.collate([prepared])
    assert ("text" in batch) == ("glove" in declared)
    assert ("frames" in batch) == ("mfcc39" in declared)
    for missing in declared:
        with pytest.raises(KeyError, match=missing):
            model.prepare({k: samples[0][k] for k in declared if k != missing})


# ---------------------------------------------------------------------- the packed hierarchy
@pytest.mark.parametrize(
    ("name", "per_phone"), [("wise", False), ("wise", True), ("wise_hr_minus", False), ("wise_im_dmf", False)]
)
def test_packed_hierarchy_equals_loop(name: str, per_phone: bool, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(name)
    prepared = [model.prepare(s)[0] for s in samples]
    with torch.no_grad():
        packed = model.word_audio(model.collate(prepared))
        loop = torch.cat(word_audio_loop(model, prepared, per_phone=per_phone))
    assert packed.shape == loop.shape
    torch.testing.assert_close(packed, loop, atol=1e-5, rtol=0)


def test_collate_layout(samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model("wise")
    prepared = [model.prepare(s)[0] for s in samples[:2]]
    batch = model.collate(prepared)
    frames0 = len(prepared[0]["mfcc39"])
    spans1 = prepared[1]["spans_mfcc39"]
    p0 = len(prepared[0]["spans_mfcc39"])
    # the first phone of the second utterance reads that utterance's frames
    start, end = spans1[0, 1], spans1[0, 2]
    assert batch["phone_frames"][p0, : end - start].tolist() == list(range(frames0 + start, frames0 + end))
    pad = batch["frames"].shape[0] - 1
    assert (batch["frames"][pad] == 0).all()
    assert (batch["phone_frames"][p0, end - start :] == pad).all()
    assert batch["utt_words"].tolist()[0] == [0, 1, 2, 10, 10, 10, 10]  # 3 + 7 words; padding -> W
    assert batch["word_len"].sum() == len(batch["phone_len"])


# ---------------------------------------------------------------------- prepare: truncation and checks
def test_truncation_counts() -> None:
    rng = np.random.default_rng(2)
    sample = make_sample(rng, 131, phones=(1, 3), frames=(1, 5))
    spans = sample["spans_mfcc39"]
    # word 5 gets 17 phones; its 2nd phone 70 frames, another kept phone 65 frames
    rows = [r for r in spans.tolist() if r[0] != 5]
    base = int(spans[:, 2].max()) + 2
    word5, t = [], base
    for k in range(17):
        n = 70 if k == 1 else 65 if k == 3 else 2
        word5.append([5, t, t + n])
        t += n
    rows = sorted(rows + word5, key=lambda r: r[0])  # stable: word 5's phones keep their order
    sample["spans_mfcc39"] = np.array(rows, dtype=np.float32)
    sample["mfcc39"] = rng.standard_normal((t + 3, 39)).astype(np.float32)
    model = make_model("wise")
    out, counts = model.prepare(sample)
    assert counts == {
        "words_truncated": 3,
        "phones_truncated": 3,
        "frames_truncated": 6 + 1,
        "spans_clipped": 0,
        "phones_widened": 0,
    }
    assert out["glove"].shape == (128, 50)
    kept = out["spans_mfcc39"]
    assert kept.dtype == np.int64 and kept[:, 0].max() == 127
    w5 = kept[kept[:, 0] == 5]
    assert len(w5) == 14
    np.testing.assert_array_equal(w5[:, 1], [r[1] for r in word5[:14]])  # the first 14, first frames kept
    assert (w5[1, 2] - w5[1, 1], w5[3, 2] - w5[3, 1]) == (64, 64)
    np.testing.assert_array_equal(out["mfcc39"], sample["mfcc39"])
    again, counts2 = model.prepare(out)  # idempotent
    assert set(counts2.values()) == {0}
    np.testing.assert_array_equal(again["spans_mfcc39"], kept)
    # the text-only variant truncates words too
    text_out, text_counts = make_model("wise_text").prepare({"glove": sample["glove"]})
    assert text_counts == {"words_truncated": 3} and text_out["glove"].shape == (128, 50)


def test_spans_beyond_the_frames_are_clipped_and_counted() -> None:
    frames = np.zeros((20, 39), np.float32)
    spans = np.array([[0, 0, 5], [0, 5, 5], [1, 15, 25], [2, 30, 34]], np.float32)  # empty, overrun, past end
    out, counts = make_model("wise_audio").prepare({"mfcc39": frames, "spans_mfcc39": spans})
    assert counts["spans_clipped"] == 2 and counts["phones_widened"] == 2
    assert out["spans_mfcc39"].tolist() == [[0, 0, 5], [0, 5, 6], [1, 15, 20], [2, 19, 20]]


def test_word_count_mismatch_names_shapes(samples: list[dict[str, np.ndarray]]) -> None:
    bad = dict(samples[1], glove=samples[1]["glove"][:6])
    with pytest.raises(ValueError, match=r"glove has shape \(6, 50\).*spans_mfcc39 has shape \(\d+, 3\) \(7 words\)"):
        make_model("wise").prepare(bad)


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        (np.zeros((0, 3)), "expected"),
        (np.array([[1, 0, 2]]), "start at 0"),
        (np.array([[0, 0, 2], [2, 2, 4]]), "rise by 0 or 1"),
        (np.array([[0, 4, 2]]), "frame_end < frame_start"),
        (np.array([[0, 0, 2.5]]), "non-integer"),
    ],
)
def test_malformed_spans(spans: np.ndarray, message: str) -> None:
    sample = {"mfcc39": np.zeros((10, 39), np.float32), "spans_mfcc39": spans.astype(np.float32)}
    with pytest.raises(ValueError, match=message):
        make_model("wise_audio").prepare(sample)


# ---------------------------------------------------------------------- masking, determinism
@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_padding_does_not_change_logits(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model(name)
    short = samples[0]  # 3 words, batched with longer utterances
    with torch.no_grad():
        alone = model(batch_of(model, [short]))
        batched = model(batch_of(model, [samples[3], short, samples[1]]))
    torch.testing.assert_close(batched[1:2], alone, atol=1e-5, rtol=0)


def test_deterministic_given_seed(samples: list[dict[str, np.ndarray]]) -> None:
    out = []
    for _ in range(2):
        model = make_model("wise", seed=7).train()  # dropout on: the seed fixes it too
        torch.manual_seed(3)
        out.append(model(batch_of(model, samples)))
    torch.testing.assert_close(out[0], out[1], atol=0, rtol=0)


# ---------------------------------------------------------------------- the interaction matrix (eqs. 3-5)
def _word_inputs(model: Wise, samples: list[dict[str, np.ndarray]]) -> tuple[torch.Tensor, ...]:
    batch = batch_of(model, samples)
    a = model.word_audio(batch)
    audio = torch.cat([a, a.new_zeros(1, a.shape[1])])[batch["utt_words"]]
    return audio, batch["text"], batch["n_words"]


def test_interaction_matrix_shape_and_init() -> None:
    model = make_model("wise")
    blocks = model.interaction_blocks()
    assert {k: tuple(v.shape) for k, v in blocks.items()} == {
        "W_aa": (100, 100),
        "W_ta": (100, 150),
        "W_at": (150, 100),
        "W_tt": (150, 150),
    }
    assert abs(model.interaction.std().item() - 0.05) < 0.003 and abs(model.interaction.mean().item()) < 0.003


def test_identity_interaction_is_two_plain_lstms(samples: list[dict[str, np.ndarray]]) -> None:
    """W_aa = I, W_tt = I, cross blocks 0: equations 1-2, i.e. nn.LSTM over each modality."""
    model = make_model("wise")
    with torch.no_grad():
        model.interaction.copy_(torch.eye(250))
        audio, text, n = _word_inputs(model, samples)
        h_a, h_t = model.interact(audio, text, n)
        for cell, x, h in ((model.audio_cell, audio, h_a), (model.text_cell, text, h_t)):
            lstm = nn.LSTM(cell.input_size, cell.hidden_size, batch_first=True)
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(lstm, f"{name}_l0").copy_(getattr(cell, name))
            packed = pack_padded_sequence(x, n, batch_first=True, enforce_sorted=False)
            expected = pad_packed_sequence(lstm(packed)[0], batch_first=True)[0]  # zeros at padding
            torch.testing.assert_close(h, expected, atol=1e-5, rtol=0)


def test_cross_blocks_couple_the_modalities(samples: list[dict[str, np.ndarray]]) -> None:
    """Eq. 3 as documented: W_ta carries text into the audio LSTM, W_at audio into the text LSTM."""
    model = make_model("wise")
    with torch.no_grad():
        audio, text, n = _word_inputs(model, samples)
        other_text = text + torch.randn_like(text) * (text != 0)
        other_audio = audio + torch.randn_like(audio) * (audio != 0)
        h_a, h_t = model.interact(audio, text, n)
        # coupled: changing the text changes the audio states after the first word, and vice versa
        assert not torch.allclose(model.interact(audio, other_text, n)[0][:, 1:], h_a[:, 1:], atol=1e-4)
        assert not torch.allclose(model.interact(other_audio, text, n)[1][:, 1:], h_t[:, 1:], atol=1e-4)
        # but not at the first word (h~_0 = 0): a cell reads its own modality only
        torch.testing.assert_close(model.interact(audio, other_text, n)[0][:, 0], h_a[:, 0], atol=0, rtol=0)
        blocks = model.interaction_blocks()
        blocks["W_ta"].zero_()
        blocks["W_at"].zero_()
        h_a, h_t = model.interact(audio, text, n)
        torch.testing.assert_close(model.interact(audio, other_text, n)[0], h_a, atol=0, rtol=0)
        torch.testing.assert_close(model.interact(other_audio, text, n)[1], h_t, atol=0, rtol=0)
        # with only W_ta zeroed, text still cannot reach audio, but audio reaches text
        model.interaction_blocks()["W_at"].normal_(0, 0.05)
        h_a, h_t = model.interact(audio, text, n)
        torch.testing.assert_close(model.interact(audio, other_text, n)[0], h_a, atol=0, rtol=0)
        assert not torch.allclose(model.interact(other_audio, text, n)[1][:, 1:], h_t[:, 1:], atol=1e-4)


def test_no_interaction_variant_has_independent_lstms(samples: list[dict[str, np.ndarray]]) -> None:
    model = make_model("wise_hr_dmf")
    with torch.no_grad():
        audio, text, n = _word_inputs(model, samples)
        h_a, _ = model.interact(audio, text, n)
        torch.testing.assert_close(model.interact(audio, torch.randn_like(text), n)[0], h_a, atol=0, rtol=0)


# ---------------------------------------------------------------------- learning
def test_overfits_eight_utterances() -> None:
    rng = np.random.default_rng(4)
    data = [make_sample(rng, int(n), phones=(1, 3), frames=(2, 8)) for n in rng.integers(2, 7, size=8)]
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    torch.manual_seed(0)
    model = build(4, dropout=0.0)
    batch = model.collate([model.prepare(s)[0] for s in data])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        loss = nn.functional.cross_entropy(model(batch), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is not None for p in model.parameters())  # every parameter is used


def test_looking_up_models_does_not_import_torch() -> None:
    # the workflow reads names and stores at every parse (and in every cluster job): no torch for that
    import subprocess
    import sys

    code = "import sys, serflow.models as m; m.get_spec('wise').features; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
