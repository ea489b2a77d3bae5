# Corpora: synthesise a demo corpus (IEMOCAP or TESS layout), read any corpus into a manifest, make folds.


rule synth_corpus:
    output:
        directory("data/{corpus}/corpus"),
    params:
        code=code_of("synth_corpus.py"),  # a change to the code it runs reruns it
        synth=lambda wc: SYNTH[wc.corpus],  # the layout's settings, defaults filled in (serflow/corpora/settings.py)
    log:
        "logs/{corpus}/synth_corpus.log",
    benchmark:
        "logs/{corpus}/synth_corpus.benchmark.tsv"
    threads: 2
    resources:
        mem_mb=2000,
    conda:
        "../envs/corpus.yaml"
    script:
        "../workflow_scripts/synth_corpus.py"


rule manifest:
    input:
        root=corpus_root,
    output:
        manifest="data/{corpus}/manifest.parquet",
        issues="data/{corpus}/manifest_issues.tsv",
    params:
        code=code_of("build_manifest.py"),  # a change to the code it runs reruns it
        format=lambda wc: corpus_spec(wc.corpus)["format"],
        labels=lambda wc: corpus_spec(wc.corpus)["labels"],
        merge=lambda wc: corpus_spec(wc.corpus).get("merge", {}),
        strict=lambda wc: corpus_spec(wc.corpus).get("strict", False),
    log:
        "logs/{corpus}/manifest.log",
    benchmark:
        "logs/{corpus}/manifest.benchmark.tsv"
    resources:
        mem_mb=2000,
    conda:
        "../envs/corpus.yaml"
    script:
        "../workflow_scripts/build_manifest.py"


rule folds:
    input:
        manifest="data/{corpus}/manifest.parquet",
    output:
        folds="data/{corpus}/folds.parquet",
        summary="data/{corpus}/folds_summary.tsv",
    params:
        code=code_of("make_folds.py"),  # a change to the code it runs reruns it
        protocols=config["folds"]["protocols"],
        seed=config["folds"]["seed"],
        validation_fraction=config["folds"]["validation_fraction"],
        random_split=RANDOM_SPLIT,
    log:
        "logs/{corpus}/folds.log",
    benchmark:
        "logs/{corpus}/folds.benchmark.tsv"
    resources:
        mem_mb=1000,
    conda:
        "../envs/corpus.yaml"
    script:
        "../workflow_scripts/make_folds.py"
