"""A minimal ctypes binding to libespeak-ng, as shipped by the ``espeakng_loader`` wheel.

Why ctypes rather than the ``espeak-ng`` command line: no system package is needed, and one
in-process engine avoids a process start per utterance (the corpus has thousands of them).

Why every call reloads the library: libespeak-ng keeps synthesis state in C statics that neither
``espeak_Initialize`` nor ``espeak_Terminate`` reset (the pitch-flutter index, the wave phase...), so
the same text spoken twice in one process comes out different, even in length. Reproducible output
independent of call order therefore needs fresh statics for every utterance. The engine keeps a
private copy of the library (so no other ``CDLL`` handle in the process keeps it resident), and each
call dlopens it, speaks, terminates and dlcloses it; that costs about half a millisecond.
"""

from __future__ import annotations

import _ctypes
import atexit
import ctypes
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Values from espeak-ng's speak_lib.h (stable C API).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_EE_OK = 0
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7

# espeak-ng clamps these itself; clamping here keeps the values we record equal to those used.
RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 100)
VOLUME_RANGE = (0, 200)

# int t_espeak_callback(short *wav, int numsamples, espeak_EVENT *events)
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


@dataclass
class _Engine:
    """Process-wide state: where the private library copy lives and the callback collecting audio."""

    library: Path
    data_path: bytes
    keepalive: object  # the memfd or temporary directory that holds the private copy
    sample_rate: int = 0
    version: str = "unknown"
    chunks: list[np.ndarray] = field(default_factory=list)
    callback: object = None  # the ctypes callback; must stay referenced or the library calls freed memory
    lock: threading.Lock = field(default_factory=threading.Lock)  # the library is not re-entrant


_ENGINE: _Engine | None = None


def _libc_srand() -> Callable[[int], None]:
    """libc's ``srand`` (libespeak-ng draws breath noise from ``rand()``); a no-op where unavailable."""
    try:
        libc = ctypes.CDLL(None)
        srand = libc.srand
    except (OSError, AttributeError, TypeError):  # pragma: no cover - not on Linux/macOS
        return lambda _seed: None
    srand.argtypes = [ctypes.c_uint]
    srand.restype = None
    return srand


_SRAND = _libc_srand()


def _locate() -> tuple[Path, str]:
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("espeak-ng is unavailable: the 'espeakng_loader' package is not installed") from exc
    return Path(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())


def _private_copy(library: Path) -> tuple[Path, object]:
    """A private copy of the shared object, and the handle that keeps it alive.

    On Linux the copy lives in an anonymous memory file (``memfd``), which disappears with the
    process, worker processes included (they exit without running ``atexit`` handlers). Elsewhere
    it is a temporary directory removed at exit.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("libespeak-ng")
        with os.fdopen(fd, "wb", closefd=False) as fh:  # a buffered write loops over short writes
            fh.write(library.read_bytes())
        return Path(f"/proc/self/fd/{fd}"), fd
    tmp = tempfile.TemporaryDirectory(prefix="serflow-espeak-")
    atexit.register(tmp.cleanup)
    target = Path(tmp.name) / "libespeak-ng.so"
    shutil.copyfile(library, target)
    return target, tmp


def _declare(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint),
        ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed.restype = ctypes.c_int


@contextmanager
def _session(eng: _Engine) -> Iterator[ctypes.CDLL]:
    """A freshly loaded and initialised library, terminated and unloaded afterwards."""
    try:
        lib = ctypes.CDLL(str(eng.library), mode=os.RTLD_LOCAL)
        _declare(lib)
    except (OSError, AttributeError) as exc:
        raise RuntimeError(f"cannot load libespeak-ng from {eng.library}: {exc}") from exc
    handle = lib._handle
    try:
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, eng.data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate}; data {eng.data_path.decode()})")
        try:
            eng.sample_rate = rate
            lib.espeak_SetSynthCallback(eng.callback)
            yield lib
        finally:
            lib.espeak_Terminate()  # frees what Initialize allocated before the code is unmapped
    finally:
        del lib
        _ctypes.dlclose(handle)


def _engine() -> _Engine:
    """The process-wide engine, created (and checked by one initialisation) on first use."""
    global _ENGINE
    if _ENGINE is not None:
        return _ENGINE
    library, data_path = _locate()
    if not library.is_file():
        raise RuntimeError(f"cannot load libespeak-ng: {library} does not exist")
    try:
        private, keepalive = _private_copy(library)
    except OSError as exc:
        raise RuntimeError(f"cannot make a private copy of libespeak-ng: {exc}") from exc
    eng = _Engine(library=private, data_path=data_path.encode(), keepalive=keepalive)

    def on_audio(wav: ctypes._Pointer, n: int, _events: int | None) -> int:
        if n > 0 and wav:
            eng.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue synthesis

    eng.callback = _SYNTH_CALLBACK(on_audio)
    with eng.lock, _session(eng) as lib:
        eng.version = (lib.espeak_Info(None) or b"unknown").decode()
    _ENGINE = eng
    return eng


def engine_version() -> str:
    """The libespeak-ng version string (e.g. ``1.52.0``), recorded beside generated data."""
    return _engine().version


def sample_rate() -> int:
    """The rate :func:`synthesize` returns (22050 Hz for espeak-ng's own voices)."""
    return _engine().sample_rate


def _clamp(value: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], int(value)))


def synthesize(
    text: str,
    voice: str = "en-us",
    pitch: int = 50,
    rate: int = 175,
    amplitude: int = 100,
    word_gap: int = 0,
    *,
    pitch_range: int = 50,
    seed: int = 0,
) -> tuple[np.ndarray, int]:
    """Speak ``text`` and return ``(samples, sample_rate)``: float32 mono in [-1, 1), 22050 Hz.

    ``voice`` is an espeak-ng name with an optional variant (``en-us+m3``); pitch is 0..100 (50 is
    the voice's own), rate is words per minute, amplitude 0..200 (100 normal), word_gap in units of
    10 ms, pitch_range 0..100 the intonation's excursion (50 normal, 0 monotone). The result depends
    only on the arguments: the library is reloaded for every call (see the module docstring) and its
    random generators (breath noise in some voices) are seeded with ``seed``.
    """
    eng = _engine()
    data = text.encode("utf-8") + b"\0"
    with eng.lock, _session(eng) as lib:
        if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng does not know the voice {voice!r}")
        lib.espeak_SetParameter(_PARAM_RATE, _clamp(rate, RATE_RANGE), 0)
        lib.espeak_SetParameter(_PARAM_VOLUME, _clamp(amplitude, VOLUME_RANGE), 0)
        lib.espeak_SetParameter(_PARAM_PITCH, _clamp(pitch, PITCH_RANGE), 0)
        lib.espeak_SetParameter(_PARAM_RANGE, _clamp(pitch_range, PITCH_RANGE), 0)
        lib.espeak_SetParameter(_PARAM_WORDGAP, max(0, int(word_gap)), 0)
        lib.espeak_ng_SetRandSeed(seed)
        _SRAND(seed & 0xFFFFFFFF)
        eng.chunks.clear()
        err = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with error {err} for {text!r}")
        pcm = np.concatenate(eng.chunks) if eng.chunks else np.zeros(0, dtype=np.int16)
        eng.chunks.clear()
        return pcm.astype(np.float32) / 32768.0, eng.sample_rate
