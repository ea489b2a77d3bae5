"""MFA's corpus layout, built from AlignItems and read back into them.

The Montreal Forced Aligner reads a folder with one sub-folder per speaker, each holding
``<utt_id>.wav`` and ``<utt_id>.lab`` (the transcript). :func:`build_corpus_view` builds that folder
from the pipeline's items with the audio as symbolic links to the real files (a corpus can be tens of
gigabytes; copying it for every alignment run would double the disk it needs and the time), and
:func:`read_corpus_dir` reads such a folder back, so that ``serflow align CORPUS_DIR OUT_DIR`` takes
the same input as ``mfa align``.

Nothing is dropped silently: items that cannot go into the view and files that cannot be paired are
returned as :class:`~serflow.align.types.Failure` rows with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from serflow.align.types import AlignItem, Failure
from serflow.io import write_text

AUDIO_SUFFIX = ".wav"
TEXT_SUFFIX = ".lab"


def build_corpus_view(items: Iterable[AlignItem], corpus_dir: str | os.PathLike[str]) -> list[Failure]:
    """Create ``corpus_dir/<speaker>/<utt_id>.wav`` (a symlink to ``item.wav``) and ``<utt_id>.lab``.

    Items whose audio does not exist or whose text is empty are not added (MFA would skip them without
    saying which); they are returned as failures. An earlier view in ``corpus_dir`` is cleared first (its
    links and .lab files only), so a rerun with fewer items does not align stale ones. Raises ValueError
    for two items with one utt_id or a speaker / utt_id that is not a plain file name.
    """
    corpus_dir = Path(corpus_dir)
    items = list(items)
    _check_names(items)
    clear_corpus_view(corpus_dir)
    failures: list[Failure] = []
    for item in items:
        problem = _item_problem(item)
        if problem:
            failures.append(Failure(item.utt_id, problem))
            continue
        speaker_dir = corpus_dir / item.speaker
        speaker_dir.mkdir(parents=True, exist_ok=True)
        (speaker_dir / f"{item.utt_id}{AUDIO_SUFFIX}").symlink_to(Path(item.wav).resolve())
        write_text(_one_line(item.text) + "\n", speaker_dir / f"{item.utt_id}{TEXT_SUFFIX}")
    return failures


def _check_names(items: list[AlignItem]) -> None:
    seen: set[str] = set()
    for item in items:
        for what, name in (("utt_id", item.utt_id), ("speaker", item.speaker)):
            if not name or name in (".", "..") or "/" in name or os.sep in name or name.startswith("."):
                raise ValueError(f"{what} {name!r} cannot be a file name in the MFA corpus layout")
        if item.utt_id in seen:
            raise ValueError(f"utt_id {item.utt_id!r} occurs twice among the items to align")
        seen.add(item.utt_id)


def _item_problem(item: AlignItem) -> str | None:
    if not Path(item.wav).is_file():
        return f"audio file missing: {item.wav}"
    if not _one_line(item.text):
        return "empty transcript: nothing to align"
    return None


def _one_line(text: str) -> str:
    """MFA reads a .lab file as one utterance; line breaks inside the text become spaces."""
    return " ".join(text.split())


def clear_corpus_view(corpus_dir: str | os.PathLike[str]) -> None:
    """Remove what :func:`build_corpus_view` creates (symlinks, .lab files, then empty folders).

    Regular files other than .lab are left alone, so pointing this at a real corpus cannot delete audio.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        return
    for path in sorted(corpus_dir.rglob("*"), reverse=True):
        if path.is_symlink() or (path.is_file() and path.suffix == TEXT_SUFFIX):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def read_corpus_dir(corpus_dir: str | os.PathLike[str]) -> tuple[list[AlignItem], list[Failure]]:
    """Read an MFA-layout folder: every ``.wav`` with a ``.lab`` of the same name becomes an AlignItem.

    The speaker is the name of the folder holding the files (MFA's rule; files directly in
    ``corpus_dir`` get the folder's own name). Returns ``(items, problems)``: a .wav without a .lab,
    a .lab without a .wav, a broken audio link, an unreadable or empty .lab and a repeated utterance
    name are problems, each a Failure whose reason names the file. Hidden files (``.*``, e.g. macOS
    ``._x.wav`` companions) are not corpus files and are ignored. Raises ValueError if ``corpus_dir``
    is not a folder.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(f"corpus folder {corpus_dir} does not exist or is not a folder")
    audio, texts = _corpus_files(corpus_dir)
    items: list[AlignItem] = []
    problems: list[Failure] = []
    seen: dict[str, Path] = {}
    for stem_path in sorted(audio.keys() | texts.keys()):
        wav, lab = audio.get(stem_path), texts.get(stem_path)
        utt_id = stem_path.name
        if wav is None or lab is None:
            present, missing = (lab, AUDIO_SUFFIX) if wav is None else (wav, TEXT_SUFFIX)
            problems.append(Failure(utt_id, f"no matching {missing} file: {present}"))
            continue
        item = _read_pair(corpus_dir, wav, lab)
        if isinstance(item, AlignItem) and utt_id in seen:
            item = f"utterance name used twice: {wav} and {seen[utt_id]}"
        if isinstance(item, str):
            problems.append(Failure(utt_id, item))
            continue
        seen[utt_id] = wav
        items.append(item)
    return items, problems


def _corpus_files(corpus_dir: Path) -> tuple[dict[Path, Path], dict[Path, Path]]:
    """Audio and text files keyed by their path without suffix (so pairs share a key)."""
    audio: dict[Path, Path] = {}
    texts: dict[Path, Path] = {}
    for path in corpus_dir.rglob("*"):
        if path.name.startswith(".") or path.is_dir():
            continue
        suffix = path.suffix.lower()
        if suffix == AUDIO_SUFFIX:
            audio[path.with_suffix("")] = path
        elif suffix == TEXT_SUFFIX:
            texts[path.with_suffix("")] = path
    return audio, texts


def _read_pair(corpus_dir: Path, wav: Path, lab: Path) -> AlignItem | str:
    """The item for one .wav/.lab pair, or the problem with it."""
    if not wav.exists():  # only a symlink whose target has gone can be listed yet not exist
        return f"broken audio link: {wav} -> {os.readlink(wav)}"
    try:
        text = _one_line(lab.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as exc:
        return f"transcript not UTF-8: {lab} ({exc.reason} at byte {exc.start})"
    if not text:
        return f"empty transcript: {lab}"
    speaker = wav.parent.name if wav.parent != corpus_dir else corpus_dir.resolve().name
    return AlignItem(utt_id=wav.stem, speaker=speaker, wav=wav, text=text)
