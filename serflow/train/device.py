"""Where and how a job computes: device, mixed precision, CPU threads, seeding and determinism.

CUDA when present (``device: auto``), with mixed precision (bfloat16 where the GPU has it, else float16
with a gradient scaler); on CPU full float32 with the job's ``threads`` and deterministic algorithms, so
the same config gives the same metrics, bit for bit. On CUDA, runs are seeded too but not bit-exact
(cuDNN's RNN kernels are not deterministic); the results record the device used.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Runtime:
    """The resolved device and precision of one job."""

    device: torch.device
    amp_dtype: torch.dtype | None  # None = full precision
    threads: int

    @property
    def uses_scaler(self) -> bool:
        """float16 needs loss scaling to keep small gradients from flushing to zero; bfloat16 does not."""
        return self.amp_dtype is torch.float16

    def describe(self) -> dict[str, object]:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        amp = str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None
        return {
            "device": str(self.device),
            "name": name,
            "amp": amp,
            "threads": self.threads,
            "torch": torch.__version__,
        }


def resolve_runtime(device: str = "auto", amp: bool = True, threads: int = 1) -> Runtime:
    """Pick the device (``auto``: CUDA if available) and the precision; :func:`job_settings` applies them."""
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but torch sees no CUDA device (use auto or cpu)")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if not use_cuda:
        return Runtime(torch.device("cpu"), None, threads)
    amp_dtype = None
    if amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return Runtime(torch.device("cuda"), amp_dtype, threads)


def seed_everything(seed: int) -> None:
    """Seed every generator a model may draw from (weights, dropout; CUDA too via torch.manual_seed)."""
    random.seed(seed)
    np.random.seed(seed)  # legacy global state that some initialisers still draw from
    torch.manual_seed(seed)


@contextlib.contextmanager
def job_settings(runtime: Runtime) -> Iterator[None]:
    """The job's CPU thread count and, on CPU, deterministic algorithms, for the duration of a run.

    Both are process-global torch settings; they are restored afterwards, so a caller (or a test process
    running other work) is left as it was.
    """
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(runtime.threads)
    if runtime.device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_before)
