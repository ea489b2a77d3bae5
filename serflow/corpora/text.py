"""Decoding corpus text files without losing or mangling lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from serflow.corpora.manifest import IssueLog


def decoded_lines(path: Path, issues: IssueLog) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` with CR/LF stripped; bytes that are not UTF-8 are decoded as
    Windows-1252 (what stray bytes in English corpora almost always are) and recorded as repaired."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = line.decode("cp1252", errors="replace")
            bad = line[exc.start : exc.end]
            issues.repair(
                _first_token(text),
                path,
                number,
                f"non-UTF-8 byte(s) {bad!r} at column {exc.start + 1}, decoded as Windows-1252",
            )
        yield number, text


def _first_token(text: str) -> str | None:
    parts = text.split(maxsplit=1)
    return parts[0] if parts else None
