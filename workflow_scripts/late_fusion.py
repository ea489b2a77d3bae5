"""Snakemake adapter: one fold of a late fusion, the average of its component models' outputs (rule late_fusion)."""

from pathlib import Path

from serflow.logs import log_to_file
from serflow.provenance import provenance
from serflow.train.late_fusion import fuse_fold
from serflow.train.run import FoldOutputs
from serflow.train.tasks import make_task, split_text

log_to_file(snakemake.log[0])
p, out = snakemake.params, snakemake.output
task = make_task(p.task, p.labels, tuple(p.scale) if p.scale else None)
components = {name: Path(files[0]).parent for name, files in snakemake.input.items()}
code = provenance(scripts=["late_fusion.py"])
fuse_fold(
    components,
    task,
    FoldOutputs(Path(out.metrics), Path(out.predictions), Path(out.history), Path(out.run), Path(out.checkpoints)),
    model=split_text(snakemake.wildcards.model)[0],  # lf+asr is lf on text_source asr
    text_source=p.text_source,
    code={"serflow": code["serflow"], "code_hash": code["code_hash"]},
)
