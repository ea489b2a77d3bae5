"""A real, throw-away SLURM cluster on this machine (one node on loopback, fake GPUs), for tests.

``slurm_cluster(scratch)`` installs the Debian packages when they are missing, writes slurm.conf and
gres.conf, starts munged, slurmctld and slurmd in the foreground (so their pids are the ones we hold),
waits for the node to be idle, and on the way out (whatever happened) cancels the jobs left, stops
every daemon it started by pid and puts /etc/slurm/slurm.conf back as it was.

Why /etc/slurm/slurm.conf too: snakemake-executor-plugin-slurm drops every ``SLURM_*`` variable
(``SLURM_CONF`` included) from the environment of the job step, whose ``srun`` then only finds the
default location. Only one such cluster can run on a machine at a time: a lock file serialises them,
and a state file lets the next run stop daemons that a killed run (SIGKILL) left behind.

Needs root and Debian's apt-get; raises ``SlurmUnavailable`` (with the reason) when it cannot be done.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
PROGRAMS = ["slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "munged", "mungekey"]
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# written by serflow tests/slurm_cluster.py"
LOCK = Path(tempfile.gettempdir()) / "serflow-slurm-test.lock"
STATE = Path(tempfile.gettempdir()) / "serflow-slurm-test.json"
BACKUP = SYSTEM_CONF.with_name("slurm.conf.serflow-test-backup")
GPUS = ["/dev/null", "/dev/zero", "/dev/full", "/dev/urandom"]  # gres files must exist; nothing reads them
PARTITION = "serflow"  # the default partition
GPU_PARTITION = "gpu"  # the same node again, for testing per-rule partitions
GPU_TYPE = "fakegpu"


class SlurmUnavailable(RuntimeError):
    """The cluster cannot be set up here: not root, no apt-get, packages not installable, or SLURM daemons
    that are not ours already running (a real cluster node: left alone)."""


@dataclass
class Cluster:
    scratch: Path
    conf: Path
    partition: str
    cpus: int
    gpus: int
    mem_mb: int
    env: dict[str, str]
    jobcomp: Path
    short: Path  # munge's socket and key (a UNIX socket path is limited to 107 bytes)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)  # the daemons
    clients: list[subprocess.Popen] = field(default_factory=list)  # e.g. snakemake runs, see track()

    def track(self, proc: subprocess.Popen) -> subprocess.Popen:
        """Stop ``proc`` (a process that submits jobs) with the cluster, even after this run was SIGKILLed."""
        self.clients.append(proc)
        _record_state(self)
        return proc

    def run(self, *command: str, check: bool = True, timeout: float = 30) -> str:
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def queue(self) -> list[str]:
        """Job ids still known to slurmctld as pending or running."""
        return self.run("squeue", "-h", "-o", "%i", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING").split()

    def completed_jobs(self) -> dict[str, dict[str, str]]:
        """Job id -> the fields jobcomp/filetxt wrote when the job ended (JobState, Tres, ...)."""
        jobs: dict[str, dict[str, str]] = {}
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
                if "JobId" in fields:
                    jobs[fields["JobId"]] = fields
        return jobs

    def daemon_logs(self) -> str:
        """The tail of each daemon's log, for assertion messages."""
        parts = []
        for name in ["munged.log", "slurmctld.log", "slurmd.log"]:
            path = self.scratch / name
            if path.exists():
                parts.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_packages() -> None:
    """Install the SLURM and munge Debian packages if a program is missing (as root, with apt-get)."""
    if all(shutil.which(p) for p in PROGRAMS):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("SLURM is not installed and installing it needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable("SLURM is not installed and there is no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # stale package lists: update once, then try again
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not all(shutil.which(p) for p in PROGRAMS):
        raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {done.stderr.strip()[-500:]}")


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _other_slurm_daemons() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        name = _process_name(int(entry.name))
        if name in {"slurmctld", "slurmd", "slurmstepd"} and _state(int(entry.name)) not in {None, "Z"}:
            found.append(f"{name} (pid {entry.name})")
    return found


def _stop_pid(pid: int, name: str, start: str | None, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only while ``pid`` is still that very process."""

    def ours() -> bool:
        return _process_name(pid) == name and (start is None or _start_time(pid) == start)

    if not ours():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not ours() or _state(pid) == "Z":
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _recover_from_killed_run() -> None:
    """Undo what a run killed with SIGKILL left: its daemons (by recorded pid) and /etc/slurm/slurm.conf."""
    if STATE.exists():
        with contextlib.suppress(ValueError, OSError, KeyError):
            state = json.loads(STATE.read_text())
            for entry in state["clients"] + state["daemons"]:
                _stop_pid(entry["pid"], entry["name"], entry["start"])
            _stop_orphan_stepds(Path(state["scratch"]))
            shutil.rmtree(state["short"], ignore_errors=True)
        STATE.unlink(missing_ok=True)
    if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text().startswith(MARKER):
        if BACKUP.exists():
            BACKUP.replace(SYSTEM_CONF)
        else:
            SYSTEM_CONF.unlink()


def _slurm_conf(scratch: Path, socket_path: Path, ports: tuple[int, int], cpus: int, mem_mb: int, gpus: int) -> str:
    return f"""{MARKER}; restored when the test ends
ClusterName=serflowtest
SlurmctldHost=localhost
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={socket_path}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={scratch}/state
SlurmdSpoolDir={scratch}/spool
SlurmctldPidFile={scratch}/slurmctld.pid
SlurmdPidFile={scratch}/slurmd.pid
SlurmctldLogFile={scratch}/slurmctld.log
SlurmdLogFile={scratch}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={scratch}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
MinJobAge=300
KillWait=5
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{GPU_TYPE}:{gpus} State=UNKNOWN
PartitionName={PARTITION} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes=localhost MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def _lock(timeout: float) -> Iterator[None]:
    with open(LOCK, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another test SLURM cluster still holds {LOCK} after {timeout:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a CI timeout) raises SystemExit, so the finally blocks still stop the daemons."""

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
        raise SystemExit(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def slurm_cluster(scratch: Path, cpus: int = 16, mem_mb: int = 64000, lock_timeout: float = 300) -> Iterator[Cluster]:
    """Start a one-node cluster with its files in ``scratch``; stop it, whatever happens, on exit."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmctld/slurmd and writing /etc/slurm/slurm.conf need root")
    ensure_packages()
    with _lock(lock_timeout), _sigterm_unwinds():
        _recover_from_killed_run()
        if others := _other_slurm_daemons():
            raise SlurmUnavailable(f"SLURM daemons not started by this test are running: {', '.join(others)}")
        scratch.mkdir(parents=True, exist_ok=True)
        for sub in ["state", "spool"]:
            (scratch / sub).mkdir(exist_ok=True)
        short = Path(tempfile.mkdtemp(prefix="serflow-munge-"))  # pytest's tmp folders can be long
        socket_path = short / "munge.socket"
        conf = scratch / "slurm.conf"
        conf.write_text(_slurm_conf(scratch, socket_path, (_free_port(), _free_port()), cpus, mem_mb, len(GPUS)))
        (scratch / "gres.conf").write_text(f"NodeName=localhost Name=gpu Type={GPU_TYPE} File={','.join(GPUS)}\n")
        env = {**os.environ, "SLURM_CONF": str(SYSTEM_CONF)}
        for var in list(env):  # a test run inside a SLURM job must not talk to that job's cluster
            if var.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_")) and var != "SLURM_CONF":
                del env[var]
        cluster = Cluster(scratch, conf, PARTITION, cpus, len(GPUS), mem_mb, env, scratch / "jobcomp.txt", short)
        had_conf = SYSTEM_CONF.exists()
        try:
            SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
            if had_conf:
                shutil.copy2(SYSTEM_CONF, BACKUP)
            SYSTEM_CONF.write_text(conf.read_text())
            _start(cluster, socket_path)
            _wait_idle(cluster)
            yield cluster
        finally:
            try:
                _teardown(cluster)
            finally:
                if had_conf and BACKUP.exists():
                    BACKUP.replace(SYSTEM_CONF)
                elif not had_conf:
                    SYSTEM_CONF.unlink(missing_ok=True)
                STATE.unlink(missing_ok=True)
                shutil.rmtree(short, ignore_errors=True)


def _start(cluster: Cluster, socket_path: Path) -> None:
    scratch, short = cluster.scratch, cluster.short
    key = short / "munge.key"
    subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
    daemons = {
        "munged": [
            "munged", "--foreground", "--force", f"--socket={socket_path}", f"--key-file={key}",
            f"--pid-file={short / 'munged.pid'}", f"--log-file={scratch / 'munged.log'}",
            f"--seed-file={short / 'munged.seed'}",
        ],
        "slurmctld": ["slurmctld", "-D", "-i", "-f", str(cluster.conf)],
        "slurmd": ["slurmd", "-D", "-f", str(cluster.conf), "-N", "localhost"],
    }  # fmt: skip
    for name, command in daemons.items():
        out = open(scratch / f"{name}.stdout", "w")  # noqa: SIM115 - handed to the daemon
        cluster.procs[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=cluster.env)
        out.close()
        _record_state(cluster)
        if name == "munged":
            _wait_for(lambda: socket_path.exists(), 10, "munged's socket", cluster)
        if name == "slurmctld":
            _wait_for(lambda: cluster.run("scontrol", "ping", check=False).find("UP") >= 0, 20, "slurmctld", cluster)


def _record_state(cluster: Cluster) -> None:
    def entry(proc: subprocess.Popen) -> dict:
        # The name it runs under once exec'd (comm: the program's or script's name, 15 characters at most).
        name = Path(proc.args[0] if isinstance(proc.args, list) else str(proc.args).split()[0]).name[:15]
        return {"name": name, "pid": proc.pid, "start": _start_time(proc.pid)}

    state = {
        "scratch": str(cluster.scratch),
        "short": str(cluster.short),
        "daemons": [entry(proc) for proc in cluster.procs.values()],
        "clients": [entry(proc) for proc in cluster.clients],
    }
    STATE.write_text(json.dumps(state))


def _wait_for(condition, timeout: float, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in cluster.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}\n{_outputs(cluster)}")
        with contextlib.suppress(subprocess.TimeoutExpired, RuntimeError):
            if condition():
                return
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}\n{_outputs(cluster)}")


def _outputs(cluster: Cluster) -> str:
    parts = [cluster.daemon_logs()]
    for name in cluster.procs:
        path = cluster.scratch / f"{name}.stdout"
        if path.exists():
            parts.append(f"--- {name} stdout\n" + path.read_text(errors="replace")[-1500:])
    return "\n".join(parts)


def _wait_idle(cluster: Cluster, timeout: float = 30) -> None:
    def idle() -> bool:
        states = set(cluster.run("sinfo", "-h", "-N", "-o", "%t").split())  # one line per partition
        if states & {"drain", "drng", "down", "fail", "down*", "drain*"}:
            reason = cluster.run("scontrol", "show", "node", "localhost", check=False)
            raise AssertionError(f"test node is {states}:\n{reason}")
        return states == {"idle"}

    try:
        _wait_for(idle, timeout, "the node to be idle", cluster)
    except AssertionError as error:
        raise RuntimeError(f"{error}\n{_outputs(cluster)}") from None


def _teardown(cluster: Cluster) -> None:
    """Stop the tracked clients, cancel what is left in the queue, then stop slurmd, slurmctld and munged."""
    try:
        for proc in cluster.clients:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if cluster.procs.get("slurmctld") and cluster.procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                if left := cluster.queue():
                    cluster.run("scancel", "--full", *left, check=False)
                    deadline = time.monotonic() + 20
                    while cluster.queue() and time.monotonic() < deadline:
                        time.sleep(0.5)
    finally:
        for name in ["slurmd", "slurmctld", "munged"]:
            proc = cluster.procs.get(name)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        _stop_orphan_stepds(cluster.scratch)


def _stop_orphan_stepds(scratch: Path) -> None:
    """slurmstepd daemonises away from slurmd; stop any left whose open files lie in our scratch folder."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _process_name(int(entry.name)) != "slurmstepd":
            continue
        with contextlib.suppress(OSError):
            if any(str(os.readlink(fd)).startswith(str(scratch)) for fd in (entry / "fd").iterdir()):
                _stop_pid(int(entry.name), "slurmstepd", _start_time(int(entry.name)))
