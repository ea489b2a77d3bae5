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


def _tess_manifest(words: int = 20) -> pd.DataFrame:
    """TESS's shape: two actresses, each her own session, every word in all seven emotions."""
    emotions = ["angry", "disgust", "fear", "happy", "neutral", "ps", "sad"]
    rows = [
        {"utt_id": f"{spk}_w{w:03d}_{emo}", "session": session, "speaker": spk, "label": emo}
        for session, spk in ((1, "OAF"), (2, "YAF"))
        for w in range(words)
        for emo in emotions
    ]
    return pd.DataFrame(rows)


def test_random_split_is_one_stratified_70_15_15_fold() -> None:
    m = _tess_manifest()  # 40 per class: 28 / 6 / 6
    folds = make_folds(m, ["random_split"])
    assert folds["fold"].unique().tolist() == [1] and folds["test_group"].unique().tolist() == ["random"]
    assert folds["utt_id"].is_unique and set(folds["utt_id"]) == set(m["utt_id"])
    joined = folds.merge(m, on="utt_id")
    per_class = joined.groupby(["label", "split"]).size().unstack()
    assert (per_class["train"] == 28).all() and (per_class["valid"] == 6).all() and (per_class["test"] == 6).all()
    # Not speaker-independent: both actresses in every split.
    assert (joined.groupby("split")["speaker"].nunique() == 2).all()


def test_random_split_shares_seed_and_determinism() -> None:
    m = _tess_manifest(words=200)  # 400 per class, as TESS: 280 / 60 / 60
    a = make_folds(m, ["random_split"])
    counts = a["split"].value_counts().to_dict()
    assert counts == {"train": 1960, "valid": 420, "test": 420}
    shuffled = make_folds(m.sample(frac=1.0, random_state=3), ["random_split"])
    pd.testing.assert_frame_equal(a, shuffled)  # row order does not matter
    assert a.equals(make_folds(m, ["random_split"], seed=9))  # folds.seed is the LOSO protocols' seed, not this one
    other = make_folds(m, ["random_split"], random_split={"seed": 43})
    assert not a.equals(other) and other["split"].value_counts().to_dict() == counts
    small = make_folds(m, ["random_split"], random_split={"train": 0.8, "valid": 0.1})
    assert small["split"].value_counts().to_dict() == {"train": 2240, "valid": 280, "test": 280}
    with pytest.raises(ValueError, match=r"folds\.random_split"):
        make_folds(m, ["random_split"], random_split={"train": 0.9, "valid": 0.2})


def test_random_split_keeps_tiny_classes_whole() -> None:
    m = _tess_manifest(words=1)
    m = pd.concat([m, m.assign(utt_id=m["utt_id"] + "_b")], ignore_index=True)  # 4 per class
    folds = make_folds(m, ["random_split"])
    assert len(folds) == len(m) and set(folds["split"]) <= {"train", "valid", "test"}


def test_summary_says_which_protocols_are_speaker_independent() -> None:
    m = _tess_manifest()
    summary = fold_summary(make_folds(m, ["loso_speaker", "random_split"]), m)
    flags = summary.groupby("protocol")["speaker_independent"].unique().to_dict()
    assert {k: v.tolist() for k, v in flags.items()} == {"loso_speaker": [True], "random_split": [False]}
    assert summary.columns[:5].tolist() == ["protocol", "fold", "test_group", "speaker_independent", "split"]


def test_loso_speaker_on_tess_trains_on_one_actress_and_tests_on_the_other() -> None:
    """Each TESS actress is her own session, so there is no partner: validation is a stratified share of the
    training actress (folds.validation_fraction), and the other actress is the whole test set."""
    m = _tess_manifest()
    folds = make_folds(m, ["loso_speaker"], seed=0, validation_fraction=0.1)
    joined = folds.merge(m, on="utt_id")
    assert sorted(joined["test_group"].unique()) == ["OAF", "YAF"]
    for test_speaker, part in joined.groupby("test_group"):
        other = "YAF" if test_speaker == "OAF" else "OAF"
        assert set(part.loc[part["split"] == "test", "speaker"]) == {test_speaker}
        assert (part.loc[part["speaker"] == test_speaker, "split"] == "test").all()
        assert set(part.loc[part["split"] != "test", "speaker"]) == {other}
        valid = part[part["split"] == "valid"].groupby("label").size()
        assert len(valid) == 7 and (valid == 2).all()  # round(0.1 x 20) of each class
