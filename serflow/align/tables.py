"""The alignment stage's outputs: Parquet-ready tables with fixed schemas, a validator, and TextGrids.

Whatever the backend (MFA, the offline Kaldi aligner, IEMOCAP's own files), the workflow writes the
same four tables, so feature extraction never needs to know which aligner ran:

* ``words``: ``utt_id, word_index, word, start, end``, one row per spoken word (silence is not a word);
* ``phones``: ``utt_id, word_index, phone_index, phone, start, end``, ``phone_index`` counting within
  the word, so ``(utt_id, word_index)`` joins phones to their word;
* ``failures``: ``utt_id, reason``, every utterance that has no alignment;
* ``oovs``: ``utt_id, word, how, pronunciation``, words that were not in the pronouncing dictionary.

Rows are sorted by their key columns and the schemas never depend on the data (an empty table has
the same columns and types), so the files are byte-for-byte reproducible and safe to concatenate.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from serflow.align.textgrid import TIME_TOLERANCE, textgrid_text
from serflow.align.types import AlignResult, Phone, UttAlignment
from serflow.io import write_text

WORDS_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("word_index", pa.int32()),
        ("word", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
    ]
)
PHONES_SCHEMA = pa.schema(
    [
        ("utt_id", pa.string()),
        ("word_index", pa.int32()),
        ("phone_index", pa.int32()),
        ("phone", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
    ]
)
FAILURES_SCHEMA = pa.schema([("utt_id", pa.string()), ("reason", pa.string())])
OOV_SCHEMA = pa.schema(
    [("utt_id", pa.string()), ("word", pa.string()), ("how", pa.string()), ("pronunciation", pa.string())]
)
_EPS = 1e-9  # float slack on top of the 1 ms tolerance, so that exactly 1 ms passes


def check_alignment(u: UttAlignment) -> None:
    """Raise ValueError naming the utterance unless ``u`` is a well-formed alignment.

    Well formed: every word has at least one phone; its phones tile it (the first starts at the word's
    start, each starts where the previous ended, the last ends at the word's end, all within 1 ms);
    no time is negative or runs backwards; words follow each other without overlapping (by more than
    1 ms). Downstream features (per-word prosody, phone durations) silently go wrong otherwise.
    """
    previous_end = 0.0
    for index, word in enumerate(u.words):
        where = f"utterance {u.utt_id}, word {index} {word.word!r} [{word.start}, {word.end}]"
        if word.start < 0 or word.end < word.start:
            raise ValueError(f"{where}: negative or backwards times")
        if word.start < previous_end - TIME_TOLERANCE - _EPS:
            raise ValueError(f"{where}: starts before the previous word ends ({previous_end})")
        _check_phones(word.phones, word.start, word.end, where)
        previous_end = word.end


def _check_phones(phones: tuple[Phone, ...], start: float, end: float, where: str) -> None:
    if not phones:
        raise ValueError(f"{where}: the word has no phones")
    cursor = start
    for p_index, phone in enumerate(phones):
        if phone.start < 0 or phone.end < phone.start:
            raise ValueError(f"{where}: phone {p_index} {phone.phone!r} has times [{phone.start}, {phone.end}]")
        if abs(phone.start - cursor) > TIME_TOLERANCE + _EPS:
            raise ValueError(
                f"{where}: phone {p_index} {phone.phone!r} starts at {phone.start}, expected {cursor} "
                "(phones must tile their word)"
            )
        cursor = phone.end
    if abs(cursor - end) > TIME_TOLERANCE + _EPS:
        raise ValueError(f"{where}: the phones end at {cursor}, not at the word's end")


def alignment_tables(result: AlignResult) -> tuple[pa.Table, pa.Table]:
    """``(words, phones)`` tables of every alignment in ``result``, validated and sorted.

    Raises ValueError for an invalid alignment (see :func:`check_alignment`) or an utterance aligned
    twice, because either would put wrong rows into every later stage.
    """
    seen: set[str] = set()
    words: dict[str, list] = {name: [] for name in WORDS_SCHEMA.names}
    phones: dict[str, list] = {name: [] for name in PHONES_SCHEMA.names}
    for u in sorted(result.alignments, key=lambda a: a.utt_id):
        if u.utt_id in seen:
            raise ValueError(f"utterance {u.utt_id} has two alignments in the result")
        seen.add(u.utt_id)
        check_alignment(u)
        _add_rows(u, words, phones)
    return _table(words, WORDS_SCHEMA, result), _table(phones, PHONES_SCHEMA, result)


def _add_rows(u: UttAlignment, words: dict[str, list], phones: dict[str, list]) -> None:
    for w_index, word in enumerate(u.words):
        for column, value in zip(WORDS_SCHEMA.names, (u.utt_id, w_index, word.word, word.start, word.end), strict=True):
            words[column].append(value)
        for p_index, phone in enumerate(word.phones):
            row = (u.utt_id, w_index, p_index, phone.phone, phone.start, phone.end)
            for column, value in zip(PHONES_SCHEMA.names, row, strict=True):
                phones[column].append(value)


def _table(columns: Mapping[str, list], schema: pa.Schema, result: AlignResult) -> pa.Table:
    table = pa.Table.from_pydict(dict(columns), schema=schema)
    return table.replace_schema_metadata({b"serflow.align.backend": result.backend.encode()})


def failures_table(result: AlignResult) -> pa.Table:
    """``utt_id, reason`` for every failure, sorted by utterance (then reason, for determinism)."""
    rows = sorted((f.utt_id, f.reason) for f in result.failures)
    return _table({"utt_id": [r[0] for r in rows], "reason": [r[1] for r in rows]}, FAILURES_SCHEMA, result)


def oov_table(result: AlignResult) -> pa.Table:
    """``utt_id, word, how, pronunciation`` for every out-of-vocabulary word, sorted, duplicates kept."""
    rows = sorted((o.utt_id, o.word, o.how, o.pronunciation) for o in result.oovs)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(OOV_SCHEMA.names)}
    return _table(columns, OOV_SCHEMA, result)


def write_textgrids(
    result: AlignResult,
    durations: Mapping[str, float],
    speakers: Mapping[str, str],
    out_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write ``out_dir/<speaker>/<utt_id>.TextGrid`` for every alignment, as ``mfa align`` lays them out.

    Failures get no TextGrid (MFA writes none either; they are in the failures table). Every alignment
    is validated and must have a duration and a speaker before anything is written, so a bad input
    never leaves a half-written folder. Returns the paths written, in utterance order.
    """
    out_dir = Path(out_dir)
    missing = sorted(u.utt_id for u in result.alignments if u.utt_id not in durations or u.utt_id not in speakers)
    if missing:
        raise ValueError(f"no duration or speaker for {len(missing)} aligned utterances, e.g. {missing[:5]}")
    for u in result.alignments:
        check_alignment(u)
        speaker = speakers[u.utt_id]
        if not speaker or "/" in speaker or os.sep in speaker or speaker in (".", ".."):
            raise ValueError(f"utterance {u.utt_id}: speaker {speaker!r} cannot be a folder name")
    texts = {  # every file's text first, so that an error leaves nothing half written
        out_dir / speakers[u.utt_id] / f"{u.utt_id}.TextGrid": textgrid_text(u, durations[u.utt_id])
        for u in sorted(result.alignments, key=lambda a: a.utt_id)
    }
    for path, text in texts.items():
        write_text(text, path)
    return list(texts)
