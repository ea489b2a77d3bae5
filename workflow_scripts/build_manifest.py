"""Snakemake adapter: read a corpus into data/{corpus}/manifest.parquet (rule manifest)."""

from serflow.corpora.manifest import LabelMap, write_manifest
from serflow.corpora.readers import read_corpus
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
result = read_corpus(p.format, snakemake.input.root, labels=p.labels, merge=p.merge, strict=p.strict)
write_manifest(result, LabelMap.of(p.labels, p.merge), p.format, snakemake.output.manifest, snakemake.output.issues)
