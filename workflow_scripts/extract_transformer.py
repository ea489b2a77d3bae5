"""Snakemake adapter: one shard of a BERT/RoBERTa store and its per-utterance companion (rule transformer_shard)."""

import logging
from pathlib import Path

import torch

from serflow.features.jobs.transformer import transformer_shard
from serflow.features.stores import Plan
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
torch.set_num_threads(snakemake.params.threads)  # fixed by config (features.threads), not by --cores
p = snakemake.params
plan = Plan.from_params(p.plan)
shard = int(snakemake.wildcards.shard)
counts = transformer_shard(
    Path(snakemake.input.manifest),
    Path(snakemake.input.words),
    Path(snakemake.input.failures),
    plan,
    shard,
    p.shards,
    (Path(snakemake.output.words).parent, Path(snakemake.output.utts).parent),
    cache_dir=Path(p.cache_dir),
    device=p.device,
    batch_size=p.batch_size,
)
logging.getLogger("extract_transformer").info("%s shard %d: %s", plan.feature, shard, counts)
