"""examples/binary_addition.py: the bit streams add up, and a network trained on 8-bit numbers
adds 256- and 10,000-bit numbers exactly, with the carry readable from its hidden state."""

import importlib.util
import random
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "examples" / "binary_addition.py"
spec = importlib.util.spec_from_file_location("binary_addition_example", PATH)
addition = importlib.util.module_from_spec(spec)
spec.loader.exec_module(addition)


def number(bits) -> int:
    """The integer of a least-significant-first bit sequence."""
    return sum(int(b) << t for t, b in enumerate(bits))


def test_bits_of_is_least_significant_first():
    assert addition.bits_of(6, 4).tolist() == [0, 1, 1, 0]
    assert addition.bits_of(2**70 + 1, 71).tolist() == [1] + [0] * 69 + [1]


def test_make_batch_streams_add_up():
    x, lengths, sums = addition.make_batch(200, 1, 8, random.Random(0))
    assert x.shape == (200, int(lengths.max()), 2) and sums.shape == x.shape[:2]
    assert int(lengths.min()) >= 2 and int(lengths.max()) <= 9  # bits + 1 for the carry
    for row, n in enumerate(lengths.tolist()):
        a, b, s = x[row, :n, 0], x[row, :n, 1], sums[row, :n]
        assert a[-1] == b[-1] == 0  # the final carry step reads zeros
        assert number(a) + number(b) == number(s)
        assert x[row, n:].sum() == 0 and sums[row, n:].sum() == 0


def test_carries_are_the_carry_out_of_each_step():
    x, _, sums = addition.make_batch(50, 12, 12, random.Random(1))
    carry = addition.carries(x, sums)
    for row in range(50):
        c = 0
        for t in range(13):
            c = (int(x[row, t, 0]) + int(x[row, t, 1]) + c) // 2
            assert carry[row, t] == c


def test_trained_on_8_bits_it_adds_256_and_10000_bit_numbers_exactly():
    model = addition.train(seed=0)
    assert addition.evaluate(model, 16) == 1.0
    assert addition.evaluate(model, 256, count=100) == 1.0
    assert addition.evaluate(model, 10_000, count=20) == 1.0
    probe = addition.carry_probe(model)
    assert probe["probe_accuracy"] >= 0.999  # the carry is a linear function of h_t
    assert abs(probe["unit_correlation"]) >= 0.8  # and one unit alone nearly is it


def test_an_untrained_model_does_not_add():  # so the test above can fail
    assert addition.evaluate(addition.AdderRNN(), 16) < 0.1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_other_seeds_add_10000_bit_numbers_exactly(seed):
    model = addition.train(seed=seed)
    assert addition.evaluate(model, 256, count=100) == 1.0
    assert addition.evaluate(model, 10_000, count=100) == 1.0
    assert addition.carry_probe(model)["probe_accuracy"] >= 0.999


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    model = addition.AdderRNN(hidden_size=4)
    path = tmp_path / "carry.png"
    addition.plot_carry(model, str(path), addition.carry_probe(model, bits=16, count=4), bits=12)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
