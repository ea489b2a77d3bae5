"""Word error rate of Whisper's transcripts against the corpus's gold transcripts.

Both sides go through Whisper's English text normaliser first, since a WER over raw strings mostly
measures punctuation, casing and spelling conventions ("colour", "5:30", "[LAUGHTER]"), not recognition.

The rate is corpus-level: errors summed over utterances divided by reference words summed, so long
utterances weigh by their length (a mean of per-utterance rates would let a one-word utterance count as
much as a long one). Utterances whose reference normalises to nothing (e.g. "Mm-hmm.") have no words to
divide by; they are left out of the rate and reported separately, with the words hypothesised for them.
Utterances of the manifest without an ASR row (their audio failed) are counted as ``missing``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jiwer
import pandas as pd

GROUP_KEYS = (
    "wer",
    "reference_words",
    "hits",
    "substitutions",
    "deletions",
    "insertions",
    "utterances",
    "empty_hypotheses",
    "empty_references",
    "empty_reference_insertions",
    "missing",
)


def english_normalizer() -> Callable[[str], str]:
    """Whisper's ``EnglishTextNormalizer`` (imported lazily: it pulls in the whisper package)."""
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def word_error_rates(
    manifest: pd.DataFrame, asr: pd.DataFrame, normalizer: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """WER of ``asr.text`` against ``manifest.transcript``, joined on ``utt_id``; overall and per session.

    Returns ``{"overall": {...}, "per_session": {"1": {...}, ...}}`` (session keys are strings so the
    dict survives a JSON round trip); each block has the keys of :data:`GROUP_KEYS`. ``wer`` is None
    when the block has no reference words. ``empty_hypotheses`` counts scored utterances whose
    hypothesis normalises to nothing.
    """
    normalize = normalizer or english_normalizer()
    scored = _pair(manifest, asr, normalize)
    per_session = {str(session): _block(rows) for session, rows in scored.groupby("session", sort=True)}
    return {"overall": _block(scored), "per_session": per_session}


def _pair(manifest: pd.DataFrame, asr: pd.DataFrame, normalize: Callable[[str], str]) -> pd.DataFrame:
    """One row per manifest utterance: session, normalised reference and hypothesis (None when missing)."""
    if asr["utt_id"].duplicated().any():
        raise ValueError("the ASR table has duplicate utt_id values")
    gold = manifest.loc[:, ["utt_id", "session", "transcript"]]
    hyp = asr.loc[:, ["utt_id", "text"]]
    joined = gold.merge(hyp, on="utt_id", how="left", validate="one_to_one")
    texts = joined["text"].to_numpy(dtype=object)
    transcripts = joined["transcript"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "session": joined["session"].to_numpy(),
            "reference": [normalize(str(t)) if isinstance(t, str) else "" for t in transcripts],
            "hypothesis": [normalize(t) if isinstance(t, str) else None for t in texts],
        }
    )


def _block(rows: pd.DataFrame) -> dict[str, Any]:
    """Counts and corpus-level WER for a group of utterances."""
    present = rows[rows["hypothesis"].notna()]
    missing = len(rows) - len(present)
    empty_ref = present["reference"].str.split().str.len().fillna(0) == 0
    scorable = present[~empty_ref]
    counts = _edit_counts(list(scorable["reference"]), list(scorable["hypothesis"]))
    errors = counts["substitutions"] + counts["deletions"] + counts["insertions"]
    n_ref = counts["hits"] + counts["substitutions"] + counts["deletions"]
    return {
        "wer": errors / n_ref if n_ref else None,
        "reference_words": n_ref,
        **counts,
        "utterances": len(scorable),
        "empty_hypotheses": int((scorable["hypothesis"].str.split().str.len() == 0).sum()),
        "empty_references": int(empty_ref.sum()),
        "empty_reference_insertions": int(present.loc[empty_ref, "hypothesis"].str.split().str.len().sum()),
        "missing": missing,
    }


def _edit_counts(references: list[str], hypotheses: list[str]) -> dict[str, int]:
    """Summed word-level hits, substitutions, deletions and insertions (jiwer's Levenshtein alignment)."""
    if not references:
        return {"hits": 0, "substitutions": 0, "deletions": 0, "insertions": 0}
    out = jiwer.process_words(references, hypotheses)
    return {
        "hits": int(out.hits),
        "substitutions": int(out.substitutions),
        "deletions": int(out.deletions),
        "insertions": int(out.insertions),
    }
