# Training and evaluation, the same for every model (serflow/train; results schema: docs/results.md):
#   models/{corpus}/{protocol}.folds.json                        the protocol's folds (a checkpoint)
#   models/{corpus}/{model}/{protocol}/fold{fold}/metrics.json    + predictions.parquet, history.tsv, run.json,
#                                                                   checkpoints/seed{s}.safetensors + .json
#   results/{corpus}_{model}.json                                 all folds and seeds of one model
#   results/{corpus}_{model}~{protocol}.json                      the same under a further protocol (train.protocols)
#   results/{corpus}_{model}+{text_source}.json                   a model that reads text, on the transcripts that are
#                                                                   not the corpus's own (train.text_sources; its folds
#                                                                   in models/{corpus}/{model}+{text_source}/)
#   results/metrics/{corpus}_{model}.json                         its numbers only (DVC's metrics)
# One job per model, protocol and fold trains every configured seed. A model reads the stores its ModelSpec
# names (features/{corpus}/{store}/{version}/, marked complete by manifest.json: common.smk's feature_done).
# The train job's params are its family's config section, so a changed WISE hyperparameter reruns the WISE
# jobs and nothing else; memory, runtime and the list of models trigger no rerun. train.threads does (it changes the
# bytes): the job computes with exactly that many threads, whatever --cores says. params.code reruns a job whose
# code changed (serflow.provenance).
# Helpers (settings, run names, inputs): rules/common_train.smk.


checkpoint fold_index:
    input:
        folds="data/{corpus}/folds.parquet",
    output:
        index="models/{corpus}/{protocol}.folds.json",
    wildcard_constraints:
        protocol=FOLD_CONSTRAINTS["protocol"],
    params:
        code=code_of("fold_index.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/train/{protocol}.folds.log",
    benchmark:
        "logs/{corpus}/train/{protocol}.folds.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/fold_index.py"


rule train:
    input:
        unpack(train_inputs),
    output:
        metrics="models/{corpus}/{model}/{protocol}/fold{fold}/metrics.json",
        predictions="models/{corpus}/{model}/{protocol}/fold{fold}/predictions.parquet",
        history="models/{corpus}/{model}/{protocol}/fold{fold}/history.tsv",
        run="models/{corpus}/{model}/{protocol}/fold{fold}/run.json",
        checkpoints=directory("models/{corpus}/{model}/{protocol}/fold{fold}/checkpoints"),
    wildcard_constraints:
        model=TRAINED_PATTERN,
        protocol=FOLD_CONSTRAINTS["protocol"],
        fold=FOLD_CONSTRAINTS["fold"],
    params:
        code=train_code,  # a change to the code it runs reruns it
        family=family_config,
        reduced=reduced_config,
        # what changes the numbers (not memory, runtime or the list of models: no rerun for those)
        train=lambda wc: model_train(wc.corpus, wc.model).for_protocol(wc.protocol).result_params(),
        labels=lambda wc: corpus_spec(wc.corpus)["labels"],
        merge=lambda wc: corpus_spec(wc.corpus).get("merge", {}),
        text_source=lambda wc: run_text_source(wc.corpus, wc.model),
        task=run_task,
        scale=lambda wc: dimension_scale(wc.corpus),
    log:
        "logs/{corpus}/train/{model}/{protocol}/fold{fold}.log",
    benchmark:
        "logs/{corpus}/train/{model}/{protocol}/fold{fold}.benchmark.tsv"
    threads: lambda wc: model_train(wc.corpus, wc.model).threads
    resources:
        gpu=1,
        mem_mb=lambda wc: model_train(wc.corpus, wc.model).mem_mb,
        runtime=lambda wc: model_train(wc.corpus, wc.model).runtime,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/train.py"


rule late_fusion:
    input:
        unpack(fusion_inputs),
    output:
        metrics="models/{corpus}/{model}/{protocol}/fold{fold}/metrics.json",
        predictions="models/{corpus}/{model}/{protocol}/fold{fold}/predictions.parquet",
        history="models/{corpus}/{model}/{protocol}/fold{fold}/history.tsv",
        run="models/{corpus}/{model}/{protocol}/fold{fold}/run.json",
        checkpoints=directory("models/{corpus}/{model}/{protocol}/fold{fold}/checkpoints"),
    wildcard_constraints:
        model=FUSED_PATTERN,
        protocol=FOLD_CONSTRAINTS["protocol"],
        fold=FOLD_CONSTRAINTS["fold"],
    params:
        code=code_of("late_fusion.py"),  # a change to the code it runs reruns it
        labels=lambda wc: corpus_spec(wc.corpus)["labels"],
        text_source=lambda wc: run_text_source(wc.corpus, wc.model),
        task=run_task,
        scale=lambda wc: dimension_scale(wc.corpus),
    log:
        "logs/{corpus}/train/{model}/{protocol}/fold{fold}.log",
    benchmark:
        "logs/{corpus}/train/{model}/{protocol}/fold{fold}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/late_fusion.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        results="results/{corpus}_{model}.json",
        metrics="results/metrics/{corpus}_{model}.json",  # its numbers only: DVC's metrics file
    wildcard_constraints:
        model=MODEL_PATTERN,
    params:
        code=code_of("evaluate.py"),  # a change to the code it runs reruns it
        corpus_spec=lambda wc: {k: v for k, v in corpus_spec(wc.corpus).items() if k in ("format", "synth")},
    log:
        "logs/{corpus}/evaluate/{model}.log",
    benchmark:
        "logs/{corpus}/evaluate/{model}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/train.yaml"
    script:
        "../workflow_scripts/evaluate.py"
