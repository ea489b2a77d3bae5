"""Snakemake adapter: list one protocol's folds (checkpoint fold_index), so the evaluate rule knows them."""

import logging

import pandas as pd

from serflow.corpora.folds import fold_index
from serflow.io import write_json
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
index = fold_index(pd.read_parquet(snakemake.input.folds), snakemake.wildcards.protocol)
write_json(index, snakemake.output.index)
logging.getLogger("fold_index").info("%s: %d folds", snakemake.wildcards.protocol, len(index["folds"]))
