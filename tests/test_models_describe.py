"""``serflow models list`` / ``serflow models describe``: the catalogue, meta-device builds and the parameter counts
of the reference note's Appendix A (``shared/reference/seed-models.md``), checked through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from serflow.cli import main
from serflow.models import MODELS
from serflow.models.describe import parameter_summary

CNN14_BODY = 79_673_792  # conv + BN + fc1 (PANNs' 80,753,615 less its 527-way AudioSet head)
CNN14_HEAD_4 = 2048 * 4 + 4


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config with the demo's four labels and no model sections (the builders' defaults), independent of
    what config/config.yaml holds."""
    path = tmp_path_factory.mktemp("config") / "config.yaml"
    path.write_text("corpora:\n  demo:\n    labels: [ang, hap, neu, sad]\nmodels: {}\n", encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def describe(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> dict:
    code, out, err = run(capsys, "models", "describe", *args, "--config", str(config), "--json")
    assert code == 0, err
    return json.loads(out)


# ---------------------------------------------------------------------- list
def test_list_names_every_model(capsys) -> None:
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = json.loads(out)
    assert code == 0
    from serflow.models.catalog import FAMILIES

    catalogue = [name for family in FAMILIES for name in family.variants]
    assert len(catalogue) == 28 and [r["name"] for r in rows][:28] == catalogue  # then any a user registered
    assert [r["name"] for r in rows] == list(MODELS)
    gban = next(r for r in rows if r["name"] == "gban")
    assert gban["features"] == ["gban52", "glove", "word_ids"]
    assert gban["paper_row"] == "Table 2 GGF / Table 3 GBAN"

    code, table, _ = run(capsys, "models", "list")
    assert code == 0
    for name in MODELS:
        assert any(line.split()[:1] == [name] for line in table.splitlines()), name
    assert f"{len(MODELS)} models" in table
    for family in ("wise (7)", "gban (9)", "cnn14 (3)", "bert (1)", "mmer (3)", "wavfusion (4)"):
        assert family in table

    code, out, _ = run(capsys, "models", "list", "--family", "mmer", "--json")
    assert [r["name"] for r in json.loads(out)] == ["mmer_speech", "mmer_text", "mmer_fusion"]


# ---------------------------------------------------------------------- Appendix A counts
def test_gban_counts_with_300d_glove(capsys, config) -> None:
    info = describe(capsys, config, "gban", "--dims", "glove=300")
    assert info["dims"] == {"gban52": 52, "glove": 300}
    by_module = info["parameters"]["by_module"]
    assert by_module["fusion_layer"] == 262_144  # the bias-free GGF: 4 x 256 x 128 + 2 x 512 x 128
    assert by_module["speech_convs"] == 2_508 + 980 + 2_268 + 4_068 == 9_824
    assert by_module["text_convs"] == 76_928 + 115_328 + 153_728 == 345_984
    keras = {part: c["keras"] for part, c in info["reports"]["parameter_counts"].items() if part != "helper"}
    assert keras["speech_lstm"] == 168_960 and keras["text_lstm"] == 525_312
    assert (keras["fusion"], keras["dense"], keras["output"]) == (262_144, 16_512, 516)

    code, text, _ = run(capsys, "models", "describe", "gban", "--dims", "glove=300", "--config", str(config))
    assert code == 0
    table = text.split("\nparameters ", 1)[1].split("\n\n", 1)[0]  # trainable, frozen, total per module
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    assert rows["fusion_layer"] == ["262,144", "0", "262,144"]
    assert rows["speech_convs"] == ["9,824", "0", "9,824"]
    assert rows["text_convs"] == ["345,984", "0", "345,984"]


def test_cnn14_counts(capsys, config) -> None:
    base = describe(capsys, config, "cnn14", "--outputs", "4")
    assert base["parameters"]["total"] == CNN14_BODY + CNN14_HEAD_4
    assert base["parameters"]["by_module"]["head"] == CNN14_HEAD_4
    assert base["reports"]["describe()"]["width"] == 1.0
    for name, extra in (("mfcnn14", 3_100_608), ("sfcnn14", 1_574_912)):
        info = describe(capsys, config, name, "--dims", "bert_utt=768", "--outputs", "4")
        assert info["parameters"]["total"] - base["parameters"]["total"] == extra, name
        assert info["parameters"]["by_module"]["proj"] == extra


@pytest.mark.parametrize(
    ("name", "total"), [("mmer_speech", 718_600), ("mmer_text", 684_488), ("mmer_fusion", 1_501_129)]
)
def test_mmer_counts(capsys, config, name: str, total: int) -> None:
    info = describe(capsys, config, name, "--set", "vocab_size=363", "--outputs", "7")
    assert info["outputs"] == 7
    assert info["parameters"]["total"] == info["parameters"]["trainable"] == total


# ---------------------------------------------------------------------- config, --set, every model
def test_config_section_set_and_outputs(capsys, tmp_path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "corpora:\n  demo:\n    labels: [a, b, c]\nmodels:\n  wise:\n    fc: [10]\n    optim: {lr: 0.1}\n",
        encoding="utf-8",
    )
    info = describe(capsys, path, "wise_text", "--set", "text_lstm=20", "--set", "attention=30")
    assert info["outputs"] == 3  # the demo corpus's labels
    hp = info["hparams"]
    assert hp["fc"] == {"value": [10], "from": "config"}
    assert hp["text_lstm"] == {"value": 20, "from": "--set"}
    assert hp["text_dim"] == {"value": 50, "from": "dims"}
    assert hp["audio"] == {"value": False, "from": "variant"}
    assert "optim" not in hp and info["defaults"]["max_words"] == 128
    # LSTMCell(50 -> 20), attention 20 -> 30 -> 1 (no biases), FC 30 -> 10 -> 3
    assert info["parameters"]["by_module"] == {
        "text_cell": 4 * 20 * (50 + 20 + 2),
        "att_text": 20 * 30,
        "att_context": 30,
        "classifier": 30 * 10 + 10 + 10 * 3 + 3,
    }


def test_every_model_describes(capsys, config) -> None:
    for name in MODELS:
        code, out, err = run(capsys, "models", "describe", name, "--config", str(config))
        assert code == 0, f"{name}: {err}"
        assert out.startswith(f"{name}: ") and "architecture" in out and "total" in out, name


def test_frozen_parameters_are_counted_apart(capsys, config) -> None:
    info = describe(capsys, config, "wavfusion_audio")
    params = info["parameters"]
    assert params["frozen"] > 0  # the wav2vec 2.0 feature encoder is frozen by default
    assert params["trainable"] + params["frozen"] == params["total"]
    assert info["reports"]["encoder_meta"]["random_init"] is True  # the offline stand-in, said so


# ---------------------------------------------------------------------- errors: one line, exit 2
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gbann"], "unknown model 'gbann'; did you mean 'gban'? known models: bert, cnn14"),
        (["gban", "--set", "lstm_hiden=64"], "unknown GBAN hyperparameters ['lstm_hiden']"),
        (["gban", "--set", "fusion=tfl"], "fixed by the model name 'gban'"),
        (["gban", "--set", "conv_kernel=-1"], "cannot be built: RuntimeError"),
        (["gban", "--set", "novalue"], "--set expects KEY=VALUE"),
        (["gban", "--dims", "glove=big"], "--dims glove: expected a whole number"),
        (["gban", "--dims", "nostore=3"], "feature store 'nostore' has no role"),
        (["wise", "--outputs", "0"], "--outputs must be >= 1"),
    ],
)
def test_mistakes_fail_in_one_line(capsys, config, args: list[str], message: str) -> None:
    code, out, err = run(capsys, "models", "describe", *args, "--config", str(config))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("serflow: error: ") and message in err
    assert "Traceback" not in err


def test_unknown_family_fails_in_one_line(capsys) -> None:
    code, _, err = run(capsys, "models", "list", "--family", "gbna")
    assert code == 2
    assert err.startswith("serflow: error: no registered model is of family 'gbna'") and err.count("\n") == 1


# ---------------------------------------------------------------------- the trainer's function, laziness
def test_parameter_summary_counts_frozen_and_own_parameters() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Linear(3, 4)  # 16
            self.encoder.requires_grad_(False)
            self.act = nn.ReLU()
            self.scale = nn.Parameter(torch.ones(5))
            self.head = nn.Sequential(nn.Linear(4, 2), nn.Dropout())  # 10

    summary = parameter_summary(Net())
    assert summary == {"total": 31, "trainable": 15, "by_module": {"encoder": 16, "head": 10, "scale": 5}}
    json.dumps(summary)


def test_import_is_lazy() -> None:
    code = "import sys, serflow.models.describe; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
