"""MultiModal-ER on the shared machinery: the report's MFCC store version (trimmed silence) beside the default one,
the letters-only word ids, several protocols per model, the leakage check, the paper figures beside the random
split, and the t-SNE figure."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, write_wav

from serflow.features.acoustic import get_extractor
from serflow.features.acoustic.base import FeatureError
from serflow.features.jobs.word_ids import normalised_words, word_types
from serflow.features.plan import plan
from serflow.report.summary import summary_markdown, summary_rows
from serflow.train.checks import corpus_settings
from serflow.train.config import TrainSettings
from serflow.train.leakage import leakage_total, split_leakage
from serflow.train.tasks import run_name, split_protocol, split_run

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
REPORT = {"n_fft": 2048, "win_length": 2048, "hop_length": 512, "n_mels": 128, "trim_db": 25}
DEFAULT_MFCC120 = {  # the parameters (so the version, for the same code) of every mfcc120 store before trim_db
    "sample_rate": 16000, "n_fft": 400, "win_length": 400, "hop_length": 160, "window": "hann",
    "pad_mode": "constant", "n_mels": 40, "fmin": 0.0, "fmax": 8000.0, "amin": 1e-10, "top_db": 80.0,
    "n_mfcc": 40, "delta_width": 9,
}  # fmt: skip


# --- stores ---------------------------------------------------------------------------------------------


def test_the_default_mfcc120_store_keeps_its_parameters_and_the_family_gets_its_own() -> None:
    default = plan(CONFIG, "demo_tess", "mfcc120")
    assert default.params == DEFAULT_MFCC120  # trim_db: null is left out, so the version's parameters are as before
    spelt = plan({**CONFIG, "features": {**CONFIG["features"], "acoustic": {"mfcc120": {"trim_db": None}}}},
                 "demo_tess", "mfcc120")  # fmt: skip
    assert spelt.version == default.version
    family = plan(CONFIG, "demo_tess", "mfcc120", CONFIG["models"]["mmer"]["stores"]["mfcc120"])
    assert family.params == {**DEFAULT_MFCC120, **REPORT} and family.version != default.version


def test_trimmed_mfcc120_is_librosas_trim_then_librosas_mfcc() -> None:
    rng = np.random.default_rng(0)
    speech = 0.3 * np.sin(2 * np.pi * 220 * np.arange(12000) / 16000) + 0.01 * rng.standard_normal(12000)
    signal = np.concatenate([1e-4 * rng.standard_normal(8000), speech, 1e-4 * rng.standard_normal(6000)])
    signal = signal.astype(np.float32)
    trimmed = librosa.effects.trim(signal, top_db=25)[0]
    assert 12000 <= trimmed.size < signal.size
    ours = get_extractor("mfcc120", **REPORT).extract(signal)
    mfcc = librosa.feature.mfcc(y=trimmed, sr=16000, n_mfcc=40)  # librosa's defaults, as the report's code
    reference = np.vstack([mfcc, librosa.feature.delta(mfcc), librosa.feature.delta(mfcc, order=2)]).T
    assert ours.shape == reference.shape == (1 + trimmed.size // 512, 120)
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-3)


def test_an_utterance_too_short_once_trimmed_is_refused_with_the_reason() -> None:
    rng = np.random.default_rng(1)
    click = np.zeros(16000, np.float32)
    click[8000:8200] = rng.standard_normal(200).astype(np.float32)  # 12.5 ms of sound in 1 s of silence
    extractor = get_extractor("mfcc120", **REPORT)
    with pytest.raises(FeatureError, match="too short after trimming silence at 25 dB"):
        extractor.extract(click)
    assert get_extractor("mfcc120").extract(click).shape[1] == 120  # untrimmed: stored


def test_letters_only_word_ids_as_the_reports_tokeniser() -> None:
    words = pd.DataFrame(
        {"utt_id": ["a", "a", "a", "b"], "word_index": [0, 1, 2, 0], "word": ["Say", "it's", "WORD", "'"],
         "start": 0.0, "end": 1.0}
    )  # fmt: skip
    same, none = normalised_words(words, "lower")
    assert same is words and none == []
    kept, dropped = normalised_words(words, "letters")
    assert kept["word"].tolist() == ["say", "its", "word"]
    assert dropped == [("b", "no word left with letters a-z (normalise: letters)")]
    assert word_types(kept)[0].column("word").to_pylist() == ["its", "say", "word"]
    assert plan(CONFIG, "demo_tess", "word_ids").params == {}  # the default store as before
    assert plan(CONFIG, "demo_tess", "word_ids", {"normalise": "letters"}).params == {"normalise": "letters"}
    with pytest.raises(ValueError, match="no parameter"):
        plan(CONFIG, "demo_tess", "word_ids", {"case": "upper"})


# --- protocols ------------------------------------------------------------------------------------------


def test_a_family_trains_under_several_protocols() -> None:
    settings = corpus_settings(CONFIG, "demo_tess", "mmer_fusion")
    assert settings.all_protocols() == ("random_split", "loso_speaker") and settings.protocol == "random_split"
    assert settings.for_protocol("loso_speaker").result_params()["protocol"] == "loso_speaker"
    assert "protocols" not in settings.result_params()  # adding a protocol reruns nothing that ran
    with pytest.raises(ValueError, match="not one of"):
        settings.for_protocol("loso_session")
    plain = TrainSettings.from_config({"protocol": "loso_speaker"})
    assert plain.all_protocols() == ("loso_speaker",)
    assert plain.result_params() == TrainSettings.from_config({"protocol": "loso_speaker"}).result_params()
    with pytest.raises(ValueError, match="duplicates"):
        TrainSettings.from_config({"protocols": ["random_split", "random_split"]})


def test_run_names_with_a_further_protocol() -> None:
    assert run_name("mmer_text", "categorical", "loso_speaker") == "mmer_text~loso_speaker"
    assert run_name("cnn14", "vad") == "cnn14@vad"
    assert split_protocol("mmer_text~loso_speaker") == ("mmer_text", "loso_speaker")
    assert split_protocol("cnn14@vad") == ("cnn14@vad", None)
    assert split_run("cnn14@vad~loso_speaker") == ("cnn14", "vad")


# --- leakage --------------------------------------------------------------------------------------------


def test_leakage_counts_identical_audio_and_same_names_across_splits(tmp_path: Path) -> None:
    for name, seed in (("a", 0), ("b", 1), ("c", 2)):
        write_wav(tmp_path / f"{name}.wav", 0.3, seed=seed)
    nested = tmp_path / "TESS" / "a.wav"
    nested.parent.mkdir()
    nested.write_bytes((tmp_path / "a.wav").read_bytes())  # the nested copy, listed a second time
    renamed = tmp_path / "b_copy.wav"
    renamed.write_bytes((tmp_path / "b.wav").read_bytes())  # the same bytes under another name
    paths = {"u1": tmp_path / "a.wav", "u2": nested, "u3": tmp_path / "b.wav", "u4": renamed, "u5": tmp_path / "c.wav"}
    paths = {k: str(v) for k, v in paths.items()}
    leak = split_leakage(paths, {"train": ["u1", "u3"], "valid": ["u5"], "test": ["u2", "u4"]})
    assert leak["checked"] == 5
    assert leak["identical_audio"]["pairs"] == {"train/valid": 0, "train/test": 2, "valid/test": 0}
    assert leak["identical_audio"]["utterances"] == 4
    assert leak["same_name"]["pairs"]["train/test"] == 1 and leak["same_name"]["examples"] == ["a.wav"]
    clean = split_leakage(paths, {"train": ["u1", "u3"], "valid": ["u5"], "test": []})
    assert clean["identical_audio"]["utterances"] == clean["same_name"]["utterances"] == 0
    total = leakage_total([{"fold": 1, "leakage": leak}, {"fold": 2, "leakage": clean}])
    assert total["identical_audio"] == 4 and total["same_name"] == 2


# --- summary --------------------------------------------------------------------------------------------


def _result(model: str, protocol: str, wa: float) -> dict:
    return {
        "corpus": "demo_tess", "model": model, "family": "mmer", "text_source": "asr", "protocol": protocol,
        "n_folds": 1 if protocol == "random_split" else 2, "seeds": [42], "labels": ["a", "b"], "label_merge": {},
        "utterances": {"used": 10, "dropped": 0}, "wa": wa, "wa_std": 0.0, "ua": wa, "ua_std": 0.0,
        "fold_std": {"wa": 0.0, "ua": 0.0}, "macro_f1": wa, "task": {"name": "categorical"},
        "speaker_independent": protocol != "random_split",
        "leakage": {"identical_audio": 0, "same_name": 0, "folds": []},
    }  # fmt: skip


def test_the_reports_figures_stand_beside_the_random_split_rows_only() -> None:
    from serflow.report.figures import load_paper_figures

    figures = load_paper_figures()
    results = [_result("mmer_fusion", "random_split", 0.9), _result("mmer_fusion", "loso_speaker", 0.5)]
    rows = summary_rows(results, figures)
    assert [(r["protocol"], r["paper_wa"]) for r in rows] == [("random_split", 0.9976), ("loso_speaker", None)]
    text = summary_markdown(rows, results, {"format": "tess", "synth": {"layout": "tess"}}, figures)
    assert "random_split: 1 x 1" in text and "loso_speaker: 2 x 1" in text
    assert "not speaker-independent" in text and "Leakage" in text


def test_the_speech_only_model_has_no_oov_statistics() -> None:
    from serflow.models.mmer import MultiModalER

    assert MultiModalER(7, text=False).oov_stats([]) == {}
