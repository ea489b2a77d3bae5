"""Writing an alignment run's outputs and accounting for every utterance.

The workflow writes Parquet tables (words, phones), the failures and OOV lists, MFA-style TextGrids
and a summary whose counts reconcile: ``manifest utterances = aligned + failed``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from serflow.align.corpus_view import build_corpus_view, read_corpus_dir
from serflow.align.tables import alignment_tables, check_alignment, failures_table, oov_table, write_textgrids
from serflow.align.types import AlignItem, AlignResult, Failure, UttAlignment
from serflow.io import write_json, write_parquet, write_text

log = logging.getLogger(__name__)


def validated(result: AlignResult) -> AlignResult:
    """Move alignments that break the invariants (phones tile words, ...) to the failures, with the reason."""
    good: list[UttAlignment] = []
    failures = list(result.failures)
    for alignment in result.alignments:
        try:
            check_alignment(alignment)
        except ValueError as exc:
            failures.append(Failure(alignment.utt_id, f"invalid alignment: {exc}"))
        else:
            good.append(alignment)
    return AlignResult(good, failures, result.oovs, result.backend, result.details)


def write_alignment_outputs(
    manifest: pd.DataFrame,
    items: list[AlignItem],
    pre_failures: list[Failure],
    result_fn: Callable[[list[AlignItem]], AlignResult],
    out: Any,
    text_source: str,
) -> dict[str, Any]:
    """Build the MFA corpus view, align what it holds, write every output of the ``align`` rule."""
    view = Path(out.corpus_view)
    view_failures = build_corpus_view(items, view)
    view_items, problems = read_corpus_dir(view)
    result = validated(result_fn(view_items))
    result = AlignResult(
        result.alignments,
        sorted([*pre_failures, *view_failures, *problems, *result.failures], key=lambda f: f.utt_id),
        result.oovs,
        result.backend,
        result.details,
    )
    words, phones = alignment_tables(result)
    write_parquet(words, out.words)
    write_parquet(phones, out.phones)
    _write_tsv(failures_table(result), out.failures)
    _write_tsv(oov_table(result), out.oovs)
    write_textgrids(
        result,
        durations=dict(zip(manifest["utt_id"], manifest["duration"], strict=True)),
        speakers=dict(zip(manifest["utt_id"], manifest["speaker"], strict=True)),
        out_dir=out.textgrids,
    )
    summary = summarise(result, n_utterances=len(manifest), text_source=text_source)
    write_json(summary, out.summary)
    log.info("alignment summary: %s", {k: v for k, v in summary.items() if k != "details"})
    return summary


def summarise(result: AlignResult, n_utterances: int, text_source: str) -> dict[str, Any]:
    n_aligned, n_failed = len(result.alignments), len(result.failures)
    if n_aligned + n_failed != n_utterances:
        raise RuntimeError(f"{n_utterances} utterances but {n_aligned} aligned + {n_failed} failed")
    reasons = Counter(_reason_kind(f.reason) for f in result.failures)
    oov_how = Counter(o.how for o in result.oovs)
    return {
        "backend": result.backend,
        "text_source": text_source,
        "utterances": n_utterances,
        "aligned": n_aligned,
        "failed": n_failed,
        "failure_reasons": dict(sorted(reasons.items())),
        "words": sum(len(a.words) for a in result.alignments),
        "phones": sum(len(w.phones) for a in result.alignments for w in a.words),
        "oov_words": len({o.word for o in result.oovs}),
        "oov_occurrences": len(result.oovs),
        "oov_handling": dict(sorted(oov_how.items())),
        "details": result.details,
    }


def _reason_kind(reason: str) -> str:
    """The reason without utterance-specific numbers, for counting (e.g. 'audio too short')."""
    return reason.split(":")[0].split("(")[0].strip()


def _write_tsv(table: pa.Table, path: str | Path) -> None:
    write_text(table.to_pandas().to_csv(sep="\t", index=False, lineterminator="\n"), path)


def write_cli_outputs(result: AlignResult, items: list[AlignItem], out_dir: Path) -> str:
    """``serflow align``'s outputs: TextGrids as MFA writes them, failures.tsv and oovs.tsv; a summary line."""
    import soundfile as sf

    result = validated(result)
    wavs = {item.utt_id: item.wav for item in items}
    durations = {a.utt_id: sf.info(str(wavs[a.utt_id])).duration for a in result.alignments}
    speakers = {item.utt_id: item.speaker for item in items}
    write_textgrids(result, durations, speakers, out_dir)
    _write_tsv(failures_table(result), out_dir / "failures.tsv")
    _write_tsv(oov_table(result), out_dir / "oovs.tsv")
    return (
        f"{len(items)} utterances: {len(result.alignments)} aligned, {len(result.failures)} failed "
        f"({out_dir / 'failures.tsv'}); {len({o.word for o in result.oovs})} OOV words ({out_dir / 'oovs.tsv'}); "
        f"TextGrids in {out_dir}"
    )
