"""Speaker-independent folds: no leakage, stratified validation, deterministic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serflow.corpora.folds import fold_summary, make_folds

CLASSES = ["ang", "hap", "neu", "sad"]


def _manifest(n_per_speaker: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for session in range(1, 6):
        for gender in "FM":
            for i in range(n_per_speaker):
                label = CLASSES[int(rng.integers(4))] if i % 7 else None  # some unlabelled turns
                rows.append(
                    {
                        "utt_id": f"Ses0{session}F_impro01_{gender}{i:03d}",
                        "session": session,
                        "speaker": f"Ses0{session}{gender}",
                        "label": label,
                    }
                )
    return pd.DataFrame(rows)


def test_loso_session_layout_and_no_leakage() -> None:
    m = _manifest()
    folds = make_folds(m, ["loso_session"], seed=3, validation_fraction=0.1)
    labelled = set(m.loc[m["label"].notna(), "utt_id"])
    session = m.set_index("utt_id")["session"]
    assert sorted(folds["fold"].unique()) == [1, 2, 3, 4, 5]
    for fold, part in folds.groupby("fold"):
        assert set(part["utt_id"]) == labelled  # every labelled utterance exactly once per fold
        assert part["utt_id"].is_unique
        test_sessions = set(session[part.loc[part["split"] == "test", "utt_id"]])
        assert test_sessions == {fold}
        assert part["test_group"].unique().tolist() == [f"Session{fold}"]
        others = set(session[part.loc[part["split"] != "test", "utt_id"]])
        assert fold not in others


def test_validation_is_a_stratified_fraction() -> None:
    m = _manifest(n_per_speaker=100)
    folds = make_folds(m, ["loso_session"], seed=0, validation_fraction=0.1)
    joined = folds.merge(m[["utt_id", "label"]], on="utt_id")
    for _, part in joined.groupby("fold"):
        pool = part[part["split"] != "test"]
        per_class = pool.groupby("label")["split"].apply(lambda s: (s == "valid").mean())
        assert per_class.between(0.08, 0.12).all(), per_class


def test_loso_speaker_validates_on_the_partner() -> None:
    m = _manifest()
    folds = make_folds(m, ["loso_speaker"], seed=0)
    speaker = m.set_index("utt_id")["speaker"]
    assert folds["fold"].nunique() == 10
    for _, part in folds.groupby("fold"):
        test_spk = set(speaker[part.loc[part["split"] == "test", "utt_id"]])
        valid_spk = set(speaker[part.loc[part["split"] == "valid", "utt_id"]])
        assert len(test_spk) == 1 and len(valid_spk) == 1
        (t,), (v,) = test_spk, valid_spk
        assert t[:5] == v[:5] and t != v  # same session, the other speaker


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    m = _manifest()
    a = make_folds(m, seed=1)
    b = make_folds(m.sample(frac=1.0, random_state=7), seed=1)  # row order must not matter
    c = make_folds(m, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_single_speaker_sessions_fall_back_to_a_fraction() -> None:
    m = _manifest()
    m = m[~((m["session"] == 5) & (m["speaker"] == "Ses05M"))]
    folds = make_folds(m, ["loso_speaker"], seed=0)
    part = folds[folds["test_group"] == "Ses05F"]
    speaker = m.set_index("utt_id")["speaker"]
    assert speaker[part.loc[part["split"] == "valid", "utt_id"]].nunique() > 1


def test_errors_are_explicit() -> None:
    m = _manifest()
    with pytest.raises(ValueError, match="unknown fold protocol 'random'"):
        make_folds(m, ["random"])
    with pytest.raises(ValueError, match="validation_fraction"):
        make_folds(m, validation_fraction=0.0)
    with pytest.raises(ValueError, match="no utterance has a label"):
        make_folds(m.assign(label=None))


def test_summary_counts_every_row() -> None:
    m = _manifest()
    folds = make_folds(m, seed=0)
    summary = fold_summary(folds, m)
    assert summary[CLASSES].to_numpy().sum() == len(folds)
