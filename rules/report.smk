# Report: the tables and figures of `snakemake --report report.html` and the data of `dvc plots`
# (serflow/report; captions in report/). Per corpus:
#   results/{corpus}_summary.md, .csv                  one row per model: WA, UA, std; the papers' figures beside
#   results/{corpus}_dimensions.csv                     one row per dimensional run (model@task) and dimension: CCC, r, MSE
#   results/{corpus}_significance.json                 t-tests of each model against its family's reference models
#   results/{corpus}_comparison.md, .csv, .json          every categorical model on the same test utterances, paired
#                                                       tests against the best (docs/comparison.md)
#   results/report/{corpus}/summary.html                the same table and WA / UA per fold (shown in the report)
#   results/report/{corpus}/comparison.html             the comparison's tables (shown in the report)
#   results/report/{corpus}/folds.csv                   WA / UA / macro-F1 per model and fold
#   results/report/{corpus}/frontend.json               manifest counts, ASR WER, alignment failures, feature stores
#   results/report/{corpus}/runtime.tsv                 wall time and peak memory per rule (benchmark: files)
#   results/report/{corpus}/plots/*.png                 scores, folds, dimensions, comparison, confusion_{model},
#                                                       scatter_{model@task},
#                                                       curves_{run}, asr_wer, alignment, runtime,
#                                                       tsne_{run} (models with representations: MultiModal-ER)
#   results/report/{corpus}/dvc/{run}_history.tsv       mean training curves per epoch  } drawn by `dvc plots`
#   results/report/{corpus}/dvc/{run}_predictions.csv   actual, predicted per utterance } (dvc.yaml)
# report_targets() lists them for every synthetic corpus and every corpus with a root (rule all); else ask for its
# runtime.tsv, which needs everything else: snakemake results/report/iemocap/runtime.tsv.

report: "../report/workflow.rst"
# Helpers (targets, inputs, settings): rules/common_report.smk.


rule report_frontend:
    input:
        unpack(frontend_inputs),
    output:
        summary=f"{REPORT}/frontend.json",
        wer=report(
            f"{REPORT}/plots/asr_wer.png",
            caption="../report/asr_wer.rst",
            category="3. Speech front-end",
            labels={"corpus": "{corpus}", "figure": "ASR word error rate"},
        ),
        alignment=report(
            f"{REPORT}/plots/alignment.png",
            caption="../report/alignment.rst",
            category="3. Speech front-end",
            labels={"corpus": "{corpus}", "figure": "forced alignment failures"},
        ),
    params:
        code=code_of("report_frontend.py"),  # a change to the code it runs reruns it
        asr_name=lambda wc: asr_label(wc.corpus),
        alignment_names=lambda wc: list(frontend_alignments(wc.corpus)),
        store_names=lambda wc: store_labels(corpus_stores(wc.corpus)),
    log:
        "logs/{corpus}/report/frontend.log",
    benchmark:
        "logs/{corpus}/report/frontend.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_frontend.py"


rule report_model:
    input:
        unpack(report_model_inputs),
    output:
        confusion=report(
            f"{REPORT}/plots/confusion_{{model}}.png",
            caption="../report/confusion.rst",
            category="2. Models",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "confusion matrix"},
        ),
        curves=report(
            f"{REPORT}/plots/curves_{{model}}.png",
            caption="../report/curves.rst",
            category="2. Models",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "training curves"},
        ),
        history=f"{REPORT}/dvc/{{model}}_history.tsv",
        predictions=f"{REPORT}/dvc/{{model}}_predictions.csv",
    wildcard_constraints:
        model=CATEGORICAL_PATTERN,
    params:
        code=code_of("report_model.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/report/model_{model}.log",
    benchmark:
        "logs/{corpus}/report/model_{model}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_model.py"


rule report_tsne:
    input:
        unpack(tsne_inputs),
    output:
        tsne=report(
            f"{REPORT}/plots/tsne_{{model}}.png",
            caption="../report/tsne.rst",
            category="2. Models",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "t-SNE of the test set"},
        ),
    wildcard_constraints:
        model=CATEGORICAL_PATTERN,
    params:
        code=code_of("report_tsne.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/report/tsne_{model}.log",
    benchmark:
        "logs/{corpus}/report/tsne_{model}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_tsne.py"


rule report_regression:
    input:
        unpack(report_model_inputs),
    output:
        scatter=report(
            f"{REPORT}/plots/scatter_{{model}}.png",
            caption="../report/scatter.rst",
            category="2. Models",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "predicted against true"},
        ),
        curves=report(
            f"{REPORT}/plots/curves_{{model}}.png",
            caption="../report/curves.rst",
            category="2. Models",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "training curves"},
        ),
        history=f"{REPORT}/dvc/{{model}}_history.tsv",
        predictions=f"{REPORT}/dvc/{{model}}_predictions.csv",
    wildcard_constraints:
        model=DIMENSIONAL_PATTERN,
    params:
        code=code_of("report_regression.py"),  # a change to the code it runs reruns it
    log:
        "logs/{corpus}/report/model_{model}.log",
    benchmark:
        "logs/{corpus}/report/model_{model}.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_regression.py"


rule report_scores:
    input:
        results=lambda wc: model_results(wc.corpus),
        figures=PAPER_FIGURES,
    output:
        markdown="results/{corpus}_summary.md",
        csv="results/{corpus}_summary.csv",
        dimensions="results/{corpus}_dimensions.csv",
        significance="results/{corpus}_significance.json",
        html=report(
            f"{REPORT}/summary.html",
            caption="../report/summary.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "table: WA / UA per model and per fold"},
        ),
        folds=f"{REPORT}/folds.csv",
        scores=report(
            f"{REPORT}/plots/scores.png",
            caption="../report/scores.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "WA / UA per model"},
        ),
        folds_plot=report(
            f"{REPORT}/plots/folds.png",
            caption="../report/folds.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "WA / UA per model and test fold"},
        ),
        dimensions_plot=report(
            f"{REPORT}/plots/dimensions.png",
            caption="../report/dimensions.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "CCC per dimensional run"},
        ),
    params:
        code=code_of("report_scores.py"),  # a change to the code it runs reruns it
        corpus_spec=lambda wc: corpus_spec(wc.corpus),
        significance=SIGNIFICANCE,
        references=lambda wc: significance_references(wc.corpus),
    log:
        "logs/{corpus}/report/scores.log",
    benchmark:
        "logs/{corpus}/report/scores.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_scores.py"


rule comparison:
    input:
        unpack(comparison_inputs),
    output:
        markdown="results/{corpus}_comparison.md",
        csv="results/{corpus}_comparison.csv",
        json="results/{corpus}_comparison.json",
        html=report(
            f"{REPORT}/comparison.html",
            caption="../report/comparison.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "table: every model on the same test utterances"},
        ),
        plot=report(
            f"{REPORT}/plots/comparison.png",
            caption="../report/comparison_plot.rst",
            category="1. Scores",
            labels={"corpus": "{corpus}", "figure": "UA leaderboard on the common test set"},
        ),
    params:
        code=code_of("report_comparison.py"),  # a change to the code it runs reruns it
        asr_name=lambda wc: asr_label(wc.corpus),
        settings=COMPARISON,
    log:
        "logs/{corpus}/report/comparison.log",
    benchmark:
        "logs/{corpus}/report/comparison.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_comparison.py"


rule report_runtime:
    input:
        report_runtime_inputs,
    output:
        table=f"{REPORT}/runtime.tsv",
        plot=report(
            f"{REPORT}/plots/runtime.png",
            caption="../report/runtime.rst",
            category="4. Runtime",
            labels={"corpus": "{corpus}", "figure": "runtime per rule"},
        ),
    params:
        code=code_of("report_runtime.py"),  # a change to the code it runs reruns it
        patterns=benchmark_patterns,
    log:
        "logs/{corpus}/report/runtime.log",
    benchmark:
        "logs/{corpus}/report/runtime.benchmark.tsv"
    threads: 1
    resources:
        mem_mb=1000,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow_scripts/report_runtime.py"
