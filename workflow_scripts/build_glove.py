"""Snakemake adapter: the whole GloVe store of a corpus (rule glove)."""

import logging
from pathlib import Path

from serflow.features.jobs.glove import glove_store
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
plan = Plan.from_params(snakemake.params.plan)
root = Path(snakemake.output.manifest).parents[2]  # features/{corpus}
meta = glove_store(
    Path(snakemake.input.manifest), Path(snakemake.input.words), Path(snakemake.input.failures), plan, root
)
oov_rate = meta["oov"]["oov_rate"]
logging.getLogger("build_glove").info("glove %s: %s; OOV rate %.4f", plan.version, meta["counts"], oov_rate)
