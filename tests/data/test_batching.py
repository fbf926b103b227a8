"""StreamBatches (stateful, continuity) and WindowBatches (stateless, per-epoch shuffles)."""

import numpy as np
import pytest
import torch

from rnnkit.data import (
    BatchSource,
    StreamBatches,
    Vocab,
    WindowBatches,
    encode_corpus,
    eval_batches,
    fit_batch_size,
)
from rnnkit.errors import RnnkitError


def tokens(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.uint16)


def test_stream_shapes_targets_and_count():
    src = StreamBatches(tokens(1001), batch_size=4, seq_length=7)
    assert src.stateful and isinstance(src, BatchSource)
    assert src.stream_length == 250 and src.num_batches() == 250 // 7 == len(src)
    x, y = src.batch(0, 3)
    assert x.shape == y.shape == (4, 7) and x.dtype == y.dtype == torch.long
    assert x.is_contiguous() and y.is_contiguous()
    assert torch.equal(y, x + 1)  # targets are the inputs shifted by one token
    assert x[:, 0].tolist() == [21, 271, 521, 771]  # stream r starts at r·L, batch 3 at 3·T


def test_stream_rows_continue_across_batches():
    src = StreamBatches(tokens(5000), batch_size=6, seq_length=11)
    seen = [src.batch(0, i) for i in range(src.num_batches())]
    for (x0, y0), (x1, _) in zip(seen, seen[1:], strict=False):
        assert torch.equal(x1[:, 0], y0[:, -1])  # row r of batch i+1 continues row r of batch i
        assert torch.equal(x1[:, 0], x0[:, -1] + 1)
    # Whole streams are contiguous runs of the corpus, and every pair is a real neighbour pair.
    rows = torch.cat([x for x, _ in seen], dim=1)
    assert torch.equal(rows, rows[:, :1] + torch.arange(rows.shape[1]))
    # Stateful batches are the same every epoch.
    assert all(torch.equal(a, b) for a, b in zip(src.batch(0, 5), src.batch(9, 5), strict=True))


def test_stream_pairs_with_real_text():
    v = Vocab.from_text("hello stream world\n", "char")
    ids = np.array(v.encode("hello stream world\n" * 20), dtype=np.uint16)
    src = StreamBatches(ids, batch_size=3, seq_length=5)
    text = "hello stream world\n" * 20
    for i in range(src.num_batches()):
        x, y = src.batch(0, i)
        for r in range(3):
            pair = v.decode(x[r]) + v.decode(y[r][-1:])
            assert pair in text and v.decode(y[r]) == pair[1:]


def test_shifted_streams_start_elsewhere_each_epoch_and_stay_contiguous():
    src = StreamBatches(tokens(5000), batch_size=6, seq_length=11, shift_seed=3)
    L, T = src.stream_length, 11
    assert src.num_batches() == L // T - 1  # one batch of slack, so a shift can reach T - 1
    shifts = [src.shift(e) for e in range(40)]
    assert all(0 <= s <= L - src.num_batches() * T for s in shifts)
    assert len(set(shifts)) > 5 and max(shifts) >= T - 1  # they move, over the whole slack
    assert shifts == [src.shift(e) for e in range(40)]  # a function of (seed, epoch): resumable
    other = StreamBatches(tokens(5000), batch_size=6, seq_length=11, shift_seed=4)
    assert [other.shift(e) for e in range(40)] != shifts
    for epoch in (0, 7):
        rows = torch.cat([src.batch(epoch, i)[0] for i in range(src.num_batches())], dim=1)
        starts = torch.arange(6) * L + src.shift(epoch)
        assert torch.equal(rows, starts[:, None] + torch.arange(rows.shape[1]))
    # With too little data for a spare batch, the one batch still shifts within the slack.
    tiny = StreamBatches(tokens(2 * 15 + 1), batch_size=2, seq_length=10, shift_seed=0)
    assert tiny.num_batches() == 1 and {tiny.shift(e) for e in range(50)} == set(range(6))


def test_stream_index_out_of_range():
    src = StreamBatches(tokens(100), batch_size=2, seq_length=5)
    with pytest.raises(IndexError):
        src.batch(0, src.num_batches())


def test_window_determinism_per_seed_and_epoch():
    a = WindowBatches(tokens(10_007), batch_size=4, seq_length=16, seed=3)
    b = WindowBatches(tokens(10_007), batch_size=4, seq_length=16, seed=3)
    assert not a.stateful and isinstance(a, BatchSource)
    assert a.num_batches() == (10_007 - 1) // (4 * 16) == 156
    # Same (seed, epoch) → same batch, whatever was asked before.
    b.batch(5, 0)
    for epoch, index in [(0, 0), (2, 17), (0, 155)]:
        pa, pb = a.batch(epoch, index), b.batch(epoch, index)
        assert torch.equal(pa[0], pb[0]) and torch.equal(pa[1], pb[1])
    # Another epoch or seed → another order.
    assert not torch.equal(a.batch(0, 0)[0], a.batch(1, 0)[0])
    c = WindowBatches(tokens(10_007), batch_size=4, seq_length=16, seed=4)
    assert not torch.equal(a.batch(0, 0)[0], c.batch(0, 0)[0])


def test_window_epoch_covers_disjoint_windows():
    n, B, T = 2_000, 3, 10
    src = WindowBatches(tokens(n), batch_size=B, seq_length=T, seed=0)
    phases = set()
    for epoch in range(6):
        xs, ys = zip(*(src.batch(epoch, i) for i in range(src.num_batches())), strict=True)
        x, y = torch.cat(xs), torch.cat(ys)
        assert torch.equal(y, x + 1)
        assert torch.equal(x, x[:, :1] + torch.arange(T))  # each row is a contiguous window
        starts = x[:, 0]
        assert starts.tolist() == src.window_starts(epoch).tolist()
        assert len(set(starts.tolist())) == len(starts) == src.num_batches() * B
        assert len(set((starts % T).tolist())) == 1  # one phase per epoch: windows don't overlap
        assert int(y.max()) <= n - 1
        phases.add(int(starts[0] % T))
    assert len(phases) > 1  # the grid moves between epochs when there are spare tokens


def test_too_short_corpus_says_what_is_needed():
    with pytest.raises(RnnkitError) as e:
        StreamBatches(tokens(100), batch_size=10, seq_length=10)
    msg = str(e.value)
    assert "has 100 tokens" in msg and "at least 101" in msg and "--batch-size" in msg
    StreamBatches(tokens(101), batch_size=10, seq_length=10)  # exactly enough
    with pytest.raises(RnnkitError, match="at least 101"):
        WindowBatches(tokens(100), batch_size=10, seq_length=10)
    assert WindowBatches(tokens(101), batch_size=10, seq_length=10).num_batches() == 1
    with pytest.raises(RnnkitError, match=">= 1"):
        StreamBatches(tokens(100), batch_size=0, seq_length=10)
    with pytest.raises(RnnkitError, match="1-D"):
        StreamBatches(np.zeros((10, 10), dtype=np.int64), batch_size=1, seq_length=2)


def test_fit_batch_size_for_small_validation_split():
    assert fit_batch_size(1000, batch_size=50, seq_length=50) == 19
    assert fit_batch_size(10_000, batch_size=50, seq_length=50) == 50
    assert fit_batch_size(51, batch_size=50, seq_length=50) == 1
    with pytest.raises(RnnkitError, match="validation data has 50 tokens.*at least 51"):
        fit_batch_size(50, batch_size=50, seq_length=50)
    ev = eval_batches(tokens(1000), batch_size=50, seq_length=50)
    assert ev.batch_size == 19 and ev.num_batches() == 1 and ev.stateful


def test_batches_read_a_memmapped_token_file(tmp_path):
    text = "abcdefghij" * 50
    (tmp_path / "c.txt").write_text(text, encoding="utf-8")
    v = Vocab.from_text(text, "char")
    tf = encode_corpus(tmp_path / "c.txt", v, tmp_path / "t.bin")
    src = StreamBatches(tf.tokens, batch_size=2, seq_length=8)
    x, y = src.batch(0, 1)
    assert x.dtype == torch.long and v.decode(x[0]) == text[8:16] and v.decode(y[0]) == text[9:17]
    w = WindowBatches(torch.from_numpy(np.asarray(tf.tokens, dtype=np.int64)), 2, 8, seed=1)
    assert w.batch(0, 0)[0].shape == (2, 8)
