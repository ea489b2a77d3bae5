"""Snakemake adapter: write data/{corpus}/folds.parquet and a per-fold class count table (rule folds)."""

import logging

import pandas as pd

from serflow.corpora.folds import fold_summary, fold_table, make_folds
from serflow.io import write_parquet, write_text
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
manifest = pd.read_parquet(snakemake.input.manifest)
folds = make_folds(
    manifest, p.protocols, seed=p.seed, validation_fraction=p.validation_fraction, random_split=p.random_split
)
write_parquet(fold_table(folds), snakemake.output.folds)
summary = fold_summary(folds, manifest)
write_text(summary.to_csv(sep="\t", index=False, lineterminator="\n"), snakemake.output.summary)
logging.getLogger("folds").info("folds per protocol and split:\n%s", summary.to_string(index=False))
