"""A store's full effective parameters (serflow.features.plan.effective_params): what its extractor really ran with,
recovered from the ``params`` its manifest records, without renaming any store (issue 17)."""

from __future__ import annotations

import yaml
from conftest import REPO

from serflow.features.acoustic import get_extractor
from serflow.features.plan import NEUTRAL_PARAMS, STORE_SCRIPTS, effective_params, plan
from serflow.features.stores import ACOUSTIC
from serflow.provenance import source_files

CONFIG = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def acoustic_plans() -> list:
    """Every acoustic store the config plans: features.acoustic's, and the families' own (models.<f>.stores)."""
    plans = [plan(CONFIG, "demo", feature) for feature in CONFIG["features"]["acoustic"]]
    for family in CONFIG["models"].values():
        for feature, overrides in ((family or {}).get("stores") or {}).items():
            if feature in ACOUSTIC:
                plans.append(plan(CONFIG, "demo_tess", feature, overrides))
    return plans


def test_effective_params_are_what_the_extractor_runs_with() -> None:
    plans = acoustic_plans()
    assert {p.feature for p in plans} == set(ACOUSTIC)
    for p in plans:
        assert effective_params(p.feature, p.params) == get_extractor(p.feature, **p.params).params, p.feature


def test_what_the_recorded_params_leave_out_is_filled_in() -> None:
    mfcc120 = plan(CONFIG, "demo", "mfcc120")
    assert "trim_db" not in mfcc120.params  # the neutral value is left out of the version
    assert effective_params("mfcc120", mfcc120.params)["trim_db"] is None
    assert effective_params("mfcc120", {**mfcc120.params, "trim_db": 25})["trim_db"] == 25
    # a store whose manifest recorded no parameters at all (planned before the defaults were filled in)
    logmel = effective_params("logmel64", {})
    assert (logmel["hop_length"], logmel["fmin"]) == (160, 50.0)
    assert plan(CONFIG, "demo", "word_ids").params == {}
    assert effective_params("word_ids", {}) == {"normalise": "lower"}
    assert effective_params("word_ids", {"normalise": "letters"}) == {"normalise": "letters"}
    glove = plan(CONFIG, "demo", "glove")
    assert effective_params("glove", glove.params) == glove.params  # already complete
    assert effective_params("not_a_store", {"a": 1}) == {"a": 1}
    assert set(NEUTRAL_PARAMS) <= set(ACOUSTIC)


def test_recording_them_renames_no_store() -> None:
    """effective_params lives in the planner, which is not part of any store's code identity (the version hashes
    the code that writes a store): computing or changing it leaves every store's version as it was."""
    for kind, scripts in STORE_SCRIPTS.items():
        entries = ("serflow.features.acoustic.mfcc39",) if kind == "acoustic" else ()
        assert "serflow/features/plan.py" not in source_files(entries, scripts), kind
