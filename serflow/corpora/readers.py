"""Pick the reader for a corpus format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from serflow.corpora.iemocap import read_iemocap
from serflow.corpora.manifest import ReadResult
from serflow.corpora.tess import read_tess

READERS = {"iemocap": read_iemocap, "tess": read_tess}


def read_corpus(
    corpus_format: str,
    root: Path | str,
    labels: Sequence[str],
    merge: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
) -> ReadResult:
    """The corpus read by its format's reader. Bad lines and files are quarantined with reasons; with ``strict``
    the first one stops the reader with an error naming it."""
    try:
        reader = READERS[corpus_format]
    except KeyError:
        raise ValueError(f"unknown corpus format {corpus_format!r}; known: {', '.join(READERS)}") from None
    return reader(root, labels=labels, merge=merge, strict=strict)
