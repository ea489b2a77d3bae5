"""``dvc.yaml`` generated from the Snakefile, so that the DVC pipeline and the workflow cannot drift apart.

The Snakefile is the only source of truth. :func:`load_workflow` parses it through Snakemake's Python API
(``snakemake.api``; nothing runs, no data is read) and :func:`build_pipeline` turns what it finds into DVC
stages. ``scripts/dvc_stages.py`` writes the file, and with ``--check`` fails (naming the differences)
when the committed ``dvc.yaml`` is not what the Snakefile and config give now; ``make lint`` runs it.

Stages. The final targets are the inputs of the default target rule (``rule all``):

* one stage per model result, ``{corpus}_{model}``: ``cmd`` asks Snakemake for
  ``results/{corpus}_{model}.json`` (everything upstream is Snakemake's business); the stage's metrics
  file is its compact sibling ``results/metrics/{corpus}_{model}.json`` (the numbers only: the full file
  records where and from which git commit it was made, which must not make ``dvc status`` report a change);
* one stage ``all``: ``cmd`` runs the default target (every other target of ``rule all``: manifests,
  folds, ASR, alignments, feature stores, the report's tables and figures). It depends on the model
  results, so it runs last; its outputs are the report files (the summaries, ``frontend.json`` as
  metrics, the figures, and the data of ``dvc plots``). Feature stores (their folders are named by a
  hash computed at parse time) and other bulky data stay Snakemake's and are not DVC outputs; nor are
  the runtime table and figure (``UNTRACKED_RULES``), which differ between identical runs: every DVC
  output is the same bytes for the same config, so a ``dvc repro`` in a fresh clone leaves the committed
  ``dvc.lock`` unchanged.

Every output is ``persist: true`` (DVC must not delete it before the stage runs: Snakemake decides what
to rebuild, inside the stage) and small (``cache: true`` keeps old versions of these few kilobytes, so
``dvc metrics diff`` / ``dvc plots diff`` can compare with a commit although ``results/`` is not in git).

Dependencies: the Snakefile and the rule files, the scripts and conda environments of the rules, the
config schema, the package's sources (``serflow/``, as its top-level entries) and the data of corpora
read from a configured ``root``. Report rules (``rules/report.smk``), their scripts, captions and
``serflow/report`` are dependencies of ``all`` only, so editing a figure does not touch the model
stages. Parameters: the config keys each stage's jobs read (:func:`model_param_keys`,
:func:`all_param_keys`), so ``dvc status`` after a config edit names exactly the stages it affects.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from serflow.train.config import metrics_path

GENERATOR = "scripts/dvc_stages.py"
DEFAULT_CONFIG = "config/config.yaml"
SNAKEMAKE = ".venv/bin/snakemake"  # the project's venv (make setup); DVC runs cmd with the caller's PATH
PACKAGE = "serflow"
REPORT_RULES = "rules/report.smk"  # rules whose files and code only the `all` stage depends on
REPORT_FILES = (REPORT_RULES, "rules/common_report.smk")  # and the report rules' helpers
REPORT_PACKAGE = "serflow/report"
EXTRA_DEPS = ("config/schema.yaml",)  # read at parse time (rules/common.smk validates the config with it)
RESULT_RULE = "evaluate"  # its targets get one stage each
METRIC_SUFFIXES = (".json",)
# Rules whose outputs measure the run itself (wall times, memory): built by the `all` stage but not DVC
# outputs, so that the same config gives the same dvc.lock in every clone.
UNTRACKED_RULES = ("report_runtime",)
LINE_PLOT_OUTPUT = "history"  # report_model's outputs that `dvc plots` draws
CONFUSION_PLOT_OUTPUT = "predictions"
CURVES = (("val_ua", "validation UA"), ("val_loss", "validation loss"), ("train_loss", "training loss"))
# a dimensional run (model@task): the mean CCC instead of UA, its losses apart (MSE or 1 - CCC, not cross-entropy)
REGRESSION_CURVES = (("val_ccc", "validation mean CCC"), *CURVES[1:])
IGNORED_ENTRIES = ("__pycache__", "dvc_pipeline.py", "py.typed")  # not workflow code (the generator, a marker)


@dataclasses.dataclass(frozen=True)
class RuleInfo:
    """What the generator needs of one rule (paths relative to the repository root)."""

    name: str
    file: str
    script: str | None
    conda: str | None
    captions: tuple[str, ...]
    outputs: tuple[tuple[str, re.Pattern[str]], ...]  # (output name, regex of its pattern)


@dataclasses.dataclass
class WorkflowInfo:
    """The parsed workflow: the default target's inputs and the rules that produce them."""

    root: Path
    configfile: str
    config: dict[str, Any]
    targets: list[str]
    files: list[str]
    report_text: str | None
    rules: dict[str, RuleInfo]

    def producer(self, target: str) -> tuple[RuleInfo, str, dict[str, str]]:
        """The rule whose output matches ``target``, the output's name and the wildcards."""
        for rule in self.rules.values():
            for name, regex in rule.outputs:
                m = regex.fullmatch(target)
                if m:
                    return rule, name, {k: v for k, v in m.groupdict().items() if v is not None}
        raise ValueError(f"no rule produces {target!r}, a target of the default rule")


# --------------------------------------------------------------------------------- reading the workflow


def _relative(path: Any, root: Path) -> str:
    return os.path.relpath(os.path.normpath(str(path)), root)


def load_workflow(root: str | os.PathLike[str] = ".", configfile: str | None = None) -> WorkflowInfo:
    """Parse ``root/Snakefile`` with Snakemake's API (no DAG, no jobs, no data) and collect its rules."""
    from snakemake.api import SnakemakeApi
    from snakemake.io import is_flagged
    from snakemake.settings.types import ConfigSettings, OutputSettings, Quietness, ResourceSettings

    root = Path(root).resolve()
    config_settings = ConfigSettings(configfiles=[root / configfile]) if configfile else ConfigSettings()
    cwd = os.getcwd()
    try:
        with SnakemakeApi(OutputSettings(quiet={Quietness.ALL}, dryrun=True)) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=config_settings,
                snakefile=root / "Snakefile",
                workdir=root,
            )
            # The API exposes no public accessor to the parsed rules; this property parses the Snakefile
            # exactly as `snakemake --lint` / `--list-rules` do.
            workflow = workflow_api._workflow
            rules = {}
            for rule in workflow.rules:
                base = Path(rule.snakefile).parent
                captions = tuple(
                    _relative(f.flags["report"].caption.get_path_or_uri(secret_free=True), root)
                    for f in rule.output
                    if is_flagged(f, "report") and f.flags["report"].caption is not None
                )
                rules[rule.name] = RuleInfo(
                    name=rule.name,
                    file=_relative(rule.snakefile, root),
                    script=_relative(base / rule.script, root) if isinstance(rule.script, str) else None,
                    conda=_relative(base / rule.conda_env, root) if isinstance(rule.conda_env, str) else None,
                    captions=captions,
                    outputs=_outputs(rule.output),
                )
            default = workflow.get_rule(workflow.default_target)
            report_text = workflow.report_text
            info = WorkflowInfo(
                root=root,
                configfile=configfile or DEFAULT_CONFIG,
                config=workflow.config,
                targets=[str(t) for t in default.input],
                files=[_relative(f.get_path_or_uri(secret_free=True), root) for f in workflow.included],
                report_text=_relative(report_text.get_path_or_uri(secret_free=True), root) if report_text else None,
                rules={name: r for name, r in rules.items() if name != default.name},
            )
    finally:
        os.chdir(cwd)
    return info


def _outputs(output: Any) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(name, regex) of every output pattern of a rule; '' for an unnamed one."""
    names = {}
    for name, value in output.items():
        for f in value if isinstance(value, list) else [value]:
            names[str(f)] = name
    return tuple((names.get(str(f), ""), f.regex()) for f in output)


# --------------------------------------------------------------------------------- parameters


def _present(document: Mapping[str, Any], dotted: str) -> bool:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _unique_present(keys: Sequence[str], document: Mapping[str, Any]) -> list[str]:
    """The keys the params file holds (DVC refuses absent ones), each once, in order."""
    return [k for k in dict.fromkeys(keys) if _present(document, k)]


def train_result_keys() -> list[str]:
    """The ``train`` keys that change what training computes (not threads, memory, runtime, models)."""
    from serflow.train.config import RUN_ONLY_KEYS, TrainSettings

    return [f.name for f in dataclasses.fields(TrainSettings) if f.name not in RUN_ONLY_KEYS]


def model_param_keys(config: Mapping[str, Any], corpus: str, model: str) -> list[str]:
    """The config keys behind ``results/{corpus}_{model}.json``: the corpus and its folds, the train
    settings, the model family's section, and the feature stores the model reads with their inputs."""
    from serflow.corpora.settings import corpus_text_source
    from serflow.features.stores import kind_of
    from serflow.models import get_spec
    from serflow.train.tasks import split_run

    spec = get_spec(split_run(model)[0])
    if spec.components:  # a late fusion: the keys of the models it averages
        keys = [k for part in spec.components for k in model_param_keys(config, corpus, part)]
        return [*dict.fromkeys([*keys, f"models.{spec.family}"])]
    train = train_result_keys()
    keys = [f"corpora.{corpus}.{k}" for k in ("format", "root", "synth", "labels", "merge")]
    keys += [f"corpora.{corpus}.train.{k}" for k in train]
    keys += ["folds", *(f"train.{k}" for k in train), f"models.{spec.family}", "text_source", "features.shards"]
    keys.append(f"corpora.{corpus}.text_source")
    reads_words = False
    for store in spec.features:
        kind = kind_of(store)
        if kind == "acoustic":
            keys.append(f"features.acoustic.{store}")
        elif kind == "glove":
            keys.append("features.glove")
        elif kind == "transformer":
            keys += [f"features.{store.removesuffix('_utt')}", "features.transformer.max_length"]
        elif kind == "bert_tokens":
            keys += ["features.bert", "features.bert_tokens"]
        elif kind == "spans":
            keys.append(f"features.acoustic.{store.removeprefix('spans_')}")
        reads_words = reads_words or kind != "acoustic"
    if reads_words:
        keys.append("align")
        if corpus_text_source(config, corpus) == "asr":
            keys += ["asr", f"corpora.{corpus}.asr"]
    return keys


def all_param_keys(corpora: Sequence[str]) -> list[str]:
    """The config keys of what the ``all`` stage builds besides the models: corpora, folds, ASR,
    alignment, every feature store, and the report (which reads the corpus's section)."""
    return [*(f"corpora.{c}" for c in corpora), "folds", "text_source", "asr", "align", "features"]


# --------------------------------------------------------------------------------- dependencies


def package_entries(root: Path, exclude: Sequence[str] = ()) -> list[str]:
    """The package's top-level modules and sub-packages, as dependencies (caches and ``exclude`` left out)."""
    entries = []
    for entry in sorted((root / PACKAGE).iterdir()):
        relative = f"{PACKAGE}/{entry.name}"
        if entry.name in IGNORED_ENTRIES or entry.name.startswith(".") or relative in exclude:
            continue
        entries.append(relative)
    return entries


def _code_deps(
    info: WorkflowInfo, rules: Sequence[RuleInfo], files: Sequence[str], package: Sequence[str]
) -> list[str]:
    deps = [*files, *EXTRA_DEPS]
    for rule in rules:
        deps += [p for p in (rule.script, rule.conda) if p]
    return sorted(dict.fromkeys(p for p in deps if (info.root / p).exists())) + list(package)


def corpus_data(config: Mapping[str, Any], corpus: str) -> list[str]:
    """A configured copy of the corpus (``root``), a dependency; a synthetic corpus has none (its
    recipe is a parameter)."""
    spec = config["corpora"][corpus]
    return [] if spec.get("synth") or not spec.get("root") else [str(spec["root"])]


# --------------------------------------------------------------------------------- the pipeline


def _out(path: str) -> dict[str, dict[str, bool]]:
    return {path: {"cache": True, "persist": True}}


def _cmd(info: WorkflowInfo, targets: Sequence[str]) -> str:
    configfile = [] if info.configfile == DEFAULT_CONFIG else ["--configfile", info.configfile]
    return " ".join([SNAKEMAKE, *targets, "--cores", "all", *configfile])  # --configfile takes several values


def stage_name(corpus: str, run: str) -> str:
    """The DVC stage of ``results/{corpus}_{run}.json``: DVC reads ``@`` in a stage name as a foreach key
    (``dvc commit demo_bert@vad`` fails), so a run's separators ``@`` (task), ``+`` (text source) and ``~``
    (protocol) become ``-``: ``demo_bert-vad-asr``. Model names hold no ``-``, so no two runs share a stage."""
    return f"{corpus}_{run}".replace("@", "-").replace("+", "-").replace("~", "-")


def build_pipeline(info: WorkflowInfo, params_document: Mapping[str, Any]) -> dict[str, Any]:
    """``{"stages": ..., "plots": ...}`` for ``dvc.yaml`` (see the module docstring)."""
    report_rules = [r for r in info.rules.values() if r.file == REPORT_RULES]
    core_rules = [r for r in info.rules.values() if r.file != REPORT_RULES]
    core_files = [f for f in info.files if f not in REPORT_FILES]
    core_code = _code_deps(info, core_rules, core_files, package_entries(info.root, exclude=[REPORT_PACKAGE]))
    report_extra = [c for r in report_rules for c in r.captions] + ([info.report_text] if info.report_text else [])
    all_code = _code_deps(info, list(info.rules.values()), [*info.files, *report_extra], package_entries(info.root))
    params_file = info.configfile

    stages: dict[str, Any] = {}
    results, outs, metrics, histories, predictions, corpora = [], [], [], [], [], []
    for target in info.targets:
        rule, output, wildcards = info.producer(target)
        corpus = wildcards.get("corpus")
        if corpus and corpus not in corpora:
            corpora.append(corpus)
        if rule.name == RESULT_RULE:
            model = wildcards["model"]
            keys = _unique_present(model_param_keys(info.config, corpus, model), params_document)
            stages[stage_name(corpus, model)] = {
                "desc": f"{target}: model {model} on corpus {corpus}, all folds (Snakemake builds what it needs)",
                "cmd": _cmd(info, [target]),
                "deps": core_code + corpus_data(info.config, corpus),
                "params": [{params_file: keys}],
                "metrics": [_out(metrics_path(target))],
            }
            results.append(metrics_path(target))
        elif rule.file == REPORT_RULES and rule.name not in UNTRACKED_RULES:
            if target.endswith(METRIC_SUFFIXES):
                metrics.append(target)
            else:
                outs.append(target)
            if output == LINE_PLOT_OUTPUT:
                histories.append((corpus, wildcards.get("model"), target))
            elif output == CONFUSION_PLOT_OUTPUT:
                predictions.append((corpus, wildcards.get("model"), target))
    all_stage: dict[str, Any] = {
        "desc": "the default target (rule all): every other stage of the workflow and the report, after the models",
        "cmd": _cmd(info, []),
        "deps": sorted(results) + all_code + [d for c in corpora for d in corpus_data(info.config, c)],
        "params": [{params_file: _unique_present(all_param_keys(corpora), params_document)}],
    }
    if outs:
        all_stage["outs"] = [_out(t) for t in outs]
    if metrics:
        all_stage["metrics"] = [_out(t) for t in metrics]
    stages["all"] = all_stage
    plots = _plots(histories, predictions)
    return {"stages": stages, "plots": plots} if plots else {"stages": stages}


def _plots(histories: Sequence[tuple[str, str, str]], predictions: Sequence[tuple[str, str, str]]) -> list[Any]:
    from serflow.train.tasks import TASK_SEPARATOR

    plots: list[Any] = []
    for corpus, regression in dict.fromkeys((c, TASK_SEPARATOR in m) for c, m, _ in histories):
        files = [path for c, m, path in histories if c == corpus and (TASK_SEPARATOR in m) == regression]
        for field, label in REGRESSION_CURVES if regression else CURVES:
            name = f"{corpus}_{'dimensions_' if regression else ''}{field}"
            what = "dimensional run" if regression else "model"
            plots.append(
                {
                    name: {
                        "title": f"{corpus}: {label} per epoch (mean over folds and seeds; one line per {what})",
                        "template": "linear",
                        "x": "epoch",
                        "y": {path: field for path in files},
                        "y_label": label,
                    }
                }
            )
    for corpus, model, path in predictions:
        if TASK_SEPARATOR in model:
            plots.append(
                {
                    f"{corpus}_{model}_scatter": {
                        "title": f"{corpus}: {model}, predicted against true value, every dimension, all test folds",
                        "template": "scatter",
                        "x": "actual",
                        "y": {path: "predicted"},
                    }
                }
            )
            continue
        plots.append(
            {
                f"{corpus}_{model}_confusion": {
                    "title": f"{corpus}: {model}, confusion matrix over all test folds",
                    "template": "confusion",
                    "x": "actual",
                    "y": {path: "predicted"},
                }
            }
        )
    return plots


def render(pipeline: Mapping[str, Any], configfile: str = DEFAULT_CONFIG) -> str:
    """The text of ``dvc.yaml``: a header that says how it was made, then the stages and plots."""
    how = GENERATOR + ("" if configfile == DEFAULT_CONFIG else f" --configfile {configfile}")
    header = [
        f"# Generated from the Snakefile by `.venv/bin/python {how}`; do not edit (`make lint` checks it).",
        "# One stage per model result and one for everything else in rule all; Snakemake decides inside each",
        "# stage what to rebuild, so outputs persist. Design: serflow/dvc_pipeline.py.",
        "",
    ]
    body = yaml.safe_dump(dict(pipeline), sort_keys=False, default_flow_style=False, width=1000, allow_unicode=True)
    return "\n".join(header) + body


def generate(root: str | os.PathLike[str] = ".", configfile: str | None = None) -> str:
    """The ``dvc.yaml`` the workflow under ``root`` gives now."""
    info = load_workflow(root, configfile)
    params = yaml.safe_load((info.root / info.configfile).read_text(encoding="utf-8")) or {}
    return render(build_pipeline(info, params), info.configfile)


def difference(expected: str, actual: str | None, name: str = "dvc.yaml") -> str:
    """A unified diff from the file as it is to what it should be ('' when they agree)."""
    if actual == expected:
        return ""
    lines = difflib.unified_diff(
        (actual or "").splitlines(keepends=True),
        expected.splitlines(keepends=True),
        fromfile=f"{name} (as it is)",
        tofile=f"{name} (from the Snakefile)",
    )
    return "".join(lines) or f"{name} is missing\n"
