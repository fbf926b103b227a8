"""Parity of a bit string, many-to-one: trained on strings of length <= 20, right at 10,000.

    python examples/parity.py [--seed 0] [--steps 1500] [--cell rnn] [--plot parity.png]

The network reads the bits one step at a time and answers once, from its final hidden state:
is the number of ones odd? The answer at step t depends on every bit so far, so the state has
to carry one bit (the running parity) and flip it at every 1. Nothing in the weights depends on
the length, so a network that has learned that rule answers for strings 500 times longer than
any it was trained on.

Parity is the classic hard case for gradient descent: a wrong bit anywhere flips the answer, so
on long strings the loss gives no hint until the rule is already learned. A curriculum fixes
that: start with strings of length <= 2 and let the longest length grow by one each time the
network gets the current ones right.
"""

import argparse
import time

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN


def make_batch(
    batch_size: int, min_length: int, max_length: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Random bit strings of random lengths in ``min_length..max_length``, and their parity.

    Returns ``x`` (B, T, 1) floats 0/1, zero after each row's length; ``lengths`` (B,);
    ``parity`` (B,) floats 0/1. T is the longest length in the batch.
    """
    lengths = torch.randint(min_length, max_length + 1, (batch_size,), generator=generator)
    T = int(lengths.max())
    bits = torch.randint(0, 2, (batch_size, T), generator=generator)
    bits = bits * (torch.arange(T) < lengths[:, None])  # padding is zeros: parity unchanged
    parity = bits.sum(dim=1) % 2
    return bits.float().unsqueeze(-1), lengths, parity.float()


class ParityRNN(nn.Module):
    """A one-layer recurrent layer and a linear readout of its final hidden state."""

    def __init__(self, cell: str = "rnn", hidden_size: int = 32) -> None:
        super().__init__()
        layers = {"rnn": RNN, "lstm": LSTM, "gru": lambda d, n: GRU(d, n, reset_after=True)}
        self.rnn = layers[cell](1, hidden_size)  # reset_after: the GRU runs the fused kernel
        self.readout = nn.Linear(hidden_size, 1)
        self.longest_trained = 0  # the longest length the curriculum reached (set by train)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """x (B, T, 1), lengths (B,) or None → parity logits (B,), read at each row's length."""
        _, state = self.rnn(x, lengths=lengths)
        h = state[0] if isinstance(state, tuple) else state  # an LSTM's state is (h, c)
        return self.readout(h[-1]).squeeze(-1)  # h: (layers, B, N)

    def running_logits(self, x: Tensor) -> Tensor:
        """The readout applied at every step: (B, T) logits of the parity of each prefix."""
        outputs, _ = self.rnn(x)
        return self.readout(outputs).squeeze(-1)


def train(
    seed: int = 0,
    steps: int = 1500,
    cell: str = "rnn",
    hidden_size: int = 32,
    max_length: int = 20,
    batch_size: int = 64,
    lr: float = 1e-2,
    log_every: int = 0,
) -> ParityRNN:
    """Train on strings of length 1..``max_length`` with a curriculum on the longest length.

    Each batch mixes lengths 1..L (``lengths=`` runs them in one call); L starts at 2 and grows
    by one whenever the running accuracy on the training batches passes 98%.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = ParityRNN(cell, hidden_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    longest, running_accuracy = 2, 0.0
    for step in range(1, steps + 1):
        x, lengths, parity = make_batch(batch_size, 1, longest, generator)
        logits = model(x, lengths)
        loss = F.binary_cross_entropy_with_logits(logits, parity)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        accuracy = ((logits > 0).float() == parity).float().mean().item()
        running_accuracy = 0.9 * running_accuracy + 0.1 * accuracy
        if running_accuracy > 0.98 and longest < max_length:
            longest, running_accuracy = longest + 1, 0.0
        if log_every and step % log_every == 0:
            print(f"step {step:5d}  loss {loss.item():.4f}  lengths 1..{longest}")
    model.longest_trained = longest  # where the curriculum got to
    return model


@torch.no_grad()
def evaluate(model: ParityRNN, length: int, count: int = 200, seed: int = 1234) -> float:
    """Accuracy on ``count`` random strings of exactly ``length`` bits (one batched pass)."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    x, _, parity = make_batch(count, length, length, generator)
    return ((model(x) > 0).float() == parity).float().mean().item()


def plot_running_parity(model: ParityRNN, path: str, length: int = 60, seed: int = 0) -> None:
    """Plot the readout at every step of one string against the true running parity."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RnnkitError(
            "the plot needs the matplotlib package: pip install 'rnnkit[plot]'"
        ) from None
    x, _, _ = make_batch(1, length, length, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        p = torch.sigmoid(model.running_logits(x))[0]
    bits = x[0, :, 0]
    steps = torch.arange(1, length + 1)
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.step(steps, bits.cumsum(0) % 2, where="mid", label="true parity of the prefix", lw=2)
    ax.plot(steps, p, "o", ms=3, label="P(odd) read from the hidden state")
    ax.set_xlabel("step t (input bits shown on top)")
    ax.set_xticks(steps[::5])
    for t, b in zip(steps, bits, strict=True):
        ax.text(t, 1.12, str(int(b)), ha="center", fontsize=6)
    ax.set_ylim(-0.1, 1.25)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--cell", choices=["rnn", "gru", "lstm"], default="rnn")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--plot", metavar="FILE", help="save the running-parity plot (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    start, cpu = time.perf_counter(), time.process_time()
    model = train(args.seed, args.steps, args.cell, args.hidden_size, log_every=250)
    print(
        f"trained in {time.perf_counter() - start:.1f} s ({time.process_time() - cpu:.1f} s of "
        f"CPU) on lengths 1..{model.longest_trained}"
    )
    for length in (20, 100, 1_000, 10_000):
        start = time.perf_counter()
        accuracy = evaluate(model, length)
        seconds = time.perf_counter() - start
        print(f"length {length:6,d}: accuracy {accuracy:.1%} on 200 strings ({seconds:.1f} s)")
    if args.plot:
        plot_running_parity(model, args.plot)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
