"""WavFusion (serflow.models.wavfusion) on the tiny random-init wav2vec 2.0: each reconstruction equation
against an independent computation, padding invariance for both encoder layouts, the gate and margin-loss
ablations, what trains and what stays frozen, prepare's refusals, and the meta-device build."""

from __future__ import annotations

import filecmp
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from serflow.models.tiny_wav2vec2 import build_tiny_wav2vec2, ensure_tiny_wav2vec2, is_random_init, tiny_folder_name
from serflow.models.wavfusion import FEATURES, VARIANTS, WavFusion, build, margin_loss, masked_group_norm

TEXT_DIM = 12
LENGTHS = ((2400, 3), (7000, 9), (300, 1), (4100, 5))  # samples, words; 300 < the 400-sample receptive field


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio-encoders")


@pytest.fixture(scope="module")
def stable_path(cache: Path) -> str:
    """The tiny model in the large checkpoints' layout (layer-norm CNN, pre-LN layers)."""
    return str(build_tiny_wav2vec2(cache / tiny_folder_name(stable_layer_norm=True), stable_layer_norm=True))


@pytest.fixture(scope="module")
def samples() -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        {
            "waveform": (rng.standard_normal((n, 1)) * 0.1 + 0.02).astype(np.float32),
            "roberta": rng.standard_normal((w, TEXT_DIM)).astype(np.float32),
        }
        for n, w in LENGTHS
    ]


def make(name: str, cache: Path, seed: int = 0, n_outputs: int = 4, **hparams: Any) -> WavFusion:
    """As ``ModelSpec.create``: the variant's flags over the given hyperparameters; eval mode."""
    torch.manual_seed(seed)
    model = build(n_outputs, **{"text_dim": TEXT_DIM, "cache_dir": str(cache), **hparams, **VARIANTS[name][1]})
    return model.eval()


def batch_of(model: WavFusion, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return model.collate([model.prepare({k: s[k] for k in model.features})[0] for s in samples])


def close_gate(model: WavFusion) -> None:
    """sigmoid(-1e4) is exactly 0 in float32: g = 0 for every gate form."""
    with torch.no_grad():
        if model.gate_form == "conditioned":
            model.gate.weight.zero_()
            model.gate.bias.fill_(-1e4)
        else:
            model.gate_logit.fill_(-1e4)


# ---------------------------------------------------------------------- builder, variants, meta device
def test_variants_and_features() -> None:
    assert set(VARIANTS) == set(FEATURES) == {"wavfusion", "wavfusion_nogate", "wavfusion_nomargin", "wavfusion_audio"}
    assert FEATURES["wavfusion_audio"] == ("waveform",)
    for name in ("wavfusion", "wavfusion_nogate", "wavfusion_nomargin"):
        assert FEATURES[name] == ("waveform", "roberta")
    assert VARIANTS["wavfusion_nogate"][1]["gated"] is False
    assert VARIANTS["wavfusion_nomargin"][1]["margin"] is False


def test_unknown_hparams_are_named() -> None:
    with pytest.raises(TypeError, match=r"\['bogus', 'gate_form'\]"):
        build(4, gate_form="vector", bogus=1, gate="scalar")


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_builds_on_the_meta_device(name: str, tmp_path: Path) -> None:
    with torch.device("meta"):
        model = build(4, cache_dir=str(tmp_path / "cache"), **VARIANTS[name][1])
    assert model.features == FEATURES[name]
    assert model.random_init and model.encoder_meta["source"] == "tiny"
    assert not (tmp_path / "cache").exists()  # nothing built or read: config only
    assert all(p.device.type == "meta" for n, p in model.named_parameters() if n != "wav2vec2.masked_spec_embed")


def test_meta_build_from_a_path_reads_only_the_config(stable_path: str, tmp_path: Path) -> None:
    folder = tmp_path / "config-only"
    folder.mkdir()
    (folder / "config.json").write_bytes((Path(stable_path) / "config.json").read_bytes())  # no weights
    with torch.device("meta"):
        model = build(4, path=str(folder), text_dim=768)
    assert model.stable_layer_norm and model.random_init


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="gate must be one of"):
        build(4, gate="tanh")
    with pytest.raises(ValueError, match="audio_dim 1"):
        build(4, audio_dim=39)
    with pytest.raises(ValueError, match="need the text"):
        build(4, text=False)
    with pytest.raises(ValueError, match="shallow_layers must be in"), torch.device("meta"):
        build(4, shallow_layers=5)


# ---------------------------------------------------------------------- the tiny wav2vec 2.0
@pytest.mark.parametrize("stable", [False, True])
def test_tiny_builder_is_deterministic_and_marked(tmp_path: Path, stable: bool) -> None:
    a = build_tiny_wav2vec2(tmp_path / "a", seed=3, stable_layer_norm=stable)
    b = build_tiny_wav2vec2(tmp_path / "b", seed=3, stable_layer_norm=stable)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert filecmp.cmp(a / n, b / n, shallow=False), n  # same seed, same bytes
    assert is_random_init(a)
    other = build_tiny_wav2vec2(tmp_path / "c", seed=4, stable_layer_norm=stable)
    assert not filecmp.cmp(a / "model.safetensors", other / "model.safetensors", shallow=False)
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_wav2vec2(a, seed=3, stable_layer_norm=stable) == a  # complete: reused, not rebuilt
    assert (a / "model.safetensors").stat().st_mtime_ns == stamp


def test_tiny_builder_refuses_to_overwrite_other_folders(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "weights.bin").write_bytes(b"x")
    with pytest.raises(FileExistsError):
        build_tiny_wav2vec2(tmp_path / "mine")


def test_loaded_stand_in_says_random_init(cache: Path) -> None:
    model = make("wavfusion", cache)
    assert model.random_init
    meta = model.init_fold([])["audio_encoder"]
    assert meta["random_init"] is True and meta["requested"] == "facebook/wav2vec2-base"
    assert "random-init" in meta["model"] and Path(meta["path"]).is_dir()
    assert model.wav2vec2.config.serflow_random_init is True


# ---------------------------------------------------------------------- R1-R3, R7: the encoder, run by layer
@pytest.mark.parametrize("layout", ["base", "stable"])
def test_layer_by_layer_encoder_equals_hugging_face(layout: str, cache: Path, stable_path: str, samples) -> None:
    """The audio model on one unpadded utterance: head(mean(HF Wav2Vec2Model(x))), HF's own forward."""
    model = make("wavfusion_audio", cache, path=stable_path if layout == "stable" else None)
    prepared = model.prepare(samples[1])[0]
    with torch.no_grad():
        ours = model(model.collate([prepared]))
        hidden = model.wav2vec2(torch.from_numpy(prepared["waveform"][:, 0])[None]).last_hidden_state
        expected = model.head(hidden.mean(1))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


def test_masked_group_norm_is_group_norm_on_valid_frames() -> None:
    torch.manual_seed(0)
    norm = nn.GroupNorm(6, 6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(3, 6, 20) * 3 + 1
    lengths = torch.tensor([20, 7, 13])
    out = masked_group_norm(x, lengths, norm)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[row, :, :n], norm(x[row : row + 1, :, :n])[0], atol=1e-5, rtol=0)


def test_plain_group_norm_encoder_is_not_padding_invariant(cache: Path, samples) -> None:
    """Why the masked group norm exists: HF's feature encoder on a zero-padded base waveform changes frames."""
    model = make("wavfusion_audio", cache)
    wave = torch.from_numpy(model.prepare(samples[0])[0]["waveform"][:, 0])[None]
    padded = F.pad(wave, (0, 3000))
    with torch.no_grad():
        alone = model.wav2vec2.feature_extractor(wave)
        batched = model.wav2vec2.feature_extractor(padded)[..., : alone.shape[-1]]
        ours = model.conv_features(padded, torch.tensor([wave.shape[1]]))[..., : alone.shape[-1]]
    assert (alone - batched).abs().max() > 1e-3
    torch.testing.assert_close(ours, alone, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------- padding invariance
@pytest.mark.parametrize(
    ("name", "layout"),
    [("wavfusion", "base"), ("wavfusion", "stable"), ("wavfusion_nogate", "base"), ("wavfusion_audio", "stable")],
)
def test_padding_does_not_change_outputs(name: str, layout: str, cache: Path, stable_path: str, samples) -> None:
    model = make(name, cache, path=stable_path if layout == "stable" else None)
    with torch.no_grad():
        batched = model(batch_of(model, samples))  # padded to 7000 samples and 9 words
        for row, sample in enumerate(samples):
            alone = model(batch_of(model, [sample]))
            torch.testing.assert_close(batched[row : row + 1], alone, atol=2e-5, rtol=0)


# ---------------------------------------------------------------------- R4: text encoder
def reference_attention(mha: nn.MultiheadAttention, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Multi-head attention of one unpadded sequence, written out: ``q [T, E]``, ``kv [N, Ek]`` -> ``[T, E]``."""
    e, h = mha.embed_dim, mha.num_heads
    d = e // h
    if mha._qkv_same_embed_dim:
        wq, wk, wv = mha.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    split = lambda x: x.reshape(x.shape[0], h, d).transpose(0, 1)  # noqa: E731 - [L, E] -> [h, L, d]
    qh, kh, vh = split(q @ wq.T + bq), split(kv @ wk.T + bk), split(kv @ wv.T + bv)
    weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)
    return (weights @ vh).transpose(0, 1).reshape(q.shape[0], e) @ mha.out_proj.weight.T + mha.out_proj.bias


def test_text_encoder_equals_per_utterance_computation(cache: Path, samples) -> None:
    model = make("wavfusion", cache)
    batch = batch_of(model, samples)
    n_words = batch["n_words"]
    mask = torch.arange(batch["text"].shape[1])[None, :] < n_words[:, None]
    with torch.no_grad():
        words = model.encode_text(batch["text"], n_words, mask)
        for row, sample in enumerate(samples):
            states = model.text_gru(torch.from_numpy(sample["roberta"])[None])[0][0]  # unpadded, unpacked BiGRU
            attended = reference_attention(model.text_attention, states, states)
            norm = model.text_norm
            expected = F.layer_norm(states + attended, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            n = int(n_words[row])
            torch.testing.assert_close(words[row, :n], expected, atol=1e-5, rtol=0)
            assert (words[row, n:] == 0).all()


# ---------------------------------------------------------------------- R5-R6: gated cross-modal attention
@pytest.mark.parametrize(
    ("name", "gate", "mix"),
    [
        ("wavfusion", "conditioned", "residual"),
        ("wavfusion", "vector", "residual"),
        ("wavfusion", "scalar", "convex"),
        ("wavfusion", "conditioned", "convex"),
        ("wavfusion_nogate", "conditioned", "residual"),
    ],
)
def test_fusion_equals_written_out_computation(name: str, gate: str, mix: str, cache: Path) -> None:
    model = make(name, cache, gate=gate, gate_mix=mix, gate_bias=0.3)
    hidden = model.wav2vec2.config.hidden_size
    torch.manual_seed(1)
    audio, words = torch.randn(2, 6, hidden), torch.randn(2, 4, hidden)
    n_words = torch.tensor([4, 2])
    mask = torch.arange(4)[None, :] < n_words[:, None]
    words = words * mask[..., None]  # as encode_text returns them
    with torch.no_grad():
        fused = model.fuse(audio, words, mask)
        for row in range(2):
            a, t = audio[row], words[row, : n_words[row]]
            norm = model.fusion_norm
            q = F.layer_norm(a, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            c = reference_attention(model.cross_attention, q, t)  # R5
            if name == "wavfusion_nogate":
                expected = a + c
            else:
                if gate == "conditioned":
                    g = torch.sigmoid(torch.cat([a, c], -1) @ model.gate.weight.T + model.gate.bias)
                else:
                    g = torch.sigmoid(model.gate_logit).expand(hidden)
                    assert model.gate_logit.shape == ((hidden,) if gate == "vector" else (1,))
                    torch.testing.assert_close(g, torch.full((hidden,), 1 / (1 + math.exp(-0.3))))
                expected = (1 - g) * a + g * c if mix == "convex" else a + g * c  # R6
            torch.testing.assert_close(fused[row], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("gate", "mix"), [("conditioned", "residual"), ("vector", "convex"), ("scalar", "residual")])
@pytest.mark.parametrize("layout", ["base", "stable"])
def test_closed_gate_is_the_audio_only_model(
    gate: str, mix: str, layout: str, cache: Path, stable_path: str, samples
) -> None:
    path = stable_path if layout == "stable" else None
    fusion = make("wavfusion", cache, gate=gate, gate_mix=mix, path=path)
    audio = make("wavfusion_audio", cache, seed=5, path=path)
    missing, unexpected = audio.load_state_dict(fusion.state_dict(), strict=False)
    assert not missing and all(k.startswith(("text_", "cross_attention", "fusion_norm", "gate")) for k in unexpected)
    with torch.no_grad():
        open_gate = fusion(batch_of(fusion, samples))
        close_gate(fusion)
        closed = fusion(batch_of(fusion, samples))
        expected = audio(batch_of(audio, samples))
    torch.testing.assert_close(closed, expected, atol=1e-6, rtol=0)
    assert (open_gate - expected).abs().max() > 1e-4  # the open gate does let the text in


def test_text_changes_the_output_only_through_fusion(cache: Path, samples) -> None:
    model = make("wavfusion", cache)
    other = [dict(s, roberta=s["roberta"][::-1].copy() + 1) for s in samples]
    with torch.no_grad():
        assert (model(batch_of(model, samples)) - model(batch_of(model, other))).abs().max() > 1e-4
        close_gate(model)
        torch.testing.assert_close(model(batch_of(model, samples)), model(batch_of(model, other)), atol=0, rtol=0)


# ---------------------------------------------------------------------- R9: the margin loss
def test_margin_loss_hand_computed() -> None:
    """B = 3, labels (0, 0, 1), 2-d embeddings with cosines 0 / +-1; the triplets counted by hand."""
    audio = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    text = torch.tensor([[3.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # same_modality: 8 triplets (a0, a1, t0, t1 as anchors x 2 negatives); hinges 1.5 0 | .5 .5 | 2.5 1.5 | .5 1.5
    assert margin_loss(audio, text, labels, 0.5).item() == pytest.approx(8.5 / 8)
    # cross_modal: the same 8 triplets, roles swapped; hinges 0 1.5 | .5 .5 | 0 0 | .5 0
    assert margin_loss(audio, text, labels, 0.5, "cross_modal").item() == pytest.approx(3.0 / 8)
    assert margin_loss(audio, text, torch.tensor([0, 1, 2]), 0.5).item() == 0.0  # no positive pair: no triplet


def loop_margin(audio: torch.Tensor, text: torch.Tensor, labels: list[int], alpha: float, positive: str) -> float:
    emb = [(0, y, v) for y, v in zip(labels, audio, strict=True)] + [
        (1, y, v) for y, v in zip(labels, text, strict=True)
    ]
    cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
    total, count = 0.0, 0
    for i, (mi, yi, vi) in enumerate(emb):
        for j, (mj, yj, vj) in enumerate(emb):
            for k, (mk, yk, vk) in enumerate(emb):
                if not (yi == yj == yk) or j == i or k == i:
                    continue
                same_j, same_k = mj == mi, mk == mi
                if (positive == "same_modality" and same_j and not same_k) or (
                    positive == "cross_modal" and not same_j and same_k
                ):
                    total += max(0.0, alpha - cos(vi, vj) + cos(vi, vk))
                    count += 1
    return total / max(count, 1)


@pytest.mark.parametrize("positive", ["same_modality", "cross_modal"])
def test_margin_loss_equals_triplet_loop(positive: str) -> None:
    torch.manual_seed(2)
    audio, text = torch.randn(7, 5), torch.randn(7, 5)
    labels = [0, 1, 0, 2, 1, 0, 3]
    got = margin_loss(audio, text, torch.tensor(labels), 0.2, positive).item()
    assert got == pytest.approx(loop_margin(audio, text, labels, 0.2, positive), abs=1e-6)


def test_training_loss_is_task_loss_plus_lambda_margin(cache: Path, samples) -> None:
    target = torch.tensor([0, 1, 0, 1])
    model = make("wavfusion", cache, margin_weight=0.7)
    batch = batch_of(model, samples)
    with torch.no_grad():
        loss, outputs = model.training_loss(batch, target, F.cross_entropy)
        out, a, t = model.encode(batch, embeddings=True)
        ce = F.cross_entropy(outputs, target)
        torch.testing.assert_close(outputs, out, atol=0, rtol=0)
        margin = margin_loss(a, t, target, model.margin_alpha)
        assert margin > 0
        torch.testing.assert_close(loss, ce + 0.7 * margin, atol=1e-6, rtol=0)
        # the audio embedding is the shallow output's mean over valid frames, before any text enters
        close_gate(model)
        assert torch.equal(model.encode(batch, embeddings=True)[1], a)
        # lambda 0, the nomargin variant and a dimensional target: the task loss alone
        for hp, name in (({"margin_weight": 0.0}, "wavfusion"), ({}, "wavfusion_nomargin")):
            plain = make(name, cache, **hp)
            loss0, _ = plain.training_loss(batch, target, F.cross_entropy)
            torch.testing.assert_close(loss0, F.cross_entropy(plain(batch), target), atol=0, rtol=0)
        values = torch.randn(4, 4)
        loss_d, out_d = model.training_loss(batch, values, F.mse_loss)
        torch.testing.assert_close(loss_d, F.mse_loss(out_d, values), atol=0, rtol=0)


# ---------------------------------------------------------------------- what trains
@pytest.mark.parametrize(("name", "hparams"), [("wavfusion", {}), ("wavfusion", {"freeze_shallow": True})])
def test_gradients_reach_trainable_and_only_trainable(name: str, hparams: dict[str, Any], cache: Path, samples):
    model = make(name, cache, **hparams).train()
    loss, _ = model.training_loss(batch_of(model, samples), torch.tensor([0, 1, 0, 1]), F.cross_entropy)
    loss.backward()
    zero = []
    for pname, p in model.named_parameters():
        frozen = pname.startswith(("wav2vec2.feature_extractor.", "wav2vec2.masked_spec_embed"))
        if hparams.get("freeze_shallow"):
            shallow = [f"wav2vec2.encoder.layers.{i}." for i in range(model.shallow_layers)]
            frozen |= pname.startswith(("wav2vec2.feature_projection", "wav2vec2.encoder.pos_conv", *shallow))
            frozen |= pname.startswith("wav2vec2.encoder.layer_norm")  # post-LN: the encoder's input norm
        assert p.requires_grad != frozen, pname
        if frozen:
            assert p.grad is None, pname
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        if p.grad.abs().max() == 0:
            zero.append(pname)
    # a key bias shifts every score of a query alike, so softmax gives it no gradient (mathematically zero)
    assert all(n.endswith("k_proj.bias") for n in zero), zero
    groups = model.parameter_groups()
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups.values() for p in g} == trainable
    encoder = {id(p) for p in model.wav2vec2.parameters()}
    assert groups["encoder"] and all(id(p) in encoder for p in groups["encoder"])
    assert groups["new"] and not any(id(p) in encoder for p in groups["new"])


def test_gradient_checkpointing_gives_the_same_gradients(cache: Path, samples) -> None:
    grads = []
    for checkpointing in (False, True):
        model = make("wavfusion_audio", cache, gradient_checkpointing=checkpointing, freeze_feature_encoder=False)
        model.train()
        for module in model.modules():  # dropout off, so both runs are the same function
            if isinstance(module, nn.Dropout):
                module.p = 0.0
        model.wav2vec2.config.hidden_dropout = model.wav2vec2.config.attention_dropout = 0.0
        for layer in model.wav2vec2.encoder.layers:
            layer.attention.dropout = 0.0
        model(batch_of(model, samples[:2])).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------- prepare
def test_prepare_normalises_pads_and_counts(cache: Path, samples) -> None:
    model = make("wavfusion", cache, max_seconds=0.25)
    out, counts = model.prepare(samples[1])  # 7000 samples > 0.25 s = 4000
    assert counts == {"utterances_padded": 0, "utterances_truncated": 1}
    wave = out["waveform"]
    assert wave.shape == (4000, 1) and wave.dtype == np.float32
    assert abs(wave.mean()) < 1e-5 and abs(wave.std() - 1) < 1e-3
    np.testing.assert_array_equal(out["roberta"], samples[1]["roberta"])
    short, counts = model.prepare(samples[2])  # 300 samples
    assert counts == {"utterances_padded": 1, "utterances_truncated": 0}
    assert short["waveform"].shape == (400, 1) and (short["waveform"][300:] == 0).all()
    with torch.no_grad():
        assert torch.isfinite(model(model.collate([short]))).all()


def test_prepare_refuses_what_it_cannot_use(cache: Path, samples) -> None:
    fusion = make("wavfusion", cache)
    no_words = dict(samples[0], roberta=np.zeros((0, TEXT_DIM), np.float32))
    with pytest.raises(ValueError, match="no words"):
        fusion.prepare(no_words)
    with pytest.raises(ValueError, match=r"roberta has shape \(3, 5\)"):
        fusion.prepare(dict(samples[0], roberta=np.zeros((3, 5), np.float32)))
    with pytest.raises(ValueError, match="expected \\[samples >= 1, 1\\]"):
        fusion.prepare(dict(samples[0], waveform=np.zeros((0, 1), np.float32)))
    with pytest.raises(ValueError, match="non-finite"):
        fusion.prepare(dict(samples[0], waveform=np.full((800, 1), np.nan, np.float32)))
    with pytest.raises(KeyError, match="roberta"):
        fusion.prepare({"waveform": samples[0]["waveform"]})
    with pytest.raises(ValueError, match="receptive field \\(400\\)"):
        make("wavfusion", cache, short_audio="refuse").prepare(samples[2])
    audio = make("wavfusion_audio", cache)  # reads no text: a wordless utterance is fine
    out, _ = audio.prepare({"waveform": no_words["waveform"]})
    assert set(out) == {"waveform"} and set(audio.collate([out])) == {"waveform", "n_samples"}
    assert audio.sample_length(out) == len(samples[0]["waveform"])


def test_collate_layout(cache: Path, samples) -> None:
    model = make("wavfusion", cache)
    batch = batch_of(model, samples)
    assert batch["waveform"].shape == (4, 7000) and batch["n_samples"].tolist() == [2400, 7000, 400, 4100]
    assert batch["text"].shape == (4, 9, TEXT_DIM) and batch["n_words"].tolist() == [3, 9, 1, 5]
    assert (batch["waveform"][0, 2400:] == 0).all() and (batch["text"][0, 3:] == 0).all()
    with torch.no_grad():
        assert model(batch).shape == (4, 4)
