"""`serflow results`: the per-model table printed by `make demo`."""

from __future__ import annotations

import json
from pathlib import Path

from serflow.cli import main


def _result(model: str, ua: float, seeds: list[int]) -> dict:
    return {
        "corpus": "demo",
        "model": model,
        "protocol": "loso_session",
        "text_source": "gold",
        "labels": ["ang", "hap", "neu", "sad"],
        "label_merge": {"exc": "hap"},
        "n_folds": 5,
        "seeds": seeds,
        "wa": ua + 0.01,
        "wa_std": 0.02,
        "ua": ua,
        "ua_std": 0.03,
        "fold_std": {"ua": 0.05},
        "utterances": {"used": 900, "dropped": 2},
    }


def test_results_table_sorts_by_ua_and_shows_seed_spread(tmp_path: Path, capsys) -> None:
    for name, ua, seeds in [("wise_text", 0.43, [0, 1]), ("wise", 0.734, [0, 1])]:
        (tmp_path / f"demo_{name}.json").write_text(json.dumps(_result(name, ua, seeds)))
    assert main(["results", *map(str, sorted(tmp_path.glob("*.json")))]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "demo: loso_session, labels ang, hap, neu, sad (exc -> hap)"
    assert out[2].startswith("wise ") and "0.734 ± 0.030" in out[2] and "5 x 2" in out[2]
    assert out[3].startswith("wise_text")


def test_results_without_files_says_so(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["results"]) == 1
    assert "no result files" in capsys.readouterr().err
