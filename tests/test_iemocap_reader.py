"""The IEMOCAP reader on a small tree that carries every known trap."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import MINI_TURNS

from serflow.corpora.iemocap import read_iemocap
from serflow.corpora.manifest import MANIFEST_COLUMNS

FOUR = ["ang", "hap", "neu", "sad"]


@pytest.fixture
def result(mini_iemocap: Path):
    return read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"})


def test_every_labelled_turn_is_a_row(result) -> None:
    m = result.manifest
    assert list(m.columns) == list(MANIFEST_COLUMNS)
    assert sorted(m["utt_id"]) == sorted(t.utt_id for t in MINI_TURNS)
    assert result.issues.empty
    assert not m["utt_id"].str.contains("XX").any()


def test_labels_merge_and_out_of_map(result) -> None:
    m = result.manifest.set_index("utt_id")
    assert m.loc["Ses01F_impro01_M000", "raw_label"] == "exc"
    assert m.loc["Ses01F_impro01_M000", "label"] == "hap"
    assert pd.isna(m.loc["Ses01F_impro01_F001", "label"])  # fru is outside the class map
    assert pd.isna(m.loc["Ses01F_impro01_M001", "label"])  # xxx: no majority
    assert m["label"].notna().sum() == 9


def test_no_merge_keeps_exc_out(mini_iemocap: Path) -> None:
    m = read_iemocap(mini_iemocap, labels=FOUR, merge={}).manifest.set_index("utt_id")
    assert pd.isna(m.loc["Ses01F_impro01_M000", "label"])


def test_speaker_is_session_plus_last_part_gender(result) -> None:
    m = result.manifest.set_index("utt_id")
    # The F in the dialog name is who wore the markers; the M in the last part is who speaks.
    assert m.loc["Ses01F_impro01_M000", "speaker"] == "Ses01M"
    assert m.loc["Ses01F_impro01_M000", "gender"] == "M"
    assert m.loc["Ses01M_script01_1_F000", "speaker"] == "Ses01F"
    assert m.loc["Ses02M_script02_2_M000", "session"] == 2
    assert sorted(m["speaker"].unique()) == ["Ses01F", "Ses01M", "Ses02F", "Ses02M"]


def test_fields_are_exact(result) -> None:
    m = result.manifest.set_index("utt_id")
    for turn in MINI_TURNS:
        row = m.loc[turn.utt_id]
        assert row["transcript"] == turn.text  # colons after the first "]: " survive
        assert row["duration"] == pytest.approx(turn.seconds, abs=1e-9)
        assert (row["valence"], row["arousal"], row["dominance"]) == pytest.approx(turn.vad)
        assert row["dialog"] == turn.dialog
        assert row["improvised"] == ("_impro" in turn.dialog)
        assert Path(row["audio_path"]).is_absolute() and Path(row["audio_path"]).exists()
        assert row["sample_rate"] == 16000 and row["channels"] == 1
    assert m.loc["Ses01F_impro01_F000", "start"] == pytest.approx(5.0)
    assert m.loc["Ses01F_impro01_F000", "end"] == pytest.approx(6.25)


def test_reading_is_deterministic(mini_iemocap: Path) -> None:
    a = read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"}).manifest
    b = read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"}).manifest
    assert a.equals(b)
