"""The ``serflow`` entry point: installed, and --help on every subcommand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serflow.cli import build_parser

SUBCOMMANDS = [
    [],
    ["corpus"],
    ["corpus", "manifest"],
    ["corpus", "describe"],
    ["corpus", "folds"],
    ["corpus", "synth"],
    ["corpus", "baseline"],
    ["transcribe"],
    ["align"],
    ["train"],
    ["evaluate"],
    ["results"],
    ["compare"],
    ["models"],
    ["models", "list"],
    ["models", "describe"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "serflow")
def test_help_everywhere(words: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*words, "--help"])
    assert exit_info.value.code == 0
    assert "usage: serflow" in capsys.readouterr().out


def test_every_subcommand_is_covered() -> None:
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps no public accessor
    for command in ("corpus", "models"):
        steps = set(commands[command]._subparsers._group_actions[0].choices)
        assert steps == {w[1] for w in SUBCOMMANDS if len(w) == 2 and w[0] == command}
    assert set(commands) == {w[0] for w in SUBCOMMANDS if w}, "add new commands to SUBCOMMANDS"


def test_console_script_is_installed() -> None:
    exe = str(Path(sys.executable).with_name("serflow"))  # the venv running the tests
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("serflow ")
