"""What a researcher meets the next day: one-line errors from the CLI, plain `snakemake` building every corpus
that has data, and a workflow that `snakemake --lint` finds clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_snakemake, write_mini_iemocap

from serflow.cli import main


def test_an_unknown_model_is_one_line_with_the_closest_name(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["train", "--model", "wyse", "--corpus", "demo", "--fold", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("serflow train: error: unknown model 'wyse'; did you mean 'wise'?")
    assert len(err.strip().splitlines()) == 1


def test_plain_snakemake_builds_a_configured_copy_too(tmp_path: Path) -> None:
    """With corpora.iemocap.root set, rule all asks for IEMOCAP's results and report beside the demo's."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["iemocap"]["root"] = str(write_mini_iemocap(tmp_path / "IEMOCAP_full_release"))
    config["train"]["models"] = ["wise", "gban_speech"]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = run_snakemake(tmp_path, path, "-n")
    assert done.returncode == 0, done.stderr[-3000:]
    for target in ("results/iemocap_wise.json", "results/iemocap_wise+asr.json", "results/iemocap_gban_speech.json",
                   "results/report/iemocap/runtime.tsv", "results/demo_wise.json"):  # fmt: skip
        assert target in done.stdout, target
    assert "results/iemocap_gban_speech+asr.json" not in done.stdout  # audio only: one run
    assert "results/tess_" not in done.stdout  # no root: not built


def test_a_finished_fold_is_one_line_on_the_terminal(capsys: pytest.CaptureFixture) -> None:
    from serflow.logs import console
    from serflow.train.run import fold_line

    record = {"protocol": "loso_session", "fold": 2, "test_group": "Session2", "ua": 0.6123, "wa": 0.64, "seeds": [{}]}
    line = fold_line("demo", "bert+asr", record, 41.2)
    assert line == "demo bert+asr loso_session fold 2 (Session2): UA 0.612 WA 0.640, 1 seed, 41 s"
    dimensional = {"protocol": "loso_session", "fold": 1, "ccc": 0.41, "seeds": [{}, {}]}
    assert fold_line("demo", "bert@vad", dimensional, 3).endswith("fold 1: CCC 0.410, 2 seeds, 3 s")
    console(line)
    assert capsys.readouterr().err == ""  # past pytest's capture too: it goes to the real terminal, not sys.stderr
