"""Per-corpus settings: synthetic layouts, Whisper per corpus, text source per corpus, the random split's shares."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from conftest import REPO

from serflow.config_check import load_schema
from serflow.corpora.settings import (
    ASR_DEFAULTS,
    asr_label,
    check_asr,
    corpus_asr,
    corpus_text_source,
    random_split_settings,
    synth_settings,
)
from serflow.corpora.tess import TESS_LABELS
from serflow.dvc_pipeline import model_param_keys
from serflow.features.plan import corpus_recipe, plan, text_recipe


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_tess_demo_is_configured_as_the_report() -> None:
    spec = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["corpora"]["demo_tess"]
    assert spec["format"] == "tess" and tuple(spec["labels"]) == TESS_LABELS and spec["merge"] == {}
    assert synth_settings("demo_tess", spec) == {"layout": "tess", "words": 12, "seed": 0, "nested_copy": True}
    # packing off: its repeated carrier phrase makes base loop in packed windows (README, Whisper ASR)
    assert spec["text_source"] == "asr" and spec["asr"] == {"model": "base", "shards": 2, "packing": {"enabled": False}}
    assert spec["train"] == {"models": ["mmer_speech", "mmer_text", "mmer_fusion"]}  # models.mmer: both protocols


def test_iemocap_layout_keeps_its_identity(config: dict) -> None:
    """The IEMOCAP layout's settings carry no layout key: a corpus configured before layouts is the same corpus."""
    demo = config["corpora"]["demo"]
    assert synth_settings("demo", demo) == {"utterances": 600, "seed": 2026, "preset": "moderate", "sessions": 3}
    spelled = copy.deepcopy(config)
    spelled["corpora"]["demo"]["synth"]["layout"] = "iemocap"
    bare = copy.deepcopy(config)
    del bare["corpora"]["demo"]["synth"]["preset"]  # the default, left out
    recipe = corpus_recipe(config, "demo")
    assert corpus_recipe(spelled, "demo") == recipe == corpus_recipe(bare, "demo")
    assert synth_settings("iemocap", config["corpora"]["iemocap"]) is None


def test_tess_layout_defaults() -> None:
    spec = {"format": "tess", "synth": {"layout": "tess", "seed": 3}}
    assert synth_settings("t", spec) == {"layout": "tess", "words": 20, "seed": 3, "nested_copy": True}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"format": "iemocap", "synth": {"layout": "tess", "seed": 0}},
            "corpora.c.synth.layout = 'tess' but corpora.c.format",
        ),
        ({"format": "tess", "synth": {"seed": 0, "utterances": 50}}, "corpora.c.synth.layout = 'iemocap' but"),
        (
            {"format": "tess", "synth": {"layout": "tess", "seed": 0, "utterances": 50}},
            "synth.utterances is for layout iemocap",
        ),
        (
            {"format": "tess", "synth": {"layout": "tess", "seed": 0, "preset": "strong"}},
            "synth.preset is for layout iemocap",
        ),
        ({"format": "iemocap", "synth": {"seed": 0, "utterances": 50, "words": 3}}, "synth.words is for layout tess"),
        ({"format": "iemocap", "synth": {"seed": 0}}, "corpora.c.synth.utterances is missing"),
        ({"format": "tess", "synth": {"layout": "tess"}}, "corpora.c.synth.seed is missing"),
    ],
)
def test_synth_errors_name_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        synth_settings("c", spec)
    assert "\n" not in str(caught.value)


def test_asr_per_corpus_goes_over_the_global_section(config: dict) -> None:
    assert corpus_asr(config, "demo")["model"] == "tiny.en"
    tess = corpus_asr(config, "demo_tess")
    assert tess["model"] == "base" and tess["backend"] == config["asr"]["backend"] and tess["language"] == "en"
    assert (
        asr_label(config, "demo") == "faster-whisper-tiny.en"
        and asr_label(config, "demo_tess") == "faster-whisper-base"
    )
    del config["asr"]["beam_size"]  # absent keys take the schema's defaults, as after Snakemake's validation
    assert corpus_asr(config, "demo")["beam_size"] == 5


def test_asr_defaults_and_override_keys_follow_the_schema() -> None:
    schema = load_schema()
    glob = schema["properties"]["asr"]["properties"]
    assert {k: v["default"] for k, v in glob.items() if "default" in v} == ASR_DEFAULTS
    override = schema["$defs"]["asr_override"]["properties"]
    assert set(override) == set(glob)  # every key of the global section, and nothing else
    assert not any("default" in v for v in override.values())  # a default would mask the global value


def test_english_only_models_take_english_only() -> None:
    check_asr({"model": "tiny.en", "language": "en"})
    check_asr({"model": "tiny.en", "language": None})
    check_asr({"model": "base", "language": "fr"})
    with pytest.raises(ValueError, match=r"corpora\.x\.asr\.language = 'fr': tiny\.en is an English-only model"):
        check_asr({"model": "tiny.en", "language": "fr"}, "corpora.x.asr")


def test_text_source_per_corpus(config: dict) -> None:
    assert corpus_text_source(config, "demo") == "gold" and corpus_text_source(config, "demo_tess") == "asr"
    config["text_source"] = "asr"
    config["corpora"]["demo_tess"]["text_source"] = "gold"
    assert corpus_text_source(config, "demo") == "asr" and corpus_text_source(config, "demo_tess") == "gold"
    del config["text_source"]
    assert corpus_text_source(config, "iemocap") == "gold"


def test_text_recipe_follows_the_corpus(config: dict) -> None:
    """The TESS demo's text stores follow its own text source and Whisper; the IEMOCAP demo's do not move."""
    demo, tess = text_recipe(config, "demo"), text_recipe(config, "demo_tess")
    assert tess == text_recipe(config, "demo_tess", "asr") != text_recipe(config, "demo_tess", "gold")
    assert demo == text_recipe(config, "demo", "gold")
    edited = copy.deepcopy(config)
    edited["corpora"]["demo_tess"]["asr"]["model"] = "small"
    assert text_recipe(edited, "demo_tess") != tess and text_recipe(edited, "demo") == demo
    edited = copy.deepcopy(config)
    edited["corpora"]["demo_tess"]["asr"]["language"] = None
    assert text_recipe(edited, "demo_tess") != tess
    edited = copy.deepcopy(config)
    edited["asr"]["model"] = "small.en"  # overridden by the TESS demo; the IEMOCAP demo reads gold text
    assert text_recipe(edited, "demo_tess") == tess and text_recipe(edited, "demo") == demo
    assert plan(config, "demo_tess", "glove").version != plan(config, "demo", "glove").version


def test_dvc_params_of_a_model_name_the_corpus_text_and_whisper(config: dict) -> None:
    assert "corpora.demo_tess.asr" in model_param_keys(config, "demo_tess", "wise")
    assert "corpora.demo_tess.text_source" in model_param_keys(config, "demo_tess", "wise")
    assert "asr" not in model_param_keys(config, "demo", "wise")  # gold text: Whisper is not a parameter


def test_random_split_settings() -> None:
    assert random_split_settings({}) == {"train": 0.7, "valid": 0.15, "seed": 42}
    assert random_split_settings({"random_split": {"valid": 0.1}}) == {"train": 0.7, "valid": 0.1, "seed": 42}
    for bad in ({"train": 0.9, "valid": 0.1}, {"train": 0.0}, {"valid": 1.5}):
        with pytest.raises(ValueError, match=r"folds\.random_split"):
            random_split_settings({"random_split": bad})
