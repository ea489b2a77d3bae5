"""Snakemake adapter: one shard of an acoustic feature store (rule acoustic_shard)."""

import logging
from pathlib import Path

import torch

from serflow.features.build import acoustic_shard
from serflow.features.plan import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
plan = Plan(**snakemake.params.plan)
shard = int(snakemake.wildcards.shard)
counts = acoustic_shard(
    Path(snakemake.input.manifest), plan, shard, snakemake.params.shards, Path(snakemake.output.shard).parent
)
logging.getLogger("extract_acoustic").info("%s shard %d: %s", plan.feature, shard, counts)
