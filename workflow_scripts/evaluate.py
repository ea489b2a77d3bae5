"""Snakemake adapter: aggregate a model's folds into results/{corpus}_{model}.json (rule evaluate)."""

import logging

from serflow.io import write_json
from serflow.logs import console, log_to_file
from serflow.train.evaluate import compact_metrics, evaluate_model

log_to_file(snakemake.log[0])
results = evaluate_model(snakemake.input.metrics, snakemake.input.runs, snakemake.params.corpus_spec)
write_json(results, snakemake.output.results)
write_json(compact_metrics(results), snakemake.output.metrics)
headline = ("ua", "wa") if "ua" in results else ("ccc",)  # a dimensional run: the mean CCC over its dimensions
line = "{} on {} ({}, {} text, {} folds x {} seeds): {} -> {}".format(
    results["model"], results["corpus"], results["protocol"], results["text_source"], results["n_folds"],
    len(results["seeds"]),
    ", ".join(f"{key.upper()} {results[key]:.4f} +- {results[key + '_std']:.4f}" for key in headline),
    snakemake.output.results,
)  # fmt: skip
logging.getLogger("evaluate").info("%s", line)
console(line)  # the run's scores on the terminal
