# The training rules' helpers (rules/train.smk): the checked train settings per corpus, run names and their
# patterns, each run's inputs and text source. Read rules/train.smk's header for the layout of models/ and results/.

import json
import re

from serflow.train.checks import check_training_config


def _checked_training():
    try:
        # Building every model on the meta device catches a misspelt hyperparameter now; cluster jobs re-parse
        # this file and need not pay for torch again.
        return check_training_config(config, build_models=workflow.is_main_process)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


TRAIN = _checked_training()  # per corpus: the merged train settings (checked, with the model names)


@functools.cache
def model_train(corpus, run):
    """The train settings of one run (a model, or model@task) on one corpus: its family's (models.<family>.train)
    merged in."""
    from serflow.train.checks import corpus_settings
    from serflow.train.tasks import split_run

    model = split_run(run)[0]
    components = model_spec(model).components  # a late fusion runs where its models ran
    return corpus_settings(config, corpus, components[0] if components else model)


def model_spec(run):
    """The registered model of a run name (``cnn14@vad`` is model ``cnn14`` on the task ``vad``)."""
    from serflow.models import get_spec
    from serflow.train.tasks import split_run

    return get_spec(split_run(run)[0])


def run_task(wildcards):
    from serflow.train.tasks import split_run

    return split_run(wildcards.model)[1]


def dimension_scale(corpus):
    """The corpus's scale of valence / arousal / dominance (corpora.<name>.dimensions.scale), or None."""
    return (corpus_spec(corpus).get("dimensions") or {}).get("scale")


def registered_models():
    from serflow.models import MODELS

    return sorted(MODELS)


def model_results(corpus):
    """results/{corpus}_{run}.json of every model in train.models (or the corpus's override), once per task its
    family trains (train.tasks: the categorical task ``cnn14``, a dimensional one ``cnn14@vad``), per protocol, and
    for a model that reads text once per text source (train.text_sources: ``bert`` on the corpus's own, ``bert+asr``
    on Whisper's)."""
    from serflow.train.tasks import run_name

    return [
        f"results/{corpus}_{run_name(model, task, None if k == 0 else protocol, source)}.json"
        for model in TRAIN[corpus].models
        for task in model_train(corpus, model).tasks
        for k, protocol in enumerate(model_train(corpus, model).all_protocols())
        for source in [None, *other_text_sources(corpus, model)]
    ]


def other_text_sources(corpus, model):
    """The text sources besides the corpus's own that ``model`` runs on: train.text_sources, for a model that reads
    text (serflow.models.registry.reads_transcripts); none for an audio-only one."""
    from serflow.models.registry import reads_transcripts

    if not reads_transcripts(model):
        return []
    return [source for source in model_train(corpus, model).text_sources if source != text_source_of(corpus)]


def run_text_source(corpus, run):
    """The transcripts a run reads: its +{source} suffix, else the corpus's text_source. A suffix naming the corpus's
    own source, or on a model that reads no text, is refused (one name per result)."""
    from serflow.models.registry import reads_transcripts
    from serflow.train.tasks import split_protocol, split_run, split_text

    source = split_text(split_protocol(run)[0])[1]
    if source is None:
        return text_source_of(corpus)
    model = split_run(run)[0]
    if source == text_source_of(corpus):
        raise WorkflowError(f"{corpus}_{run}: {source} is {corpus}'s own text source: its run has the plain name")
    if not reads_transcripts(model):
        raise WorkflowError(f"{corpus}_{run}: {model} reads no text, so it has no run per text source")
    return source


def store_text_source(corpus, run):
    """The text_source argument of the stores a run reads: None for the corpus's own (the default stores)."""
    source = run_text_source(corpus, run)
    return None if source == text_source_of(corpus) else source


def run_protocol(corpus, run):
    """The protocol of a run: its ~protocol suffix, else its model's main protocol (train.protocol[s])."""
    from serflow.train.tasks import split_protocol

    name, protocol = split_protocol(run)
    settings = model_train(corpus, name)
    if protocol is None:
        return settings.protocol
    if protocol not in settings.all_protocols()[1:]:
        raise WorkflowError(
            f"{corpus}_{run}: {name} is not trained under {protocol} as a further protocol "
            f"(its protocols: {', '.join(settings.all_protocols())})"
        )
    return protocol


def train_code(wildcards):
    """The train job's code identity: its script and modules, plus the model's own module and registry entry (the
    registry itself is a catalogue: registering another model must not rerun this one)."""
    from serflow.provenance import code_hash
    from serflow.train.config import fold_code

    return code_hash(*fold_code(model_spec(wildcards.model)))


def family_config(wildcards):
    """The model family's config section on this corpus (models.<family>, with corpora.<corpus>.families.<family>
    over it): the train job's rerun trigger."""
    from serflow.train.config import family_section

    return family_section(config, wildcards.corpus, model_spec(wildcards.model).family)


def reduced_config(wildcards):
    """What this corpus changes in the family's hyperparameters (recorded; the summary marks the rows)."""
    from serflow.train.config import reduced_settings

    return reduced_settings(config, wildcards.corpus, model_spec(wildcards.model).family)


def train_inputs(wildcards):
    inputs = {"manifest": f"data/{wildcards.corpus}/manifest.parquet", "folds": f"data/{wildcards.corpus}/folds.parquet"}
    own = family_config(wildcards).get("stores") or {}  # the family's own store parameters (models.<family>.stores)
    source = store_text_source(wildcards.corpus, wildcards.model)  # the stores made from the run's transcripts
    for store in model_spec(wildcards.model).features:
        overrides = json.dumps(own.get(store) or {}, sort_keys=True)
        inputs[f"store_{store}"] = feature_done(wildcards.corpus, store, overrides, source)  # {feature_dir}/manifest.json
    return inputs


def read_stores(corpus):
    """The manifest.json of every store version the corpus's runs read (a late fusion reads its components')."""
    from types import SimpleNamespace

    from serflow.train.tasks import split_protocol

    stores = {}
    for path in model_results(corpus):
        run = split_protocol(Path(path).stem.removeprefix(f"{corpus}_"))[0]
        if not model_spec(run).components:
            inputs = train_inputs(SimpleNamespace(corpus=corpus, model=run))
            stores.update({path: None for name, path in inputs.items() if name.startswith("store_")})
    return list(stores)


def fold_numbers(corpus, protocol):
    """The folds of a protocol, read from the fold index once the checkpoint has written it."""
    index = checkpoints.fold_index.get(corpus=corpus, protocol=protocol).output.index
    return [entry["fold"] for entry in json.loads(Path(index).read_text(encoding="utf-8"))["folds"]]


def evaluate_inputs(wildcards):
    from serflow.train.tasks import split_protocol

    protocol = run_protocol(wildcards.corpus, wildcards.model)
    prefix = f"models/{wildcards.corpus}/{split_protocol(wildcards.model)[0]}/{protocol}/fold"
    folds = fold_numbers(wildcards.corpus, protocol)
    return {
        "metrics": [f"{prefix}{k}/metrics.json" for k in folds],
        "runs": [f"{prefix}{k}/run.json" for k in folds],
        # not read for the scores, but checked against the hashes in metrics.json: a changed file reruns this job,
        # which sets the damaged fold aside for retraining
        "predictions": [f"{prefix}{k}/predictions.parquet" for k in folds],
    }


# Model names are matched exactly, so results/{corpus}_{model}.json splits right even with "_" in both.
# A run is a model name, optionally with a dimensional task, then the text source that is not the corpus's own:
# gban, cnn14@vad, cnn14@arousal, bert+asr, bert@vad+asr (serflow/train/tasks.py).
# Late fusions (models with components) are not trained: rule late_fusion averages their components' outputs.
from serflow.train.tasks import DIMENSIONAL_TASKS

TASK_SUFFIX = "(?:@(?:{}))?".format("|".join(DIMENSIONAL_TASKS))
TRAINED = [name for name in registered_models() if not model_spec(name).components]
FUSED = [name for name in registered_models() if model_spec(name).components]
from serflow.corpora.folds import PROTOCOLS
from serflow.train.tasks import PROTOCOL_SEPARATOR, TEXT_SEPARATOR, TEXT_SOURCES

TEXT_SUFFIX = "(?:{}(?:{}))?".format(re.escape(TEXT_SEPARATOR), "|".join(TEXT_SOURCES))  # the other transcripts
PROTOCOL_SUFFIX = "(?:{}(?:{}))?".format(re.escape(PROTOCOL_SEPARATOR), "|".join(PROTOCOLS))  # a further protocol
MODEL_PATTERN = "(?:{}){}{}{}".format(
    "|".join(re.escape(name) for name in registered_models()), TASK_SUFFIX, TEXT_SUFFIX, PROTOCOL_SUFFIX
)
TRAINED_PATTERN = "(?:{}){}{}".format("|".join(re.escape(name) for name in TRAINED), TASK_SUFFIX, TEXT_SUFFIX)
CATEGORICAL_PATTERN = "(?:{}){}{}".format(
    "|".join(re.escape(name) for name in registered_models()), TEXT_SUFFIX, PROTOCOL_SUFFIX
)
DIMENSIONAL_PATTERN = "(?:{})@(?:{}){}{}".format(
    "|".join(re.escape(name) for name in registered_models()), "|".join(DIMENSIONAL_TASKS), TEXT_SUFFIX, PROTOCOL_SUFFIX
)
FUSED_PATTERN = "(?:{}){}{}".format("|".join(re.escape(name) for name in FUSED) or "^$", TASK_SUFFIX, TEXT_SUFFIX)


def fusion_inputs(wildcards):
    """The component models' outputs of this fold (same task, protocol and fold; a component that reads text on the
    run's transcripts)."""
    from serflow.models.registry import reads_transcripts
    from serflow.train.tasks import run_name, split_run

    model, task = split_run(wildcards.model)
    source = store_text_source(wildcards.corpus, wildcards.model)
    folder = "models/{corpus}/{run}/{protocol}/fold{fold}"
    return {
        name: [
            os.path.join(
                folder.format(run=run_name(name, task, text_source=source if reads_transcripts(name) else None), **wildcards),
                f,
            )
            for f in ("metrics.json", "predictions.parquet")
        ]
        for name in model_spec(model).components
    }


FOLD_CONSTRAINTS = {"protocol": "|".join(PROTOCOLS), "fold": r"\d+"}
