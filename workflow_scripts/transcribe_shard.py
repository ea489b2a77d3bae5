"""Snakemake adapter: transcribe one shard of a corpus with Whisper (rule transcribe_shard)."""

import pandas as pd

from serflow.asr.backends import get_backend
from serflow.asr.packing import PackingSettings
from serflow.asr.run import transcribe_manifest
from serflow.io import write_parquet, write_text
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
backend = get_backend(
    snakemake.wildcards.asr_backend,
    p.model,
    device=p.device,
    compute_type=p.compute_type,
    threads=snakemake.threads,
    beam_size=p.beam_size,
    language=p.language,
)
packing = PackingSettings.from_config(p.packing)
table, failures = transcribe_manifest(pd.read_parquet(snakemake.input.manifest), backend, p.shard, p.shards, packing)
write_parquet(table, snakemake.output.asr)
write_text(failures.to_csv(sep="\t", index=False, lineterminator="\n"), snakemake.output.failures)
