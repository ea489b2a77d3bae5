"""Settings that keep a small corpus cheap: fewer synthetic sessions (folds), one feature job per store, and only
the stores a corpus's models read."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from serflow.corpora.settings import feature_shards, synth_settings
from serflow.corpora.synth.corpus import plan_corpus
from serflow.features.plan import plan


def test_fewer_sessions_keep_iemocaps_layout_and_the_first_speakers() -> None:
    five, three = plan_corpus(60, seed=1), plan_corpus(60, seed=1, sessions=3)
    assert sorted({d.session for d in three.dialogs}) == [1, 2, 3]
    assert [s.speaker_id for s in three.speakers] == [s.speaker_id for s in five.speakers[:6]]
    assert three.speakers == five.speakers[:6]  # the same voices and offsets
    assert sum(len(d.turns) for d in three.dialogs) == 60
    for bad in (1, 6):
        with pytest.raises(ValueError, match="sessions must be 2 to 5"):
            plan_corpus(60, seed=1, sessions=bad)


def test_five_sessions_spelt_out_is_the_same_corpus() -> None:
    base = {"format": "iemocap", "synth": {"utterances": 60, "seed": 1}}
    spelt = {"format": "iemocap", "synth": {"utterances": 60, "seed": 1, "sessions": 5}}
    assert synth_settings("demo", base) == synth_settings("demo", spelt)  # no rename of existing corpora
    fewer = synth_settings("demo", {"format": "iemocap", "synth": {"utterances": 60, "seed": 1, "sessions": 3}})
    assert fewer is not None and fewer["sessions"] == 3


def test_a_corpus_may_shard_its_stores_its_own_way() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["corpora"]["demo"].pop("feature_shards", None)
    default = plan(config, "demo", "mfcc39").version
    assert feature_shards(config, "demo") == config["features"]["shards"]
    config["corpora"]["demo"]["feature_shards"] = 1
    assert feature_shards(config, "demo") == 1
    assert plan(config, "demo", "mfcc39").version != default  # another layout of the store: another version
