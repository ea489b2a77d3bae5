"""Snakemake adapter: every model of the corpus on the same test utterances, with paired tests (rule comparison)."""

import logging

from serflow.io import write_text
from serflow.logs import log_to_file
from serflow.report.comparison import (
    asr_wer,
    compare,
    comparison_html,
    leaderboard_rows,
    load_entries,
    write_comparison,
)
from serflow.report.figures import load_paper_figures
from serflow.report.plots import plot_leaderboard
from serflow.report.summary import read_json

log_to_file(snakemake.log[0])
corpus = snakemake.wildcards.corpus
# the fold folders are found from each result, as the workflow lays them out; they must be this job's inputs
entries, skipped = load_entries(snakemake.input.results, "models", available=snakemake.input.predictions)
wer = asr_wer(read_json(snakemake.input.wer), snakemake.params.asr_name)
settings = snakemake.params.settings
report = compare(
    entries, load_paper_figures(snakemake.input.figures), wer, settings["alpha"], settings["correction"], skipped
)
out = snakemake.output
write_comparison(report, out.markdown, out.csv, out.json)
write_text(comparison_html(report), out.html)
plot_leaderboard(
    leaderboard_rows(report), out.plot, f"{corpus}: UA on the common test set", len(report["groups"][0]["labels"])
)
logging.getLogger("report_comparison").info(
    "%d models compared in %d protocols (common sets: %s)",
    len(entries),
    len(report["groups"]),
    ", ".join(f"{g['protocol']} {g['common']['n']}" for g in report["groups"]),
)
