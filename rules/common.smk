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
    return expand(["data/{corpus}/manifest.parquet", "data/{corpus}/folds.parquet"], corpus=synthetic_corpora())
