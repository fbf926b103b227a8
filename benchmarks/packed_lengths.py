"""Variable-length batches on the CPU: torch's packed-sequence kernel against rnnkit's engines.

    python benchmarks/packed_lengths.py [--threads 1] [--repeats 5]

Every task but the language model trains on padded batches with their lengths (classification,
tagging, the encoder of a translation model, speech). torch runs those through a packed
sequence (``pack_padded_sequence`` then the packed ``_VF`` kernel), and so did rnnkit's native
engine. On the CPU that kernel is far slower than on a full-length batch, and slower than
rnnkit's scan engine, so ``engine="auto"`` now sends a variable-length batch on the CPU to the
scan engine. For each shape this prints the time of one forward + backward pass (the best of
``--repeats``) of:

* ``torch packed``   torch.nn.LSTM/GRU on a PackedSequence: what a hand-written PyTorch model does
* ``rnnkit native``  rnnkit.nn layer, engine="native" (the same packed kernel)
* ``rnnkit auto``    rnnkit.nn layer, the default engine: scan for these batches
* ``torch full``     torch.nn on the same batch without lengths (wrong for the padded rows; the
                     speed the kernel has when it need not pack)

and the ratio torch packed / rnnkit auto. Lengths are drawn uniformly from [T/3, T].

Measured on the idle 2-core AMD EPYC (no AMX), torch 2.13.0, one thread, ms per forward +
backward (GRUs in torch's form, reset_after=True):

  shape                                 torch packed  rnnkit native  rnnkit auto  torch full
  classify BiLSTM B32 T400 E128 N128           1,331          1,769          303         196
  classify BiGRU  B32 T400 E128 N128             866            875          226         260
  tagger BiLSTM   B32 T40 E130 N200               58             56           57          27
  encoder BiGRU   B64 T30 E256 N256               97            107          103         100
  speech BiLSTM   B16 T300 E80 N256 x3         2,945          3,283        1,601         846
  LSTM            B16 T100 E64 N512 x2           597            577          422         194

packed / auto: 4.4x, 3.8x, 1.0x, 0.95x, 1.8x, 1.4x; peak RSS 917 MB. The longer the rows, the
more the packed kernel loses (it runs every step as its own small batch, forward and back);
at 30-40 steps the two are level.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import GRU, LSTM

# (label, kind, batch, steps, input size, hidden size, layers, bidirectional)
SHAPES = [
    ("classify BiLSTM B32 T400 E128 N128", "lstm", 32, 400, 128, 128, 1, True),
    ("classify BiGRU  B32 T400 E128 N128", "gru", 32, 400, 128, 128, 1, True),
    ("tagger BiLSTM   B32 T40 E130 N200", "lstm", 32, 40, 130, 200, 1, True),
    ("encoder BiGRU   B64 T30 E256 N256", "gru", 64, 30, 256, 256, 1, True),
    ("speech BiLSTM   B16 T300 E80 N256 x3", "lstm", 16, 300, 80, 256, 3, True),
    ("LSTM            B16 T100 E64 N512 x2", "lstm", 16, 100, 64, 512, 2, False),
]


def _best_ms(step, repeats: int) -> float:
    step()  # warm-up: allocations, oneDNN primitive creation
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def _torch_step(layer, x, lengths):
    def step():
        layer.zero_grad()
        if lengths is None:
            out, _ = layer(x)
        else:
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(layer(packed)[0], batch_first=True)
        out.sum().backward()

    return step


def _rnnkit_step(layer, x, lengths):
    def step():
        layer.zero_grad()
        out, _ = layer(x, lengths=lengths)
        out.sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); ms per forward + backward")
    print(
        f"{'shape':<38} {'torch packed':>12} {'rnnkit native':>13} {'rnnkit auto':>11} "
        f"{'torch full':>10} {'packed/auto':>11}"
    )
    for label, kind, B, T, E, N, L, bi in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(B, T, E)
        lengths = torch.randint(T // 3, T + 1, (B,))
        lengths[0] = T  # the batch is as long as its longest row
        options = {"reset_after": True} if kind == "gru" else {}  # the form torch computes
        ours = {"lstm": LSTM, "gru": GRU}[kind]
        theirs = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        native = ours(E, N, num_layers=L, bidirectional=bi, batch_first=True, engine="native",
                      **options)  # fmt: skip
        auto = ours(E, N, num_layers=L, bidirectional=bi, batch_first=True, **options)
        reference = theirs(E, N, num_layers=L, bidirectional=bi, batch_first=True)
        times = (
            _best_ms(_torch_step(reference, x, lengths), args.repeats),
            _best_ms(_rnnkit_step(native, x, lengths), args.repeats),
            _best_ms(_rnnkit_step(auto, x, lengths), args.repeats),
            _best_ms(_torch_step(reference, x, None), args.repeats),
        )
        print(
            f"{label:<38} {times[0]:>12,.0f} {times[1]:>13,.0f} {times[2]:>11,.0f} "
            f"{times[3]:>10,.0f} {times[0] / times[2]:>10.2f}x",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
