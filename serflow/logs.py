"""Logging set-up shared by the CLI and the workflow scripts."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def console(message: str) -> None:
    """One line on the terminal that started the job, also after :func:`log_to_file` (which sends stderr to the log):
    a finished fold's scores, so that `snakemake --quiet rules` (make demo) still shows how training goes."""
    stream = sys.__stderr__
    if stream is not None:
        stream.write(message.rstrip("\n") + "\n")
        stream.flush()


def log_to_file(path: str | Path, level: int = logging.INFO) -> None:
    """Send logging and stray stderr output of a workflow job to its ``log:`` file.

    A job that fails still says why on the console: the exception's message goes to the terminal (Snakemake shows
    it beside "Error in rule ..."), the full traceback to the log.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the job
    console = sys.stderr

    def report(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        traceback.print_exception(kind, exc, tb, file=stream)
        console.write(f"{kind.__name__}: {exc}\n(traceback in {path})\n")

    sys.excepthook = report
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=level, format=FORMAT, force=True)
    if os.environ.get("SLURM_JOB_ID"):  # run by a cluster executor: name the job beside its outputs
        stream.write(f"SLURM_JOB_ID={os.environ['SLURM_JOB_ID']}\n")
