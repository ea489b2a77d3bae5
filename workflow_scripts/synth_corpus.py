"""Snakemake adapter: synthesise a demo corpus in IEMOCAP's or TESS's layout (rule synth_corpus)."""

import logging
from pathlib import Path

from serflow.logs import log_to_file

if __name__ == "__main__":  # the synthesisers' worker processes are spawned and re-import this file
    log_to_file(snakemake.log[0])
    spec = snakemake.params.synth  # serflow.corpora.settings.synth_settings: the layout's keys, defaults filled in
    if spec.get("layout") == "tess":
        from serflow.corpora.synth.tess import synthesize_tess

        summary = synthesize_tess(
            Path(snakemake.output[0]),
            words=spec["words"],
            seed=spec["seed"],
            nested_copy=spec["nested_copy"],
            jobs=snakemake.threads,
        )
    else:
        from serflow.corpora.synth.corpus import synthesize_corpus

        summary = synthesize_corpus(
            Path(snakemake.output[0]),
            utterances=spec["utterances"],
            seed=spec["seed"],
            preset=spec.get("preset", "moderate"),
            jobs=snakemake.threads,
            sessions=spec.get("sessions", 5),  # IEMOCAP's five unless the corpus says fewer (synth.sessions)
        )
    logging.getLogger("synth_corpus").info("%s", summary)
