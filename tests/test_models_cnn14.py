"""CNN14 / SFCNN14 / MFCNN14 (serflow.models.cnn14): equations 1-5 against plain computations, the pooling
identities, padding, parameter counts against the reference's Appendix A, PANNs checkpoints, memory formats."""

from __future__ import annotations

import argparse
import hashlib
import math
from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from serflow.models.cnn14 import (
    FEATURES,
    FROM_SCRATCH,
    SILENCE_DB,
    VARIANTS,
    Cnn14,
    MaskedBatchNorm2d,
    build,
)

WIDTH = 0.125  # channels 8, 16, 32, 64, 128, 256
TEXT_DIM = 12
CONDITIONING = {name: flags["conditioning"] for name, (_, flags) in VARIANTS.items()}


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:  # small tensors: threads only add overhead on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_model(name: str = "cnn14", seed: int = 0, n_outputs: int = 4, **hparams: object) -> Cnn14:
    torch.manual_seed(seed)
    hparams = {"width": WIDTH, "text_dim": TEXT_DIM, **hparams}
    model = build(n_outputs, **hparams, **VARIANTS[name][1])
    _randomise_bn(model)
    return model.eval()


def _randomise_bn(model: nn.Module) -> None:
    """Running statistics and affine parameters away from the identity, so eval-mode BN is not a no-op."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            bn.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(n, generator=gen) * 0.1)
        model.bn0.running_mean.fill_(-40.0)  # the test data's dB scale: bn0 then maps a zero frame far from the data
        model.bn0.running_var.fill_(100.0)


def make_samples(lengths: tuple[int, ...] = (70, 130, 33, 96), seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "logmel64": (rng.standard_normal((n, 64)) * 10 - 40).astype(np.float32),
            "bert_utt": rng.standard_normal((1, TEXT_DIM)).astype(np.float32),
        }
        for n in lengths
    ]


def batch_of(model: Cnn14, samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    return model.collate([model.prepare({k: s[k] for k in model.features})[0] for s in samples])


# ---------------------------------------------------------------------- independent reference computations
def conv3x3(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """3x3 cross-correlation with zero padding 1 as a sum of nine shifted channel mixes."""
    t, f = x.shape[2:]
    xp = F.pad(x, (1, 1, 1, 1))
    return sum(
        torch.einsum("bctf,oc->botf", xp[:, :, i : i + t, j : j + f], w[:, :, i, j]) for i in range(3) for j in range(3)
    )


def bn_eval(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (x - bn.running_mean.view(shape)) / torch.sqrt(bn.running_var.view(shape) + bn.eps) * bn.weight.view(
        shape
    ) + bn.bias.view(shape)


def pool2x2(x: torch.Tensor, kind: str) -> torch.Tensor:
    b, c, t, f = x.shape
    windows = x.reshape(b, c, t // 2, 2, f // 2, 2)
    return windows.amax((3, 5)) if kind == "max" else windows.mean((3, 5))


def block_reference(model: Cnn14, k: int, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 1-3 of block k on an unpadded input, eval mode."""
    block = getattr(model, f"conv_block{k}")
    h1 = torch.relu(bn_eval(conv3x3(x, block.conv1.weight), block.bn1))  # eq. 1
    h2 = torch.relu(bn_eval(conv3x3(h1, block.conv2.weight), block.bn2))  # eq. 2
    return h2 if k == 6 else pool2x2(h2, model.pool)  # eq. 3


# ---------------------------------------------------------------------- variants, hyperparameters
def test_variants_flags_and_features() -> None:
    assert CONDITIONING == {"cnn14": "none", "sfcnn14": "single", "mfcnn14": "multi"}
    assert set(FEATURES) == set(VARIANTS)
    for name in VARIANTS:
        model = make_model(name)
        assert model.features == FEATURES[name]
        assert sorted(model.proj) == {"cnn14": [], "sfcnn14": ["6"], "mfcnn14": list("123456")}[name]


def test_unknown_hparams_are_named() -> None:
    with pytest.raises(TypeError, match=r"\['bogus', 'widht'\]"):
        build(4, widht=0.5, bogus=1, pool="avg")


@pytest.mark.parametrize(
    ("hparams", "message"),
    [
        ({"pool": "mean"}, "pool must be"),
        ({"conditioning": "late"}, "conditioning must be"),
        ({"width": 0}, "width must be positive"),
        ({"block_dropout": 1.0}, "block_dropout"),
        ({"min_frames": 64, "max_frames": 32}, "min_frames"),
        ({"memory_format": "nhwc"}, "memory_format"),
    ],
)
def test_bad_hparams(hparams: dict[str, object], message: str) -> None:
    with torch.device("meta"), pytest.raises(ValueError, match=message):
        build(4, **hparams)


# ---------------------------------------------------------------------- sizes (Appendix A)
def test_parameter_counts_match_appendix_a() -> None:
    with torch.device("meta"):  # 80 M parameters, no memory
        models = {name: build(4, text_dim=768, **flags) for name, (_, flags) in VARIANTS.items()}
        regression = build(3)
    # independent count: conv weights (no bias) + 2 BN (weight, bias) per conv + bn0 + fc1
    channels, count, previous = (64, 128, 256, 512, 1024, 2048), 2 * 64, 1
    for c in channels:
        count += 9 * previous * c + 9 * c * c + 2 * 2 * c
        previous = c
    count += 2048 * 2048 + 2048
    assert count == 79_673_792
    assert models["cnn14"].n_parameters == 79_673_792 + 2048 * 4 + 4
    assert models["mfcnn14"].n_parameters - models["cnn14"].n_parameters == 3_100_608
    assert models["sfcnn14"].n_parameters - models["cnn14"].n_parameters == 1_574_912
    assert regression.n_parameters == 79_673_792 + 2048 * 3 + 3
    assert models["mfcnn14"].describe()["channels"] == list(channels)


def test_width_multiplier_is_reported() -> None:
    model = make_model("mfcnn14")
    info = model.describe()
    assert info["width"] == WIDTH and info["channels"] == [8, 16, 32, 64, 128, 256]
    assert info["n_parameters"] == sum(p.numel() for p in model.parameters()) == model.n_parameters
    assert model.fc1.weight.shape == (256, 256) and model.head.weight.shape == (4, 256)
    assert info["pretrained_sha256"] == FROM_SCRATCH and info["pool"] == "max"


# ---------------------------------------------------------------------- equations 1-5
@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize("k", [2, 6])
def test_block_equations_1_to_3(pool: str, k: int) -> None:
    model = make_model("cnn14", pool=pool)
    channels_in = model.channels[k - 2]
    x = torch.randn(2, channels_in, 8, 6)
    with torch.no_grad():
        out, lengths = model.stage(k, x, None, None)
        expected = block_reference(model, k, x)
    assert lengths is None
    assert out.shape == expected.shape == (2, model.channels[k - 1], *((8, 6) if k == 6 else (4, 3)))
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bias_after_dropout", [False, True])
def test_conditioning_equations_4_and_5(bias_after_dropout: bool) -> None:
    model = make_model("mfcnn14", bias_after_dropout=bias_after_dropout)
    text = torch.randn(3, TEXT_DIM)
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        for k in range(1, 7):
            proj = model.proj[str(k)]
            e_p = text @ proj.weight.T + proj.bias  # eq. 5
            expected = block_reference(model, k, x) + e_p[:, :, None, None]  # eq. 4: one bias per feature map
            y, _ = model.stage(k, x, None, text)
            torch.testing.assert_close(y, expected, atol=1e-5, rtol=1e-5)
            x = y


def test_bias_position_relative_to_dropout() -> None:
    text = torch.randn(2, TEXT_DIM)
    x = torch.randn(2, 128, 4, 2)
    for after in (False, True):
        model = make_model("sfcnn14", bias_after_dropout=after, block_dropout=0.5).train()
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.eval()  # dropout on, batch norms fixed
        with torch.no_grad():
            h = model.conv_block6(x, None)  # H3 (block 6 pools 1x1)
            bias = model.proj["6"](text)[:, :, None, None].expand_as(h)
            y, _ = model.stage(6, x, None, text)
        if after:  # dropout(H3) + P: every entry is P or P + 2 H3
            d = y - bias
            torch.testing.assert_close(d[d != 0], 2 * h[d != 0], atol=1e-5, rtol=1e-5)
            assert ((d == 0) & (h != 0)).any()
        else:  # dropout(H3 + P): every entry is 0 or 2 (H3 + P)
            torch.testing.assert_close(y[y != 0], 2 * (h + bias)[y != 0], atol=1e-5, rtol=1e-5)
            assert (y == 0).any()


def test_pooling_commutes_with_a_channel_constant() -> None:
    """The reference's derivation: a per-channel constant passes 2x2 pooling unchanged, and the final pooling
    (mean over frequency, max + mean over time) turns it into twice the constant."""
    h = torch.rand(2, 5, 8, 6)
    c = torch.randn(1, 5, 1, 1)
    for pool in ("max", "avg"):
        model = make_model("cnn14", pool=pool)
        torch.testing.assert_close(model.pool_block(h + c, (2, 2)), model.pool_block(h, (2, 2)) + c)
    # SFCNN14 = CNN14 + PROJ_6 at block 6: the pooled vectors differ by exactly 2 * PROJ_6(E), padding included
    cnn, sf = make_model("cnn14"), make_model("sfcnn14")
    sf.load_state_dict(cnn.state_dict(), strict=False)
    samples = make_samples()
    with torch.no_grad():
        base = cnn.pooled(batch_of(cnn, samples))
        batch = batch_of(sf, samples)
        torch.testing.assert_close(sf.pooled(batch) - base, 2 * sf.proj["6"](batch["text"]), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["mfcnn14", "sfcnn14"])
def test_zero_projections_give_cnn14(name: str) -> None:
    cnn, fused = make_model("cnn14"), make_model(name, seed=3)
    result = fused.load_state_dict(cnn.state_dict(), strict=False)
    assert result.unexpected_keys == [] and all(k.startswith("proj.") for k in result.missing_keys)
    with torch.no_grad():
        for proj in fused.proj.values():
            proj.weight.zero_()
            proj.bias.zero_()
        samples = make_samples()
        torch.testing.assert_close(fused(batch_of(fused, samples)), cnn(batch_of(cnn, samples)), atol=0, rtol=0)


# ---------------------------------------------------------------------- padding
@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_padding_does_not_change_outputs(name: str, pool: str) -> None:
    model = make_model(name, pool=pool)
    samples = make_samples((45, 200, 31, 64))
    with torch.no_grad():
        batched = model(batch_of(model, samples))
        alone = torch.cat([model(batch_of(model, [s])) for s in samples])
    assert batched.shape == (4, 4) and torch.isfinite(batched).all()
    torch.testing.assert_close(batched, alone, atol=2e-5, rtol=1e-5)


def test_extra_padding_changes_nothing_in_training() -> None:
    """Train mode (batch statistics, dropout off): more zero frames past every utterance change neither the
    outputs nor the running statistics the batch norms learn."""
    outputs, stats = [], []
    for extra in (0, 64):
        model = make_model("mfcnn14", block_dropout=0.0, fc_dropout=0.0).train()
        batch = batch_of(model, make_samples())
        batch["mel"] = F.pad(batch["mel"], (0, 0, 0, extra))
        outputs.append(model(batch))
        stats.append(torch.cat([model.bn0.running_var, model.conv_block3.bn2.running_mean]))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats[0], stats[1], atol=1e-6, rtol=1e-5)


def test_masked_batch_norm_uses_valid_positions_only() -> None:
    bn = MaskedBatchNorm2d(3).train()
    x = torch.randn(2, 3, 8, 5)
    lengths = torch.tensor([8, 3])
    mask = (torch.arange(8)[None, :] < lengths[:, None]).float()[:, None, :, None]
    y = bn(x, mask)
    valid = torch.cat([x[0], x[1, :, :3]], dim=1)  # [C, 11, 5]: the real positions only
    mean, var = valid.mean((1, 2)), valid.var((1, 2), unbiased=False)
    expected = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + bn.eps)
    torch.testing.assert_close(y[0], expected[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y[1, :, :3], expected[1, :, :3], atol=1e-5, rtol=1e-5)
    n = valid[0].numel()
    torch.testing.assert_close(bn.running_mean, 0.1 * mean)
    torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * var * n / (n - 1))
    assert bn.num_batches_tracked.item() == 1
    plain = nn.BatchNorm2d(3).train()  # no mask: nn.BatchNorm2d itself
    torch.testing.assert_close(bn(x), plain(x))


# ---------------------------------------------------------------------- prepare / collate
def test_prepare_pads_short_and_counts() -> None:
    model = make_model("sfcnn14", max_frames=100)
    short, long_ = make_samples((5, 130))
    out, counts = model.prepare(short)
    assert counts == {"utterances_padded": 1, "frames_padded": 27, "utterances_truncated": 0, "frames_truncated": 0}
    assert out["logmel64"].shape == (32, 64) and (out["logmel64"][5:] == SILENCE_DB).all()
    np.testing.assert_array_equal(out["logmel64"][:5], short["logmel64"])
    again, counts2 = model.prepare(out)
    assert set(counts2.values()) == {0}
    np.testing.assert_array_equal(again["logmel64"], out["logmel64"])
    out, counts = model.prepare(long_)
    assert counts["utterances_truncated"] == 1 and counts["frames_truncated"] == 30 and len(out["logmel64"]) == 100
    unpadded = make_model("cnn14", min_frames=1)
    one_frame, _ = unpadded.prepare({"logmel64": short["logmel64"][:1]})
    assert len(one_frame["logmel64"]) == 1  # min_frames=1: no padding; the model still runs (masks)
    with torch.no_grad():
        assert torch.isfinite(unpadded(unpadded.collate([one_frame]))).all()


@pytest.mark.parametrize(
    ("sample", "error", "message"),
    [
        ({"logmel64": np.zeros((0, 64), np.float32)}, ValueError, r"expected \[frames >= 1, 64\]"),
        ({"logmel64": np.zeros((40, 40), np.float32)}, ValueError, r"\(40, 40\)"),
        ({"logmel64": np.full((40, 64), np.nan, np.float32)}, ValueError, "non-finite"),
        ({"logmel64": np.zeros((40, 64), np.float32), "bert_utt": np.zeros((2, TEXT_DIM))}, ValueError, "bert_utt"),
        ({"logmel64": np.zeros((40, 64), np.float32)}, KeyError, "bert_utt"),
    ],
)
def test_prepare_refuses(sample: dict[str, np.ndarray], error: type[Exception], message: str) -> None:
    if error is ValueError:
        sample = {"bert_utt": np.zeros((1, TEXT_DIM), np.float32), **sample}
    with pytest.raises(error, match=message):
        make_model("mfcnn14").prepare(sample)


def test_collate_pads_to_a_multiple_of_32() -> None:
    model = make_model("mfcnn14")
    batch = batch_of(model, make_samples((70, 33)))
    assert batch["mel"].shape == (2, 96, 64) and batch["n_frames"].tolist() == [70, 33]
    assert (batch["mel"][1, 33:] == 0).all() and batch["text"].shape == (2, TEXT_DIM)
    assert "text" not in batch_of(make_model("cnn14"), make_samples((70,)))


# ---------------------------------------------------------------------- learning, gradients, memory format
def test_gradient_reaches_every_parameter() -> None:
    model = make_model("mfcnn14").train()
    batch = batch_of(model, make_samples())
    model(batch).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_overfits_eight_utterances() -> None:
    samples = make_samples((40, 64, 50, 33, 90, 70, 45, 60), seed=2)
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    model = build(4, width=WIDTH, text_dim=TEXT_DIM, conditioning="multi", block_dropout=0.0, fc_dropout=0.0)
    batch = batch_of(model, samples)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)  # the paper's
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(batch), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_regression_head_and_determinism() -> None:
    outs = [make_model("mfcnn14", seed=7, n_outputs=3).train() for _ in range(2)]
    results = []
    for model in outs:
        torch.manual_seed(11)  # dropout on: the seed fixes it too
        results.append(model(batch_of(model, make_samples())))
    assert results[0].shape == (4, 3)
    torch.testing.assert_close(results[0], results[1], atol=0, rtol=0)


def test_channels_last() -> None:
    reference = make_model("mfcnn14")
    samples = make_samples((45, 100))
    with torch.no_grad():
        expected = reference(batch_of(reference, samples))
        model = make_model("mfcnn14", memory_format="channels_last")
        assert model.conv_block3.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        seen = []
        model.conv_block4.register_forward_hook(
            lambda m, i, o: seen.append(o.is_contiguous(memory_format=torch.channels_last))
        )
        torch.testing.assert_close(model(batch_of(model, samples)), expected, atol=1e-5, rtol=1e-5)
        assert seen == [True]
        converted = make_model("mfcnn14").to(memory_format=torch.channels_last)  # made channels-last from outside
        torch.testing.assert_close(converted(batch_of(converted, samples)), expected, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------- PANNs checkpoints
def panns_state(model: Cnn14, n_fft: int = 512, sr: int = 16000, fmax: float = 8000.0) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict in PANNs' key layout: front end, bn0, blocks, fc1 and the AudioSet head."""
    bins = n_fft // 2 + 1
    k, n = np.arange(bins)[:, None], np.arange(n_fft)[None, :]
    window = np.hanning(n_fft + 1)[:-1]
    phase = 2 * np.pi * k * n / n_fft
    state = {
        "spectrogram_extractor.stft.conv_real.weight": torch.tensor(np.cos(phase) * window)[:, None],
        "spectrogram_extractor.stft.conv_imag.weight": torch.tensor(-np.sin(phase) * window)[:, None],
        "logmel_extractor.melW": torch.tensor(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=64, fmin=50, fmax=fmax).T),
        "fc_audioset.weight": torch.randn(527, model.channels[-1]),
        "fc_audioset.bias": torch.zeros(527),
    }
    state.update({key: v.clone() for key, v in model.state_dict().items() if not key.startswith(("proj.", "head."))})
    return {key: v.float() if v.is_floating_point() else v for key, v in state.items()}


def write(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def test_panns_checkpoint_loads_like_direct_weights(tmp_path: Path) -> None:
    source = make_model("mfcnn14", seed=9)  # the "AudioSet" weights
    state = panns_state(source)
    path = write(tmp_path / "Cnn14_16k.pth", {"iteration": 0, "model": state})
    loaded = make_model("mfcnn14", pretrained=str(path))  # seed 0: same head / projections as `direct`
    direct = make_model("mfcnn14")
    direct.load_state_dict({k: v for k, v in state.items() if k in direct.panns_keys()}, strict=False)
    samples = make_samples()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch_of(loaded, samples)), direct(batch_of(direct, samples)), atol=0, rtol=0)
    torch.testing.assert_close(loaded.conv_block5.conv2.weight, source.conv_block5.conv2.weight)
    assert not torch.equal(loaded.head.weight[:, :4], state["fc_audioset.weight"][:4].T)  # head not loaded
    assert loaded.pretrained_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.describe()["pretrained"] == str(path)
    bare = write(tmp_path / "bare.pth", state)  # a bare state dict is accepted too
    assert make_model("cnn14", pretrained=bare).pretrained_sha256 == hashlib.sha256(bare.read_bytes()).hexdigest()


def _refusal(tmp_path: Path, case: str) -> Path:
    model = make_model("cnn14")
    state = panns_state(model)
    if case == "width":
        return write(tmp_path / "w.pth", {"model": panns_state(make_model("cnn14", width=0.25))})
    if case == "front_end_32k":
        return write(tmp_path / "f.pth", {"model": panns_state(model, n_fft=1024, sr=32000, fmax=14000.0)})
    if case == "front_end_fmax":
        return write(tmp_path / "m.pth", {"model": panns_state(model, fmax=7000.0)})
    if case == "no_front_end":
        return write(tmp_path / "n.pth", {"model": {k: v for k, v in state.items() if "melW" not in k}})
    if case == "missing":
        return write(tmp_path / "x.pth", {"model": {k: v for k, v in state.items() if k != "conv_block4.bn1.bias"}})
    if case == "unknown":
        return write(tmp_path / "u.pth", {"model": {**state, "pre_conv0.weight": torch.zeros(1)}})
    if case == "corrupt":
        good = write(tmp_path / "good.pth", {"model": state}).read_bytes()
        (tmp_path / "c.pth").write_bytes(good[: len(good) // 2])
        return tmp_path / "c.pth"
    if case == "object":
        return write(tmp_path / "o.pth", argparse.Namespace(model=state))
    if case == "not_tensors":
        return write(tmp_path / "t.pth", {"model": {"bn0.weight": [1.0, 2.0]}})
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("width", r"'conv_block1\.conv1\.weight' has shape \[16, 1, 3, 3\] in the checkpoint but \[8, 1, 3, 3\]"),
        ("front_end_32k", r"n_fft 1024.*n_fft 512"),
        ("front_end_fmax", r"not the logmel64 store's Mel matrix"),
        ("no_front_end", r"no 'logmel_extractor\.melW'"),
        ("missing", r"no 'conv_block4\.bn1\.bias'"),
        ("unknown", r"pre_conv0\.weight"),
        ("corrupt", r"cannot be read: corrupt"),
        ("object", r"not a plain state dict: it pickles argparse\.Namespace"),
        ("not_tensors", r"not a plain state dict: entry 'bn0\.weight' is a list"),
    ],
)
def test_bad_checkpoints_are_refused(tmp_path: Path, case: str, message: str) -> None:
    path = _refusal(tmp_path, case)
    with pytest.raises(ValueError, match=message):
        make_model("cnn14", pretrained=path)


def test_meta_build_reads_no_checkpoint(tmp_path: Path) -> None:
    with torch.device("meta"):
        model = build(4, pretrained=str(tmp_path / "absent.pth"))
    assert model.pretrained_sha256 == FROM_SCRATCH and model.fc1.weight.is_meta
    with pytest.raises(FileNotFoundError, match="absent"):
        build(4, width=WIDTH, pretrained=str(tmp_path / "absent.pth"))


def test_time_steps_after_pooling() -> None:
    model = make_model("cnn14")
    with torch.no_grad():
        maps, lengths = model.feature_maps(batch_of(model, make_samples((70, 33, 130))))
    assert maps.shape == (3, 256, 5, 2)  # 160 frames / 32, 64 bins / 32
    assert lengths.tolist() == [math.ceil(n / 32) for n in (70, 33, 130)]
