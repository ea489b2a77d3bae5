"""Snakemake adapter: the whole BERT token-id store of a corpus (rule bert_tokens)."""

import logging
from pathlib import Path

from serflow.features.jobs.bert_tokens import bert_tokens_store
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
plan = Plan.from_params(snakemake.params.plan)
root = Path(snakemake.output.manifest).parents[2]  # features/{corpus}
meta = bert_tokens_store(
    Path(snakemake.input.manifest), Path(snakemake.input.words), Path(snakemake.input.failures), plan, root
)
logging.getLogger("build_bert_tokens").info(
    "bert_tokens %s (%s): %s", plan.version, meta["model"]["model"], meta["counts"]
)
