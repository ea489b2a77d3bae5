"""Snakemake adapter: wall time and peak memory per rule from the benchmark: files (rule report_runtime)."""

import logging
from pathlib import Path

from serflow.io import write_text
from serflow.logs import log_to_file
from serflow.report.plots import plot_runtime
from serflow.report.summary import benchmark_table, match_benchmarks

log_to_file(snakemake.log[0])
corpus = snakemake.wildcards.corpus
files = [str(p) for p in Path("logs").rglob("*.benchmark.tsv")]
by_rule = match_benchmarks(files, snakemake.params.patterns, corpus)
table = benchmark_table(by_rule)
write_text(table.to_csv(sep="\t", index=False, float_format="%.3f"), snakemake.output.table)
plot_runtime(table, snakemake.output.plot, f"{corpus}: runtime per rule (benchmark: files)")
logging.getLogger("report_runtime").info("%d benchmark files of %d rules", sum(map(len, by_rule.values())), len(table))
