"""Logging set-up shared by the CLI and the workflow scripts."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | Path, level: int = logging.INFO) -> None:
    """Send logging and stray stderr output of a workflow job to its ``log:`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the job
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=level, format=FORMAT, force=True)
    if os.environ.get("SLURM_JOB_ID"):  # run by a cluster executor: name the job beside its outputs
        stream.write(f"SLURM_JOB_ID={os.environ['SLURM_JOB_ID']}\n")
