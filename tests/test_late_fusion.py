"""Late fusion (lf): per fold and seed the average of its components' test outputs, scored like a trained fold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serflow.train.evaluate import evaluate_model
from serflow.train.late_fusion import fuse_fold
from serflow.train.run import FoldOutputs
from serflow.train.tasks import make_task

CLASSES = ("ang", "hap", "neu", "sad")


def component(folder: Path, name: str, probs: dict[str, list[float]], seeds=(0, 1), labels=None) -> Path:
    """A component run's fold folder: metrics.json and predictions.parquet as a train job writes them."""
    folder.mkdir(parents=True)
    record = {
        "corpus": "demo",
        "protocol": "loso_session",
        "fold": 1,
        "test_group": "Session1",
        "text_source": "gold",
        "labels": list(CLASSES),
        "label_merge": {},
        "model": name,
        "job": f"job-{name}",
        "seeds": [{"seed": s} for s in seeds],
        "train": {"seeds": list(seeds)},
    }
    (folder / "metrics.json").write_text(json.dumps(record))
    rows = []
    for seed in seeds:
        for utt, p in probs.items():
            row = {"utt_id": utt, "seed": seed, "label": (labels or {}).get(utt, "ang")}
            row.update({f"p_{c}": v for c, v in zip(CLASSES, p, strict=True)})
            row["prediction"] = CLASSES[int(np.argmax(p))]
            rows.append(row)
    pd.DataFrame(rows).to_parquet(folder / "predictions.parquet")
    return folder


def test_probabilities_are_averaged_and_scored(tmp_path: Path) -> None:
    labels = {"u1": "ang", "u2": "hap", "u3": "sad"}
    audio = component(
        tmp_path / "cnn14",
        "cnn14",
        {"u1": [0.6, 0.4, 0, 0], "u2": [0.7, 0.3, 0, 0], "u3": [0, 0, 0.5, 0.5]},
        labels=labels,
    )
    text = component(
        tmp_path / "bert",
        "bert",
        {"u1": [0.2, 0.8, 0, 0], "u2": [0.1, 0.9, 0, 0], "u3": [0, 0, 0.1, 0.9], "u4": [1, 0, 0, 0]},
        labels=labels,
    )
    out = FoldOutputs.under(tmp_path / "lf" / "fold1")
    record = fuse_fold({"cnn14": audio, "bert": text}, make_task("categorical", CLASSES), out)
    fused = pd.read_parquet(out.predictions)
    u1 = fused[(fused.utt_id == "u1") & (fused.seed == 0)].iloc[0]
    assert (u1.p_ang, u1.p_hap) == pytest.approx((0.4, 0.6)) and u1.prediction == "hap"  # bert's vote wins on u1
    assert fused[fused.utt_id == "u2"].prediction.tolist() == ["hap", "hap"]  # 0.4 / 0.6
    assert fused[fused.utt_id == "u3"].prediction.tolist() == ["sad", "sad"]  # 0.3 / 0.7
    # u4 only bert scored: left out, with the reason, and counted
    assert record["utterances"]["dropped_utterances"] == [
        {"utt_id": "u4", "split": "test", "reason": "not scored by every fused model"}
    ]
    assert record["wa"] == pytest.approx(2 / 3) and record["components"]["bert"]["job"] == "job-bert"
    results = evaluate_model([out.metrics])  # hashes checked: the fold reads as any trained fold
    assert results["model"] == "lf" and results["family"] == "late_fusion"


def test_regression_values_are_averaged(tmp_path: Path) -> None:
    task = make_task("arousal", CLASSES, (1, 5))
    for name, value in (("cnn14@arousal", 2.0), ("bert@arousal", 4.0)):
        folder = tmp_path / name
        folder.mkdir()
        record = {
            "corpus": "demo",
            "protocol": "p",
            "fold": 1,
            "test_group": "g",
            "text_source": "gold",
            "labels": list(CLASSES),
            "label_merge": {},
            "model": name,
            "seeds": [{"seed": 0}],
            "train": {},
        }
        (folder / "metrics.json").write_text(json.dumps(record))
        pd.DataFrame(
            {"utt_id": ["a", "b"], "seed": 0, "true_arousal": [3.0, 3.5], "pred_arousal": [value, value + 1]}
        ).to_parquet(folder / "predictions.parquet")
    out = FoldOutputs.under(tmp_path / "lf@arousal" / "fold1")
    fuse_fold({"a": tmp_path / "cnn14@arousal", "b": tmp_path / "bert@arousal"}, task, out, model="lf@arousal")
    assert pd.read_parquet(out.predictions).pred_arousal.tolist() == [3.0, 4.0]


def test_components_of_other_seeds_are_refused(tmp_path: Path) -> None:
    a = component(tmp_path / "a", "cnn14", {"u1": [1, 0, 0, 0]}, seeds=(0, 1))
    b = component(tmp_path / "b", "bert", {"u1": [1, 0, 0, 0]}, seeds=(0, 2))
    with pytest.raises(ValueError, match="bert was run with other seeds"):
        fuse_fold({"cnn14": a, "bert": b}, make_task("categorical", CLASSES), FoldOutputs.under(tmp_path / "lf"))
