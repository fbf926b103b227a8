"""examples/parity.py: the batches are right, and a network trained on lengths <= 20 gets
the parity of strings of length 1,000 (and 10,000 in the slow tests)."""

import importlib.util
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[2] / "examples" / "parity.py"
spec = importlib.util.spec_from_file_location("parity_example", PATH)
parity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parity)


def test_make_batch_pads_with_zeros_and_counts_ones():
    x, lengths, y = parity.make_batch(300, 1, 9, torch.Generator().manual_seed(0))
    assert x.shape == (300, int(lengths.max()), 1) and lengths.shape == y.shape == (300,)
    assert int(lengths.min()) >= 1 and int(lengths.max()) <= 9
    for row, n in enumerate(lengths.tolist()):
        bits = x[row, :, 0]
        assert bits[n:].sum() == 0
        assert y[row] == int(bits[:n].sum()) % 2
    assert 0.35 < y.mean() < 0.65  # both answers occur


def test_a_model_reads_the_final_state_of_each_row():
    model = parity.ParityRNN(hidden_size=8)
    x, lengths, _ = parity.make_batch(5, 1, 12, torch.Generator().manual_seed(1))
    batched = model(x, lengths)
    one_by_one = torch.cat([model(x[i : i + 1, : lengths[i]]) for i in range(5)])
    torch.testing.assert_close(batched, one_by_one)


def test_trained_on_length_20_it_is_right_at_length_1000():
    model = parity.train(seed=0, steps=1200)
    assert model.longest_trained == 20  # the curriculum got to the end
    assert parity.evaluate(model, 20) == 1.0
    assert parity.evaluate(model, 1_000, count=200) >= 0.99


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_are_right_at_length_10000(seed):
    model = parity.train(seed=seed)
    assert parity.evaluate(model, 1_000, count=200) >= 0.99
    assert parity.evaluate(model, 10_000, count=200) >= 0.99


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "parity.png"
    parity.plot_running_parity(parity.ParityRNN(hidden_size=4), str(path), length=30)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
