"""Feature versions: a short hash of everything that determines a feature's bytes.

The workflow computes a version for every feature while it parses the Snakefile, to name the store
directory ``features/{corpus}/{feature}/{version}/`` before any job runs. So a version must be cheap:
it hashes a canonical JSON of small things (parameters, the extractor version, and hashes of the
inputs that the caller already has, e.g. :func:`hash_strings` over the manifest's utterance ids, audio
paths and sizes, or an upstream feature's version string), never the big files themselves.

The same inputs give the same version on every machine and Python run; a change in any parameter, the
extractor version, an input hash, or the store format gives a new version, written beside the old one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

VERSION_LENGTH = 12  # hex digits: 48 bits, so a clash among the few versions of one feature is negligible
STORE_FORMAT = "serflow-features/1"  # part of every version: a format change must not reuse old stores


def canonical(value: Any, where: str = "params") -> Any:
    """``value`` as plain JSON types, so that equal settings always serialise to the same text.

    Tuples become lists and NumPy scalars Python numbers. Things whose text is not stable or not
    meaningful across machines are refused rather than stringified: non-string mapping keys (``1`` and
    ``"1"`` would collide), NaN/inf, paths (hash the file's content and pass it as an input hash) and
    arbitrary objects. ``where`` names the offending entry in the error.
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return canonical(value.item(), where)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}: NaN and infinity have no canonical JSON form")
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} has a non-string key {key!r}: keys must be strings")
            out[key] = canonical(item, f"{where}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [canonical(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, os.PathLike):
        raise TypeError(
            f"{where} is a path ({value}): a path is not content; pass a hash of the file (hash_file) as an input hash"
        )
    raise TypeError(f"{where} has a {type(value).__name__} ({value!r}), which has no canonical JSON form")


def canonical_json(value: Any, where: str = "params") -> str:
    """The canonical text of ``value``: sorted keys, no whitespace, ASCII only."""
    return json.dumps(canonical(value, where), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def feature_version(
    feature: str, params: Mapping[str, Any], extractor_version: str, input_hashes: Mapping[str, str]
) -> str:
    """The ``VERSION_LENGTH``-hex-digit version of ``feature`` computed with ``params`` from ``input_hashes``.

    ``extractor_version`` should change whenever the extractor's code changes its output; parameters are
    hashed as typed, so ``10`` and ``10.0`` are different settings. Key order never matters.
    """
    if not isinstance(extractor_version, str) or not extractor_version:
        raise ValueError(f"extractor_version must be a non-empty string, got {extractor_version!r}")
    for name, digest in input_hashes.items():
        if not isinstance(digest, str) or not digest:
            raise ValueError(f"input hash {name!r} must be a non-empty string, got {digest!r}")
    payload = {
        "format": STORE_FORMAT,
        "feature": feature,
        "params": params,
        "extractor_version": extractor_version,
        "inputs": input_hashes,
    }
    return hashlib.sha256(canonical_json(payload).encode("ascii")).hexdigest()[:VERSION_LENGTH]


def hash_file(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file's content, read in chunks so a large file never sits in memory."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def hash_strings(strings: Iterable[str]) -> str:
    """The sha256 (hex) of a sequence of strings, order included.

    Each string is length-prefixed, so ``["ab", "c"]`` and ``["a", "bc"]`` hash differently. Typical use:
    the manifest rows a feature reads, e.g. ``f"{utt_id}\\t{audio_path}\\t{size}"``, in manifest order.
    """
    digest = hashlib.sha256()
    for i, text in enumerate(strings):
        if not isinstance(text, str):
            raise TypeError(f"hash_strings item {i} is a {type(text).__name__}, not a str: format it first")
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()
