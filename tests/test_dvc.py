"""dvc.yaml is generated from the Snakefile (serflow/dvc_pipeline.py, scripts/dvc_stages.py) and stays in step.

Three levels, all fast: the committed dvc.yaml is what the Snakefile gives now (and a stale copy is caught);
the stages' shape (params per model, dependencies, outputs, plots) from a hand-made workflow; and DVC's own
behaviour with stages of that shape (persisted outputs, reruns only on change, params and metrics diffs) in
a throw-away git repository with a toy command in place of Snakemake.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from snakemake.io import regex_from_filepattern

from serflow.dvc_pipeline import DEFAULT_CONFIG, RuleInfo, WorkflowInfo, _out, build_pipeline, render

GENERATOR = REPO / "scripts" / "dvc_stages.py"
DVC = str(Path(sys.executable).with_name("dvc"))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
       "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}  # fmt: skip


# --------------------------------------------------------------------------------- the committed file


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dvc.yaml as the generator writes it now, from the repository's Snakefile and config."""
    out = tmp_path_factory.mktemp("dvc") / "dvc.yaml"
    done = subprocess.run([sys.executable, str(GENERATOR), "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_committed_dvc_yaml_is_what_the_snakefile_gives(generated: Path) -> None:
    assert (REPO / "dvc.yaml").read_text() == generated.read_text(), (
        "dvc.yaml is stale: run .venv/bin/python scripts/dvc_stages.py"
    )
    stages = yaml.safe_load(generated.read_text())["stages"]
    assert "all" in stages and any(name.startswith("demo_") for name in stages)


def test_check_passes_on_a_fresh_file_and_fails_on_a_stale_one(generated: Path, tmp_path: Path) -> None:
    fresh = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(generated)], capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    stale = tmp_path / "dvc.yaml"
    stale.write_text(generated.read_text().replace("--cores all", "--cores 3", 1))
    check = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", "--out", str(stale)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert "-    cmd: .venv/bin/snakemake" in check.stdout and "--cores 3" in check.stdout
    assert "is stale" in check.stderr and "scripts/dvc_stages.py" in check.stderr


# --------------------------------------------------------------------------------- the stages' shape


def rule(name: str, file: str, outputs: dict[str, str], script: str, conda: str, captions: tuple = ()) -> RuleInfo:
    compiled = tuple((key, re.compile(regex_from_filepattern(p))) for key, p in outputs.items())
    return RuleInfo(name, file, script, conda, captions, compiled)


RULES = [
    rule("manifest", "rules/corpus.smk", {"manifest": "data/{corpus}/manifest.parquet"},
         "workflow_scripts/build_manifest.py", "envs/corpus.yaml"),
    rule("evaluate", "rules/train.smk",
         {"results": "results/{corpus,demo|real}_{model,wise|wise_audio|wise_text}.json"},
         "workflow_scripts/evaluate.py", "envs/train.yaml"),
    rule("report_frontend", "rules/report.smk", {"summary": "results/report/{corpus}/frontend.json"},
         "workflow_scripts/report_frontend.py", "envs/report.yaml", ("report/asr_wer.rst",)),
    rule("report_model", "rules/report.smk",
         {"confusion": "results/report/{corpus}/plots/confusion_{model}.png",
          "history": "results/report/{corpus}/dvc/{model}_history.tsv",
          "predictions": "results/report/{corpus}/dvc/{model}_predictions.csv"},
         "workflow_scripts/report_model.py", "envs/report.yaml", ("report/confusion.rst",)),
    rule("report_runtime", "rules/report.smk", {"table": "results/report/{corpus}/runtime.tsv"},
         "workflow_scripts/report_runtime.py", "envs/report.yaml", ("report/runtime.rst",)),
]  # fmt: skip


def config(text_source: str = "gold") -> dict:
    train = {"seeds": [0], "epochs": 2}
    return {
        "corpora": {
            "demo": {
                "format": "iemocap",
                "synth": {"utterances": 40},
                "labels": ["a", "b"],
                "merge": {},
                "train": train,
            },
            "real": {"format": "iemocap", "root": "/data/IEMOCAP_full_release", "labels": ["a", "b"]},
        },
        "folds": {"seed": 0},
        "text_source": text_source,
        "asr": {"backend": "faster-whisper", "model": "tiny.en"},
        "align": {"backend": "kaldi"},
        "features": {"shards": 2, "acoustic": {"mfcc39": {}}, "glove": {"oov": "zero"}},
        "train": {"models": ["wise"], "protocol": "loso_session", "seeds": [0, 1], "epochs": 5, "threads": 2},
        "models": {"wise": {"dropout": 0.3}},
    }


def workflow(targets: list[str], cfg: dict, configfile: str = DEFAULT_CONFIG) -> WorkflowInfo:
    return WorkflowInfo(
        root=REPO,
        configfile=configfile,
        config=cfg,
        targets=targets,
        files=["Snakefile", "rules/common.smk", "rules/corpus.smk", "rules/train.smk", "rules/report.smk"],
        report_text="report/workflow.rst",
        rules={r.name: r for r in RULES},
    )


TARGETS = [
    "data/demo/manifest.parquet",
    "results/demo_wise.json",
    "results/demo_wise_audio.json",
    "results/demo_wise_text.json",
    "results/report/demo/frontend.json",
    "results/report/demo/plots/confusion_wise.png",
    "results/report/demo/dvc/wise_history.tsv",
    "results/report/demo/dvc/wise_predictions.csv",
    "results/report/demo/runtime.tsv",
]


def params_of(stage: dict) -> list[str]:
    (entry,) = stage["params"]
    (keys,) = entry.values()
    return keys


def test_one_stage_per_model_result_and_one_for_the_rest() -> None:
    cfg = config()
    pipeline = build_pipeline(workflow(TARGETS, cfg), cfg)
    stages = pipeline["stages"]
    assert list(stages) == ["demo_wise", "demo_wise_audio", "demo_wise_text", "all"]
    wise = stages["demo_wise"]
    assert wise["cmd"] == ".venv/bin/snakemake results/demo_wise.json --cores all"
    # the numbers only: the full results file records the machine and the git commit, which must not make a fresh
    # clone's `dvc status` report a change
    assert wise["metrics"] == [{"results/metrics/demo_wise.json": {"cache": True, "persist": True}}]
    assert "rules/report.smk" not in wise["deps"] and "serflow/report" not in wise["deps"]
    assert {"Snakefile", "rules/train.smk", "workflow_scripts/evaluate.py", "envs/train.yaml", "config/schema.yaml",
            "serflow/train", "serflow/models"} <= set(wise["deps"])  # fmt: skip
    assert "serflow/dvc_pipeline.py" not in wise["deps"]  # the generator is not workflow code

    everything = stages["all"]
    assert everything["cmd"] == ".venv/bin/snakemake --cores all"
    assert everything["deps"][:3] == [
        "results/metrics/demo_wise.json",
        "results/metrics/demo_wise_audio.json",
        "results/metrics/demo_wise_text.json",
    ]
    assert {"rules/report.smk", "serflow/report", "report/confusion.rst", "report/workflow.rst",
            "workflow_scripts/report_model.py", "envs/report.yaml"} <= set(everything["deps"])  # fmt: skip
    assert everything["metrics"] == [{"results/report/demo/frontend.json": {"cache": True, "persist": True}}]
    outs = [next(iter(o)) for o in everything["outs"]]
    # data/ and feature stores stay Snakemake's, not DVC outputs; nor is the runtime table (it differs
    # between identical runs, and dvc.lock must not)
    assert outs == TARGETS[5:-1]
    assert params_of(everything) == ["corpora.demo", "folds", "text_source", "asr", "align", "features"]
    plots = {next(iter(p)): next(iter(p.values())) for p in pipeline["plots"]}
    assert plots["demo_val_ua"]["y"] == {"results/report/demo/dvc/wise_history.tsv": "val_ua"}
    assert plots["demo_wise_confusion"]["template"] == "confusion"


def test_each_model_stage_reads_the_config_keys_of_its_own_stores() -> None:
    cfg = config()
    stages = build_pipeline(workflow(TARGETS, cfg), cfg)["stages"]
    wise, audio, text = (params_of(stages[f"demo_{m}"]) for m in ("wise", "wise_audio", "wise_text"))
    common = ["corpora.demo.format", "corpora.demo.synth", "corpora.demo.labels", "corpora.demo.merge",
              "corpora.demo.train.seeds", "corpora.demo.train.epochs", "folds", "train.protocol", "train.seeds",
              "train.epochs", "train.threads", "models.wise", "text_source", "features.shards"]  # fmt: skip
    assert wise == [*common, "features.acoustic.mfcc39", "features.glove", "align"]
    assert audio == [*common, "features.acoustic.mfcc39", "align"]  # spans read the alignment's phones
    assert text == [*common, "features.glove", "align"]
    assert "train.models" not in wise and "corpora.demo.root" not in wise

    asr = config("asr")
    stages = build_pipeline(workflow(TARGETS, asr), asr)["stages"]
    assert params_of(stages["demo_wise_text"])[-2:] == ["align", "asr"]


def test_a_configured_corpus_copy_is_a_dependency_and_a_config_file_is_passed_on() -> None:
    cfg = config()
    info = workflow(["results/real_wise.json"], cfg, configfile="config/mine.yaml")
    pipeline = build_pipeline(info, cfg)
    stage = pipeline["stages"]["real_wise"]
    assert stage["deps"][-1] == "/data/IEMOCAP_full_release"
    assert "corpora.real.root" in params_of(stage) and list(stage["params"][0]) == ["config/mine.yaml"]
    assert stage["cmd"].endswith("results/real_wise.json --cores all --configfile config/mine.yaml")
    text = render(pipeline, "config/mine.yaml")
    assert text.startswith(
        "# Generated from the Snakefile by `.venv/bin/python scripts/dvc_stages.py --configfile config/mine.yaml`"
    )
    assert "plots:" not in text  # no report targets, no plots
    with pytest.raises(ValueError, match="no rule produces"):
        build_pipeline(workflow(["somewhere/else.txt"], cfg), cfg)


# --------------------------------------------------------------------------------- DVC with stages of that shape


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return done


TOY = """import json, pathlib, sys
import yaml
key, out = sys.argv[1], pathlib.Path(sys.argv[2])
value = yaml.safe_load(open("config/config.yaml"))[key]["x"]
runs = pathlib.Path("runs.log")
runs.write_text(runs.read_text() + key + "\\n" if runs.exists() else key + "\\n")
out.parent.mkdir(parents=True, exist_ok=True)
old = json.loads(out.read_text())["builds"] if out.exists() else 0
out.write_text(json.dumps({"score": value / 10, "builds": old + 1}))
"""


def test_dvc_reruns_only_changed_stages_keeps_outputs_and_diffs_params_and_metrics(tmp_path: Path) -> None:
    """Outputs persist (a stage's command sees its previous output, as Snakemake needs), a second repro
    does nothing, a config edit names only the stages reading that key, and params / metrics diffs show it."""
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / ".gitignore").write_text("results/\nruns.log\n")
    (repo / "config/config.yaml").write_text("a: {x: 1}\nb: {x: 2}\n")
    (repo / "make.py").write_text(TOY)
    stages = {
        name: {
            "cmd": f"{sys.executable} make.py {key} results/{key}.json",
            "deps": ["make.py"],
            "params": [{"config/config.yaml": [key]}],
            "metrics": [_out(f"results/{key}.json")],
        }
        for name, key in (("stage_a", "a"), ("stage_b", "b"))
    }
    (repo / "dvc.yaml").write_text(render({"stages": stages}))
    run(["git", "init", "-q"], repo)
    run([DVC, "init", "-q"], repo)
    run([DVC, "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first run"], repo)
    assert (repo / "runs.log").read_text() == "a\nb\n"

    again = run([DVC, "repro"], repo)
    assert "didn't change, skipping" in again.stdout and (repo / "runs.log").read_text() == "a\nb\n"

    (repo / "config/config.yaml").write_text("a: {x: 5}\nb: {x: 2}\n")
    status = run([DVC, "status"], repo).stdout
    assert "stage_a" in status and "stage_b" not in status
    params = run([DVC, "params", "diff", "--json"], repo).stdout
    assert json.loads(params)["config/config.yaml"]["a.x"] == {"old": 1, "new": 5, "diff": 4}

    run([DVC, "repro", "-q"], repo)
    assert (repo / "runs.log").read_text() == "a\nb\na\n"
    assert json.loads((repo / "results/a.json").read_text())["builds"] == 2  # persisted, not deleted first
    metrics = json.loads(run([DVC, "metrics", "diff", "--json"], repo).stdout)
    assert metrics["results/a.json"]["score"] == {"old": 0.1, "new": 0.5, "diff": pytest.approx(0.4)}
    assert "results/b.json" not in metrics


def test_stage_names_avoid_dvcs_foreach_separator() -> None:
    from serflow.dvc_pipeline import stage_name

    assert stage_name("demo", "wise") == "demo_wise"
    assert stage_name("demo", "bert@vad+asr") == "demo_bert-vad-asr"  # `dvc commit demo_bert@vad` would fail
    assert stage_name("demo_tess", "mmer_text+gold~loso_speaker") == "demo_tess_mmer_text-gold-loso_speaker"
