"""profiles/slurm against a real SLURM: a one-node cluster on loopback with fake GPUs (tests/slurm_cluster.py).

Two runs go through ``snakemake --profile profiles/slurm`` at the same time: the real workflow on a tiny
synthetic corpus (TARGETS), and a three-rule probe workflow whose jobs write what SLURM gave them (the
GPU rules' CUDA_VISIBLE_DEVICES and ``scontrol show job``). Every job the workflow ran must have gone
through sbatch with the CPUs, memory, time and GPUs its rule asked for, and carry its SLURM job id in
its log. Skipped (with the reason) only where the cluster cannot be set up: not root, no apt-get, the
Debian packages not installable, or SLURM daemons of someone else already running here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from slurm_cluster import GPU_PARTITION, GPU_TYPE, Cluster, SlurmUnavailable, slurm_cluster

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# The real workflow's targets. Add a training target (rule `train`, `resources: gpu=1`) here, e.g.
# "models/demo/wise/loso_session/fold1/metrics.json" (12 jobs more, about 1.5 min more): the checks below
# derive what each job should have been given from its rule's threads and resources, GPUs included.
TARGETS = [
    "data/demo/manifest.parquet",
    "data/demo/folds.parquet",
    "data/demo/asr/faster-whisper-tiny.en.parquet",  # two transcribe_shard jobs, then merge_asr
]
UTTERANCES = 20

# When snakemake asks squeue: 6 s after a submission or a finished job, then each wait 10 s longer than the
# last while no job finishes (the plugin's back-off): 6, 22, 48 s. The jobs here take 10-20 s each (the
# ASR shards 30-45 s), so most are seen at the second or third check. (3 x 6 s stays below MinJobAge =
# 300 s, so the plugin keeps the profile's squeue status command.)
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "6", "--seconds-between-status-checks", "6"]

PROBE_SNAKEFILE = """
PROBE = (
    "{{ env | grep -E '^(SLURM_JOB_ID|CUDA_VISIBLE_DEVICES|SLURM_CPUS_PER_TASK)=' | sort; "
    "scontrol show job -d $SLURM_JOB_ID; }} > {output}"
)

rule all:
    input: "probe/cpu.txt", "probe/gpu.txt", "probe/gpu_typed.txt"

rule cpu_probe:
    output: "probe/cpu.txt"
    threads: 2
    resources: mem_mb=1500, runtime=5
    shell: PROBE

rule gpu_probe:
    output: "probe/gpu.txt"
    resources: gpu=1, mem_mb=1000, runtime=10
    shell: PROBE

rule gpu_typed_probe:  # partition and GPU type set from outside, as README tells users to
    output: "probe/gpu_typed.txt"
    resources: gpu=1, mem_mb=1000, runtime=10
    shell: PROBE
"""
# What a user puts under `set-resources:` in the profile, given here on the command line.
PROBE_SITE = [
    "--set-resources",
    f"gpu_typed_probe:gpu_model={GPU_TYPE}",
    f"gpu_typed_probe:slurm_partition={GPU_PARTITION}",
]


@dataclass
class Run:
    workdir: Path
    done: subprocess.CompletedProcess[str]

    @property
    def output(self) -> str:
        return self.done.stdout + self.done.stderr


@dataclass
class Job:
    """One job as snakemake announced it, and the SLURM job id it was submitted as."""

    rule: str
    fields: dict[str, str]
    resources: dict[str, str]
    slurm_id: str
    slurm_log: Path


def parse_jobs(output: str) -> list[Job]:
    """The submitted jobs in snakemake's output: each `rule X:` block joined to its sbatch job id."""
    blocks: dict[str, tuple[str, dict[str, str]]] = {}
    for match in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:    .*\n)+)", output, re.M):
        fields = dict(line.strip().split(": ", 1) for line in match.group(2).splitlines() if ": " in line)
        blocks[fields["jobid"]] = (match.group(1), fields)
    jobs = []
    for jobid, slurm_id, log in re.findall(
        r"^Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.", output, re.M
    ):
        rule, fields = blocks[jobid]
        resources = dict(item.split("=", 1) for item in fields.get("resources", "").split(", ") if "=" in item)
        jobs.append(Job(rule, fields, resources, slurm_id, Path(log)))
    return jobs


def scontrol_job(cluster: Cluster, slurm_id: str) -> dict[str, str]:
    """`scontrol show job -d` as a dict (finished jobs stay visible for MinJobAge = 300 s)."""
    return parse_scontrol(cluster.run("scontrol", "show", "job", "-d", slurm_id))


def parse_scontrol(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\S+?)=(\S*)", text))


def minutes(time_limit: str) -> int:
    """SLURM's [days-]hours:minutes:seconds as minutes."""
    days, _, clock = time_limit.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    with ExitStack() as stack:
        try:
            running = stack.enter_context(slurm_cluster(tmp_path_factory.mktemp("slurm")))
        except SlurmUnavailable as reason:
            pytest.skip(f"no test SLURM cluster: {reason}")
        yield running


@pytest.fixture(scope="module")
def runs(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The real workflow and the probe, submitted through the profile side by side."""
    workflow = tmp_path_factory.mktemp("slurm_workflow")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = UTTERANCES
    config["asr"]["shards"] = 2
    if "train" in config:  # a training target, when there is one, trains one seed for one epoch
        config["corpora"]["demo"].setdefault("train", {}).update(epochs=1, seeds=[0])
    (workflow / "config.yaml").write_text(yaml.safe_dump(config))
    probe = tmp_path_factory.mktemp("slurm_probe")
    (probe / "Snakefile").write_text(PROBE_SNAKEFILE)
    commands = {
        "workflow": (workflow, [*TARGETS, "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml"]),
        "probe": (probe, ["--snakefile", "Snakefile", *PROBE_SITE]),
    }
    started: dict[str, subprocess.Popen] = {}
    results = {}
    deadline = time.monotonic() + 480  # a guard against a hang, far above the 1-2 min this takes
    try:
        for name, (workdir, args) in commands.items():
            with open(workdir / "snakemake.out", "w") as out:  # a file, not a pipe: no run waits on the other
                started[name] = cluster.track(
                    subprocess.Popen(
                        [SNAKEMAKE, "--profile", str(PROFILE), *FAST_STATUS, *args],
                        cwd=workdir,  # the profile's slurm-logdir (logs/slurm) is relative to it
                        env=cluster.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        for name, proc in started.items():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
            workdir = commands[name][0]
            output = (workdir / "snakemake.out").read_text()
            results[name] = Run(workdir, subprocess.CompletedProcess(proc.args, proc.returncode, output, ""))
    finally:
        for proc in started.values():  # timed out or interrupted: stop what we started (its jobs go with the cluster)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def check_jobs_went_through_sbatch(cluster: Cluster, run: Run) -> list[tuple[Job, dict[str, str]]]:
    assert run.done.returncode == 0, run.output[-6000:] + "\n" + cluster.daemon_logs()
    jobs = parse_jobs(run.output)
    assert jobs, run.output[-3000:]
    assert len({job.slurm_id for job in jobs}) == len(jobs)
    checked = []
    for job in jobs:
        info = scontrol_job(cluster, job.slurm_id)
        where = f"rule {job.rule}, SLURM job {job.slurm_id}: {info}"
        assert info["JobState"] == "COMPLETED", where
        assert info["Comment"].startswith(f"rule_{job.rule}"), where
        assert info["JobName"].startswith("serflow_"), where  # the profile's slurm-jobname-prefix
        assert Path(info["WorkDir"]) == run.workdir, where
        # SLURM's own log, in the profile's known folder, named by the job id.
        assert job.slurm_log.is_relative_to(run.workdir / "logs" / "slurm" / f"rule_{job.rule}"), where
        assert job.slurm_log.name == f"{job.slurm_id}.log" and job.slurm_log.exists(), where
        assert Path(info["StdOut"]) == job.slurm_log, where
        # What the rule asked for is what SLURM allocated.
        assert int(info["NumCPUs"]) == int(job.fields.get("threads", 1)), where
        assert info["MinMemoryNode"] == f"{job.resources['mem_mb']}M", where
        assert minutes(info["TimeLimit"]) == int(job.resources["runtime"]), where
        gpus = int(job.resources.get("gpu", 0))
        if gpus:
            assert info["JOB_GRES"] == f"gpu:{GPU_TYPE}:{gpus}", where  # which GPU: only while it runs
        else:
            assert info["JOB_GRES"] == "(null)", where
        checked.append((job, info))
    return checked


def test_workflow_jobs_run_through_sbatch_with_their_resources(cluster: Cluster, runs: dict[str, Run]) -> None:
    run = runs["workflow"]
    checked = check_jobs_went_through_sbatch(cluster, run)
    for target in TARGETS:
        assert (run.workdir / target).exists(), target
    rules = {job.rule for job, _ in checked}
    assert {"synth_corpus", "manifest", "folds", "transcribe_shard", "merge_asr"} <= rules
    assert sum(job.rule == "transcribe_shard" for job, _ in checked) == 2  # one job per ASR shard
    for job, _ in checked:
        # Each job's rule log names the SLURM job that wrote it (serflow.logs.log_to_file).
        for log in job.fields["log"].split(", "):
            if log.endswith(".log"):
                text = (run.workdir / log).read_text()
                assert f"SLURM_JOB_ID={job.slurm_id}\n" in text, (job.rule, log, text[:300])


def test_gpu_rules_are_given_a_gpu(cluster: Cluster, runs: dict[str, Run]) -> None:
    run = runs["probe"]
    checked = {job.rule: info for job, info in check_jobs_went_through_sbatch(cluster, run)}
    assert set(checked) == {"cpu_probe", "gpu_probe", "gpu_typed_probe"}
    for rule, name in [("gpu_probe", "gpu"), ("gpu_typed_probe", "gpu_typed")]:
        text = (run.workdir / "probe" / f"{name}.txt").read_text()
        seen = parse_scontrol(text)
        # The job's processes see exactly the GPU SLURM bound to the job.
        index = re.search(r"\(IDX:(\d+)\)", seen["GRES"]).group(1)
        assert seen["CUDA_VISIBLE_DEVICES"] == index, text
        assert int(index) in range(cluster.gpus)
        assert seen["JOB_GRES"] == f"gpu:{GPU_TYPE}:1", text
        assert seen["JobId"] == seen["SLURM_JOB_ID"] == checked[rule]["JobId"], text
    typed = checked["gpu_typed_probe"]
    assert typed["TresPerJob"] == f"gres:gpu:{GPU_TYPE}:1"  # gpu_model -> --gpus=<type>:1
    assert typed["Partition"] == GPU_PARTITION  # slurm_partition from set-resources
    assert checked["gpu_probe"]["TresPerJob"] == "gres:gpu:1"  # gpu=1 -> --gpus=1
    assert checked["gpu_probe"]["Partition"] == cluster.partition


def test_cpu_rules_get_their_threads_and_no_gpu(cluster: Cluster, runs: dict[str, Run]) -> None:
    text = (runs["probe"].workdir / "probe" / "cpu.txt").read_text()
    seen = parse_scontrol(text)
    assert "CUDA_VISIBLE_DEVICES" not in seen and seen["JOB_GRES"] == "(null)", text
    assert seen["NumCPUs"] == seen["SLURM_CPUS_PER_TASK"] == "2", text


def test_nothing_is_left_in_the_queue(cluster: Cluster, runs: dict[str, Run]) -> None:
    assert cluster.queue() == []
    submitted = {job.slurm_id for run in runs.values() for job in parse_jobs(run.output)}
    finished = cluster.completed_jobs()  # jobcomp/filetxt: one line per job that ended
    assert set(finished) == submitted, (sorted(finished), sorted(submitted))
    assert {fields["JobState"] for fields in finished.values()} == {"COMPLETED"}


def test_profile_is_valid_for_the_installed_plugin(tmp_path: Path) -> None:
    """No cluster needed: every key of the profile is an option snakemake and the plugin accept."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"  # trap: sacct hangs without slurmdbd
    assert profile["slurm-logdir"] == "logs/slurm"
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"]["synth"]["utterances"] = UTTERANCES
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--profile", str(PROFILE), "-n"]
    done = subprocess.run(
        [*command, *TARGETS, "--configfile", "config.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "transcribe_shard" in done.stdout + done.stderr
