"""Alignment I/O: TextGrids, MFA's corpus layout, IEMOCAP's .wdseg/.phseg, the output tables, the MFA backend.

Fixtures are written by hand in the exact on-disk formats (MFA 3's long TextGrid with its trailing
spaces, Praat's short format, IEMOCAP's right-aligned Sphinx segment files with header and footer),
because the readers' job is to survive the real files, not files shaped like our own writer's output.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import write_wav

from serflow.align.corpus_view import build_corpus_view, read_corpus_dir
from serflow.align.iemocap_backend import align_from_iemocap
from serflow.align.mfa_backend import (
    MfaNotFound,
    align_with_mfa,
    collect_mfa_output,
    mfa_command,
    mfa_status,
)
from serflow.align.tables import (
    FAILURES_SCHEMA,
    OOV_SCHEMA,
    PHONES_SCHEMA,
    WORDS_SCHEMA,
    alignment_tables,
    check_alignment,
    failures_table,
    oov_table,
    write_textgrids,
)
from serflow.align.textgrid import (
    alignment_from_textgrid,
    load_textgrid,
    parse_textgrid,
    read_alignment,
    read_textgrid,
    textgrid_text,
    write_textgrid,
)
from serflow.align.types import AlignItem, AlignResult, Failure, Oov, Phone, UttAlignment, Word

# ----------------------------------------------------------------------------------------------
# TextGrid fixtures

# What `mfa align` (MFA 3, default long_textgrid, cleaned-up silences) writes for "the cat zyxx sat",
# where "zyxx" is not in the dictionary and is aligned to spoken noise. Note the trailing spaces.
MFA3_TEXTGRID = """\
File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = 2.43 
tiers? <exists> 
size = 2 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "words" 
        xmin = 0 
        xmax = 2.43 
        intervals: size = 7 
        intervals [1]:
            xmin = 0.0 
            xmax = 0.35 
            text = "" 
        intervals [2]:
            xmin = 0.35 
            xmax = 0.47 
            text = "the" 
        intervals [3]:
            xmin = 0.47 
            xmax = 0.81 
            text = "cat" 
        intervals [4]:
            xmin = 0.81 
            xmax = 0.95 
            text = "" 
        intervals [5]:
            xmin = 0.95 
            xmax = 1.4 
            text = "zyxx" 
        intervals [6]:
            xmin = 1.4 
            xmax = 1.92 
            text = "sat" 
        intervals [7]:
            xmin = 1.92 
            xmax = 2.43 
            text = "" 
    item [2]:
        class = "IntervalTier" 
        name = "phones" 
        xmin = 0 
        xmax = 2.43 
        intervals: size = 12 
        intervals [1]:
            xmin = 0.0 
            xmax = 0.35 
            text = "" 
        intervals [2]:
            xmin = 0.35 
            xmax = 0.41 
            text = "DH" 
        intervals [3]:
            xmin = 0.41 
            xmax = 0.47 
            text = "AH0" 
        intervals [4]:
            xmin = 0.47 
            xmax = 0.58 
            text = "K" 
        intervals [5]:
            xmin = 0.58 
            xmax = 0.72 
            text = "AE1" 
        intervals [6]:
            xmin = 0.72 
            xmax = 0.81 
            text = "T" 
        intervals [7]:
            xmin = 0.81 
            xmax = 0.95 
            text = "" 
        intervals [8]:
            xmin = 0.95 
            xmax = 1.4 
            text = "spn" 
        intervals [9]:
            xmin = 1.4 
            xmax = 1.55 
            text = "S" 
        intervals [10]:
            xmin = 1.55 
            xmax = 1.8 
            text = "AE1" 
        intervals [11]:
            xmin = 1.8 
            xmax = 1.92 
            text = "T" 
        intervals [12]:
            xmin = 1.92 
            xmax = 2.43 
            text = "" 
"""  # noqa: W291

EXPECTED_MFA3 = UttAlignment(
    "utt1",
    (
        Word("the", 0.35, 0.47, (Phone("DH", 0.35, 0.41), Phone("AH", 0.41, 0.47))),
        Word("cat", 0.47, 0.81, (Phone("K", 0.47, 0.58), Phone("AE", 0.58, 0.72), Phone("T", 0.72, 0.81))),
        Word("zyxx", 0.95, 1.4, (Phone("spn", 0.95, 1.4),)),
        Word("sat", 1.4, 1.92, (Phone("S", 1.4, 1.55), Phone("AE", 1.55, 1.8), Phone("T", 1.8, 1.92))),
    ),
)

# Praat's short format (what "Save as short text file" writes), with a point tier and a quoted quote.
SHORT_TEXTGRID = """\
File type = "ooTextFile"
Object class = "TextGrid"

0
1.5
<exists>
3
"IntervalTier"
"words"
0
1.5
3
0
0.2
""
0.2
1.1
"Hello"
1.1
1.5
""
"IntervalTier"
"phones"
0
1.5
5
0
0.2
"sil"
0.2
0.5
"HH"
0.5
0.8
"AH0"
0.8
1.1
"L OW1"
1.1
1.5
"sil"
"TextTier"
"notes"
0
1.5
1
0.7
QUOTED_MARK
""".replace("QUOTED_MARK", '"he said ""hi"""')


def test_mfa3_textgrid_is_read_into_the_expected_alignment(tmp_path: Path) -> None:
    path = tmp_path / "utt1.TextGrid"
    path.write_text(MFA3_TEXTGRID, encoding="utf-8")
    tiers = read_textgrid(path)
    assert list(tiers) == ["words", "phones"]
    assert tiers["words"][0] == (0.0, 0.35, "")
    assert len(tiers["phones"]) == 12
    assert alignment_from_textgrid("utt1", tiers, path) == EXPECTED_MFA3
    assert read_alignment(path) == EXPECTED_MFA3  # utt_id from the file name


# The same file as our writer produces it: identical but for the stress digits, which alignments drop.
MFA3_UNSTRESSED = re.sub(r'"([A-Z]+)[0-2]"', r'"\1"', MFA3_TEXTGRID)


def test_writer_reproduces_mfa3_bytes_exactly() -> None:
    assert MFA3_UNSTRESSED != MFA3_TEXTGRID
    assert textgrid_text(EXPECTED_MFA3, 2.43) == MFA3_UNSTRESSED


def _relabel(text: str, tier: int, interval: int, label: str) -> str:
    """A long-format TextGrid with one interval's text replaced (tier 1 = words, 2 = phones)."""
    marker = f"    item [{tier}]:\n"
    head, _, rest = text.partition(marker)
    at = rest.index("text = ", rest.index(f"        intervals [{interval}]:\n"))
    return head + marker + rest[:at] + f'text = "{label}" ' + rest[rest.index("\n", at) :]


def test_uncleaned_sil_phones_and_eps_words_are_silence() -> None:
    text = _relabel(_relabel(MFA3_TEXTGRID, 2, 7, "sil"), 1, 4, "<eps>")
    assert '"sil"' in text and '"<eps>"' in text
    assert alignment_from_textgrid("utt1", parse_textgrid(text).tiers) == EXPECTED_MFA3


def test_round_trip_write_then_read(tmp_path: Path) -> None:
    path = tmp_path / "spk" / "utt1.TextGrid"
    write_textgrid(EXPECTED_MFA3, 2.43, path)
    grid = load_textgrid(path)
    assert (grid.xmin, grid.xmax) == (0.0, 2.43)
    assert alignment_from_textgrid("utt1", grid.tiers, path) == EXPECTED_MFA3
    # Every tier covers the file without gaps.
    for intervals in grid.tiers.values():
        assert intervals[0][0] == 0.0 and intervals[-1][1] == 2.43
        assert all(a[1] == b[0] for a, b in itertools.pairwise(intervals))


def test_round_trip_with_a_word_at_time_zero_and_quotes(tmp_path: Path) -> None:
    u = UttAlignment("u", (Word('say "x"', 0.0, 0.3, (Phone("S", 0.0, 0.1), Phone("EY", 0.1, 0.3))),))
    path = tmp_path / "u.TextGrid"
    write_textgrid(u, 0.3, path)
    tiers = read_textgrid(path)
    assert tiers["words"] == [(0.0, 0.3, 'say "x"')]
    assert alignment_from_textgrid("u", tiers) == u


def test_short_format(tmp_path: Path) -> None:
    path = tmp_path / "short.TextGrid"
    path.write_text(SHORT_TEXTGRID, encoding="utf-8")
    tiers = read_textgrid(path)
    assert tiers["notes"] == [(0.7, 0.7, 'he said "hi"')]
    assert tiers["phones"][3] == (0.8, 1.1, "L OW1")


def test_short_format_alignment_and_long_format_agree(tmp_path: Path) -> None:
    text = SHORT_TEXTGRID.replace('"L OW1"', '"L"').replace('0.8\n1.1\n"L"', '0.8\n1.1\n"L"')
    short = tmp_path / "short.TextGrid"
    short.write_text(text, encoding="utf-8")
    u = read_alignment(short, "x")
    assert u.words[0].word == "hello"
    assert [p.phone for p in u.words[0].phones] == ["HH", "AH", "L"]
    long_path = tmp_path / "long.TextGrid"
    write_textgrid(u, 1.5, long_path)
    assert read_alignment(long_path, "x") == u


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le", "utf-8-sig"])
def test_utf16_and_bom_files(tmp_path: Path, encoding: str) -> None:
    u = UttAlignment("u", (Word("café", 0.1, 0.5, (Phone("K", 0.1, 0.2), Phone("AE", 0.2, 0.5))),))
    path = tmp_path / "u.TextGrid"
    path.write_bytes(textgrid_text(u, 0.6).encode(encoding))
    if encoding == "utf-16":
        assert path.read_bytes()[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    assert read_alignment(path) == u


def test_word_without_phones_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.TextGrid"
    text = MFA3_TEXTGRID
    for interval in (4, 5, 6):  # the phones of "cat" become silence
        text = _relabel(text, 2, interval, "")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.TextGrid.*'cat'.*no phones"):
        read_alignment(path)


def test_phones_that_do_not_tile_their_word_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "gap.TextGrid"
    path.write_text(MFA3_TEXTGRID.replace("xmin = 0.41 ", "xmin = 0.43 "), encoding="utf-8")
    with pytest.raises(ValueError, match=r"gap\.TextGrid.*'the'.*gap"):
        read_alignment(path)


def test_phone_across_a_word_boundary(tmp_path: Path) -> None:
    path = tmp_path / "cross.TextGrid"
    text = MFA3_TEXTGRID.replace('xmax = 0.47 \n            text = "AH0"', 'xmax = 0.5 \n            text = "AH0"')
    path.write_text(text.replace("xmin = 0.47 \n            xmax = 0.58", "xmin = 0.5 \n            xmax = 0.58"))
    with pytest.raises(
        ValueError, match=r"cross\.TextGrid.*'AH' \[0.41, 0.5\] is inside no word \(it overlaps 'the' .* and 'cat'"
    ):
        read_alignment(path)


def test_missing_tier_and_not_a_textgrid(tmp_path: Path) -> None:
    path = tmp_path / "words_only.TextGrid"
    path.write_text(MFA3_TEXTGRID.replace('name = "phones"', 'name = "tones"'), encoding="utf-8")
    with pytest.raises(ValueError, match=r"words_only\.TextGrid: no 'phones' tier"):
        read_alignment(path)
    other = tmp_path / "pitch.TextGrid"
    other.write_text('File type = "ooTextFile"\nObject class = "Pitch 1"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"pitch\.TextGrid.*not 'TextGrid'"):
        read_textgrid(other)
    truncated = tmp_path / "cut.TextGrid"
    truncated.write_text(MFA3_TEXTGRID[:1200], encoding="utf-8")
    with pytest.raises(ValueError, match=r"cut\.TextGrid"):
        read_textgrid(truncated)


def test_truncations_praatio_reads_silently_are_errors() -> None:
    """praatio stops reading a short-format tier where the file ends; the checks around it notice."""
    two_tiers = SHORT_TEXTGRID.replace("<exists>\n3", "<exists>\n2")
    inside_tier = two_tiers[: two_tiers.index('"HH"')]  # cut at an interval boundary of the last tier
    with pytest.raises(ValueError, match=r"short\.TextGrid: tier 'phones' ends at 0\.2 s, not at its xmax 1\.5"):
        parse_textgrid(inside_tier, "short.TextGrid")
    between_tiers = MFA3_TEXTGRID[: MFA3_TEXTGRID.index("    item [2]:")]
    with pytest.raises(ValueError, match=r"long\.TextGrid: 2 tiers declared but 1 found"):
        parse_textgrid(between_tiers, "long.TextGrid")
    with pytest.raises(ValueError, match=r"dup\.TextGrid: a second tier named 'words'"):
        parse_textgrid(MFA3_TEXTGRID.replace('name = "phones"', 'name = "words"'), "dup.TextGrid")
    # A last label that no newline ends is still read (Praat always ends the file with one).
    assert parse_textgrid(SHORT_TEXTGRID.rstrip("\n")).tiers["notes"] == [(0.7, 0.7, 'he said "hi"')]


def test_writer_writes_whole_number_times_as_mfa_does() -> None:
    u = UttAlignment("u", (Word("hi", 0.0, 1.0, (Phone("HH", 0.0, 0.5), Phone("AY", 0.5, 1.0))),))
    text = textgrid_text(u, 2)
    assert "\nxmin = 0 \nxmax = 2.0 \n" in text  # the grid's xmin is MFA's literal 0, every other time a float
    assert "        xmin = 0 \n        xmax = 2.0 \n" in text
    assert "            xmin = 0.0 \n            xmax = 0.5 \n" in text
    assert "            xmin = 1.0 \n            xmax = 2.0 \n" in text
    assert alignment_from_textgrid("u", parse_textgrid(text).tiers) == u


def test_speaker_prefixed_tiers_are_accepted() -> None:
    tiers = {"spk1 - words": [(0.0, 0.2, "hi")], "spk1 - phones": [(0.0, 0.1, "HH"), (0.1, 0.2, "AY1")]}
    u = alignment_from_textgrid("u", tiers)
    assert [p.phone for p in u.words[0].phones] == ["HH", "AY"]


def test_writer_clips_an_overshooting_end_and_refuses_words_past_the_end(tmp_path: Path) -> None:
    u = UttAlignment("u", (Word("hi", 0.1, 0.305, (Phone("HH", 0.1, 0.2), Phone("AY", 0.2, 0.305))),))
    path = tmp_path / "u.TextGrid"
    write_textgrid(u, 0.3, path)  # one frame-ish overshoot: clipped to the file, as MFA does
    assert read_textgrid(path)["phones"][-1] == (0.2, 0.3, "AY")
    with pytest.raises(ValueError, match=r"utt1: interval 'sat' starts at 1\.4 s, at or past the file's end 1\.4 s"):
        write_textgrid(EXPECTED_MFA3, 1.4, tmp_path / "x.TextGrid")
    assert not (tmp_path / "x.TextGrid").exists()


# ----------------------------------------------------------------------------------------------
# Corpus view


def _items(tmp_path: Path) -> list[AlignItem]:
    audio = tmp_path / "audio"
    for name, seconds in (("a1", 0.5), ("a2", 0.4), ("b1", 0.3)):
        write_wav(audio / f"{name}.wav", seconds)
    return [
        AlignItem("a1", "spkA", audio / "a1.wav", "Hello there."),
        AlignItem("a2", "spkA", audio / "a2.wav", "Two\nlines"),
        AlignItem("b1", "spkB", audio / "b1.wav", "Bye"),
        AlignItem("gone", "spkB", audio / "gone.wav", "missing audio"),
        AlignItem("blank", "spkB", audio / "a1.wav", "   "),
    ]


def test_corpus_view_symlinks_and_labs(tmp_path: Path) -> None:
    items = _items(tmp_path)
    corpus = tmp_path / "corpus"
    failures = build_corpus_view(items, corpus)
    assert sorted(f.utt_id for f in failures) == ["blank", "gone"]
    assert next(f.reason for f in failures if f.utt_id == "gone").startswith("audio file missing: ")
    link = corpus / "spkA" / "a1.wav"
    assert link.is_symlink() and link.resolve() == (tmp_path / "audio" / "a1.wav").resolve()
    assert (corpus / "spkA" / "a2.lab").read_text(encoding="utf-8") == "Two lines\n"
    assert sorted(p.name for p in (corpus / "spkB").iterdir()) == ["b1.lab", "b1.wav"]
    # Nothing was copied: the audio folder still holds the only real wav files.
    assert not any(p.is_file() and not p.is_symlink() for p in corpus.rglob("*.wav"))

    read, problems = read_corpus_dir(corpus)
    assert problems == []
    assert [(i.utt_id, i.speaker, i.text) for i in read] == [
        ("a1", "spkA", "Hello there."),
        ("a2", "spkA", "Two lines"),
        ("b1", "spkB", "Bye"),
    ]


def test_corpus_view_rebuild_drops_stale_entries_and_keeps_real_files(tmp_path: Path) -> None:
    items = _items(tmp_path)
    corpus = tmp_path / "corpus"
    build_corpus_view(items, corpus)
    (corpus / "spkA" / "notes.txt").write_text("keep me")
    build_corpus_view(items[:1], corpus)
    assert sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*")) == [
        "spkA",
        "spkA/a1.lab",
        "spkA/a1.wav",
        "spkA/notes.txt",
    ]


def test_corpus_view_rejects_duplicate_ids_and_path_names(tmp_path: Path) -> None:
    items = _items(tmp_path)
    with pytest.raises(ValueError, match="occurs twice"):
        build_corpus_view([items[0], items[0]], tmp_path / "c1")
    bad = AlignItem("x", "../up", items[0].wav, "hi")
    with pytest.raises(ValueError, match="speaker"):
        build_corpus_view([bad], tmp_path / "c2")


def test_read_corpus_dir_reports_unpaired_files(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_wav(corpus / "s1" / "ok.wav", 0.2)
    (corpus / "s1" / "ok.lab").write_text("fine\n", encoding="utf-8")
    write_wav(corpus / "s1" / "nolab.wav", 0.2)
    (corpus / "s2").mkdir()
    (corpus / "s2" / "nowav.lab").write_text("text without audio", encoding="utf-8")
    write_wav(corpus / "s2" / "empty.wav", 0.2)
    (corpus / "s2" / "empty.lab").write_text("\n", encoding="utf-8")
    (corpus / "s2" / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (corpus / "s2" / "dangling.lab").write_text("x", encoding="utf-8")
    (corpus / "s1" / "._ok.wav").write_bytes(b"\x00\x05\x16\x07")  # macOS AppleDouble: not a corpus file
    write_wav(corpus / "top.wav", 0.2)
    (corpus / "top.lab").write_text("at the top", encoding="utf-8")

    items, problems = read_corpus_dir(corpus)
    assert [(i.utt_id, i.speaker) for i in items] == [("ok", "s1"), ("top", "corpus")]
    reasons = {p.utt_id: p.reason for p in problems}
    assert set(reasons) == {"nolab", "nowav", "empty", "dangling"}
    assert reasons["nolab"] == f"no matching .lab file: {corpus / 's1' / 'nolab.wav'}"
    assert reasons["nowav"] == f"no matching .wav file: {corpus / 's2' / 'nowav.lab'}"
    assert reasons["empty"].startswith("empty transcript: ")
    assert reasons["dangling"].startswith("broken audio link: ")


def test_read_corpus_dir_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_corpus_dir(tmp_path / "nope")


# ----------------------------------------------------------------------------------------------
# IEMOCAP .wdseg / .phseg

WDSEG_HEADER = " SFrm  EFrm    SegAScr Word"
PHSEG_HEADER = " SFrm  EFrm    SegAScr Phone"


def _seg_file(header: str, rows: list[tuple[int, int, int, str]], total: int | None = None) -> str:
    """A Sphinx segment file as IEMOCAP has it: right-aligned columns, header, ``Total score`` footer."""
    lines = [header] + [f"{s:5d} {e:5d} {score:10d} {label}" for s, e, score, label in rows]
    total = sum(r[2] for r in rows) if total is None else total
    return "\n".join([*lines, f" Total score:   {total:10d}"]) + "\n"


# "What is" with leading/trailing silence, a pause and a breath; phones carry Sphinx's context columns.
WDSEG_ROWS = [
    (0, 40, -98542, "<s>"),
    (41, 72, -117530, "WHAT(2)"),
    (73, 89, -48210, "<sil>"),
    (90, 120, -88211, "++BREATH++"),
    (121, 150, -61234, "IS"),
    (151, 170, -41234, "</s>"),
]
PHSEG_ROWS = [
    (0, 40, -98542, "SIL"),
    (41, 52, -40101, "W SIL AH b"),
    (53, 62, -40202, "AH W T i"),
    (63, 72, -37227, "T AH SIL e"),
    (73, 89, -48210, "SIL"),
    (90, 120, -88211, "+BREATH+"),
    (121, 135, -30000, "IH SIL Z b"),
    (136, 150, -31234, "Z IH SIL e"),
    (151, 170, -41234, "SIL"),
]
EXPECTED_WHAT_IS = (
    Word("what", 0.41, 0.73, (Phone("W", 0.41, 0.53), Phone("AH", 0.53, 0.63), Phone("T", 0.63, 0.73))),
    Word("is", 1.21, 1.51, (Phone("IH", 1.21, 1.36), Phone("Z", 1.36, 1.51))),
)


def _write_segments(root: Path, utt_id: str, wdseg: str | None, phseg: str | None) -> Path:
    dialog = utt_id.rsplit("_", 1)[0]
    folder = root / f"Session{int(utt_id[3:5])}" / "sentences" / "ForcedAlignment" / dialog
    folder.mkdir(parents=True, exist_ok=True)
    if wdseg is not None:
        (folder / f"{utt_id}.wdseg").write_text(wdseg, encoding="ascii")
    if phseg is not None:
        (folder / f"{utt_id}.phseg").write_text(phseg, encoding="ascii")
    return folder


def _iemocap_item(utt_id: str) -> AlignItem:
    return AlignItem(utt_id, utt_id[:5] + utt_id.rsplit("_", 1)[1][0], Path(f"/nowhere/{utt_id}.wav"), "ignored")


@pytest.fixture
def iemocap_root(tmp_path: Path) -> Path:
    root = tmp_path / "IEMOCAP_full_release"
    _write_segments(
        root, "Ses01F_impro01_F000", _seg_file(WDSEG_HEADER, WDSEG_ROWS), _seg_file(PHSEG_HEADER, PHSEG_ROWS)
    )
    # Plain four-column phones, one word, in Session 3.
    _write_segments(
        root,
        "Ses03M_impro03_M000",
        _seg_file(WDSEG_HEADER, [(0, 9, -1, "<s>"), (10, 29, -2, "OKAY"), (30, 39, -3, "</s>")]),
        _seg_file(
            PHSEG_HEADER,
            [(0, 9, -1, "SIL"), (10, 17, -1, "OW"), (18, 22, -1, "K"), (23, 29, -1, "EY"), (30, 39, -3, "SIL")],
        ),
    )
    # The two utterances IEMOCAP has no .wdseg for (their folders exist, as in the release).
    _write_segments(root, "Ses03M_impro03_M001", None, None)
    _write_segments(root, "Ses03F_impro07_M030", None, None)
    return root


def test_iemocap_backend_reads_words_and_phones(iemocap_root: Path) -> None:
    result = align_from_iemocap([_iemocap_item("Ses01F_impro01_F000")], iemocap_root, None)
    assert result.failures == [] and result.backend == "iemocap"
    assert result.alignments == [UttAlignment("Ses01F_impro01_F000", EXPECTED_WHAT_IS)]
    check_alignment(result.alignments[0])


def test_iemocap_utterance_with_only_a_laugh_has_no_words(iemocap_root: Path) -> None:
    utt = "Ses02M_script01_1_F007"
    words = [(0, 9, -1, "<s>"), (10, 59, -5, "++LAUGH++"), (60, 69, -1, "</s>")]
    phones = [(0, 9, -1, "SIL"), (10, 59, -5, "+LAUGH+"), (60, 69, -1, "SIL")]
    _write_segments(iemocap_root, utt, _seg_file(WDSEG_HEADER, words), _seg_file(PHSEG_HEADER, phones))
    result = align_from_iemocap([_iemocap_item(utt)], iemocap_root)
    assert result.alignments == [UttAlignment(utt, ())]
    assert result.details["iemocap_no_words"] == [utt]


def test_iemocap_backend_four_column_phones(iemocap_root: Path) -> None:
    result = align_from_iemocap([_iemocap_item("Ses03M_impro03_M000")], iemocap_root)
    (u,) = result.alignments
    assert [(w.word, w.start, w.end) for w in u.words] == [("okay", 0.1, 0.3)]
    assert [p.phone for p in u.words[0].phones] == ["OW", "K", "EY"]


def test_iemocap_missing_wdseg_goes_to_fallback_in_one_batch(iemocap_root: Path) -> None:
    ids = ["Ses01F_impro01_F000", "Ses03M_impro03_M001", "Ses03F_impro07_M030"]
    calls: list[list[str]] = []

    def fallback(items: list[AlignItem]) -> AlignResult:
        calls.append([i.utt_id for i in items])
        word = Word("x", 0.0, 0.1, (Phone("K", 0.0, 0.1),))
        return AlignResult(
            alignments=[UttAlignment(items[0].utt_id, (word,))],
            failures=[Failure(i.utt_id, "fallback could not") for i in items[1:]],
            backend="kaldi",
        )

    result = align_from_iemocap([_iemocap_item(i) for i in ids], iemocap_root, fallback)
    assert calls == [["Ses03M_impro03_M001", "Ses03F_impro07_M030"]]
    assert sorted(a.utt_id for a in result.alignments) == ["Ses01F_impro01_F000", "Ses03M_impro03_M001"]
    assert [f.utt_id for f in result.failures] == ["Ses03F_impro07_M030"]
    assert result.backend == "iemocap"
    assert result.details["fallback_backend"] == "kaldi" and result.details["fallback_count"] == 2
    assert "Ses03M_impro03_M001.wdseg does not exist" in str(result.details["iemocap_rejected"])


def test_iemocap_missing_wdseg_without_fallback_is_a_failure(iemocap_root: Path) -> None:
    result = align_from_iemocap([_iemocap_item("Ses03F_impro07_M030")], iemocap_root)
    (failure,) = result.failures
    assert failure.utt_id == "Ses03F_impro07_M030"
    assert "Ses03F_impro07_M030.wdseg does not exist" in failure.reason
    assert result.alignments == []


def test_iemocap_wdseg_without_phseg_is_unusable(iemocap_root: Path) -> None:
    utt = "Ses01F_impro01_F002"
    _write_segments(iemocap_root, utt, _seg_file(WDSEG_HEADER, WDSEG_ROWS), None)
    (failure,) = align_from_iemocap([_iemocap_item(utt)], iemocap_root).failures
    assert failure.reason.endswith(f"{utt}.phseg does not exist")


@pytest.mark.parametrize(
    ("wdseg", "phseg", "pattern"),
    [
        # A line that is not a row: the message names the file and its line (header = line 1).
        (
            _seg_file(WDSEG_HEADER, WDSEG_ROWS).replace("   41    72", "   4l    72"),
            _seg_file(PHSEG_HEADER, PHSEG_ROWS),
            r"F001\.wdseg:3: cannot parse",
        ),
        # Truncated: no footer.
        (
            _seg_file(WDSEG_HEADER, WDSEG_ROWS).rsplit(" Total", 1)[0],
            _seg_file(PHSEG_HEADER, PHSEG_ROWS),
            r"F001\.wdseg: no 'Total score' footer",
        ),
        # No header.
        (
            _seg_file(WDSEG_HEADER, WDSEG_ROWS).split("\n", 1)[1],
            _seg_file(PHSEG_HEADER, PHSEG_ROWS),
            r"F001\.wdseg:1: expected the header",
        ),
        # A phone across the boundary of "what" and "<sil>".
        (
            _seg_file(WDSEG_HEADER, WDSEG_ROWS),
            _seg_file(PHSEG_HEADER, [*PHSEG_ROWS[:3], (63, 75, -1, "T"), (76, 89, -1, "SIL"), *PHSEG_ROWS[5:]]),
            r"F001\.phseg:5: phone 'T' \[63, 76\] is inside no word",
        ),
        # A phone that is not ARPAbet.
        (
            _seg_file(WDSEG_HEADER, WDSEG_ROWS),
            _seg_file(PHSEG_HEADER, [*PHSEG_ROWS[:2], (53, 62, -1, "AX W T i"), *PHSEG_ROWS[3:]]),
            r"F001\.phseg:4: 'AX' is not an ARPAbet phone",
        ),
    ],
)
def test_iemocap_unparseable_files_fail_with_file_and_line(
    iemocap_root: Path, wdseg: str, phseg: str, pattern: str
) -> None:
    utt = "Ses01F_impro01_F001"
    _write_segments(iemocap_root, utt, wdseg, phseg)
    result = align_from_iemocap([_iemocap_item(utt)], iemocap_root)
    (failure,) = result.failures
    assert failure.utt_id == utt
    assert failure.reason.startswith("IEMOCAP alignment unusable: ")
    assert re.search(pattern, failure.reason), failure.reason


def test_iemocap_unparseable_file_goes_to_fallback(iemocap_root: Path) -> None:
    utt = "Ses01F_impro01_F001"
    _write_segments(iemocap_root, utt, "garbage\n", _seg_file(PHSEG_HEADER, PHSEG_ROWS))
    seen: list[str] = []

    def fallback(items: list[AlignItem]) -> AlignResult:
        seen.extend(i.utt_id for i in items)
        return AlignResult(backend="kaldi")

    align_from_iemocap([_iemocap_item(utt)], iemocap_root, fallback)
    assert seen == [utt]


def test_iemocap_wrong_root_and_foreign_ids(tmp_path: Path, iemocap_root: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        align_from_iemocap([], tmp_path / "nope")
    result = align_from_iemocap([AlignItem("spk1_0001", "spk1", Path("x.wav"), "hi")], iemocap_root)
    assert "not an IEMOCAP utterance id" in result.failures[0].reason


# ----------------------------------------------------------------------------------------------
# Tables, validator, TextGrid output


def test_tables_have_fixed_schemas_and_sorted_rows() -> None:
    late = UttAlignment("b", (Word("hi", 0.1, 0.3, (Phone("HH", 0.1, 0.2), Phone("AY", 0.2, 0.3))),))
    result = AlignResult(
        alignments=[late, EXPECTED_MFA3],
        failures=[Failure("z", "no"), Failure("c", "beam")],
        oovs=[Oov("utt1", "zyxx", "unpronounceable"), Oov("b", "hi", "g2p", "HH AY1")],
        backend="mfa",
    )
    words, phones = alignment_tables(result)
    assert words.schema.equals(WORDS_SCHEMA) and phones.schema.equals(PHONES_SCHEMA)
    assert words.schema.metadata == {b"serflow.align.backend": b"mfa"}
    assert words.column("utt_id").to_pylist() == ["b", "utt1", "utt1", "utt1", "utt1"]
    assert words.column("word").to_pylist() == ["hi", "the", "cat", "zyxx", "sat"]
    assert words.column("word_index").to_pylist() == [0, 0, 1, 2, 3]
    rows = phones.to_pylist()
    assert len(rows) == 2 + 9
    assert rows[3] == {"utt_id": "utt1", "word_index": 0, "phone_index": 1, "phone": "AH", "start": 0.41, "end": 0.47}
    assert [r["phone_index"] for r in rows if r["utt_id"] == "utt1" and r["word_index"] == 1] == [0, 1, 2]
    f = failures_table(result)
    assert f.schema.equals(FAILURES_SCHEMA) and f.column("utt_id").to_pylist() == ["c", "z"]
    o = oov_table(result)
    assert o.schema.equals(OOV_SCHEMA)
    assert o.to_pylist()[0] == {"utt_id": "b", "word": "hi", "how": "g2p", "pronunciation": "HH AY1"}


def test_empty_result_gives_empty_tables_with_the_same_schemas() -> None:
    words, phones = alignment_tables(AlignResult())
    for table, schema in ((words, WORDS_SCHEMA), (phones, PHONES_SCHEMA)):
        assert table.num_rows == 0 and table.schema.equals(schema)
    assert failures_table(AlignResult()).schema.equals(FAILURES_SCHEMA)
    assert oov_table(AlignResult()).schema.equals(OOV_SCHEMA)
    assert isinstance(words, pa.Table)


def test_tables_refuse_an_utterance_aligned_twice() -> None:
    with pytest.raises(ValueError, match="utt1 has two alignments"):
        alignment_tables(AlignResult(alignments=[EXPECTED_MFA3, EXPECTED_MFA3]))


def _one_word(*phones: Phone, start: float = 0.1, end: float = 0.3) -> UttAlignment:
    return UttAlignment("u7", (Word("w", start, end, tuple(phones)),))


@pytest.mark.parametrize(
    ("alignment", "pattern"),
    [
        (_one_word(), "no phones"),
        (_one_word(Phone("A", 0.1, 0.15), Phone("B", 0.17, 0.3)), "starts at 0.17, expected 0.15"),
        (_one_word(Phone("A", 0.1, 0.2), Phone("B", 0.2, 0.28)), "end at 0.28"),
        (_one_word(Phone("A", 0.12, 0.3)), "starts at 0.12, expected 0.1"),
        (_one_word(Phone("A", -0.1, 0.3), start=-0.1), "negative or backwards"),
        (_one_word(Phone("A", 0.3, 0.1), start=0.3, end=0.1), "negative or backwards"),
        (
            UttAlignment(
                "u7", (Word("a", 0.1, 0.3, (Phone("A", 0.1, 0.3),)), Word("b", 0.2, 0.4, (Phone("B", 0.2, 0.4),)))
            ),
            "starts before the previous word ends",
        ),
    ],
)
def test_validator_errors_name_the_utterance(alignment: UttAlignment, pattern: str) -> None:
    with pytest.raises(ValueError, match="utterance u7") as info:
        check_alignment(alignment)
    assert pattern in str(info.value)


def test_validator_accepts_1ms_slack() -> None:
    check_alignment(_one_word(Phone("A", 0.1, 0.2), Phone("B", 0.2009, 0.301)))


def test_write_textgrids_lays_out_speaker_folders(tmp_path: Path) -> None:
    late = UttAlignment("b", (Word("hi", 0.1, 0.3, (Phone("HH", 0.1, 0.2), Phone("AY", 0.2, 0.3))),))
    result = AlignResult(alignments=[EXPECTED_MFA3, late], failures=[Failure("c", "beam")])
    paths = write_textgrids(result, {"utt1": 2.43, "b": 0.5}, {"utt1": "spk1", "b": "spk2"}, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == ["spk2/b.TextGrid", "spk1/utt1.TextGrid"]
    assert (tmp_path / "out" / "spk1" / "utt1.TextGrid").read_text(encoding="utf-8") == MFA3_UNSTRESSED
    assert read_alignment(paths[0]) == late
    with pytest.raises(ValueError, match="no duration or speaker"):
        write_textgrids(result, {"utt1": 2.43}, {"utt1": "spk1", "b": "spk2"}, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# ----------------------------------------------------------------------------------------------
# MFA backend


@pytest.mark.slow
def test_real_mfa_aligns_or_lists_every_utterance(tmp_path: Path) -> None:
    """Runs the real `mfa train` (no pretrained model can be downloaded offline) on a tiny corpus."""
    usable, why = mfa_status()
    if not usable:
        pytest.skip(f"MFA is not usable here: {why}")
    words = {"hello": "HH AH0 L OW1", "there": "DH EH1 R", "bye": "B AY1", "now": "N AW1"}
    dictionary = tmp_path / "tiny.dict"
    dictionary.write_text("".join(f"{w}\t{p}\n" for w, p in words.items()), encoding="utf-8")
    texts = ["hello there", "bye now", "hello now", "there bye", "now hello there", "bye bye"]
    items = []
    for k, text in enumerate(texts * 2):
        wav = tmp_path / "audio" / f"u{k:02d}.wav"
        write_wav(wav, 1.0 + 0.1 * (k % 3), seed=k)
        items.append(AlignItem(f"u{k:02d}", f"s{k % 2}", wav, text))
    result = align_with_mfa(items, tmp_path / "work", str(dictionary), None, jobs=1)
    accounted = {a.utt_id for a in result.alignments} | {f.utt_id for f in result.failures}
    assert accounted == {i.utt_id for i in items}
    for alignment in result.alignments:
        check_alignment(alignment)


def test_align_with_mfa_without_mfa_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(MfaNotFound, match=r"conda-forge.*montreal-forced-aligner"):
        align_with_mfa([], tmp_path, "english_us_arpa", "english_us_arpa", 1, mfa_bin="mfa-not-installed-here")
    usable, why = mfa_status("mfa-not-installed-here")
    assert not usable and "not on the PATH" in why


def test_mfa_commands() -> None:
    corpus, out, model = Path("/w/corpus"), Path("/w/aligned"), Path("/w/acoustic_model.zip")
    align = mfa_command("mfa", corpus, "d.dict", "english_us_arpa", out, model, 4)
    assert " ".join(align) == "mfa align /w/corpus d.dict english_us_arpa /w/aligned --num_jobs 4 --clean"
    train = mfa_command("mfa", corpus, "d.dict", None, out, model, 2)
    assert " ".join(train) == (
        "mfa train /w/corpus d.dict /w/acoustic_model.zip --output_directory /w/aligned --num_jobs 2 --clean"
    )


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def test_collect_mfa_output_lists_every_missing_textgrid(tmp_path: Path) -> None:
    """A fake `mfa align` output folder: TextGrids for some, MFA's diagnostics for others."""
    out = tmp_path / "aligned"
    (out / "spk1").mkdir(parents=True)
    (out / "spk1" / "utt1.TextGrid").write_text(MFA3_TEXTGRID, encoding="utf-8")
    (out / "flat.TextGrid").write_text(MFA3_TEXTGRID, encoding="utf-8")  # found by name, anywhere
    bad = _relabel(_relabel(MFA3_TEXTGRID, 2, 2, ""), 2, 3, "")  # "the" loses its phones
    (out / "spk1" / "broken.TextGrid").write_text(bad, encoding="utf-8")
    _write_csv(
        out / "unalignable_files.csv",
        ["file", "begin", "end", "duration", "text length"],
        [["beam", "0", "3.2", "3.2", "7"]],
    )
    _write_csv(
        out / "alignment_analysis.csv",
        [
            "file",
            "begin",
            "end",
            "speaker",
            "overall_log_likelihood",
            "speech_log_likelihood",
            "phone_duration_deviation",
        ],
        [["utt1", "0", "2.43", "spk1", "-52.1", "-60.3", "1.2"], ["noll", "0", "1.0", "spk2", "", "", ""]],
    )
    (out / "unaligned.txt").write_text("said.wav audio and transcript do not match\n", encoding="utf-8")
    (out / "oovs_found_english_us_arpa.txt").write_text("zyxx\nqwrt\n", encoding="utf-8")

    def item(utt: str, speaker: str = "spk1", text: str = "the cat sat") -> AlignItem:
        return AlignItem(utt, speaker, tmp_path / f"{utt}.wav", text)

    items = [
        item("utt1", text="The cat, zyxx sat."),
        item("flat", "spk9"),
        item("broken"),
        item("beam"),
        item("noll", "spk2"),
        item("said"),
        item("silent"),
    ]
    result = collect_mfa_output(items, out)
    assert result.backend == "mfa"
    assert [a.utt_id for a in result.alignments] == ["utt1", "flat"]
    assert result.alignments[0] == EXPECTED_MFA3
    reasons = {f.utt_id: f.reason for f in result.failures}
    assert list(reasons) == ["broken", "beam", "noll", "said", "silent"]
    assert "broken.TextGrid" in reasons["broken"] and "'the'" in reasons["broken"]
    assert "unalignable_files.csv" in reasons["beam"]
    assert "empty log-likelihood" in reasons["noll"]
    assert reasons["said"].endswith("audio and transcript do not match")
    assert "no reason given" in reasons["silent"]
    assert result.oovs == [Oov("utt1", "zyxx", "unpronounceable")]
    assert result.details["mfa_aligned"] == 2 and result.details["mfa_failed"] == 5


def test_collect_mfa_output_uses_utterance_oovs_and_tolerates_no_folder(tmp_path: Path) -> None:
    out = tmp_path / "aligned"
    out.mkdir()
    (out / "utterance_oovs.txt").write_text("u1 zyxx, qwrt\nother abc\n", encoding="utf-8")
    result = collect_mfa_output([AlignItem("u1", "s", tmp_path / "u1.wav", "whatever")], out)
    assert result.oovs == [Oov("u1", "qwrt", "unpronounceable"), Oov("u1", "zyxx", "unpronounceable")]
    nothing = collect_mfa_output([AlignItem("u2", "s", tmp_path / "u2.wav", "x")], tmp_path / "missing")
    assert [f.utt_id for f in nothing.failures] == ["u2"]
