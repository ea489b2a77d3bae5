"""Snakemake adapter: word error rate of the ASR text against the gold transcripts (rule asr_wer)."""

import logging

import pandas as pd

from serflow.asr.wer import word_error_rates
from serflow.io import write_json
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
wer = word_error_rates(pd.read_parquet(snakemake.input.manifest), pd.read_parquet(snakemake.input.asr))
write_json(wer, snakemake.output[0])
logging.getLogger("asr_wer").info("WER %s", wer)
