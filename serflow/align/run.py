"""Alignment as the workflow and the CLI run it: choose the text, run a backend, account for everything.

Every utterance handed in comes out either aligned or listed as a failure with its reason, so
``len(items) + pre-failures == aligned + failures`` always reconciles (checked here).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serflow.align.types import AlignItem, AlignResult, Failure

log = logging.getLogger(__name__)

BACKENDS = ("kaldi", "mfa", "iemocap")


@dataclass(frozen=True)
class AlignOptions:
    """Backend settings from the config's ``align`` section."""

    jobs: int = 1
    seed: int = 0
    mfa_bin: str = "mfa"
    mfa_dictionary: str = "english_us_arpa"
    mfa_acoustic_model: str | None = "english_us_arpa"
    iemocap_root: Path | None = None
    iemocap_fallback: str = "kaldi"
    work_dir: Path = field(default_factory=lambda: Path("align_work"))
    progress: bool = False


def alignment_items(manifest: pd.DataFrame, asr: pd.DataFrame | None = None) -> tuple[list[AlignItem], list[Failure]]:
    """Items to align from the manifest, with the gold transcript or (``asr`` given) Whisper's text.

    An utterance with no ASR row (its transcription failed) is a failure here, with the reason.
    """
    rows = manifest.sort_values("utt_id", kind="stable")
    if asr is None:
        texts = dict(zip(rows["utt_id"], rows["transcript"], strict=True))
    else:
        texts = dict(zip(asr["utt_id"], asr["text"], strict=True))
    items, failures = [], []
    for utt_id, speaker, wav in zip(rows["utt_id"], rows["speaker"], rows["audio_path"], strict=True):
        text = texts.get(utt_id)
        if text is None:
            failures.append(Failure(utt_id, "no ASR transcript (see the ASR failures list)"))
            continue
        items.append(AlignItem(utt_id=utt_id, speaker=speaker, wav=Path(wav), text=str(text)))
    return items, failures


def align(backend: str, items: list[AlignItem], options: AlignOptions) -> AlignResult:
    """Run ``backend`` on ``items``; the result names every item exactly once."""
    result = _runner(backend, options)(items)
    _check_accounting(items, result)
    return result


def _runner(backend: str, options: AlignOptions) -> Callable[[list[AlignItem]], AlignResult]:
    if backend == "kaldi":
        from serflow.align.kaldi import align_corpus

        return lambda items: align_corpus(items, jobs=options.jobs, seed=options.seed, progress=options.progress)
    if backend == "mfa":
        from serflow.align.mfa_backend import align_with_mfa

        return lambda items: align_with_mfa(
            items,
            options.work_dir,
            dictionary=options.mfa_dictionary,
            acoustic_model=options.mfa_acoustic_model,
            jobs=options.jobs,
            mfa_bin=options.mfa_bin,
        )
    if backend == "iemocap":
        from serflow.align.iemocap_backend import align_from_iemocap

        if options.iemocap_root is None:
            raise ValueError("the iemocap alignment backend needs the corpus root (IEMOCAP_full_release)")
        fallback = None if options.iemocap_fallback == "none" else _runner(options.iemocap_fallback, options)
        return lambda items: align_from_iemocap(items, options.iemocap_root, fallback=fallback)
    raise ValueError(f"unknown alignment backend {backend!r}; known: {', '.join(BACKENDS)}")


def _check_accounting(items: list[AlignItem], result: AlignResult) -> None:
    wanted = {item.utt_id for item in items}
    aligned = [a.utt_id for a in result.alignments]
    failed = [f.utt_id for f in result.failures]
    seen = aligned + failed
    missing = wanted - set(seen)
    extra = set(seen) - wanted
    duplicated = {u for u, n in Counter(seen).items() if n > 1}
    if missing or extra or duplicated:
        raise RuntimeError(
            f"alignment backend lost track of utterances: {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} unexpected, {len(duplicated)} reported twice"
        )
    log.info("%d utterances: %d aligned, %d failed", len(items), len(aligned), len(failed))
