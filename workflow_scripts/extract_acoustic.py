"""Snakemake adapter: one shard of an acoustic feature store (rule acoustic_shard)."""

import logging
from pathlib import Path

import torch

from serflow.features.jobs.acoustic import acoustic_shard
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.params.threads)  # fixed by config (features.threads), not by --cores
plan = Plan.from_params(snakemake.params.plan)
shard = int(snakemake.wildcards.shard)
counts = acoustic_shard(
    Path(snakemake.input.manifest), plan, shard, snakemake.params.shards, Path(snakemake.output.shard).parent
)
logging.getLogger("extract_acoustic").info("%s shard %d: %s", plan.feature, shard, counts)
