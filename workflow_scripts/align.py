"""Snakemake adapter: force-align a corpus on the gold or the ASR text (rule align)."""

from pathlib import Path

import pandas as pd

from serflow.align.report import write_alignment_outputs
from serflow.align.run import AlignOptions, align, alignment_items
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params.options
out = snakemake.output
manifest = pd.read_parquet(snakemake.input.manifest)
asr = pd.read_parquet(snakemake.input.asr) if hasattr(snakemake.input, "asr") else None
items, pre_failures = alignment_items(manifest, asr)
options = AlignOptions(
    jobs=snakemake.threads,
    seed=p["seed"],
    mfa_bin=p["mfa"].get("bin", "mfa"),
    mfa_dictionary=p["mfa"].get("dictionary", "english_us_arpa"),
    mfa_acoustic_model=p["mfa"].get("acoustic_model", "english_us_arpa"),
    iemocap_root=Path(p["iemocap_root"]) if p["iemocap_root"] else None,
    iemocap_fallback=p["iemocap_fallback"],
    work_dir=Path(out.corpus_view).parent / "mfa_work",
)
write_alignment_outputs(
    manifest=manifest,
    items=items,
    pre_failures=pre_failures,
    result_fn=lambda view_items: align(p["backend"], view_items, options),
    out=out,
    text_source=snakemake.wildcards.text_source,
)
