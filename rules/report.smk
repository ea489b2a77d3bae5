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
# report_targets() lists them for every synthetic corpus (rule all); for another corpus, ask for its
# runtime.tsv, which needs everything else: snakemake results/report/iemocap/runtime.tsv.

report: "../report/workflow.rst"


REPORT = "results/report/{corpus}"
PAPER_FIGURES = str(Path(workflow.basedir) / "serflow" / "report" / "paper_figures.yaml")  # also from --directory elsewhere
# The test behind the summary's * and † (docs/results.md, "Significance"): "student" (the CNN14 paper's) or "welch".
SIGNIFICANCE = {"test": "student", "alpha": 0.05}
# The comparison's paired t-tests against the best model (docs/comparison.md): alpha, and "holm" or "none".
COMPARISON = {"alpha": 0.05, "correction": "holm"}


def corpus_runs(corpus):
    """The runs of the corpus's models: ``cnn14`` (categorical), ``cnn14@vad`` (a dimensional task), ..."""
    return [Path(path).stem.removeprefix(f"{corpus}_") for path in model_results(corpus)]


def corpus_report_targets(corpus):
    """Every report file of one corpus (none for a corpus that trains no model)."""
    runs = corpus_runs(corpus)
    if not runs:
        return []
    folder = REPORT.format(corpus=corpus)
    figures = ("scores", "folds", "dimensions", "asr_wer", "alignment", "runtime")
    # the comparison of the categorical runs (rule comparison), where there are any
    compared = any("@" not in run for run in runs)
    comparison = [f"results/{corpus}_comparison.{ext}" for ext in ("md", "csv", "json")]
    comparison += [f"{folder}/comparison.html", f"{folder}/plots/comparison.png"]
    return [
        f"results/{corpus}_summary.md",
        f"results/{corpus}_summary.csv",
        f"results/{corpus}_dimensions.csv",
        f"results/{corpus}_significance.json",
        *(comparison if compared else []),
        f"{folder}/summary.html",
        f"{folder}/folds.csv",
        f"{folder}/frontend.json",
        f"{folder}/runtime.tsv",
        *(f"{folder}/plots/{name}.png" for name in figures),
        # a categorical run's confusion matrix, a dimensional run's scatter of predicted against true values
        *(f"{folder}/plots/{'scatter' if '@' in run else 'confusion'}_{run}.png" for run in runs),
        *(f"{folder}/plots/curves_{run}.png" for run in runs),
        *(f"{folder}/plots/tsne_{run}.png" for run in runs if has_representations(run)),
        *(f"{folder}/dvc/{run}_{kind}" for run in runs for kind in ("history.tsv", "predictions.csv")),
    ]


def has_representations(run):
    """Whether the run's fold jobs store test-set representations (the t-SNE figures: MultiModal-ER)."""
    from serflow.report.tsne import REPRESENTATION_FAMILIES

    return "@" not in run and model_spec(run).family in REPRESENTATION_FAMILIES


def tsne_inputs(wildcards):
    """The run's results and every fold's checkpoints folder (its representations files)."""
    from serflow.train.tasks import split_protocol

    protocol = run_protocol(wildcards.corpus, wildcards.model)
    prefix = f"models/{wildcards.corpus}/{split_protocol(wildcards.model)[0]}/{protocol}/fold"
    return {
        "results": f"results/{wildcards.corpus}_{wildcards.model}.json",
        "checkpoints": [f"{prefix}{k}/checkpoints" for k in fold_numbers(wildcards.corpus, protocol)],
    }


def report_targets():
    """The report of every synthetic corpus (what rule all builds, beside demo_targets())."""
    return [target for corpus in synthetic_corpora() for target in corpus_report_targets(corpus)]


def frontend_alignments(corpus):
    """{name: summary.json} of the alignments the report shows: the configured backend on both texts."""
    return {
        f"{ALIGN['backend']}-{source}": f"data/{corpus}/align/{ALIGN['backend']}-{source}/summary.json"
        for source in ("gold", "asr")
    }


def frontend_inputs(wildcards):
    corpus = wildcards.corpus
    alignments = frontend_alignments(corpus)
    return {
        "manifest": f"data/{corpus}/manifest.parquet",
        "folds": f"data/{corpus}/folds.parquet",
        "wer": configured_asr(corpus).removesuffix(".parquet") + ".wer.json",
        "alignments": list(alignments.values()),
        "stores": corpus_stores(corpus),  # those its models read (every configured one where it trains none)
    }


def report_model_inputs(wildcards):
    """The model's results and, from every fold, its training history and test predictions."""
    from serflow.train.tasks import split_protocol

    protocol = run_protocol(wildcards.corpus, wildcards.model)
    prefix = f"models/{wildcards.corpus}/{split_protocol(wildcards.model)[0]}/{protocol}/fold"
    folds = fold_numbers(wildcards.corpus, protocol)
    return {
        "results": f"results/{wildcards.corpus}_{wildcards.model}.json",
        "histories": [f"{prefix}{k}/history.tsv" for k in folds],
        "predictions": [f"{prefix}{k}/predictions.parquet" for k in folds],
    }


def comparison_inputs(wildcards):
    """The corpus's categorical results (the dimensional runs have the summary's table) and, from every fold of
    each, the test predictions it is scored from and the run.json its training time comes from; the ASR's WER."""
    from serflow.train.tasks import split_protocol

    corpus = wildcards.corpus
    runs = [run for run in corpus_runs(corpus) if "@" not in run]
    folders = []
    for run in runs:
        protocol = run_protocol(corpus, run)
        folders += [f"models/{corpus}/{split_protocol(run)[0]}/{protocol}/fold{k}" for k in fold_numbers(corpus, protocol)]
    return {
        "results": [f"results/{corpus}_{run}.json" for run in runs],
        "predictions": [f"{folder}/predictions.parquet" for folder in folders],
        "runs": [f"{folder}/run.json" for folder in folders],
        "wer": configured_asr(corpus).removesuffix(".parquet") + ".wer.json",
        "figures": PAPER_FIGURES,
    }


def report_runtime_inputs(wildcards):
    """Every other report file of the corpus, so that the runtime table comes last and sees all jobs."""
    own = {f"{REPORT.format(corpus=wildcards.corpus)}/{name}" for name in ("runtime.tsv", "plots/runtime.png")}
    return [t for t in corpus_report_targets(wildcards.corpus) if t not in own]


def significance_references(corpus):
    """{family: its reference models} of the corpus's models' families: a param, because the catalogue is left
    out of code identities (serflow.provenance.CATALOGUES), so a changed reference list reruns the summary."""
    from serflow.report.significance import family_references

    families = {model_spec(model).family for model in TRAIN[corpus].models}
    return {family: list(refs) for family, refs in sorted(family_references().items()) if family in families}


def benchmark_patterns(wildcards):
    """{rule: benchmark pattern} of every rule (wildcard constraints included), to name each benchmark file."""
    return {rule.name: str(rule.benchmark) for rule in workflow.rules if rule.benchmark}


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
        store_names=configured_features(),
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
