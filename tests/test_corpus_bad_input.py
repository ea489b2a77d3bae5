"""Bad input never loses data silently: a clear error naming the file, or a quarantine row with a reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import MINI_TURNS, write_mini_iemocap, write_wav

from serflow.cli import main
from serflow.corpora.iemocap import read_iemocap
from serflow.corpora.manifest import CorpusError
from serflow.corpora.tess import read_tess

FOUR = ["ang", "hap", "neu", "sad"]
N_TURNS = len(MINI_TURNS)


def _read(root: Path):
    return read_iemocap(root, labels=FOUR, merge={"exc": "hap"})


def _wav(root: Path, utt_id: str) -> Path:
    dialog = utt_id.rsplit("_", 1)[0]
    return root / f"Session{int(utt_id[4])}" / "sentences" / "wav" / dialog / f"{utt_id}.wav"


def _reconciles(result) -> None:
    assert len(result.manifest) + result.n_dropped == N_TURNS


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"does not exist"):
        _read(tmp_path / "nowhere")


def test_wrong_root_suggests_the_release_folder(mini_iemocap: Path) -> None:
    with pytest.raises(CorpusError, match=r"does not look like IEMOCAP_full_release.*did you mean"):
        _read(mini_iemocap.parent)


def _break_line(mini_iemocap: Path) -> tuple[Path, int]:
    path = mini_iemocap / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro02.txt"
    lines = path.read_text().splitlines()
    target = next(i for i, line in enumerate(lines) if line.startswith("[") and "_M000" in line)
    lines[target] = lines[target].replace("\tneu\t", " neu [oops")
    path.write_text("\n".join(lines) + "\n")
    return path, target + 1


def test_unparseable_evaluation_line_is_quarantined_and_the_rest_read(mini_iemocap: Path) -> None:
    whole = _read(mini_iemocap)
    path, line = _break_line(mini_iemocap)
    result = _read(mini_iemocap)
    row = result.issues.loc[result.issues["line"] == line].iloc[0]
    assert row["action"] == "dropped" and row["utt_id"] == "Ses02F_impro02_M000" and row["path"] == str(path)
    assert "cannot parse EmoEvaluation line" in row["reason"]
    assert set(whole.manifest["utt_id"]) - set(result.manifest["utt_id"]) == {"Ses02F_impro02_M000"}
    assert len(result.manifest) + result.n_dropped == len(whole.manifest) + whole.n_dropped  # counts reconcile


def test_strict_reading_stops_at_the_bad_line_naming_file_and_line(mini_iemocap: Path) -> None:
    path, line = _break_line(mini_iemocap)
    with pytest.raises(CorpusError) as info:
        read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"}, strict=True)
    assert f"{path}:{line}" in str(info.value)


def test_evaluation_id_from_another_dialog_is_quarantined(mini_iemocap: Path) -> None:
    path = mini_iemocap / "Session2" / "dialog" / "EmoEvaluation" / "Ses02F_impro02.txt"
    path.write_text(path.read_text().replace("Ses02F_impro02_M000", "Ses01F_impro02_M000"))
    issues = _read(mini_iemocap).issues
    assert issues["reason"].str.contains("utterance id 'Ses01F_impro02_M000' is not of the form").any()
    with pytest.raises(CorpusError, match=r"Ses02F_impro02.txt:\d+: utterance id 'Ses01F_impro02_M000'"):
        read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"}, strict=True)


def test_a_stray_copy_of_a_label_file_is_skipped_not_fatal(mini_iemocap: Path) -> None:
    whole = _read(mini_iemocap)
    folder = mini_iemocap / "Session1" / "dialog" / "EmoEvaluation"
    (folder / "Ses01F_impro01 copy.txt").write_bytes((folder / "Ses01F_impro01.txt").read_bytes())
    result = _read(mini_iemocap)
    assert result.manifest.equals(whole.manifest)  # the copy's turns are neither read nor reported as duplicates
    skipped = result.issues.loc[result.issues["action"] == "skipped"]
    assert len(skipped) == 1 and skipped.iloc[0]["path"].endswith("Ses01F_impro01 copy.txt")
    assert "stray copy" in skipped.iloc[0]["reason"] and result.n_dropped == whole.n_dropped
    with pytest.raises(CorpusError, match=r"copy\.txt: not a dialog's file"):
        read_iemocap(mini_iemocap, labels=FOUR, merge={"exc": "hap"}, strict=True)


def test_a_wav_that_is_a_symlink_loop_says_so(mini_iemocap: Path) -> None:
    wav = next(mini_iemocap.glob("Session1/sentences/wav/*/Ses01F_impro01_F000.wav"))
    wav.unlink()
    wav.symlink_to(wav.name)  # points at itself
    row = _read(mini_iemocap).issues.set_index("utt_id").loc["Ses01F_impro01_F000"]
    assert row["action"] == "dropped" and "symlink loop" in row["reason"] and "missing" not in row["reason"]


def test_a_transcript_line_ending_in_the_colon_is_kept_with_an_empty_transcript(mini_iemocap: Path) -> None:
    path = mini_iemocap / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    text = path.read_bytes().decode()
    path.write_bytes(text.replace("]: Excuse me.", "]:").encode())
    result = _read(mini_iemocap)
    row = result.manifest.set_index("utt_id").loc["Ses01F_impro01_F000"]
    assert row["transcript"] == ""  # kept: audio models use it, text stores drop it with their own reason
    note = result.issues.set_index("utt_id").loc["Ses01F_impro01_F000"]
    assert note["action"] == "noted" and "empty transcript" in note["reason"]
    assert "no line in transcriptions" not in " ".join(result.issues["reason"])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda p: p.unlink(), "audio file missing"),
        (lambda p: p.write_bytes(b"this is not audio" * 20), "audio file unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:2000]), "audio file truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:44]), "holds no samples"),
    ],
)
def test_bad_wav_is_quarantined_with_reason(mini_iemocap: Path, damage, reason: str, tmp_path: Path) -> None:
    utt = "Ses01M_script01_1_F000"
    damage(_wav(mini_iemocap, utt))
    result = _read(mini_iemocap)
    assert utt not in set(result.manifest["utt_id"])
    row = result.issues.set_index("utt_id").loc[utt]
    assert row["action"] == "dropped" and reason in row["reason"] and row["path"].endswith(f"{utt}.wav")
    _reconciles(result)
    assert "1 quarantined" in result.summary()


def test_cli_writes_issues_tsv_and_prints_count(mini_iemocap: Path, tmp_path: Path, capsys) -> None:
    _wav(mini_iemocap, "Ses02F_impro02_F000").unlink()
    out = tmp_path / "out" / "manifest.parquet"
    assert main(["corpus", "manifest", "--format", "iemocap", "--root", str(mini_iemocap), "--out", str(out)]) == 0
    issues = pd.read_csv(tmp_path / "out" / "manifest_issues.tsv", sep="\t")
    assert issues["utt_id"].tolist() == ["Ses02F_impro02_F000"]
    assert len(pd.read_parquet(out)) == N_TURNS - 1
    assert "1 quarantined" in capsys.readouterr().out


def test_cli_names_the_problem_and_exits_2(tmp_path: Path, capsys) -> None:
    code = main(["corpus", "manifest", "--format", "iemocap", "--root", str(tmp_path / "x"), "--out", "m.parquet"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


def test_duplicate_utterance_ids_are_quarantined_naming_both(mini_iemocap: Path) -> None:
    path = mini_iemocap / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    text = path.read_bytes().decode()
    path.write_bytes((text + "[30.0000 - 31.0000]\tSes01F_impro01_F000\tang\t[1.0000, 4.0000, 4.0000]\r\n").encode())
    result = _read(mini_iemocap)
    dup = result.issues[result.issues["utt_id"] == "Ses01F_impro01_F000"]
    assert len(dup) == 2 and set(dup["action"]) == {"dropped"}
    assert all("occurs 2 times" in r and "Ses01F_impro01.txt:3" in r for r in dup["reason"])
    assert "Ses01F_impro01_F000" not in set(result.manifest["utt_id"])
    assert len(result.manifest) == N_TURNS - 1


def test_non_utf8_transcript_is_repaired_and_recorded(mini_iemocap: Path) -> None:
    path = mini_iemocap / "Session2" / "dialog" / "transcriptions" / "Ses02F_impro02.txt"
    raw = path.read_bytes().replace(b"I miss her.", b"I miss her caf\xe9.")
    path.write_bytes(raw)
    result = _read(mini_iemocap)
    m = result.manifest.set_index("utt_id")
    assert m.loc["Ses02F_impro02_F000", "transcript"] == "I miss her café."
    row = result.issues.set_index("utt_id").loc["Ses02F_impro02_F000"]
    assert row["action"] == "repaired"
    column = raw.split(b"\n")[0].index(b"\xe9") + 1
    assert f"b'\\xe9' at column {column}," in row["reason"]
    assert int(row["line"]) == 1
    assert len(result.manifest) == N_TURNS  # repaired, not dropped


def test_labelled_turn_without_transcript_is_quarantined(mini_iemocap: Path) -> None:
    path = mini_iemocap / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    kept = [line for line in path.read_bytes().split(b"\n") if not line.startswith(b"Ses01F_impro01_M001 ")]
    path.write_bytes(b"\n".join(kept))
    result = _read(mini_iemocap)
    row = result.issues.set_index("utt_id").loc["Ses01F_impro01_M001"]
    assert "no line in transcriptions/Ses01F_impro01.txt" in row["reason"]
    _reconciles(result)


def test_conflicting_transcripts_are_quarantined(tmp_path: Path) -> None:
    root = write_mini_iemocap(tmp_path / "IEMOCAP_full_release", crlf=False)
    path = root / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    path.write_text(path.read_text() + "Ses01F_impro01_F000 [005.0000-006.2500]: Something else.\n")
    result = _read(root)
    assert "conflicting" in result.issues.set_index("utt_id").loc["Ses01F_impro01_F000", "reason"]
    _reconciles(result)


# --- TESS ---------------------------------------------------------------------------------------


def _tess(root: Path) -> Path:
    for spk in ("OAF", "YAF"):
        for word in ("back", "bar"):
            for emo, folder in (("angry", "angry"), ("ps", "Pleasant_surprise"), ("neutral", "neutral")):
                write_wav(root / f"{spk}_{folder}" / f"{spk}_{word}_{emo}.wav", 0.5, seed=hash((spk, word)) % 100)
    return root


def test_tess_reads_names_and_carrier_phrase(tmp_path: Path) -> None:
    result = read_tess(_tess(tmp_path / "TESS"))
    m = result.manifest.set_index("utt_id")
    assert len(m) == 12 and result.issues.empty
    assert m.loc["OAF_back_ps", "transcript"] == "Say the word back."
    assert m.loc["YAF_bar_angry", "speaker"] == "YAF" and m.loc["YAF_bar_angry", "session"] == 2
    assert set(m["label"]) == {"angry", "ps", "neutral"}


def test_tess_aliases_bad_names_and_duplicate_copies(tmp_path: Path) -> None:
    root = _tess(tmp_path / "TESS")
    nested = root / "TESS Toronto emotional speech set data" / "OAF_angry"
    nested.mkdir(parents=True)
    (nested / "OAF_back_angry.wav").write_bytes((root / "OAF_angry" / "OAF_back_angry.wav").read_bytes())
    write_wav(nested / "OAF_bar_angry.wav", 0.7, seed=99)  # same id, different audio
    write_wav(root / "YAF_neutral" / "YAF_dog_pleasant_surprised.wav", 0.5)
    write_wav(root / "extra" / "notes.wav", 0.5)
    result = read_tess(root)
    issues = result.issues
    assert "byte-identical copy" in issues.loc[issues["utt_id"] == "OAF_back_angry", "reason"].item()
    assert (issues["utt_id"] == "OAF_bar_angry").sum() == 2
    assert issues["utt_id"].isna().sum() == 1  # notes.wav: name does not parse
    m = result.manifest.set_index("utt_id")
    assert m.loc["YAF_dog_ps", "raw_label"] == "ps"
    assert "OAF_bar_angry" not in m.index
    assert len(m) == 12 - 1 + 1


def test_tess_missing_root(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="TESS root"):
        read_tess(tmp_path / "none")
