"""GBAN and its variants (serflow.models.gban): each equation group against an independent computation, shapes,
padding invariance against the per-utterance loop, Appendix A parameter counts, the per-fold vocabulary, and
the paper / code settings."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from serflow.models.gban import (
    FEATURES,
    FOLLOW,
    OOV_ROW,
    PAD_ROW,
    VARIANTS,
    GatedFusion,
    Gban,
    build,
    conv_steps,
    min_frames,
    parameter_counts,
    tensor_fusion,
    utterance_loop_forward,
)

VARIANT_NAMES = sorted(VARIANTS)
DIM = 50  # offline GloVe size; the Appendix A counts use 300


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_sample(rng: np.random.Generator, frames: int, words: int, vocab: int = 12) -> dict[str, np.ndarray]:
    """One utterance as the stores hold it; word ids from a small table, the GloVe row a function of the id."""
    ids = rng.integers(0, vocab, size=words)
    return {
        "gban52": rng.standard_normal((frames, 52)).astype(np.float32),
        "glove": np.stack([glove_of(int(i)) for i in ids]),
        "word_ids": ids.astype(np.float32)[:, None],
    }


def glove_of(word_id: int, dim: int = DIM) -> np.ndarray:
    return (np.sin(np.arange(dim) * 0.37 + word_id) + 0.01 * word_id).astype(np.float32)


@pytest.fixture(scope="module")
def samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [make_sample(rng, t, n) for t, n in ((120, 4), (400, 11), (61, 1), (230, 7), (90, 2))]


def fitted(name: str, samples: list[dict[str, np.ndarray]], seed: int = 0, **hparams: object) -> tuple[Gban, list]:
    """The trainer's sequence: build, prepare, fold_hparams, rebuild with them (seeded), init_fold; eval mode."""
    flags = {"text_dim": DIM, **VARIANTS[name][1], **hparams}
    probe = build(4, **flags)
    prepared = [probe.prepare({k: s[k] for k in probe.features})[0] for s in samples]
    torch.manual_seed(seed)
    model = build(4, **flags, **probe.fold_hparams(prepared))
    model.init_fold(prepared)
    return model.eval(), prepared


# ---------------------------------------------------------------------- variants, hyperparameters
def test_variants_features_and_flags() -> None:
    assert set(VARIANTS) == {
        "gban",
        "gban_concat1",
        "gban_tfl",
        "gban_gmu",
        "gban_concat2",
        "gban_speech",
        "gban_text",
        "gban_as",
        "gban_at",
    }
    assert FEATURES["gban_speech"] == ("gban52",)
    assert FEATURES["gban_text"] == ("glove", "word_ids")
    for name, (description, flags) in VARIANTS.items():
        assert set(flags) == {"fusion"} and description
        assert build(4, **flags).features == FEATURES[name]
        if name not in ("gban_speech", "gban_text"):
            assert FEATURES[name] == ("gban52", "glove", "word_ids")


def test_unknown_and_bad_hparams() -> None:
    with pytest.raises(TypeError, match=r"\['bogus', 'hiden'\]"):
        build(4, hiden=10, bogus=1, dropout=0.1)
    for bad in ({"follow": "both"}, {"attention": "bilinear"}, {"fusion": "sum"}, {"padding": "none"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            build(4, **bad)
    with pytest.raises(ValueError, match="needs >= 61"):
        build(4, max_frames=60)


@pytest.mark.parametrize("name", VARIANT_NAMES)
@pytest.mark.parametrize("follow", ["paper", "code"])
def test_every_variant_builds_on_the_meta_device(name: str, follow: str) -> None:
    with torch.device("meta"):
        model = build(4, follow=follow, **VARIANTS[name][1])
    assert all(p.device.type == "meta" for p in model.parameters())
    assert sum(parameter_counts(model).values()) == sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------- shapes
def test_750_frames_give_44_steps() -> None:
    assert conv_steps(750) == 44 and min_frames() == 61 and conv_steps(60) == 0 and conv_steps(61) == 1
    model = build(4, fusion="h_s").eval()
    convs = model.speech_convs
    for frames in (61, 62, 75, 100, 127, 750):
        x = torch.zeros(1, 52, frames)
        for conv in convs:
            x = nn.functional.max_pool1d(torch.relu(conv(x)), 2)
        assert x.shape == (1, 36, conv_steps(frames))
    batch = model.collate([model.prepare({"gban52": np.ones((750, 52), np.float32)})[0]])
    s, mask = model.encode_speech(batch["frames"], batch["n_frames"])
    assert s.shape == (1, 44, 256) and mask.all()


@pytest.mark.parametrize("name", VARIANT_NAMES)
@pytest.mark.parametrize("follow", ["paper", "code"])
def test_forward_shapes(name: str, follow: str, samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted(name, samples, follow=follow)
    out = model(model.collate(prepared))
    assert out.shape == (5, 4) and torch.isfinite(out).all()
    assert build(3, text_dim=DIM, **VARIANTS[name][1]).output.out_features == 3  # dimensional task: 3 values


def test_text_convs_are_keras_same_padding() -> None:
    """Kernels 2 and 4: the extra zero goes on the right; pooling floors M / 2."""
    model = build(4, fusion="h_t", text_dim=3, text_filters=1, text_kernels=(2, 3, 4))
    x = torch.randn(1, 3, 5)
    with torch.no_grad():
        out = model.text_cnn(x)
    assert out.shape == (1, 3, 2)
    xp = x[0].numpy()
    for c, (conv, left) in enumerate(zip(model.text_convs, (0, 1, 1), strict=True)):
        k = conv.kernel_size[0]
        w, b = conv.weight[0].detach().numpy(), conv.bias[0].item()
        padded = np.concatenate([np.zeros((3, left)), xp, np.zeros((3, k - 1 - left))], axis=1)
        conv_out = [max(0.0, float((w * padded[:, i : i + k]).sum() + b)) for i in range(5)]
        expected = [max(conv_out[0], conv_out[1]), max(conv_out[2], conv_out[3])]
        np.testing.assert_allclose(out[0, c].numpy(), expected, atol=1e-5)


# ---------------------------------------------------------------------- padding, the per-utterance loop
@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_padding_does_not_change_outputs(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted(name, samples)
    with torch.no_grad():
        batched = model(model.collate(prepared))
        alone = torch.cat([model(model.collate([p])) for p in prepared])
        loop = utterance_loop_forward(model, prepared)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(batched, loop, atol=1e-5, rtol=0)


def test_masked_padding_does_not_read_the_pad_row(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban_text", samples)
    with torch.no_grad():
        model.embedding.weight[PAD_ROW] = 5.0  # e.g. weights loaded from elsewhere: padding still reads as zeros
        batched = model(model.collate(prepared))
        alone = torch.cat([model(model.collate([p])) for p in prepared[:2]])
    torch.testing.assert_close(batched[:2], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["gban", "gban_tfl", "gban_gmu", "gban_at", "gban_text"])
def test_code_settings_equal_their_loop(name: str, samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted(name, samples, follow="code")
    with torch.no_grad():
        torch.testing.assert_close(
            model(model.collate(prepared)), utterance_loop_forward(model, prepared), atol=1e-5, rtol=0
        )


def test_additive_attention_with_masking_equals_loop(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban", samples, attention="additive")
    assert model.padding == "masked"
    with torch.no_grad():
        torch.testing.assert_close(
            model(model.collate(prepared)), utterance_loop_forward(model, prepared), atol=1e-5, rtol=0
        )


def test_fixed_padding_is_the_codes(samples: list[dict[str, np.ndarray]]) -> None:
    """padding='fixed': 750 frames and text_len words for everybody, text pre-padded / pre-truncated, index -1."""
    model, prepared = fitted("gban", samples, padding="fixed")
    assert model.text_len == 11  # the longest training text
    short = dict(prepared[0], word_ids=np.arange(3, 17))  # 14 words > text_len: the first 3 are dropped
    batch = model.collate([prepared[2], short])
    assert batch["frames"].shape == (2, 750, 52)
    assert (batch["frames"][0, 61:] == 0).all()
    assert batch["word_ids"].tolist()[0] == [-1] * 10 + prepared[2]["word_ids"].tolist()
    assert batch["word_ids"].tolist()[1] == list(range(6, 17))
    s, mask = model.encode_speech(batch["frames"], batch["n_frames"])
    assert s.shape[1] == 44 and mask.all()
    assert model.embedding.padding_idx is None  # the code's PAD row is trainable
    masked = build(4, text_dim=DIM, vocab_size=model.vocab_size).eval()
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():  # same weights: reading h_s after 689 padded frames changes the output
        assert not torch.allclose(model(model.collate(prepared[2:3])), masked(masked.collate(prepared[2:3])))
    with pytest.raises(ValueError, match="text_len"):
        build(4, text_dim=DIM, padding="fixed").collate(prepared[:1])


# ---------------------------------------------------------------------- equations 9-14: alignment
def _masked_inputs() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(1)
    s, t = torch.randn(2, 5, 4), torch.randn(2, 3, 4)
    s_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    t_mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    return s, s_mask, t, t_mask


def _align_by_hand(query: list, key: list, score) -> list[float]:  # type: ignore[no-untyped-def]
    """avg_j sum_i softmax_i(score(q_j, k_i)) k_i over plain Python lists."""
    pooled = [0.0] * len(key[0])
    for q in query:
        e = [math.exp(score(q, k)) for k in key]
        for weight, k in zip(e, key, strict=True):
            for d in range(len(k)):
                pooled[d] += weight / sum(e) * k[d] / len(query)
    return pooled


@pytest.mark.parametrize("form", ["dot", "additive"])
def test_alignment_eqs_9_to_14(form: str) -> None:
    model = build(4, text_dim=DIM, attention=form)
    s, s_mask, t, t_mask = _masked_inputs()
    scale = torch.randn(4)
    if form == "dot":
        score = lambda q, k: math.tanh(sum(a * b for a, b in zip(q, k, strict=True)))  # noqa: E731
    else:
        score = lambda q, k: sum(c * math.tanh(a + b) for c, a, b in zip(scale.tolist(), q, k, strict=True))  # noqa: E731
    a_s = model.attend(t, t_mask, s, s_mask, scale)  # text steps attend over speech steps: eqs. 9-11
    a_t = model.attend(s, s_mask, t, t_mask, scale)  # speech steps attend over text steps: eqs. 12-14
    for b in range(2):
        ss, tt = s[b][s_mask[b]].tolist(), t[b][t_mask[b]].tolist()
        np.testing.assert_allclose(a_s[b].numpy(), _align_by_hand(tt, ss, score), atol=1e-5)
        np.testing.assert_allclose(a_t[b].numpy(), _align_by_hand(ss, tt, score), atol=1e-5)
    # masked steps carry no weight: changing them changes nothing
    s2, t2 = s.masked_fill(~s_mask[..., None], 9.0), t.masked_fill(~t_mask[..., None], -9.0)
    torch.testing.assert_close(model.attend(t2, t_mask, s2, s_mask, scale), a_s)
    torch.testing.assert_close(model.attend(s2, s_mask, t2, t_mask, scale), a_t)


def test_a_s_is_aligned_speech_and_a_t_aligned_text(samples: list[dict[str, np.ndarray]]) -> None:
    """With a zero scale every score is equal: a_s is then the mean of the real speech steps, a_t of the text's."""
    model, prepared = fitted("gban", samples, attention="additive")
    batch = model.collate(prepared)
    with torch.no_grad():
        model.scale_s.zero_()
        model.scale_t.zero_()
        reps = model.representations(batch)
        s, s_mask = model.encode_speech(batch["frames"], batch["n_frames"])
        t, t_mask = model.encode_text(batch["word_ids"], batch["n_words"])
    for b in range(len(prepared)):
        torch.testing.assert_close(reps["a_s"][b], s[b][s_mask[b]].mean(0))
        torch.testing.assert_close(reps["a_t"][b], t[b][t_mask[b]].mean(0))
        torch.testing.assert_close(reps["h_s"][b], s[b][s_mask[b]][-1])
        torch.testing.assert_close(reps["h_t"][b], t[b][t_mask[b]][-1])
    assert s_mask.sum(1).tolist() == [conv_steps(len(p["gban52"])) for p in prepared]
    assert t_mask.sum(1).tolist() == [max(2, len(p["word_ids"])) // 2 for p in prepared]


def test_attention_scale_vectors() -> None:
    assert build(4, attention="dot").scale_s is None
    code = build(4, follow="code", fusion_inputs="aligned")
    assert code.scale_s.shape == code.scale_t.shape == (256,)
    assert build(4, fusion="a_s", attention="additive").scale_t is None  # only the direction it uses


# ---------------------------------------------------------------------- equations 15-21 (GGF), GMU, TFL
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_ggf_eqs_15_to_21() -> None:
    torch.manual_seed(2)
    layer = GatedFusion([(4, 4), (4, 4)], 3)
    a_s, a_t, h_s, h_t = (torch.randn(2, 4) for _ in range(4))
    out, (z_p, z_q) = layer([a_s, a_t, h_s, h_t])
    w = {n: m.weight.detach().numpy() for n, m in layer.named_modules() if isinstance(m, nn.Linear)}
    a_s, a_t, h_s, h_t = (x.numpy() for x in (a_s, a_t, h_s, h_t))
    p_s, p_t = np.tanh(a_s @ w["first.0"].T), np.tanh(a_t @ w["second.0"].T)  # eqs. 15-16
    zp = _sigmoid(np.concatenate([a_s, a_t], 1) @ w["gate.0"].T)  # eq. 17
    q_s, q_t = np.tanh(h_s @ w["first.1"].T), np.tanh(h_t @ w["second.1"].T)  # eqs. 18-19
    zq = _sigmoid(np.concatenate([h_s, h_t], 1) @ w["gate.1"].T)  # eq. 20
    expected = zp * p_s + (1 - zp) * p_t + zq * q_s + (1 - zq) * q_t  # eq. 21
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(z_p.detach().numpy(), zp, atol=1e-6)
    np.testing.assert_allclose(z_q.detach().numpy(), zq, atol=1e-6)
    assert all(m.bias is None for m in layer.modules() if isinstance(m, nn.Linear))


def test_gmu_is_one_group_of_the_same_form() -> None:
    model = build(4, fusion="gmu")
    assert len(model.fusion_layer.gate) == 1 and model.inputs == ("a_s", "a_t")
    torch.manual_seed(3)
    x, y = torch.randn(2, 256), torch.randn(2, 256)
    out, _ = model.fusion_layer([x, y])
    layer = model.fusion_layer
    wx, wy, wz = (m[0].weight.detach().numpy() for m in (layer.first, layer.second, layer.gate))
    xn, yn = x.numpy(), y.numpy()
    zn = _sigmoid(np.concatenate([xn, yn], 1) @ wz.T)
    np.testing.assert_allclose(out.detach().numpy(), zn * np.tanh(xn @ wx.T) + (1 - zn) * np.tanh(yn @ wy.T), atol=1e-5)


@pytest.mark.parametrize("constant", [1.0, 0.0])
def test_tfl_outer_product_with_the_appended_constant(constant: float) -> None:
    x, y = torch.randn(2, 3), torch.randn(2, 4)
    out = tensor_fusion(x, y, constant)
    assert out.shape == (2, 4 * 5)
    for b in range(2):
        expected = np.outer(np.append(x[b].numpy(), constant), np.append(y[b].numpy(), constant)).ravel()
        np.testing.assert_allclose(out[b].numpy(), expected, atol=1e-6)
    grid = out.view(2, 4, 5)
    if constant == 1.0:  # the unimodal terms survive (Zadeh et al.)
        torch.testing.assert_close(grid[:, :3, -1], x)
        torch.testing.assert_close(grid[:, -1, :4], y)
    else:  # the code's 0: only the bimodal products
        assert (grid[:, -1, :] == 0).all() and (grid[:, :, -1] == 0).all()


def test_tfl_variant_sizes_and_settings() -> None:
    paper, code = build(4, fusion="tfl"), build(4, fusion="tfl", follow="code")
    assert paper.hidden.in_features == 257 * 257 and paper.tfl_constant == 1.0 and code.tfl_constant == 0.0
    assert paper.inputs == ("a_s", "a_t") and code.inputs == ("h_s", "h_t")


# ---------------------------------------------------------------------- equations 22-23: classifier
def test_classifier_eqs_22_23() -> None:
    torch.manual_seed(4)
    model = build(4, fusion="concat1").eval()
    reps = {"a_s": torch.randn(3, 256), "a_t": torch.randn(3, 256)}
    out, gates = model.classify(reps)
    h = np.concatenate([reps["a_s"].numpy(), reps["a_t"].numpy()], 1)
    w_g, b_g = model.hidden.weight.detach().numpy(), model.hidden.bias.detach().numpy()
    w_e, b = model.output.weight.detach().numpy(), model.output.bias.detach().numpy()
    g = np.maximum(h @ w_g.T + b_g, 0)  # eq. 22
    np.testing.assert_allclose(out.detach().numpy(), g @ w_e.T + b, atol=1e-5)  # eq. 23 before the softmax
    assert gates == {}


# ---------------------------------------------------------------------- gates (Fig. 2)
def test_gate_values(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban", samples)
    batch = model.collate(prepared)
    with torch.no_grad():
        gates = model.gate_values(batch)
        reps = model.representations(batch)
    assert set(gates) == {"a_s", "a_t", "h_s", "h_t"} and gates["a_s"].shape == (5, 128)
    torch.testing.assert_close(gates["a_s"] + gates["a_t"], torch.ones(5, 128))
    torch.testing.assert_close(gates["h_s"] + gates["h_t"], torch.ones(5, 128))
    w = model.fusion_layer.gate[0].weight
    torch.testing.assert_close(gates["a_s"], torch.sigmoid(torch.cat([reps["a_s"], reps["a_t"]], 1) @ w.T))
    gmu, prepared_gmu = fitted("gban_gmu", samples)
    with torch.no_grad():
        assert set(gmu.gate_values(gmu.collate(prepared_gmu))) == {"a_s", "a_t"}
    with pytest.raises(ValueError, match="no gates"):
        fitted("gban_concat1", samples)[0].gate_values(batch)


# ---------------------------------------------------------------------- gradients
@pytest.mark.parametrize(("name", "follow"), [(n, "paper") for n in VARIANT_NAMES] + [("gban", "code")])
def test_gradient_reaches_every_trainable_parameter(
    name: str, follow: str, samples: list[dict[str, np.ndarray]]
) -> None:
    model, prepared = fitted(name, samples, follow=follow)
    loss = nn.functional.cross_entropy(model(model.collate(prepared)), torch.tensor([0, 1, 2, 3, 0]))
    loss.backward()
    # With h_s / h_t alone, the backward LSTM's output at the last step is its first step, from a zero state:
    # its recurrent matrix cannot matter (documented). Every other parameter gets a gradient.
    dead = {f"{m}_lstm.weight_hh_l0_reverse" for m in ("speech", "text") if model.inputs == (f"h_{m[0]}",)}
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert (param.grad.abs().sum() > 0) == (pname not in dead), pname
    if model.use_text and follow == "paper":
        assert (model.embedding.weight.grad[PAD_ROW] == 0).all()


def test_frozen_embedding_gets_no_gradient(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban", samples, freeze_embeddings=True)
    assert not model.embedding.weight.requires_grad
    torch.testing.assert_close(model.embedding.weight[2], torch.from_numpy(glove_of(int(model.vocab_ids[0]))))
    model(model.collate(prepared)).sum().backward()
    assert model.embedding.weight.grad is None
    assert all(p.grad is not None for n, p in model.named_parameters() if n != "embedding.weight")


# ---------------------------------------------------------------------- Appendix A parameter counts
def test_appendix_a_parameter_counts() -> None:
    model = build(4, vocab_size=10)  # text_dim 300 as in the paper
    keras = parameter_counts(model, keras=True)
    assert keras == {
        "speech_convs": 2508 + 980 + 2268 + 4068,
        "speech_lstm": 168_960,
        "embedding": 12 * 300,
        "text_convs": 76_928 + 115_328 + 153_728,
        "text_lstm": 525_312,
        "fusion": 262_144,
        "dense": 16_512,
        "output": 516,
    }
    assert keras["speech_convs"] == 9_824 and keras["text_convs"] == 345_984
    torch_counts = parameter_counts(model)
    assert torch_counts["speech_lstm"] - keras["speech_lstm"] == 2 * 4 * 128  # PyTorch's second bias
    assert torch_counts["text_lstm"] - keras["text_lstm"] == 2 * 4 * 128
    assert sum(torch_counts.values()) == sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in model.fusion_layer.parameters()) == 4 * 256 * 128 + 2 * 512 * 128
    assert parameter_counts(build(4, follow="code"))["attention"] == 2 * 256
    assert parameter_counts(build(4, fusion="gmu"))["fusion"] == 2 * 256 * 128 + 512 * 128
    assert parameter_counts(build(4, fusion="tfl"))["dense"] == 66_049 * 128 + 128
    assert parameter_counts(build(4, fusion="concat2"))["dense"] == 1024 * 128 + 128


# ---------------------------------------------------------------------- prepare
def test_prepare_truncates_to_750_frames() -> None:
    model = build(4, fusion="h_s")
    frames = np.random.default_rng(5).standard_normal((800, 52)).astype(np.float32)
    out, counts = model.prepare({"gban52": frames})
    assert counts == {"frames_truncated": 50, "utterances_truncated": 1, "frames_padded": 0, "utterances_padded": 0}
    np.testing.assert_array_equal(out["gban52"], frames[:750])
    again, counts2 = model.prepare(out)
    assert set(counts2.values()) == {0}
    np.testing.assert_array_equal(again["gban52"], out["gban52"])


def test_too_short_speech_is_padded_and_counted() -> None:
    model = build(4, fusion="h_s").eval()
    frames = np.ones((30, 52), np.float32)
    out, counts = model.prepare({"gban52": frames})
    assert counts == {"frames_truncated": 0, "utterances_truncated": 0, "frames_padded": 31, "utterances_padded": 1}
    assert out["gban52"].shape == (61, 52) and (out["gban52"][30:] == 0).all()
    assert model.prepare({"gban52": np.ones((61, 52), np.float32)})[1]["utterances_padded"] == 0
    with torch.no_grad():
        assert torch.isfinite(model(model.collate([out]))).all()


def test_one_word_text_is_padded_and_counted(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban_text", samples)
    assert model.prepare({k: samples[2][k] for k in model.features})[1] == {"texts_padded": 1}
    assert model.collate([prepared[2]])["word_ids"].tolist() == [[int(prepared[2]["word_ids"][0]), -1]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"glove": np.zeros((0, DIM), np.float32), "word_ids": np.zeros((0, 1), np.float32)}, "words >= 1"),
        ({"word_ids": np.zeros((3, 1), np.float32)}, "word_ids has shape"),
        ({"word_ids": np.full((4, 1), 1.5, np.float32)}, "integers"),
        ({"word_ids": np.full((4, 1), -2, np.float32)}, "integers"),
        ({"glove": np.zeros((4, 7), np.float32)}, "glove has shape"),
        ({"gban52": np.zeros((0, 52), np.float32)}, "frames >= 1"),
        ({"gban52": np.zeros((80, 40), np.float32)}, "gban52 has shape"),
        ({"gban52": np.full((80, 52), np.nan, np.float32)}, "non-finite"),
    ],
)
def test_prepare_refuses(change: dict[str, np.ndarray], message: str, samples: list[dict[str, np.ndarray]]) -> None:
    model = build(4, text_dim=DIM)
    with pytest.raises(ValueError, match=message):
        model.prepare({**samples[0], **change})
    with pytest.raises(KeyError, match="word_ids"):
        model.prepare({"gban52": samples[0]["gban52"], "glove": samples[0]["glove"]})


# ---------------------------------------------------------------------- vocabulary
def _text(ids: list[int], absent: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    glove = np.stack([np.zeros(DIM, np.float32) if i in absent else glove_of(i) for i in ids])
    return {"glove": glove, "word_ids": np.array(ids, np.float32)[:, None]}


def test_vocabulary_from_the_training_split_only() -> None:
    train = [_text([5, 7, 9], absent=(9,)), _text([5, 9, 11]), _text([13, 5])]
    valid = [_text([5, 7, 42, 9])]
    probe = build(4, fusion="h_t", text_dim=DIM)
    prepared = [probe.prepare(s)[0] for s in train]
    hp = probe.fold_hparams(prepared)
    assert hp == {"vocab_size": 2}  # 5 (3 times) and 9 (twice); 7, 11, 13 seen once
    torch.manual_seed(0)
    model = build(4, fusion="h_t", text_dim=DIM, **hp)
    ids = torch.tensor([[5, 7, 42], [9, 13, -1]])
    assert (model.word_rows(ids)[ids >= 0] == OOV_ROW).all()  # before init_fold: no vocabulary yet
    stats = model.init_fold(prepared)
    assert stats == {
        "vocab_size": 2,
        "embedding_rows": 4,
        "train_words": 8,
        "train_word_types": 5,
        "train_oov_words": 3,
        "train_oov_rate": 3 / 8,
        "vocab_not_in_glove": 1,
    }
    assert model.vocab_ids.tolist() == [5, 9] and "vocab_ids" in model.state_dict()
    weight = model.embedding.weight.detach()
    assert (weight[PAD_ROW] == 0).all()
    torch.testing.assert_close(weight[2], torch.from_numpy(glove_of(5)))
    for row in (OOV_ROW, 3):  # the OOV row and word 9 (absent from GloVe): one scalar from U(-0.25, 0.25) each
        assert (weight[row] == weight[row, 0]).all() and 0 < abs(weight[row, 0].item()) <= 0.25
    assert model.word_rows(ids).tolist() == [[2, OOV_ROW, OOV_ROW], [3, OOV_ROW, PAD_ROW]]
    assert model.oov_stats([probe.prepare(s)[0] for s in valid]) == {"words": 4, "oov_words": 2, "oov_rate": 0.5}
    assert model.oov_stats(prepared)["oov_rate"] == 3 / 8
    # the tensor lookup equals a dictionary lookup, and travels with the checkpoint
    many = torch.randint(-1, 20, (50,))
    table = {5: 2, 9: 3}
    assert model.word_rows(many).tolist() == [PAD_ROW if i < 0 else table.get(i, OOV_ROW) for i in many.tolist()]
    restored = build(4, fusion="h_t", text_dim=DIM, **hp)
    restored.load_state_dict(model.state_dict())
    assert restored.word_rows(many).tolist() == model.word_rows(many).tolist()
    with pytest.raises(ValueError, match="vocab_size=3 but the training split gives 2"):
        build(4, fusion="h_t", text_dim=DIM, vocab_size=3).init_fold(prepared)


def test_init_fold_is_seeded(samples: list[dict[str, np.ndarray]]) -> None:
    a, _ = fitted("gban", samples, seed=3)
    b, _ = fitted("gban", samples, seed=3)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=0, rtol=0, msg=name)


# ---------------------------------------------------------------------- the follow switch
def test_follow_sets_every_setting_and_explicit_values_win() -> None:
    keys = ("attention", "padding", "tfl_constant", "fusion_inputs", "fusion_dropout", "init")
    for follow in ("paper", "code"):
        settings = build(4, follow=follow).settings()
        assert {k: settings[k] for k in keys} == FOLLOW[follow]
    assert FOLLOW["code"] == {
        "attention": "additive",
        "padding": "fixed",
        "tfl_constant": 0.0,
        "fusion_inputs": "hidden",
        "fusion_dropout": False,
        "init": "keras",
    }
    mixed = build(4, follow="code", attention="dot", padding="masked").settings()
    assert (mixed["attention"], mixed["padding"], mixed["init"]) == ("dot", "masked", "keras")


def test_weight_init_paper_and_code() -> None:
    torch.manual_seed(5)
    paper, code = build(4, follow="paper"), build(4, follow="code")
    w = paper.text_lstm.weight_ih_l0  # [512, 384]: Xavier normal std sqrt(2 / (384 + 512))
    assert abs(w.std().item() / math.sqrt(2 / 896) - 1) < 0.03
    assert all((b == 0).all() for n, b in paper.named_parameters() if "bias" in n)
    w = code.text_lstm.weight_ih_l0  # Glorot uniform, bound sqrt(6 / 896)
    assert w.abs().max() <= math.sqrt(6 / 896) and abs(w.std().item() / math.sqrt(2 / 896) - 1) < 0.03
    for lstm in (code.speech_lstm, code.text_lstm):
        for suffix in ("l0", "l0_reverse"):
            rec = getattr(lstm, f"weight_hh_{suffix}")  # orthogonal
            torch.testing.assert_close(rec.T @ rec, torch.eye(128), atol=1e-5, rtol=0)
            bias = getattr(lstm, f"bias_ih_{suffix}")  # unit_forget_bias, gate order i, f, g, o
            assert (bias[128:256] == 1).all() and (bias[:128] == 0).all() and (bias[256:] == 0).all()
            assert (getattr(lstm, f"bias_hh_{suffix}") == 0).all()
    for scale in (code.scale_s, code.scale_t):  # Keras AdditiveAttention's scale: Glorot uniform, fans 256 / 256
        assert scale is not None and scale.abs().max() <= math.sqrt(6 / 512)
    assert build(4, fusion="tfl", follow="code").scale_s is None  # the code's TFL reads (h_s, h_t): no attention


def test_dropout_placement(samples: list[dict[str, np.ndarray]]) -> None:
    seen: list[torch.Tensor] = []
    for fusion_dropout in (True, False):
        model, prepared = fitted("gban_concat1", samples, fusion_dropout=fusion_dropout)
        assert isinstance(model.input_dropout, nn.Dropout if fusion_dropout else nn.Identity)
        handle = model.hidden.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        model.train()(model.collate(prepared))
        handle.remove()
    zeros_with, zeros_without = ((x == 0).float().mean().item() for x in seen)
    assert 0.4 < zeros_with < 0.6 and zeros_without == 0.0  # the paper's dropout on the fusion inputs


def test_tfl_and_gmu_inputs_setting(samples: list[dict[str, np.ndarray]]) -> None:
    model, prepared = fitted("gban_gmu", samples, fusion_inputs="hidden")
    with torch.no_grad():
        reps = model.representations(model.collate(prepared))
    assert set(reps) == {"h_s", "h_t"}  # no alignment is computed for (h_s, h_t)
    assert model.settings()["inputs"] == ["h_s", "h_t"]


# ---------------------------------------------------------------------- learning
def test_overfits_eight_utterances() -> None:
    rng = np.random.default_rng(6)
    data = [
        make_sample(rng, int(t), int(n)) for t, n in zip(rng.integers(61, 160, 8), rng.integers(1, 8, 8), strict=True)
    ]
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model, prepared = fitted("gban", data, lstm_hidden=32, dropout=0.0)
    model.train()
    batch = model.collate(prepared)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(batch), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
