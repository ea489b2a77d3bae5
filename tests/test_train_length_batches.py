"""Length-bucketed batches in the shared training loop (``train.max_batch_length``, serflow/train/loop.py): the
epoch's batches cover every utterance once within the bound, scoring returns the outputs in the samples' order,
the setting is refused for a model that cannot measure its utterances, and a fold trains with it end to end."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_train import SETTINGS, Corpus, job, make_corpus
from torch import nn

from serflow.models import MODELS, ModelSpec, SerModel, register
from serflow.train.buckets import padded_total
from serflow.train.config import TrainSettings
from serflow.train.device import resolve_runtime
from serflow.train.loop import check_batching, predict, training_batches
from serflow.train.run import FoldOutputs, train_fold

RAGGED_MODEL = "test_ragged"


class Ragged(SerModel):
    """Mean over each utterance's valid frames, then a linear layer: its output cannot depend on the batch."""

    def __init__(self, n_classes: int, audio_dim: int, text_dim: int = 0) -> None:
        super().__init__()
        self.net = nn.Linear(audio_dim, n_classes)

    def prepare(self, sample):  # type: ignore[no-untyped-def]
        return {"frames": np.asarray(sample["mfcc39"], np.float32)}, {}

    def sample_length(self, sample) -> int:  # type: ignore[no-untyped-def]
        return len(sample["frames"])

    def collate(self, samples):  # type: ignore[no-untyped-def]
        frames = nn.utils.rnn.pad_sequence([torch.from_numpy(s["frames"]) for s in samples], batch_first=True)
        return {"frames": frames, "n": torch.tensor([len(s["frames"]) for s in samples])}

    def forward(self, batch):  # type: ignore[no-untyped-def]
        mask = torch.arange(batch["frames"].shape[1])[None, :] < batch["n"][:, None]
        pooled = (batch["frames"] * mask[..., None]).sum(1) / batch["n"][:, None]
        return self.net(pooled)


if RAGGED_MODEL not in MODELS:
    register(ModelSpec(RAGGED_MODEL, Ragged, ("mfcc39",), "test_ragged_family", "test-only length-bucketed model"))


def samples(lengths: list[int], dim: int = 5) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"frames": rng.standard_normal((n, dim)).astype(np.float32)} for n in lengths]


LENGTHS = [3, 40, 7, 7, 25, 1, 90, 12, 12, 60, 5, 33, 18, 2, 71, 9]


def test_bucketed_epoch_covers_every_utterance_once_within_the_bound() -> None:
    model, data = Ragged(4, 5), samples(LENGTHS)
    settings = TrainSettings(batch_size=4, max_batch_length=100)
    batches = training_batches(model, data, settings, torch.Generator(), seed=3, epoch=1)
    assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
    assert all(len(b) <= 4 and len(b) * max(LENGTHS[i] for i in b) <= 100 for b in batches)
    fixed = [list(range(i, i + 4)) for i in range(0, len(LENGTHS), 4)]
    assert padded_total(batches, LENGTHS) < padded_total(fixed, LENGTHS)  # less padding than arrival order
    again = training_batches(model, data, settings, torch.Generator(), seed=3, epoch=1)
    assert again == batches  # deterministic in (seed, epoch)
    assert training_batches(model, data, settings, torch.Generator(), seed=3, epoch=2) != batches


def test_fixed_batches_are_the_seeded_permutation_in_batch_size_steps() -> None:
    settings = TrainSettings(batch_size=5)
    batches = training_batches(Ragged(4, 5), samples(LENGTHS), settings, torch.Generator().manual_seed(1), 1, 1)
    expected = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(1)).tolist()
    assert [i for b in batches for i in b] == expected and [len(b) for b in batches] == [5, 5, 5, 1]


def test_bucketed_scoring_returns_outputs_in_the_samples_order() -> None:
    torch.manual_seed(0)
    model, data = Ragged(4, 5), samples(LENGTHS)
    runtime = resolve_runtime("cpu", amp=False)
    one_by_one = predict(model, data, 1, runtime)
    bucketed = predict(model, data, 4, runtime, max_batch_length=100)
    np.testing.assert_allclose(bucketed, one_by_one, atol=1e-6, rtol=0)


def test_max_batch_length_is_refused_for_a_model_without_sample_length() -> None:
    with pytest.raises(ValueError, match="no sample_length"):
        check_batching(nn.Linear(2, 2), TrainSettings(max_batch_length=10))
    check_batching(nn.Linear(2, 2), TrainSettings())  # fixed-size batches need nothing
    with pytest.raises(ValueError, match="at least 1"):
        TrainSettings(max_batch_length=0)


def test_a_null_max_batch_length_is_left_out_of_the_result_params() -> None:
    assert "max_batch_length" not in TrainSettings().result_params()  # earlier results keep their identity
    assert TrainSettings(max_batch_length=320000).result_params()["max_batch_length"] == 320000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def test_a_fold_trains_with_length_buckets_and_records_the_bound(corpus, tmp_path) -> None:
    settings = replace(SETTINGS, seeds=(0,), epochs=2, max_batch_length=60)
    the_job = replace(
        job(corpus, train=settings), model=RAGGED_MODEL, family_config={}, stores={"mfcc39": corpus.mfcc39}
    )
    record = train_fold(the_job, FoldOutputs.under(tmp_path / "fold1"))
    assert record["train"]["max_batch_length"] == 60
    assert record["utterances"]["used"]["train"] > 0 and len(record["seeds"]) == 1
