"""PaddedBatches: every example once an epoch, deterministic in (seed, epoch, index), bucketed
by length, padded with the right values."""

import numpy as np
import pytest
import torch

from rnnkit.contracts import BatchSource
from rnnkit.data.padded import IGNORE_INDEX, PaddedBatches, pad_sequences
from rnnkit.errors import RnnkitError


def examples(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 50, size=rng.integers(1, 40)) for _ in range(n)]


def test_every_example_once_per_epoch_and_deterministic():
    xs = examples()
    src = PaddedBatches(xs, list(range(len(xs))), 16, seed=3)
    assert isinstance(src, BatchSource) and not src.stateful and src.num_batches() == 13
    seen = np.concatenate([src.batch(0, i)["index"].numpy() for i in range(13)])
    assert sorted(seen) == list(range(200))
    again = PaddedBatches(xs, list(range(len(xs))), 16, seed=3)
    for i in (0, 7, 12):  # a fresh object (a resumed run) gives the same batch
        a, b = src.batch(1, i), again.batch(1, i)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(src.batch(0, 0)["index"], src.batch(1, 0)["index"])


def test_targets_lengths_and_padding():
    xs = examples(40)
    src = PaddedBatches(xs, [int(x[0]) for x in xs], 8, seed=0, pad_value=0)
    b = src.batch(0, 2)
    for row, i in enumerate(b["index"].tolist()):
        n = len(xs[i])
        assert b["lengths"][row] == n
        assert b["inputs"][row, :n].tolist() == xs[i].tolist()
        assert (b["inputs"][row, n:] == 0).all()
        assert b["targets"][row] == xs[i][0]
    tagged = PaddedBatches(xs, [x % 3 for x in xs], 8, shuffle=False)
    b = tagged.batch(0, 0)
    for row, i in enumerate(b["index"].tolist()):
        assert b["targets"][row, : len(xs[i])].tolist() == (xs[i] % 3).tolist()
        assert (b["targets"][row, len(xs[i]) :] == IGNORE_INDEX).all()


def test_bucketing_cuts_the_padding():
    xs = examples(1000)

    def padded_steps(src):
        return sum(src.batch(0, i)["inputs"].numel() for i in range(src.num_batches()))

    bucketed = padded_steps(PaddedBatches(xs, None, 32, bucket=True))
    plain = padded_steps(PaddedBatches(xs, None, 32, bucket=False))
    real = sum(len(x) for x in xs)
    assert bucketed < 0.6 * plain and bucketed >= real


def test_series_pad_to_three_dimensions():
    xs = [np.ones((3, 2), np.float32), np.ones((5, 2), np.float32)]
    x, lengths = pad_sequences(xs)
    assert x.shape == (2, 5, 2) and lengths.tolist() == [3, 5] and x[0, 3:].sum() == 0


def test_errors():
    with pytest.raises(RnnkitError, match="holds no examples"):
        PaddedBatches([], None, 4)
    with pytest.raises(RnnkitError, match="example 1 is empty"):
        PaddedBatches([np.ones(2), np.ones(0)], None, 4)
    with pytest.raises(RnnkitError, match="2 inputs but 1 targets"):
        PaddedBatches([np.ones(2), np.ones(2)], [0], 4)
    with pytest.raises(RnnkitError, match="batch_size"):
        PaddedBatches([np.ones(2)], None, 0)
