"""Snakemake adapter: rewrite an offline CTranslate2 Whisper (a package's or an assembled folder) as an openai-whisper
checkpoint (rule convert_whisper)."""

from pathlib import Path

from serflow.asr.convert import convert_ct2_to_openai
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
if snakemake.params.ct2_dir is None:
    raise SystemExit(f"no offline CTranslate2 model for {snakemake.wildcards.asr_model}: set asr.model_path")
convert_ct2_to_openai(Path(snakemake.params.ct2_dir), Path(snakemake.output[0]))
