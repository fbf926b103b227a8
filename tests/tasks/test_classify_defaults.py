"""The defaults of rnnkit classify that scale with the data: an epoch of small data is several
passes over it (ClassifyDataConfig.epoch_batches), each pass in a new order, resumably."""

import numpy as np
import pytest

from rnnkit.data.labeled import LabeledData
from rnnkit.data.padded import PaddedBatches
from rnnkit.errors import RnnkitError
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.nn import GRU, LSTM
from rnnkit.tasks.classify import CLASSIFY_TASK, ClassifyDataConfig, Passes


def test_passes_cover_every_example_once_a_pass_in_a_new_order():
    source = PaddedBatches([np.arange(1, 2 + i % 3) for i in range(5)], list(range(5)), 2, seed=3)
    epoch = Passes(source, 4)
    assert epoch.num_batches() == 12
    passes = [
        np.concatenate([epoch.batch(1, 3 * p + i)["index"].numpy() for i in range(3)])
        for p in range(4)
    ]
    for order in passes:
        assert sorted(order.tolist()) == [0, 1, 2, 3, 4]
    assert len({tuple(o) for o in passes}) > 1  # a new order each pass
    # the same (epoch, index) gives the same batch (exact resume), and epochs do not repeat
    again = Passes(PaddedBatches(source.inputs, source.targets, 2, seed=3), 4)
    assert np.array_equal(again.batch(1, 7)["index"], epoch.batch(1, 7)["index"])
    assert np.array_equal(epoch.batch(1, 0)["index"], source.batch(4, 0)["index"])


def _series(n: int) -> LabeledData:
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(6, 1)).astype(np.float32) for _ in range(n)]
    return LabeledData("series", inputs, ["a", "b"] * (n // 2), [f"x:{i}" for i in range(n)], "x")


@pytest.mark.parametrize(
    ("n", "epoch_batches", "expected"), [(40, 50, 50), (40, 1, 5), (480, 50, 60)]
)
def test_an_epoch_holds_at_least_epoch_batches(tmp_path, n, epoch_batches, expected):
    dc = ClassifyDataConfig(val_fraction=0.0, batch_size=8, epoch_batches=epoch_batches)
    train = CLASSIFY_TASK.default_train
    prepared = CLASSIFY_TASK.prepare(_series(n), tmp_path, ClassifierConfig(), dc, train, None)
    assert prepared.train.num_batches() == expected


def test_epoch_batches_must_be_positive():
    with pytest.raises(RnnkitError, match="epoch_batches must be >= 1"):
        ClassifyDataConfig(epoch_batches=0)


def test_the_classifier_reads_with_a_gru_unless_told(tmp_path):
    """GRU is the classifier's default cell (the other tasks' is LSTM); --cell still chooses."""
    dc = ClassifyDataConfig(val_fraction=0.0)
    train = CLASSIFY_TASK.default_train
    for model, layer in ((ClassifierConfig(), GRU), (ClassifierConfig(cell="lstm"), LSTM)):
        prepared = CLASSIFY_TASK.prepare(_series(8), tmp_path, model, dc, train, None)
        assert type(SequenceClassifier(prepared.model).rnn) is layer
