"""Wav header probing: durations from the header, and every way a file can be unusable."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_wav

from serflow.corpora.audio import AudioError, probe


def _with_list_chunk(src: Path, dst: Path) -> None:
    """Insert a LIST chunk between 'fmt ' and 'data', as many editors write it."""
    raw = src.read_bytes()
    fmt_end = 12 + 8 + int.from_bytes(raw[16:20], "little")
    chunk = b"LIST" + (16).to_bytes(4, "little") + b"INFO" + b"ISFT" + (4).to_bytes(4, "little") + b"abc\x00"
    body = raw[12:fmt_end] + chunk + raw[fmt_end:]
    dst.write_bytes(b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body)


def test_duration_from_header(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 1.5, sr=22050, channels=2)
    info = probe(tmp_path / "a.wav")
    assert info.duration == pytest.approx(1.5) and info.sample_rate == 22050 and info.channels == 2


def test_extra_chunks_before_data(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", 1.0)
    _with_list_chunk(tmp_path / "a.wav", tmp_path / "b.wav")
    assert probe(tmp_path / "b.wav").duration == pytest.approx(1.0)
    (tmp_path / "c.wav").write_bytes((tmp_path / "b.wav").read_bytes()[:-100])
    with pytest.raises(AudioError, match=r"truncated \(header declares 32000 data bytes, 31900 present\)"):
        probe(tmp_path / "c.wav")


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "missing"), (b"", "unreadable"), (b"RIFF\x00\x00", "unreadable"), (b"not a wav at all" * 9, "unreadable")],
)
def test_unusable_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "x.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        probe(path)
