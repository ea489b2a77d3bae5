"""Snakemake adapter: synthesise the demo corpus (rule synth_corpus)."""

import logging
from pathlib import Path

from serflow.corpora.synth.corpus import synthesize_corpus
from serflow.logs import log_to_file

if __name__ == "__main__":  # the synthesiser's worker processes are spawned and re-import this file
    log_to_file(snakemake.log[0])
    spec = snakemake.params.synth
    summary = synthesize_corpus(
        Path(snakemake.output[0]),
        utterances=spec["utterances"],
        seed=spec["seed"],
        preset=spec.get("preset", "moderate"),
        jobs=snakemake.threads,
    )
    logging.getLogger("synth_corpus").info("%s", summary)
