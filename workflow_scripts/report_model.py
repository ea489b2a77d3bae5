"""Snakemake adapter: one model's confusion matrix, training curves and `dvc plots` data (rule report_model)."""

import logging

from serflow.io import write_text
from serflow.logs import log_to_file
from serflow.report.plots import plot_confusion, plot_curves
from serflow.report.summary import mean_history, prediction_pairs, read_histories, read_json

log_to_file(snakemake.log[0])
results = read_json(snakemake.input.results)
name = f"{results['corpus']}: {results['model']}"
seeds = len(results["seeds"])
plot_confusion(
    results["confusion"],
    results["labels"],
    snakemake.output.confusion,
    f"{name}, {results['n_folds']} folds"
    + (f" x {seeds} seeds" if seeds > 1 else "")
    + f"\nWA {results['pooled']['wa']:.3f}, UA {results['pooled']['ua']:.3f} (pooled)",
)
history = read_histories(snakemake.input.histories)
plot_curves(history, snakemake.output.curves, f"{name}: training curves per fold")
write_text(mean_history(history).to_csv(sep="\t", index=False, float_format="%.6g"), snakemake.output.history)
pairs = prediction_pairs(snakemake.input.predictions)
write_text(pairs.to_csv(index=False), snakemake.output.predictions)
logging.getLogger("report_model").info("%s: %d history rows, %d predictions", name, len(history), len(pairs))
