"""The config schema against the code it configures, coercion of --config strings, and one-line errors."""

from __future__ import annotations

import copy
import inspect

import pytest
import yaml
from conftest import REPO

from serflow.config_check import ConfigError, check, coerce, load_schema

SCHEMA = load_schema()
CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def _resolve(node: dict) -> dict:
    while "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    return node


@pytest.mark.parametrize("name", ["mfcc39", "gban52", "logmel64", "mfcc120", "waveform"])
def test_each_extractors_schema_is_its_signature_with_its_defaults(name: str) -> None:
    from serflow.features.acoustic import extractor_class

    node = _resolve(SCHEMA["properties"]["features"]["properties"]["acoustic"]["properties"][name])
    signature = inspect.signature(extractor_class(name).__init__).parameters
    expected = {p.name: p.default for p in signature.values() if p.name != "self"}
    assert {key: spec["default"] for key, spec in node["properties"].items()} == expected
    assert node["additionalProperties"] is False


def test_the_wise_section_is_what_the_builder_takes() -> None:
    from serflow.models.wise import Wise

    node = _resolve(SCHEMA["properties"]["models"]["properties"]["wise"])
    flags = {"audio", "text", "hierarchy", "interaction", "pooling"}  # set by the variant's name, not by config
    dims = {"audio_dim", "text_dim"}  # measured from the stores
    accepted = set(inspect.signature(Wise.__init__).parameters) - {"self", "n_classes"} - flags - dims
    assert set(node["properties"]) - {"optim", "train"} == accepted


def test_the_shipped_config_is_valid() -> None:
    check(CONFIG, SCHEMA)


def test_strings_from_a_nested_command_line_config_get_the_schemas_types() -> None:
    config = copy.deepcopy(CONFIG)
    config["train"] = {"threads": "4", "seeds": ["0", "1"], "amp": "false", "patience": "null", "device": "cpu"}
    config["asr"]["model"] = "1.5"  # a string where the schema wants one stays a string
    config["features"]["acoustic"]["mfcc39"] = {"frame_step_s": "0.01", "n_ceps": "12"}
    out = coerce(config, SCHEMA)
    assert out["train"] == {"threads": 4, "seeds": [0, 1], "amp": False, "patience": None, "device": "cpu"}
    assert out["asr"]["model"] == "1.5" and out["features"]["acoustic"]["mfcc39"] == {
        "frame_step_s": 0.01,
        "n_ceps": 12,
    }
    check(out, SCHEMA)
    config["train"]["threads"] = "four"  # not a number: left as it is, so the check names it
    with pytest.raises(ConfigError, match=r"^config key train.threads = 'four': 'four' is not of type 'integer'$"):
        check(coerce(config, SCHEMA), SCHEMA)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["features"]["acoustic"].update(mfcc39={"frame_stepp_s": 0.01}),
            "config key features.acoustic.mfcc39.frame_stepp_s is unknown; did you mean 'frame_step_s'?",
        ),
        (
            lambda c: c["models"]["wise"].update(fc=[-1]),
            "config key models.wise.fc[0] = -1: -1 is less than the minimum",
        ),
        (lambda c: c["models"]["wise"].update(dropout=1.5), "config key models.wise.dropout = 1.5"),
        (lambda c: c["models"]["wise"].update(hierarchy="frame"), "config key models.wise.hierarchy is unknown"),
        (lambda c: c["train"].update(seeds=[]), "config key train.seeds = []"),
    ],
)
def test_errors_are_one_line_naming_the_key(edit, message: str) -> None:
    config = copy.deepcopy(CONFIG)
    edit(config)
    with pytest.raises(ConfigError) as info:
        check(config, SCHEMA)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
