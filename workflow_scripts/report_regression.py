"""Snakemake adapter: a dimensional run's scatter of predicted against true values, training curves and `dvc plots`
data (rule report_regression)."""

import logging

from serflow.io import write_text
from serflow.logs import log_to_file
from serflow.report.plots import plot_curves, plot_regression
from serflow.report.summary import mean_history, read_histories, read_json, regression_pairs

log_to_file(snakemake.log[0])
results = read_json(snakemake.input.results)
name = f"{results['corpus']}: {results['model']}"
seeds = len(results["seeds"])
pairs = regression_pairs(snakemake.input.predictions)
runs = f"{results['n_folds']} folds" + (f" x {seeds} seeds" if seeds > 1 else "")
plot_regression(pairs, snakemake.output.scatter, f"{name}, {runs} (loss: {results['task']['loss']})")
history = read_histories(snakemake.input.histories)
plot_curves(history, snakemake.output.curves, f"{name}: training curves per fold")
write_text(mean_history(history).to_csv(sep="\t", index=False, float_format="%.6g"), snakemake.output.history)
write_text(pairs.to_csv(index=False, float_format="%.6g"), snakemake.output.predictions)
logging.getLogger("report_regression").info("%s: %d history rows, %d predictions", name, len(history), len(pairs))
