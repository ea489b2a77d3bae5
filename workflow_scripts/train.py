"""Snakemake adapter: train one model on one fold of one protocol, every configured seed (rule train)."""

import time
from pathlib import Path

from serflow.logs import console, log_to_file
from serflow.train.config import TrainSettings
from serflow.train.run import FoldJob, FoldOutputs, fold_line, fold_settings, train_fold
from serflow.train.tasks import split_text

started = time.perf_counter()
log_to_file(snakemake.log[0])
p, wc, out = snakemake.params, snakemake.wildcards, snakemake.output
stores = {
    name.removeprefix("store_"): Path(path).parent
    for name, path in snakemake.input.items()
    if name.startswith("store_")
}
job = FoldJob(
    corpus=wc.corpus,
    model=split_text(wc.model)[0],  # bert+asr is model bert on text_source asr
    protocol=wc.protocol,
    fold=int(wc.fold),
    classes=tuple(p.labels),
    stores=stores,
    manifest=Path(snakemake.input.manifest),
    folds=Path(snakemake.input.folds),
    train=TrainSettings.from_config(p.train),  # threads included: the computation's, not the scheduler's
    family_config=p.family,
    reduced=p.reduced,
    task=p.task,
    scale=tuple(p.scale) if p.scale else None,
    text_source=p.text_source,  # the run's: its +{source} suffix, else the corpus's own
    label_merge=p.merge,
    # recorded, not a rerun trigger: the folds file they drew is one of the job's inputs (and hashed in its identity)
    fold_settings=fold_settings(snakemake.config.get("folds"), wc.protocol),
)
outputs = FoldOutputs(
    metrics=Path(out.metrics),
    predictions=Path(out.predictions),
    history=Path(out.history),
    run=Path(out.run),
    checkpoints=Path(out.checkpoints),
)
record = train_fold(job, outputs)
console(fold_line(wc.corpus, wc.model, record, time.perf_counter() - started))  # one line per fold on the terminal
