"""Snakemake adapter: t-SNE maps of a model's test-set representations, one row per fold (rule report_tsne)."""

import logging

from serflow.logs import log_to_file
from serflow.report.summary import read_json
from serflow.report.tsne import plot_tsne, representation_file

log_to_file(snakemake.log[0])
results = read_json(snakemake.input.results)
folds = [
    (str(fold["test_group"]), representation_file(folder))
    for fold, folder in zip(results["folds"], snakemake.input.checkpoints, strict=True)
]
drawn = plot_tsne(
    folds,
    results["labels"],
    snakemake.output.tsne,
    f"{results['corpus']}: {results['model']} ({results['protocol']}), t-SNE of the test set",
)
logging.getLogger("report_tsne").info("%s: %s", snakemake.output.tsne, drawn)
