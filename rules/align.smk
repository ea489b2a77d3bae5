# Forced alignment to word and phone timestamps, on the gold or the ASR text:
#   data/{corpus}/align/{align_backend}-{text_source}/words.parquet, phones.parquet,
#   failures.tsv, oovs.tsv, summary.json, textgrids/<speaker>/<utt>.TextGrid (as MFA writes them)
# and the MFA-layout corpus view the aligner reads (symlinks to the audio, .lab files).


rule align:
    input:
        unpack(align_inputs),
    output:
        words="data/{corpus}/align/{align_backend}-{text_source}/words.parquet",
        phones="data/{corpus}/align/{align_backend}-{text_source}/phones.parquet",
        failures="data/{corpus}/align/{align_backend}-{text_source}/failures.tsv",
        oovs="data/{corpus}/align/{align_backend}-{text_source}/oovs.tsv",
        summary="data/{corpus}/align/{align_backend}-{text_source}/summary.json",
        textgrids=directory("data/{corpus}/align/{align_backend}-{text_source}/textgrids"),
        corpus_view=directory("data/{corpus}/align/{align_backend}-{text_source}/corpus"),
    params:
        code=code_of("align.py"),  # a change to the code it runs reruns it
        options=align_options,
    log:
        "logs/{corpus}/align/{align_backend}-{text_source}.log",
    benchmark:
        "logs/{corpus}/align/{align_backend}-{text_source}.benchmark.tsv"
    threads: 16
    resources:
        mem_mb=8000,
    conda:
        "../envs/align.yaml"
    script:
        "../workflow_scripts/align.py"
