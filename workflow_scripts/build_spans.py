"""Snakemake adapter: word -> phone -> frame spans over an acoustic store (rule spans)."""

import logging
from pathlib import Path

from serflow.features.jobs.spans import spans_store
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
plan = Plan.from_params(snakemake.params.plan)
root = Path(snakemake.output.manifest).parents[2]  # features/{corpus}
meta = spans_store(
    Path(snakemake.input.manifest),
    Path(snakemake.input.words),
    Path(snakemake.input.phones),
    Path(snakemake.input.failures),
    Path(snakemake.input.frames).parent,
    plan,
    snakemake.params.frame_params,
    root,
)
logging.getLogger("build_spans").info("%s %s: %s", plan.feature, plan.version, meta["counts"])
