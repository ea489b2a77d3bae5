"""Snakemake adapter: the summary table beside the papers' figures, and the score figures (rule report_scores)."""

import logging

from serflow.io import write_json, write_text
from serflow.logs import log_to_file
from serflow.report.figures import comparable, load_paper_figures
from serflow.report.plots import plot_dimensions, plot_folds, plot_scores
from serflow.report.significance import reference_tests, significance_report
from serflow.report.summary import (
    DIMENSION_COLUMNS,
    FOLD_COLUMNS,
    dimension_rows,
    fold_rows,
    label_tests,
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
# every model against its family's reference models (serflow/models/catalog.py, passed as a param)
settings = snakemake.params.significance
# labelled like the rows (bert (asr) beside bert (gold) where a model has both), so each keeps its own marks
tests = label_tests(reference_tests(results, settings["alpha"], settings["test"], snakemake.params.references), results)
write_json(significance_report(tests, corpus, settings["alpha"], settings["test"]), snakemake.output.significance)
write_text(summary_markdown(rows, results, spec, figures, tests), snakemake.output.markdown)
write_text(summary_csv(rows, tests), snakemake.output.csv)
write_text(summary_html(rows, folds, results, spec, figures, tests), snakemake.output.html)
write_text(rows_csv(folds, FOLD_COLUMNS), snakemake.output.folds)
dimensions = dimension_rows(results, figures)
write_text(rows_csv(dimensions, DIMENSION_COLUMNS), snakemake.output.dimensions)
plot_dimensions(dimensions, snakemake.output.dimensions_plot, f"{corpus}: CCC per dimensional run and dimension")
n_classes = len(results[0]["labels"])
protocols = sorted({r["protocol"] for r in results})
same_data = {r["model"]: comparable(spec, figures["sources"][figures["models"][r["model"]]["source"]])
             for r in results if r["model"] in figures["models"]}  # fmt: skip
plot_scores(
    rows,
    folds,
    snakemake.output.scores,
    f"{corpus}: WA and UA per model ({', '.join(protocols)})",
    n_classes,
    show_paper=bool(same_data) and all(same_data.values()),
)
plot_folds(folds, snakemake.output.folds_plot, f"{corpus}: scores per test fold", n_classes)
logger = logging.getLogger("report_scores")
logger.info("%d models summarised, %d tests against reference models", len(rows), len(tests))
