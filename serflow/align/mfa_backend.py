"""The Montreal Forced Aligner (MFA) as a backend: drive the real ``mfa`` command where it is installed.

MFA is the reference aligner, but it cannot be installed from PyPI alone (its Kaldi bindings are
conda-forge only; shared/reference/alignment.md), so this backend only runs where ``mfa`` is on the
PATH, and says how to get it where it is not. It builds MFA's corpus layout from the items (symlinks,
no copies), runs ``mfa align`` with a given acoustic model or ``mfa train`` without one, and reads the
TextGrids back.

MFA skips utterances it cannot align without failing the run, so every item that comes back without
a TextGrid is listed as a Failure, with MFA's own reason when its output folder gives one
(``unaligned.txt``, ``unalignable_files.csv``, ``alignment_analysis.csv``). Out-of-vocabulary words
come from ``utterance_oovs.txt`` or ``oovs_found*.txt``; MFA aligns them to its spoken-noise phone
``spn``, so they are recorded as ``unpronounceable``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from serflow.align.corpus_view import build_corpus_view
from serflow.align.textgrid import alignment_from_textgrid, read_textgrid
from serflow.align.types import AlignItem, AlignResult, Failure, Oov, UttAlignment

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the Montreal Forced Aligner from conda-forge: `conda install -c conda-forge montreal-forced-aligner` "
    "(see envs/ for the project's conda environments). `pip install montreal-forced-aligner` is not enough: "
    "its Kaldi bindings (kalpy) are not installable from PyPI"
)
_LOG_TAIL_LINES = 25


class MfaNotFound(RuntimeError):
    """``mfa`` is not installed (or not on the PATH)."""


class MfaError(RuntimeError):
    """``mfa`` ran and failed; the message holds the command and the end of its log."""


def mfa_status(mfa_bin: str = "mfa", timeout: float = 300) -> tuple[bool, str]:
    """Whether ``mfa`` works here, and why not (or its version): on the PATH *and* ``mfa version`` runs.

    Being on the PATH is not enough: a pip-installed MFA is found but fails on every command.
    """
    exe = shutil.which(mfa_bin)
    if exe is None:
        return False, f"`{mfa_bin}` is not on the PATH; {INSTALL_HINT}"
    try:
        proc = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`{exe} version` did not run: {exc}"
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return False, f"`{exe} version` failed (exit {proc.returncode}: {last[0]}); {INSTALL_HINT}"
    return True, proc.stdout.strip()


def mfa_available(mfa_bin: str = "mfa") -> bool:
    """True if the ``mfa`` command is installed and runs (see :func:`mfa_status` for the reason if not)."""
    return mfa_status(mfa_bin)[0]


def align_with_mfa(
    items: Iterable[AlignItem],
    work_dir: str | os.PathLike[str],
    dictionary: str,
    acoustic_model: str | None,
    jobs: int,
    mfa_bin: str = "mfa",
) -> AlignResult:
    """Align ``items`` with MFA in ``work_dir`` (``corpus/`` view, ``aligned/`` TextGrids, ``mfa.log``).

    ``dictionary`` and ``acoustic_model`` are paths or names of MFA's pretrained models
    (``english_us_arpa``). With ``acoustic_model=None`` a model is trained on the items themselves
    (``mfa train``; saved as ``work_dir/acoustic_model.zip``). Raises :class:`MfaNotFound` when ``mfa``
    is not installed and :class:`MfaError` when it fails; utterances it skips become failures.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    exe = shutil.which(mfa_bin)
    if exe is None:
        raise MfaNotFound(f"`{mfa_bin}` is not on the PATH; {INSTALL_HINT}")
    items = list(items)
    work_dir = Path(work_dir)
    corpus, aligned = work_dir / "corpus", work_dir / "aligned"
    rejected = build_corpus_view(items, corpus)
    rejected_ids = {f.utt_id for f in rejected}
    todo = [item for item in items if item.utt_id not in rejected_ids]
    command = mfa_command(exe, corpus, dictionary, acoustic_model, aligned, work_dir / "acoustic_model.zip", jobs)
    details: dict[str, object] = {"mfa_command": command, "mfa_log": str(work_dir / "mfa.log")}
    if not todo:
        return AlignResult(failures=rejected, backend="mfa", details=details)
    if aligned.exists():  # TextGrids of an earlier run must not be collected as this run's
        shutil.rmtree(aligned)
    run_mfa(command, work_dir / "mfa.log")
    result = collect_mfa_output(todo, aligned)
    result.failures[:0] = rejected
    result.details.update(details)
    return result


def mfa_command(
    exe: str,
    corpus: Path,
    dictionary: str,
    acoustic_model: str | None,
    aligned: Path,
    model_out: Path,
    jobs: int,
) -> list[str]:
    """``mfa align CORPUS DICT MODEL OUT``, or (no model) ``mfa train CORPUS DICT MODEL_OUT --output_directory OUT``.

    ``--clean`` because MFA caches a corpus by its folder name and would otherwise reuse a stale one.
    """
    common = ["--num_jobs", str(jobs), "--clean"]
    if acoustic_model is not None:
        return [exe, "align", str(corpus), dictionary, acoustic_model, str(aligned), *common]
    return [exe, "train", str(corpus), dictionary, str(model_out), "--output_directory", str(aligned), *common]


def run_mfa(command: Sequence[str], log_path: Path) -> None:
    """Run ``command`` with its output in ``log_path``; raise :class:`MfaError` with the log's end if it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("running %s", " ".join(command))
    with open(log_path, "w", encoding="utf-8") as fh:
        proc = subprocess.run(list(command), stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        hint = f"\n{INSTALL_HINT}" if any("No module named" in line for line in lines) else ""
        raise MfaError(
            f"`{' '.join(command)}` failed with exit status {proc.returncode}; the end of {log_path}:\n"
            + "\n".join(lines)
            + hint
        )


# ----------------------------------------------------------------------------------------------
# Reading MFA's output folder


def collect_mfa_output(items: Sequence[AlignItem], output_dir: str | os.PathLike[str]) -> AlignResult:
    """The alignments MFA wrote to ``output_dir`` for ``items``; every item without one is a Failure.

    A TextGrid is looked for at ``<speaker>/<utt_id>.TextGrid`` (MFA mirrors the corpus folders), then
    anywhere under ``output_dir`` by name. A TextGrid that does not parse, does not tile, or holds no
    words is a failure too, with the parser's message.
    """
    output_dir = Path(output_dir)
    by_name = _textgrids_by_name(output_dir)
    reasons = mfa_failure_reasons(output_dir)
    alignments: list[UttAlignment] = []
    failures: list[Failure] = []
    for item in items:
        outcome = _collect_one(item, output_dir, by_name, reasons)
        if isinstance(outcome, UttAlignment):
            alignments.append(outcome)
        else:
            failures.append(outcome)
    oovs = mfa_oovs(output_dir, items)
    details: dict[str, object] = {"mfa_aligned": len(alignments), "mfa_failed": len(failures)}
    return AlignResult(alignments=alignments, failures=failures, oovs=oovs, backend="mfa", details=details)


def _textgrids_by_name(output_dir: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    if output_dir.is_dir():
        for path in sorted(output_dir.rglob("*.TextGrid")):
            found.setdefault(path.stem, []).append(path)
    return found


def _collect_one(
    item: AlignItem, output_dir: Path, by_name: dict[str, list[Path]], reasons: dict[str, str]
) -> UttAlignment | Failure:
    path = output_dir / item.speaker / f"{item.utt_id}.TextGrid"
    if not path.is_file():
        candidates = by_name.get(item.utt_id, [])
        if len(candidates) != 1:
            why = reasons.get(item.utt_id, "no reason given in MFA's output folder")
            extra = f" ({len(candidates)} TextGrids with that name)" if candidates else ""
            return Failure(item.utt_id, f"MFA wrote no TextGrid{extra}: {why}")
        path = candidates[0]
    try:
        alignment = alignment_from_textgrid(item.utt_id, read_textgrid(path), path)
    except ValueError as exc:
        return Failure(item.utt_id, f"unusable MFA TextGrid: {exc}")
    if not alignment.words:
        return Failure(item.utt_id, f"MFA TextGrid has no words (only silence): {path}")
    return alignment


def mfa_failure_reasons(output_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Why MFA did not align an utterance, by utterance name, from the diagnostics in its output folder.

    Later sources override earlier ones, from the least to the most specific: ``alignment_analysis.csv``
    (an empty log-likelihood means no alignment was found), ``unalignable_files.csv``, ``unaligned.txt``.
    """
    output_dir = Path(output_dir)
    reasons: dict[str, str] = {}
    for path in _find(output_dir, "alignment_analysis.csv"):
        for row in _csv_rows(path):
            name = _utt_name(row.get("file") or row.get("File path") or "")
            if name and not (row.get("overall_log_likelihood") or "").strip():
                reasons[name] = (
                    f"no alignment found (empty log-likelihood in {path.name}): the beam may be too narrow, "
                    "or the transcript may not match the audio"
                )
    for path in _find(output_dir, "unalignable_files.csv"):
        for row in _csv_rows(path):
            name = _utt_name(row.get("file") or row.get("File path") or "")
            if name:
                duration = (row.get("duration") or "?").strip()
                reasons[name] = f"listed in {path.name} (duration {duration} s): MFA could not align it"
    for path in _find(output_dir, "unaligned.txt"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.strip().split(maxsplit=1)
            if parts:
                reasons[_utt_name(parts[0])] = parts[1] if len(parts) > 1 else f"listed in {path.name}"
    return reasons


def _find(output_dir: Path, name: str) -> list[Path]:
    return sorted(output_dir.rglob(name)) if output_dir.is_dir() else []


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:
        return [{(k or "").strip(): (v or "") for k, v in row.items()} for row in csv.DictReader(fh)]


def _utt_name(field: str) -> str:
    """MFA names utterances by file (``name``, ``name.wav`` or a path); the stem is our utt_id."""
    field = field.strip()
    return Path(field).stem if field else ""


def mfa_oovs(output_dir: str | os.PathLike[str], items: Sequence[AlignItem]) -> list[Oov]:
    """Out-of-vocabulary words from MFA's output folder, attributed to the items' utterances.

    ``utterance_oovs.txt`` (``utt word, word``) names the utterance; ``oovs_found*.txt`` (one word per
    line) does not, so each word is attributed to the items whose text contains it. One row per
    (utterance, word).
    """
    output_dir = Path(output_dir)
    wanted = {item.utt_id for item in items}
    pairs: set[tuple[str, str]] = set()
    for path in _find(output_dir, "utterance_oovs.txt"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.strip().split(maxsplit=1)
            if len(parts) == 2 and _utt_name(parts[0]) in wanted:
                pairs.update((_utt_name(parts[0]), w.strip().lower()) for w in parts[1].split(",") if w.strip())
    words: set[str] = set()
    for path in sorted(output_dir.rglob("oovs_found*.txt")) if output_dir.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                words.add(line.split()[0].lower())
    for item in items:
        pairs.update((item.utt_id, word) for word in _tokens(item.text) & words)
    return [Oov(utt, word, "unpronounceable") for utt, word in sorted(pairs)]


def _tokens(text: str) -> set[str]:
    """Words as MFA sees them, roughly: lower case, punctuation stripped, hyphenated parts added."""
    tokens: set[str] = set()
    for token in re.findall(r"[\w'’-]+", text.lower()):
        token = token.strip("'’-")
        if token:
            tokens.add(token)
            tokens.update(part for part in token.split("-") if part)
    return tokens
