"""Audio header inspection: durations come from the wav header, never from decoding the samples."""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    sample_rate: int
    channels: int


class AudioError(Exception):
    """The file is missing, unreadable, or holds no samples; the message says which and why."""


def probe(path: Path | str) -> AudioInfo:
    """Read the header of ``path``; raise :class:`AudioError` with the reason when it is unusable.

    A truncated file is caught by comparing the header's frame count with the bytes on disk, since
    libsndfile quietly reports the header's claim.
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except (FileNotFoundError, RuntimeError, sf.LibsndfileError) as exc:
        if not path.exists():
            raise AudioError(_why_missing(path)) from exc
        raise AudioError(f"audio file unreadable ({str(exc).strip().splitlines()[-1]})") from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError("audio file holds no samples")
    _check_not_truncated(path, info)
    return AudioInfo(duration=info.frames / info.samplerate, sample_rate=info.samplerate, channels=info.channels)


def _why_missing(path: Path) -> str:
    """Why ``path`` cannot be opened although it may be listed: absent, a broken link, or a symlink loop."""
    if not path.is_symlink():
        return "audio file missing"
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 raises RuntimeError for a symlink loop
        return f"audio file is a symlink loop ({path} -> {os.readlink(path)})"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"audio file is a symlink loop ({path} -> {os.readlink(path)})"
    return f"audio file is a broken symlink ({path} -> {os.readlink(path)}, which does not exist)"


def _check_not_truncated(path: Path, info: sf._SoundFileInfo) -> None:
    """libsndfile silently shortens a truncated wav to what is on disk; compare with the header's claim."""
    if info.format != "WAV":
        return
    declared = _riff_data_chunk(path)
    if declared is None:
        return
    offset, size = declared
    present = path.stat().st_size - offset
    if size != 0xFFFFFFFF and present < size:
        raise AudioError(f"audio file truncated (header declares {size} data bytes, {present} present)")


def _riff_data_chunk(path: Path) -> tuple[int, int] | None:
    """Offset and declared size of the ``data`` chunk of a RIFF/WAVE file, walking chunk headers only."""
    with open(path, "rb") as fh:
        if fh.read(12)[8:12] != b"WAVE":
            return None
        pos = 12
        while True:
            header = fh.read(8)
            if len(header) < 8:
                return None
            size = int.from_bytes(header[4:8], "little")
            if header[:4] == b"data":
                return pos + 8, size
            pos += 8 + size + (size & 1)  # chunks are word-aligned
            fh.seek(pos)
