"""Snakemake adapter: the whole word-id store of a corpus (rule word_ids)."""

import logging
from pathlib import Path

from serflow.features.jobs.word_ids import word_ids_store
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
plan = Plan.from_params(snakemake.params.plan)
root = Path(snakemake.output.manifest).parents[2]  # features/{corpus}
meta = word_ids_store(
    Path(snakemake.input.manifest), Path(snakemake.input.words), Path(snakemake.input.failures), plan, root
)
logging.getLogger("build_word_ids").info("word_ids %s: %s", plan.version, meta["counts"])
