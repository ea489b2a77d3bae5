"""Snakemake adapter: merge the ASR shards of a corpus into one Parquet file and one failures list."""

from pathlib import Path

import pandas as pd

from serflow.asr.run import merge_shards
from serflow.io import write_text
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
merge_shards([Path(p) for p in snakemake.input.asr], Path(snakemake.output.asr))
failures = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input.failures], ignore_index=True)
write_text(failures.sort_values("utt_id").to_csv(sep="\t", index=False, lineterminator="\n"), snakemake.output.failures)
