"""The IEMOCAP reader on a full-size, IEMOCAP-shaped tree reproduces the published numbers exactly.

The tree (tests/fixtures/iemocap_tree.py) has the real layout, dialog names, label totals and traps;
the numbers below are the ones in shared/reference/iemocap.md, written out rather than taken from the
generator so that a generator bug cannot hide a reader bug.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

# The fixture package lives under tests/, which is not an installed package: make it importable
# however pytest was started (with or without tests/__init__.py, `pytest` or `python -m pytest`).
_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from serflow.corpora.iemocap import read_iemocap  # noqa: E402
from serflow.corpora.manifest import ReadResult  # noqa: E402
from tests.fixtures.iemocap_tree import (  # noqa: E402
    ExpectedFacts,
    build_full_iemocap_tree,
    four_class_label,
)

pytestmark = pytest.mark.slow

LABELS = ["ang", "hap", "neu", "sad"]
MERGE = {"exc": "hap"}
TOTAL_LABELLED = 10_039
FOUR_CLASS_TOTAL = 5_531
PER_CLASS = {"ang": 1_103, "hap": 1_636, "neu": 1_708, "sad": 1_084}
PER_SESSION = {1: 1_085, 2: 1_023, 3: 1_151, 4: 1_031, 5: 1_241}
PER_SESSION_CLASS = {
    1: {"ang": 229, "hap": 278, "neu": 384, "sad": 194},
    2: {"ang": 137, "hap": 327, "neu": 362, "sad": 197},
    3: {"ang": 240, "hap": 286, "neu": 320, "sad": 305},
    4: {"ang": 327, "hap": 303, "neu": 258, "sad": 143},
    5: {"ang": 170, "hap": 442, "neu": 384, "sad": 245},
}
RAW_TOTALS = {
    "neu": 1_708,
    "hap": 595,
    "exc": 1_041,
    "ang": 1_103,
    "sad": 1_084,
    "fru": 1_849,
    "xxx": 2_507,
    "sur": 107,
    "fea": 40,
    "dis": 2,
    "oth": 3,
}
SPEAKERS = {f"Ses{s:02d}{g}" for s in range(1, 6) for g in "FM"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> ExpectedFacts:
    return build_full_iemocap_tree(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release", seed=0)


@pytest.fixture(scope="module")
def result(tree: ExpectedFacts) -> ReadResult:
    return read_iemocap(tree.root, labels=LABELS, merge=MERGE)


@pytest.fixture(scope="module")
def manifest(result: ReadResult) -> pd.DataFrame:
    return result.manifest


@pytest.fixture(scope="module")
def joined(tree: ExpectedFacts, manifest: pd.DataFrame) -> pd.DataFrame:
    """Reader rows beside the expected facts (columns suffixed ``_exp``), one row per expected utterance."""
    expected = pd.DataFrame.from_dict({utt: facts._asdict() for utt, facts in tree.utterances.items()}, orient="index")
    expected.index.name = "utt_id"
    expected["audio_path"] = [str(tree.wav_path(utt).resolve()) for utt in expected.index]
    expected["label"] = [four_class_label(raw) for raw in expected["raw_label"]]
    return expected.add_suffix("_exp").join(manifest.set_index("utt_id"), how="left")


def _assert_all(ok: pd.Series, frame: pd.DataFrame, columns: list[str], what: str) -> None:
    """Fail with the first few offending rows, so a reader bug points at its input."""
    bad = frame.loc[~ok.to_numpy(), columns]
    assert bad.empty, f"{len(bad)} utterances with wrong {what}, e.g.:\n{bad.head(8).to_string()}"


def test_tree_has_the_published_counts_and_traps(tree: ExpectedFacts) -> None:
    # Guards the generator itself: if these drift, the reader assertions below prove nothing.
    assert tree.total_labelled == TOTAL_LABELLED
    assert tree.raw_label_counts == RAW_TOTALS
    assert tree.four_class_total == FOUR_CLASS_TOTAL
    assert tree.per_class == PER_CLASS
    assert tree.per_session == PER_SESSION
    assert tree.per_session_class == PER_SESSION_CLASS
    assert set(tree.speakers) == SPEAKERS
    assert len(tree.dialogs) == len(set(tree.dialogs)) == 151
    assert {"Ses01F_impro01", "Ses03M_impro05a", "Ses01M_script01_1", "Ses05M_script01_1b"} <= set(tree.dialogs)
    genders: dict[str, set[str]] = {dialog: set() for dialog in tree.dialogs}
    for facts in tree.utterances.values():
        genders[facts.dialog].add(facts.gender)
    # Both actors speak in every dialog, whoever wore the markers.
    assert all(found == {"F", "M"} for found in genders.values())
    texts = [f.transcript for f in tree.utterances.values()]
    assert any(t.count(":") >= 2 for t in texts)  # e.g. "Listen: it's 5:30 now."
    assert any("]: " in t for t in texts)  # only the FIRST "]: " of a line ends the time stamp
    assert any("[LAUGHTER]" in t for t in texts) and any('"' in t for t in texts)
    assert tree.unlabelled_turns
    assert {p.parent.name for p in tree.crlf_files} == {"EmoEvaluation", "transcriptions"}
    for path in tree.crlf_files:
        assert b"\r\n" in path.read_bytes()
    junk_places = {p.parent.name for p in tree.appledouble_files} | {
        p.parent.parent.name for p in tree.appledouble_files
    }
    assert {"EmoEvaluation", "transcriptions", "wav"} <= junk_places
    assert all(p.read_bytes()[:4] == b"\x00\x05\x16\x07" for p in tree.appledouble_files)
    assert {p.parent.name for p in tree.annotator_files} == {"Categorical", "Attribute", "Self-evaluation"}


def test_no_issues_recorded(result: ReadResult) -> None:
    issues = result.issues
    assert issues.empty, f"{len(issues)} issues on a clean tree, e.g.:\n{issues.head(10).to_string()}"


def test_row_and_label_counts(manifest: pd.DataFrame) -> None:
    assert len(manifest) == TOTAL_LABELLED
    assert manifest["utt_id"].is_unique
    assert int(manifest["label"].notna().sum()) == FOUR_CLASS_TOTAL
    assert manifest["label"].value_counts().to_dict() == PER_CLASS
    assert manifest["raw_label"].value_counts().to_dict() == RAW_TOTALS


def test_per_session_counts(manifest: pd.DataFrame) -> None:
    labelled = manifest[manifest["label"].notna()]
    assert {int(s): int(n) for s, n in labelled["session"].value_counts().items()} == PER_SESSION
    per_session_class = {int(s): group["label"].value_counts().to_dict() for s, group in labelled.groupby("session")}
    assert per_session_class == PER_SESSION_CLASS


def test_speakers_come_from_the_last_id_part(manifest: pd.DataFrame) -> None:
    assert set(manifest["speaker"]) == SPEAKERS
    last_letter = manifest["utt_id"].str.rsplit("_", n=1).str[-1].str[0]
    session = manifest["utt_id"].str[3:5]
    _assert_all(manifest["gender"] == last_letter, manifest, ["utt_id", "gender"], "gender")
    _assert_all(manifest["speaker"] == "Ses" + session + last_letter, manifest, ["utt_id", "speaker"], "speaker")
    # The letter in the dialog name (who wore the markers) must not decide: both appear in F dialogs.
    f_dialogs = manifest[manifest["dialog"].str[5] == "F"]
    assert set(f_dialogs["gender"]) == {"F", "M"}


def test_same_utterances_and_no_unlabelled_turns(tree: ExpectedFacts, manifest: pd.DataFrame) -> None:
    got = set(manifest["utt_id"])
    expected = set(tree.utterances)
    assert got == expected, (
        f"missing {sorted(expected - got)[:5]} ({len(expected - got)}), "
        f"unexpected {sorted(got - expected)[:5]} ({len(got - expected)})"
    )
    assert not got & set(tree.unlabelled_turns)


@pytest.mark.parametrize("column", ["session", "speaker", "gender", "dialog", "improvised", "raw_label"])
def test_identity_columns(joined: pd.DataFrame, column: str) -> None:
    _assert_all(joined[column] == joined[f"{column}_exp"], joined, [f"{column}_exp", column], column)


def test_merged_labels(joined: pd.DataFrame) -> None:
    same = (joined["label"] == joined["label_exp"]) | (joined["label"].isna() & joined["label_exp"].isna())
    _assert_all(same, joined, ["raw_label_exp", "label_exp", "label"], "label")


def test_transcripts_exact(joined: pd.DataFrame) -> None:
    # Exact equality: colons, quotes and [LAUGHTER] included, no CR left over from CRLF files.
    _assert_all(
        joined["transcript"] == joined["transcript_exp"], joined, ["transcript_exp", "transcript"], "transcript"
    )


@pytest.mark.parametrize(
    ("column", "tolerance"),
    [("valence", 1e-4), ("arousal", 1e-4), ("dominance", 1e-4), ("start", 1e-4), ("end", 1e-4)],
)
def test_numbers_from_emoevaluation(joined: pd.DataFrame, column: str, tolerance: float) -> None:
    close = (joined[column].astype(float) - joined[f"{column}_exp"].astype(float)).abs() <= tolerance
    _assert_all(close, joined, [f"{column}_exp", column], column)


def test_audio_from_wav_headers(joined: pd.DataFrame) -> None:
    close = (joined["duration"].astype(float) - joined["duration_exp"]).abs() <= 1e-6
    _assert_all(close, joined, ["duration_exp", "duration"], "duration")
    _assert_all(joined["sample_rate"] == 16_000, joined, ["sample_rate"], "sample rate")
    _assert_all(joined["channels"] == 1, joined, ["channels"], "channels")
    absolute = joined["audio_path"].map(lambda p: isinstance(p, str) and Path(p).is_absolute())
    _assert_all(absolute, joined, ["audio_path"], "audio path (not absolute)")
    same_file = joined["audio_path"].map(lambda p: str(Path(p).resolve()) if isinstance(p, str) else p)
    _assert_all(same_file == joined["audio_path_exp"], joined, ["audio_path_exp", "audio_path"], "audio path")
