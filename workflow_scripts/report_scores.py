"""Snakemake adapter: the summary table beside the papers' figures, and the score figures (rule report_scores)."""

import logging

from serflow.io import write_text
from serflow.logs import log_to_file
from serflow.report.plots import plot_folds, plot_scores
from serflow.report.summary import (
    FOLD_COLUMNS,
    comparable,
    fold_rows,
    load_paper_figures,
    read_json,
    rows_csv,
    summary_csv,
    summary_html,
    summary_markdown,
    summary_rows,
)

log_to_file(snakemake.log[0])
spec = snakemake.params.corpus_spec
corpus = snakemake.wildcards.corpus
results = [read_json(path) for path in snakemake.input.results]
figures = load_paper_figures(snakemake.input.figures)
rows = summary_rows(results, figures)
folds = fold_rows(results)
write_text(summary_markdown(rows, results, spec, figures), snakemake.output.markdown)
write_text(summary_csv(rows), snakemake.output.csv)
write_text(summary_html(rows, folds, results, spec, figures), snakemake.output.html)
write_text(rows_csv(folds, FOLD_COLUMNS), snakemake.output.folds)
n_classes = len(results[0]["labels"])
same_data = {r["model"]: comparable(spec, figures["sources"][figures["models"][r["model"]]["source"]])
             for r in results if r["model"] in figures["models"]}  # fmt: skip
plot_scores(
    rows,
    folds,
    snakemake.output.scores,
    f"{corpus}: WA and UA per model ({results[0]['protocol']}, {results[0]['n_folds']} folds)",
    n_classes,
    show_paper=bool(same_data) and all(same_data.values()),
)
plot_folds(folds, snakemake.output.folds_plot, f"{corpus}: scores per test fold", n_classes)
logging.getLogger("report_scores").info("%d models summarised", len(rows))
