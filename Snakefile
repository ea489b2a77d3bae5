# serflow: corpus -> manifest and folds -> Whisper ASR -> forced alignment -> features -> training and evaluation.
# Run `snakemake --cores 2` for the demo corpus; see README.md for real corpora and the config reference.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/common_train.smk"
include: "rules/common_report.smk"
include: "rules/corpus.smk"
include: "rules/asr.smk"
include: "rules/align.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/report.smk"


rule all:
    input:
        default_targets() + report_targets(),
    default_target: True
