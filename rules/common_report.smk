# The report rules' helpers (rules/report.smk): which report files each corpus gets and each rule's inputs.

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
    """The report of every default corpus (what rule all builds, beside default_targets())."""
    return [target for corpus in default_corpora() for target in corpus_report_targets(corpus)]


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


def store_labels(done_files):
    """Names of the stores in the front-end summary: the feature (``glove``), with its version where the corpus has
    two of it (``glove (5e1f0a2b3c4d)``: the gold and the ASR text's, or a family's own parameters)."""
    parts = [Path(path).parts for path in done_files]  # features/{corpus}/{feature}/{version}/manifest.json
    counts = {}
    for p in parts:
        counts[p[2]] = counts.get(p[2], 0) + 1
    return [p[2] if counts[p[2]] == 1 else f"{p[2]} ({p[3]})" for p in parts]


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
