"""Sharding a BatchSource across ranks: disjoint, complete, deterministic; streams stay put."""

import numpy as np
import pytest
import torch

from rnnkit.data import StreamBatches, WindowBatches
from rnnkit.data.padded import PaddedBatches
from rnnkit.data.sharding import (
    BatchShard,
    StreamShard,
    batch_rows,
    row_bounds,
    shard,
    take_rows,
)
from rnnkit.errors import RnnkitError


def padded(n=11, B=2, seed=3):
    rng = np.random.default_rng(0)
    inputs = [rng.integers(1, 9, size=int(rng.integers(1, 6))) for _ in range(n)]
    return PaddedBatches(inputs, list(range(n)), B, seed=seed)


def example_ids(batch):
    return batch["index"].tolist()


@pytest.mark.parametrize("world", [2, 3])
def test_stateless_ranks_take_every_world_th_batch_once(world):
    src = padded()  # 6 batches: 2 ranks read 3 each; 3 ranks read 2 each
    parts = [shard(src, r, world) for r in range(world)]
    assert all(isinstance(p, BatchShard) and p.batches_per_step == world for p in parts)
    for epoch in (0, 1):
        steps = [p.num_batches() for p in parts]
        assert steps == [6 // world] * world  # every rank takes the same number of steps
        seen = [example_ids(p.batch(epoch, i)) for i in range(steps[0]) for p in parts]
        expected = [example_ids(src.batch(epoch, k)) for k in range(steps[0] * world)]
        assert seen == expected  # step i of rank r is batch i·W + r: nothing twice
        # Deterministic in (epoch, rank, world): a fresh shard reads the same batch.
        again = shard(padded(), 1, world)
        assert example_ids(again.batch(epoch, 0)) == example_ids(parts[1].batch(epoch, 0))


def test_training_drops_the_remainder_evaluation_does_not():
    src = padded(n=10, B=2)  # 5 batches
    train = [shard(src, r, 2) for r in range(2)]
    assert [p.num_batches() for p in train] == [2, 2]  # batch 4 of each epoch is not read
    ev = [shard(src, r, 2, train=False) for r in range(2)]
    assert [p.num_batches() for p in ev] == [3, 2]
    limited = [shard(src, r, 2, train=False, limit=3) for r in range(2)]
    assert [p.num_batches() for p in limited] == [2, 1]  # batches 0, 2 | 1
    assert example_ids(limited[1].batch(0, 0)) == example_ids(src.batch(0, 1))
    with pytest.raises(IndexError):
        limited[1].batch(0, 1)


def test_too_few_batches_for_the_ranks_is_a_clear_error():
    with pytest.raises(RnnkitError, match="1 batch per epoch, fewer than the 2 processes"):
        shard(padded(n=2, B=2), 0, 2)


def test_one_process_gets_the_source_itself():
    src = padded()
    assert shard(src, 0, 1) is src
    with pytest.raises(RnnkitError, match="rank must be in 0..1"):
        shard(src, 2, 2)


def test_streams_are_split_and_continue_on_their_rank():
    tokens = np.arange(2001, dtype=np.int64)
    src = StreamBatches(tokens, batch_size=5, seq_length=4)
    parts = [shard(src, r, 2) for r in range(2)]
    assert all(isinstance(p, StreamShard) and p.batches_per_step == 1 for p in parts)
    assert [(p.lo, p.hi) for p in parts] == [(0, 2), (2, 5)]
    assert parts[0].num_batches() == parts[1].num_batches() == src.num_batches()
    for index in (0, 7):
        x, y = src.batch(1, index)
        x0, y0 = parts[0].batch(1, index)
        x1, y1 = parts[1].batch(1, index)
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)
    # Row i of batch k+1 continues row i of batch k on the same rank.
    a, b = parts[1].batch(0, 3)[0], parts[1].batch(0, 4)[0]
    assert torch.equal(b[:, 0], a[:, -1] + 1)


def test_streams_need_one_per_rank_for_training_but_not_for_evaluation():
    src = StreamBatches(np.arange(200), batch_size=2, seq_length=4)
    with pytest.raises(RnnkitError, match="2 streams cannot be split across 3 processes"):
        shard(src, 0, 3)
    empty = shard(src, 0, 3, train=False)
    assert empty.num_batches() == 0  # rank 0 of 3 gets no stream: it adds nothing
    assert shard(src, 2, 3, train=False, limit=2).num_batches() == 2


def test_window_batches_shard_like_any_stateless_source():
    src = WindowBatches(np.arange(500), batch_size=3, seq_length=5, seed=1)
    parts = [shard(src, r, 2) for r in range(2)]
    assert parts[0].num_batches() == src.num_batches() // 2
    assert torch.equal(parts[1].batch(2, 1)[0], src.batch(2, 3)[0])


def test_rows_helpers():
    assert [row_bounds(7, r, 3) for r in range(3)] == [(0, 2), (2, 4), (4, 7)]
    state = (torch.arange(24.0).view(1, 4, 6), torch.zeros(1, 4, 6))
    h, c = take_rows(state, 1, 3, dim=1)
    assert h.shape == c.shape == (1, 2, 6) and torch.equal(h, state[0][:, 1:3])
    batch = {"inputs": torch.zeros(4, 3), "lengths": torch.ones(4), "meta": "x"}
    assert batch_rows(batch) == 4 and take_rows(batch, 0, 1)["meta"] == "x"
    with pytest.raises(RnnkitError, match="holds no tensor"):
        batch_rows(("a", 1))
