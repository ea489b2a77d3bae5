"""The synthetic corpus: reproducible bytes, IEMOCAP's layout and formats, designed label counts."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serflow.corpora.synth import espeak
from serflow.corpora.synth.corpus import (
    CLASSES,
    SAMPLE_RATE,
    apply_effort,
    dialog_names,
    iter_plan_rows,
    plan_corpus,
    plan_label_counts,
    synthesize_corpus,
    transcription_text,
)

N_UTTS = 24
SEED = 7

EMO_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]"
EMO_TURN = re.compile(
    r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses0[1-5][FM]_\w+_([FM])\d{3})\t([a-z]{3})\t"
    r"\[(\d\.\d{4}), (\d\.\d{4}), (\d\.\d{4})\]$"
)
EMO_CAT = re.compile(r"^C-(E\d|F1|M1):\t([A-Z][a-z]+; )*[A-Z][a-z]+;\t\(.*\)$")
EMO_ATTR = re.compile(r"^A-E\d:\tval [1-5]; act [1-5]; dom  [1-5];\t\(.*\)$")
TX_LINE = re.compile(r"^(Ses0[1-5][FM]_\w+?_[FM](?:\d{3}|XX\d+)) \[(\d{3,}\.\d{4})-(\d{3,}\.\d{4})\]: (.+)$")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "IEMOCAP_full_release"
    synthesize_corpus(root, N_UTTS, SEED)
    return root


def _parse_emo(path: Path) -> dict[str, tuple[float, float, str, tuple[float, ...]]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == EMO_HEADER and lines[1] == ""
    turns = {}
    for line in lines[2:]:
        if not line:
            continue
        if m := EMO_TURN.match(line):
            vad = tuple(float(x) for x in m.group(6, 7, 8))
            turns[m.group(3)] = (float(m.group(1)), float(m.group(2)), m.group(5), vad)
        else:
            assert EMO_CAT.match(line) or EMO_ATTR.match(line), line
    return turns


def _parse_tx(path: Path) -> dict[str, tuple[float, float, str]]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = TX_LINE.match(line)
        assert m, line
        out[m.group(1)] = (float(m.group(2)), float(m.group(3)), line.split("]: ", 1)[1])
    return out


def test_same_seed_gives_identical_bytes_and_jobs_do_not_matter(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    parallel = tmp_path / "parallel"
    synthesize_corpus(again, N_UTTS, SEED, jobs=1)
    synthesize_corpus(parallel, N_UTTS, SEED, jobs=2)
    reference = _files(corpus)
    assert len(reference) > N_UTTS
    assert _files(again) == reference
    assert _files(parallel) == reference


def test_other_seed_differs(corpus: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    synthesize_corpus(other, N_UTTS, SEED + 1)
    a, b = _files(corpus), _files(other)
    assert a != b
    shared_wavs = [k for k in a.keys() & b.keys() if k.endswith(".wav")]
    assert shared_wavs and any(a[k] != b[k] for k in shared_wavs)


def test_layout(corpus: Path) -> None:
    readme = (corpus / "README.txt").read_text()
    assert "SYNTHETIC" in readme and f"seed: {SEED}" in readme and f"utterances: {N_UTTS}" in readme
    assert "preset: moderate" in readme
    for s in range(1, 6):
        session = corpus / f"Session{s}"
        emo = sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        assert emo, f"no dialogs in Session{s}"
        names = [p.stem for p in emo]
        assert any("_impro" in n for n in names) and any("_script" in n for n in names)
        for name in names:
            assert re.fullmatch(rf"Ses0{s}[FM]_(impro\d\d|script\d\d_\d)", name)
            assert (session / "dialog" / "transcriptions" / f"{name}.txt").is_file()
            assert (session / "dialog" / "EmoEvaluation" / "Categorical" / f"{name}_e1_cat.txt").is_file()
            assert (session / "sentences" / "wav" / name).is_dir()


def test_formats_agree_with_each_other_and_the_audio(corpus: Path) -> None:
    labels: Counter[str] = Counter()
    speakers: Counter[str] = Counter()
    for emo_path in sorted(corpus.glob("Session*/dialog/EmoEvaluation/*.txt")):
        session_dir = emo_path.parents[2]
        dialog = emo_path.stem
        turns = _parse_emo(emo_path)
        tx = _parse_tx(session_dir / "dialog" / "transcriptions" / f"{dialog}.txt")
        wavs = {p.stem for p in (session_dir / "sentences" / "wav" / dialog).glob("*.wav")}
        assert set(turns) == wavs == {k for k in tx if "XX" not in k}
        assert not any("XX" in w for w in wavs)
        starts = [t[0] for t in turns.values()]
        assert starts == sorted(starts)
        for utt, (start, end, label, vad) in turns.items():
            assert utt.rsplit("_", 1)[0] == dialog
            assert all(1.0 <= v <= 5.0 for v in vad)
            assert tx[utt][:2] == (start, end)
            info = sf.info(session_dir / "sentences" / "wav" / dialog / f"{utt}.wav")
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
            assert abs(info.frames / SAMPLE_RATE - (end - start)) < 1e-3
            labels[label] += 1
            speakers[f"{dialog[:5]}{utt.rsplit('_', 1)[1][0]}"] += 1
    assert labels == Counter({k: v for k, v in plan_label_counts(N_UTTS).items() if v})
    assert len(speakers) == 10 and max(speakers.values()) - min(speakers.values()) <= 1


def test_audio_is_not_silent_and_transcripts_are_what_was_planned(corpus: Path) -> None:
    rows = list(iter_plan_rows(plan_corpus(N_UTTS, SEED), corpus))
    assert len(rows) == N_UTTS
    for row in rows:
        audio, sr = sf.read(row["audio_path"], dtype="float32")
        assert sr == SAMPLE_RATE and audio.ndim == 1
        assert float(np.sqrt(np.mean(audio**2))) > 0.005
        tx = _parse_tx(Path(row["audio_path"]).parents[3] / "dialog" / "transcriptions" / f"{row['dialog']}.txt")
        assert tx[row["utt_id"]][2] == row["transcript"]


def test_label_counts_follow_the_design() -> None:
    counts = plan_label_counts(1000)
    assert sum(counts.values()) == 1000
    in_class = sum(counts[k] for k in ("neu", "hap", "exc", "ang", "sad"))
    assert in_class == 900
    assert abs(counts["neu"] / in_class - 0.31) < 0.01
    assert abs((counts["hap"] + counts["exc"]) / in_class - 0.30) < 0.01
    assert abs(counts["exc"] / (counts["hap"] + counts["exc"]) - 1041 / 1636) < 0.01  # IEMOCAP: ~2/3
    assert abs(counts["ang"] / in_class - 0.20) < 0.01 and abs(counts["sad"] / in_class - 0.20) < 0.01
    assert counts["fru"] > 0 and counts["xxx"] > 0


def test_classes_spread_evenly_over_speakers() -> None:
    plan = plan_corpus(1000, 0)
    per = Counter((u.speaker, u.label_class) for u in plan.utterances)
    for cls in CLASSES:
        counts = [per[(s.speaker_id, cls)] for s in plan.speakers]
        assert max(counts) - min(counts) <= 2, (cls, counts)


def test_transcripts_carry_unlabelled_xx_turns() -> None:
    plan = plan_corpus(1000, 0)
    with_xx = [d for d in plan.dialogs if any(u.backchannel for u in d.turns)]
    assert with_xx
    dialog = with_xx[0]
    text = transcription_text(dialog, [(float(i), i + 0.5) for i in range(len(dialog.turns))])
    xx = [line for line in text.splitlines() if "XX" in line.split(" ", 1)[0]]
    assert xx and all(TX_LINE.match(line) for line in xx)


def test_dialog_names_alternate_marker_and_kind() -> None:
    assert dialog_names(1, 4) == ["Ses01F_impro01", "Ses01M_script01_1", "Ses01M_impro01", "Ses01F_script01_1"]


def test_espeak_is_deterministic_across_calls() -> None:
    first, sr = espeak.synthesize("Hello there, my friend.", "en-us+m3", 55, 170, 110, 0)
    espeak.synthesize("Something else entirely.", "en+f2", 40, 200, 90, 2)
    second, _ = espeak.synthesize("Hello there, my friend.", "en-us+m3", 55, 170, 110, 0)
    assert sr == 22050 and first.dtype == np.float32 and first.size > sr // 2
    assert np.array_equal(first, second)
    with pytest.raises(ValueError, match="voice"):
        espeak.synthesize("Hi.", "no-such-voice+zz")


def test_missing_library_is_a_clear_runtime_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(espeak, "_ENGINE", None)
    monkeypatch.setattr(espeak, "_locate", lambda: (tmp_path / "libespeak-ng.so", str(tmp_path)))
    with pytest.raises(RuntimeError, match="libespeak-ng"):
        espeak.synthesize("Hi.")


def test_effort_keeps_level() -> None:
    x = np.random.default_rng(0).normal(size=4000)
    for effort in (-0.6, 0.0, 0.8):
        y = apply_effort(x, effort)
        assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)))


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError):
        synthesize_corpus(tmp_path, N_UTTS, SEED)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_linear_baseline_runs_on_the_generators_manifest(corpus: Path) -> None:
    from serflow.corpora.baseline import linear_baseline, synthetic_manifest

    manifest = synthetic_manifest(corpus, N_UTTS, SEED)
    result = linear_baseline(manifest, seed=0)
    assert result["n"] == manifest["label"].notna().sum()
    assert result["chance"] == pytest.approx(1 / len(result["classes"]))
    for key in ("audio_ua", "text_ua", "fusion_ua"):
        assert 0.0 <= result[key] <= 1.0
