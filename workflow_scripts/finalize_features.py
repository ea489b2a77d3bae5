"""Snakemake adapter: merge a sharded store's parts and write its index and manifest (rule finalize_features)."""

import logging
from pathlib import Path

from serflow.features.jobs.finalize import finalize_store
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
plan = Plan.from_params(snakemake.params.plan)
inputs = {k: Path(getattr(snakemake.input, k)) for k in ("manifest", "words") if hasattr(snakemake.input, k)}
manifest = finalize_store(Path(snakemake.output.manifest).parent, plan, snakemake.params.shards, inputs)
logging.getLogger("finalize_features").info("%s %s: %s", plan.feature, plan.version, manifest["meta"]["counts"])
