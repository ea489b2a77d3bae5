"""Shared fixtures: small corpora in IEMOCAP's and TESS's on-disk formats, traps included."""

from __future__ import annotations

import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

EVAL_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def write_wav(path: Path, seconds: float, sr: int = 16000, channels: int = 1, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = round(seconds * sr)
    samples = (np.random.default_rng(seed).standard_normal((n, channels)) * 300).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(samples.tobytes())


@dataclass
class Turn:
    utt_id: str
    label: str
    vad: tuple[float, float, float]
    text: str
    seconds: float

    @property
    def dialog(self) -> str:
        return self.utt_id.rsplit("_", 1)[0]

    @property
    def session(self) -> int:
        return int(self.utt_id[4])


# Two sessions, both speakers in each, every trap the reader must survive.
MINI_TURNS = [
    Turn("Ses01F_impro01_F000", "neu", (2.5, 2.5, 2.5), "Excuse me.", 1.25),
    Turn("Ses01F_impro01_M000", "exc", (4.0, 3.5, 3.0), "Listen: it's 5:30 now, we have to go.", 2.0),
    Turn("Ses01F_impro01_F001", "fru", (2.0, 3.5, 3.5), "[LAUGHTER] Fine.", 0.75),
    Turn("Ses01F_impro01_M001", "xxx", (2.5, 3.0, 3.0), "What?", 0.5),
    Turn("Ses01M_script01_1_F000", "ang", (1.5, 4.5, 4.0), "I told you: never again!", 1.5),
    Turn("Ses01M_script01_1_M000", "sad", (1.5, 1.5, 2.0), "It's gone.", 1.0),
    Turn("Ses01M_script01_1_M001", "hap", (4.5, 3.5, 3.0), "That's wonderful news.", 1.1),
    Turn("Ses02F_impro02_F000", "sad", (2.0, 2.0, 2.0), "I miss her.", 1.3),
    Turn("Ses02F_impro02_M000", "neu", (3.0, 2.5, 2.5), "Okay.", 0.6),
    Turn("Ses02M_script02_2_F000", "hap", (4.0, 3.0, 3.0), "Oh, really?", 0.9),
    Turn("Ses02M_script02_2_M000", "ang", (1.0, 4.0, 4.5), "Get out.", 0.8),
]


def write_mini_iemocap(root: Path, turns: list[Turn] = MINI_TURNS, crlf: bool = True) -> Path:
    """Write an IEMOCAP_full_release-shaped tree; returns the root. Durations are exact sample counts."""
    by_dialog: dict[str, list[Turn]] = {}
    for turn in turns:
        by_dialog.setdefault(turn.dialog, []).append(turn)
    for i, (dialog, dturns) in enumerate(sorted(by_dialog.items())):
        session = dturns[0].session
        sdir = root / f"Session{session}"
        evals, trans, t = [EVAL_HEADER], [], 5.0
        for k, turn in enumerate(dturns):
            v, a, d = turn.vad
            evals.append(
                f"[{t:.4f} - {t + turn.seconds:.4f}]\t{turn.utt_id}\t{turn.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]\n"
                f"C-E2:\tNeutral;\t()\nA-E3:\tval 3; act 2; dom  2;\t()\n\n"
            )
            trans.append(f"{turn.utt_id} [{t:08.4f}-{t + turn.seconds:08.4f}]: {turn.text}\n")
            if k == 0:  # an unlabelled turn, as IEMOCAP has
                trans.append(f"{dialog}_MXX0 [{t:08.4f}-{t + 0.3:08.4f}]: Mm-hmm.\n")
            write_wav(sdir / "sentences" / "wav" / dialog / f"{turn.utt_id}.wav", turn.seconds, seed=k)
            t += turn.seconds + 0.5
        eol = "\r\n" if crlf and i % 2 == 0 else "\n"
        _write(sdir / "dialog" / "EmoEvaluation" / f"{dialog}.txt", "".join(evals), eol)
        _write(sdir / "dialog" / "transcriptions" / f"{dialog}.txt", "".join(trans), eol)
        # Traps: per-annotator files and macOS AppleDouble companions.
        _write(
            sdir / "dialog" / "EmoEvaluation" / "Categorical" / f"{dialog}_e1_cat.txt",
            f"[1.0000 - 2.0000]\t{dturns[0].utt_id}\tang\t[1.0000, 1.0000, 1.0000]\n",
            "\n",
        )
        (sdir / "dialog" / "EmoEvaluation" / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02junk")
        (sdir / "dialog" / "transcriptions" / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07\x00\x02junk")
    return root


def _write(path: Path, text: str, eol: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", eol).encode("utf-8"))


@pytest.fixture
def mini_iemocap(tmp_path: Path) -> Path:
    return write_mini_iemocap(tmp_path / "IEMOCAP_full_release")


REPO = Path(__file__).resolve().parents[1]

# The test files that take longest (pytest --durations: Snakemake runs end to end), longest first. With
# `pytest -n 2 --dist loadfile` each file runs whole on one worker, handed out in collection order (see
# pytest_configure): starting with the longest keeps one of them from being the last thing a worker does while the
# other worker idles. Files not listed follow in their usual order.
SLOW_FILES_FIRST = (
    "test_reruns.py",
    "test_reruns_code.py",
    "test_workflow_models.py",
    "test_workflow.py",
    "test_workflow_tess.py",
    "test_slurm.py",
    "test_workflow_speech.py",
    "test_dvc.py",
    "test_align_kaldi.py",
)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist orders --dist loadfile's files by their number of tests (most first) unless told not to: here the
    # order of pytest_collection_modifyitems (slowest first) is the better one.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: k for k, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FILES_FIRST)))  # stable: in-file order kept


def snakemake_command(workdir: Path, config: Path, *args: str, repo: Path = REPO, cores: int = 2) -> list[str]:
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    command = [snakemake, "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir)]
    return [*command, "--configfile", str(config), "--cores", str(cores), *args]


def run_snakemake(
    workdir: Path, config: Path, *args: str, repo: Path = REPO, cores: int = 2
) -> subprocess.CompletedProcess[str]:
    """The workflow of ``repo`` (this repository, or a copy of its code), run in ``workdir`` with ``config``
    (2 cores unless told, output captured)."""
    command = snakemake_command(workdir, config, *args, repo=repo, cores=cores)
    return subprocess.run(command, capture_output=True, text=True, cwd=repo)


WORKFLOW_CODE = ("Snakefile", "rules", "serflow", "workflow_scripts", "config", "envs", "report")


def copy_workflow(destination: Path) -> Path:
    """A copy of the workflow's code (not its data), for tests that edit a source file and watch what reruns."""
    import shutil

    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_CODE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, destination / name)
    return destination
