"""Binary addition, synced many-to-many: trained on 8-bit numbers, exact on 10,000-bit ones.

    python examples/binary_addition.py [--seed 0] [--steps 600] [--cell rnn] [--plot carry.png]

Two numbers arrive as bit streams, least-significant bit first; at step t the network reads
the two bits a_t, b_t (2 features) and writes the sum bit s_t = a_t XOR b_t XOR carry. The
stream has one step more than the longer number, for the final carry (inputs 0, 0 there). The
only thing to remember from step to step is the carry, so a network that has learned to keep
it in its hidden state adds numbers of any length. We check that it does: a linear probe reads
the carry from the hidden state, and one hidden unit alone already tracks it.
"""

import argparse
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN


def bits_of(value: int, width: int) -> np.ndarray:
    """The ``width`` lowest bits of ``value``, least-significant first, as uint8."""
    digits = format(value, f"0{width}b")[-width:][::-1]
    return np.frombuffer(digits.encode(), dtype=np.uint8) - ord("0")


def make_batch(
    batch_size: int, min_bits: int, max_bits: int, rng: random.Random
) -> tuple[Tensor, Tensor, Tensor]:
    """Random pairs of numbers of ``min_bits..max_bits`` bits and their sums, as bit streams.

    Python's integers do the adding. Returns ``x`` (B, T, 2) floats (a_t, b_t), zero after
    each row's stream; ``lengths`` (B,) = bits + 1; ``sums`` (B, T) floats s_t.
    T = the longest stream in the batch.
    """
    widths = [rng.randint(min_bits, max_bits) for _ in range(batch_size)]
    T = max(widths) + 1
    x = np.zeros((batch_size, T, 2), dtype=np.float32)
    sums = np.zeros((batch_size, T), dtype=np.float32)
    for row, n in enumerate(widths):
        a, b = rng.getrandbits(n), rng.getrandbits(n)
        x[row, : n + 1, 0] = bits_of(a, n + 1)
        x[row, : n + 1, 1] = bits_of(b, n + 1)
        sums[row, : n + 1] = bits_of(a + b, n + 1)
    lengths = torch.tensor(widths) + 1
    return torch.from_numpy(x), lengths, torch.from_numpy(sums)


def carries(x: Tensor, sums: Tensor) -> Tensor:
    """The carry out of each step, (B, T): s_t = a_t ⊕ b_t ⊕ c_{t-1} gives the carry into
    step t, and the carry out of step t is the carry into step t + 1 (0 after the last)."""
    carry_in = (x[..., 0] + x[..., 1] + sums) % 2
    return torch.cat([carry_in[:, 1:], torch.zeros_like(carry_in[:, :1])], dim=1)


class AdderRNN(nn.Module):
    """A one-layer recurrent layer and a linear readout of the sum bit at every step."""

    def __init__(self, cell: str = "rnn", hidden_size: int = 16) -> None:
        super().__init__()
        layers = {"rnn": RNN, "lstm": LSTM, "gru": lambda d, n: GRU(d, n, reset_after=True)}
        self.rnn = layers[cell](2, hidden_size)  # reset_after: the GRU runs the fused kernel
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, 2), lengths (B,) or None → sum-bit logits (B, T), hidden states (B, T, N)."""
        hidden, _ = self.rnn(x, lengths=lengths)
        return self.readout(hidden).squeeze(-1), hidden


def train(
    seed: int = 0,
    steps: int = 600,
    cell: str = "rnn",
    hidden_size: int = 16,
    max_bits: int = 8,
    batch_size: int = 64,
    lr: float = 1e-2,
    log_every: int = 0,
) -> AdderRNN:
    """Train on numbers of 1..``max_bits`` bits, mixed in each batch (``lengths=``).

    The loss is the cross-entropy of every sum bit inside each row's stream (padding masked).
    """
    torch.manual_seed(seed)
    rng = random.Random(seed)
    model = AdderRNN(cell, hidden_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        x, lengths, sums = make_batch(batch_size, 1, max_bits, rng)
        logits, _ = model(x, lengths)
        inside = torch.arange(x.shape[1]) < lengths[:, None]  # (B, T): False on padding
        loss = F.binary_cross_entropy_with_logits(logits[inside], sums[inside])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if log_every and step % log_every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}")
    return model


@torch.no_grad()
def evaluate(model: AdderRNN, bits: int, count: int = 100, seed: int = 1234) -> float:
    """Exact-match accuracy: the share of ``count`` random sums of two ``bits``-bit numbers
    with every one of the bits + 1 sum bits right (one batched pass)."""
    model.eval()
    x, _, sums = make_batch(count, bits, bits, random.Random(seed))
    logits, _ = model(x)
    return ((logits > 0).float() == sums).all(dim=1).float().mean().item()


@torch.no_grad()
def carry_probe(model: AdderRNN, bits: int = 256, count: int = 20, seed: int = 99) -> dict:
    """How well the hidden state h_t encodes the carry out of step t.

    A linear probe (least squares of the carry on [h_t, 1]) is fitted on one set of sums and
    tested on another. Returns ``weights`` (N + 1,) of the probe (bias last),
    ``probe_accuracy`` (its thresholded accuracy on the test set), ``unit`` (the hidden unit
    most correlated with the carry) and ``unit_correlation`` (Pearson's r of that unit with the
    carry, signed).
    """
    model.eval()
    rng = random.Random(seed)

    def states_and_carries() -> tuple[Tensor, Tensor]:
        x, _, sums = make_batch(count, bits, bits, rng)
        _, hidden = model(x)
        return hidden.reshape(-1, hidden.shape[-1]), carries(x, sums).reshape(-1)

    h_fit, c_fit = states_and_carries()
    h_test, c_test = states_and_carries()
    ones = torch.ones(len(h_fit), 1)
    w = torch.linalg.lstsq(torch.cat([h_fit, ones], 1), c_fit[:, None]).solution
    predicted = torch.cat([h_test, torch.ones(len(h_test), 1)], 1) @ w
    probe_accuracy = ((predicted[:, 0] > 0.5).float() == c_test).float().mean().item()

    correlations = torch.corrcoef(torch.cat([h_test, c_test[:, None]], 1).T)[-1, :-1]
    correlations = torch.nan_to_num(correlations)  # a unit that never moves has no r
    unit = int(correlations.abs().argmax())
    return {
        "weights": w[:, 0],
        "probe_accuracy": probe_accuracy,
        "unit": unit,
        "unit_correlation": correlations[unit].item(),
    }


def plot_carry(model: AdderRNN, path: str, probe: dict, bits: int = 40, seed: int = 7) -> None:
    """Plot, over one sum of two ``bits``-bit numbers, the true carry against the linear
    probe's reading of h_t (top) and against the best single hidden unit (bottom)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RnnkitError(
            "the plot needs the matplotlib package: pip install 'rnnkit[plot]'"
        ) from None
    x, _, sums = make_batch(1, bits, bits, random.Random(seed))
    with torch.no_grad():
        _, hidden = model(x)
    hidden, carry = hidden[0], carries(x, sums)[0]
    reading = hidden @ probe["weights"][:-1] + probe["weights"][-1]
    unit = hidden[:, probe["unit"]]
    steps = np.arange(bits + 1)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 3.6), sharex=True)
    top.step(steps, carry, where="mid", lw=2, color="C0", label="true carry out of step t")
    top.plot(steps, reading, "o", ms=3, color="C1", label="linear probe of $h_t$")
    for t in steps:
        a, b = int(x[0, t, 0]), int(x[0, t, 1])
        top.text(t, 1.3, f"{a}\n{b}", ha="center", va="bottom", fontsize=6, linespacing=0.9)
    top.set_ylim(-0.2, 1.75)
    top.set_yticks([0, 1])
    top.set_title("bits of a and b (least-significant first)", fontsize=8, loc="left")
    top.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, fontsize=7, frameon=False)
    bottom.step(steps, carry * 2 - 1, where="mid", lw=2, color="C0", alpha=0.3)
    bottom.plot(steps, unit, "o-", ms=3, lw=0.8, color="C2")
    bottom.set_ylabel(f"unit {probe['unit']}", fontsize=8)
    bottom.set_ylim(-1.15, 1.15)
    bottom.set_xlabel(
        f"step t  (one hidden unit alone: r = {probe['unit_correlation']:+.3f} with the carry)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="rnn")
    parser.add_argument("--hidden-size", type=int, default=16)
    parser.add_argument("--plot", metavar="FILE", help="save the carry plot (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    start, cpu = time.perf_counter(), time.process_time()
    model = train(args.seed, args.steps, args.cell, args.hidden_size, log_every=100)
    print(
        f"trained in {time.perf_counter() - start:.1f} s ({time.process_time() - cpu:.1f} s of "
        f"CPU) on numbers of 1..8 bits"
    )
    for bits in (8, 16, 256, 10_000):
        start = time.perf_counter()
        accuracy = evaluate(model, bits)
        seconds = time.perf_counter() - start
        print(f"{bits:6,d}-bit numbers: {accuracy:.1%} of 100 sums exactly right ({seconds:.1f} s)")
    probe = carry_probe(model)
    print(
        f"carry read from h_t by a linear probe: {probe['probe_accuracy']:.2%} of steps right; "
        f"best single unit {probe['unit']}: r = {probe['unit_correlation']:+.3f}"
    )
    if args.plot:
        plot_carry(model, args.plot, probe)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
