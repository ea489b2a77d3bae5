"""Snakemake adapter: the speech front-end's counts and figures (rule report_frontend)."""

import logging

import pandas as pd

from serflow.io import write_json
from serflow.logs import log_to_file
from serflow.report.plots import plot_alignment, plot_wer
from serflow.report.summary import frontend_summary, read_json

log_to_file(snakemake.log[0])
corpus = snakemake.wildcards.corpus
wer = read_json(snakemake.input.wer)
summary = frontend_summary(
    corpus,
    pd.read_parquet(snakemake.input.manifest, columns=["utt_id", "session", "speaker", "label"]),
    wer,
    snakemake.params.asr_name,
    dict(zip(snakemake.params.alignment_names, map(read_json, snakemake.input.alignments), strict=True)),
    dict(zip(snakemake.params.store_names, map(read_json, snakemake.input.stores), strict=True)),
)
write_json(summary, snakemake.output.summary)
plot_wer(wer, snakemake.output.wer, f"{corpus}: word error rate of {snakemake.params.asr_name} per session")
plot_alignment(summary["align"], snakemake.output.alignment, f"{corpus}: forced alignment")
logging.getLogger("report_frontend").info(
    "WER %.4f; alignments %s", summary["asr"]["wer"],
    {name: (a["aligned"], a["failed"]) for name, a in summary["align"].items()},
)  # fmt: skip
