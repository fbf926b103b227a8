"""Training throughput of a char-LM-shaped model: torch's nn.LSTM / nn.GRU against rnnkit.

Model: embedding 65 → 64, a 2-layer stacked recurrent layer of hidden size N, linear head to 65;
batch 64, sequence 128; one training step is forward + cross-entropy + backward + Adam.

Variants, all timed in this process and interleaved (the machine is shared, so each variant
keeps the best of several repeats):

* ``torch LSTM``        torch.nn.LSTM (oneDNN), the baseline for the LSTM rows
* ``rnnkit native``     rnnkit.nn.LSTM(engine="native"): the same kernel behind our layer
* ``rnnkit scan``       rnnkit.nn.LSTM(engine="scan"): the scan engine
* ``torch GRU``         torch.nn.GRU, the baseline for the GRU row (cuDNN form)
* ``rnnkit scan GRU``   rnnkit.nn.GRU(reset_after=False): the textbook GRU on the scan engine
* ``... bf16``          the same model trained in mixed precision (``torch.autocast`` bfloat16,
                        float32 weights: ``TrainConfig(precision="bf16")``); its ratio is
                        against the float32 baseline. On a CPU with AMX (``amx_bf16`` in
                        /proc/cpuinfo) oneDNN runs the products on the tile units.

GFLOP/s counts matrix-product FLOPs only: forward 2·T·B·G·N·(d+N) per layer plus the head
2·T·B·N·V, backward twice the forward. "% peak" divides by a float32 torch.mm (2048³) timed in
this run, so bf16 rows can pass 100%.

    python benchmarks/train_throughput.py [--hidden 256 512 1024] [--steps 3] [--repeats 3]
    python benchmarks/train_throughput.py --quick       # tiny sizes, a smoke test
    python benchmarks/train_throughput.py --threads 1   # steadier figures on a shared machine
"""

import argparse
import resource
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

VOCAB, EMBED, LAYERS = 65, 64, 2


class TorchLM(nn.Module):
    def __init__(self, kind: str, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](EMBED, hidden, LAYERS)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, tokens):  # (T, B) → (T, B, V)
        return self.head(self.rnn(self.embed(tokens))[0])


class RnnkitLM(nn.Module):
    def __init__(self, kind: str, hidden: int, **options) -> None:
        super().__init__()
        from rnnkit.nn import GRU, LSTM

        self.embed = nn.Embedding(VOCAB, EMBED)
        layer = {"lstm": LSTM, "gru": GRU}[kind]
        self.rnn = layer(EMBED, hidden, LAYERS, batch_first=False, **options)
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, tokens):
        return self.head(self.rnn(self.embed(tokens))[0])


class ScanStackLM(nn.Module):
    """Fallback while rnnkit.nn layers are missing: two cells through scan_layer directly."""

    def __init__(self, kind: str, hidden: int, **options) -> None:
        super().__init__()
        from rnnkit.nn.cells import GRUCell, LSTMCell

        cell = {"lstm": LSTMCell, "gru": GRUCell}[kind]
        self.kind = kind
        self.embed = nn.Embedding(VOCAB, EMBED)
        self.cells = nn.ModuleList(
            [cell(EMBED if k == 0 else hidden, hidden, **options) for k in range(LAYERS)]
        )
        self.head = nn.Linear(hidden, VOCAB)

    def forward(self, tokens):
        from rnnkit.nn.engines.scan import scan_layer

        x = self.embed(tokens)
        for cell in self.cells:
            h0 = x.new_zeros(x.shape[1], cell.hidden_size)
            x, _ = scan_layer(cell, x, (h0, h0) if self.kind == "lstm" else h0)
        return self.head(x)


def have_layers() -> bool:
    try:
        from rnnkit.nn import LSTM  # noqa: F401
    except ImportError:
        return False
    return True


def variants(hidden: int) -> list[tuple[str, str, Callable[[], nn.Module]]]:
    """(name, baseline name, model factory) for one hidden size; "bf16" names run autocast."""
    out = [("torch LSTM", "torch LSTM", lambda: TorchLM("lstm", hidden))]
    if have_layers():
        native = lambda: RnnkitLM("lstm", hidden, engine="native")  # noqa: E731
        out += [
            ("rnnkit native", "torch LSTM", native),
            ("torch LSTM bf16", "torch LSTM", lambda: TorchLM("lstm", hidden)),
            ("rnnkit native bf16", "torch LSTM", native),
            ("rnnkit scan", "torch LSTM", lambda: RnnkitLM("lstm", hidden, engine="scan")),
            ("torch GRU", "torch GRU", lambda: TorchLM("gru", hidden)),
            (
                "rnnkit scan GRU",
                "torch GRU",
                lambda: RnnkitLM("gru", hidden, engine="scan", reset_after=False),
            ),
        ]
    else:
        print("rnnkit.nn layers not found: skipping 'rnnkit native', scan runs scan_layer directly")
        out += [
            ("rnnkit scan", "torch LSTM", lambda: ScanStackLM("lstm", hidden)),
            ("torch GRU", "torch GRU", lambda: TorchLM("gru", hidden)),
            ("rnnkit scan GRU", "torch GRU", lambda: ScanStackLM("gru", hidden, reset_after=False)),
        ]
    return out


def train_flops(gates: int, hidden: int, T: int, B: int) -> float:
    """Matrix-product FLOPs of one training step (forward, backward = 2× forward)."""
    fwd = sum(2 * T * B * gates * hidden * (d + hidden) for d in [EMBED] + [hidden] * (LAYERS - 1))
    fwd += 2 * T * B * hidden * VOCAB
    return 3.0 * fwd


def matmul_peak(n: int, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` float32 n×n×n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


class Runner:
    """One model with its optimizer and a fixed batch; ``run(n)`` times n training steps."""

    def __init__(self, model: nn.Module, T: int, B: int, mixed: bool = False) -> None:
        torch.manual_seed(0)
        self.model = model
        self.mixed = mixed
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.tokens = torch.randint(0, VOCAB, (T, B))
        self.targets = torch.randint(0, VOCAB, (T, B))

    def step(self) -> float:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.mixed):
            logits = self.model(self.tokens)
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), self.targets.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.item()

    def run(self, steps: int) -> float:
        """Seconds per step over ``steps`` steps."""
        t = time.perf_counter()
        for _ in range(steps):
            self.step()
        return (time.perf_counter() - t) / steps


def bench_hidden(hidden: int, T: int, B: int, args) -> list[dict]:
    runners = {}
    for name, base, make in variants(hidden):
        torch.manual_seed(0)
        runners[name] = (base, Runner(make(), T, B, mixed=name.endswith("bf16")))
    for _, r in runners.values():
        for _ in range(args.warmup):
            r.step()
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(args.repeats):  # interleaved: a slow spell on the machine hits every variant
        for name, (_, r) in runners.items():
            best[name] = min(best[name], r.run(args.steps))
    rows = []
    print(f"  N={hidden}: " + ", ".join(f"{n} {T * B / best[n]:.0f} tok/s" for n in best))
    sys.stdout.flush()
    for name, (base, _) in runners.items():
        gates = 3 if "GRU" in name else 4
        flops = train_flops(gates, hidden, T, B)
        rows.append(
            {
                "hidden": hidden,
                "variant": name,
                "tok_s": T * B / best[name],
                "ratio": best[base] / best[name],
                "baseline": base,
                "gflops": flops / best[name] / 1e9,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--steps", type=int, default=3, help="training steps per timed repeat")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per variant first")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (best is kept)")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.hidden, args.seq, args.batch = [32], 16, 8
        args.steps, args.warmup, args.repeats = 2, 1, 1
    T, B = args.seq, args.batch

    # The peak is timed before and after the runs and the best kept: on a shared machine one
    # of the two may fall in a busy spell.
    peak_n = 512 if args.quick else 2048
    peak = matmul_peak(peak_n)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; T={T}, B={B}, {LAYERS} layers")
    rows = [r for hidden in args.hidden for r in bench_hidden(hidden, T, B, args)]
    peak = max(peak, matmul_peak(peak_n))
    print(f"matmul peak {peak:.0f} GFLOP/s (float32 {peak_n}³ torch.mm, best of both timings)")
    header = f"{'N':>5}  {'variant':<19} {'tokens/s':>9}  {'ratio':>6}  {'vs':<10} "
    header += f"{'GFLOP/s':>7}  {'% peak':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['hidden']:>5}  {r['variant']:<19} {r['tok_s']:>9.0f}  {r['ratio']:>5.2f}x  "
            f"{r['baseline']:<10} {r['gflops']:>7.1f}  {100 * r['gflops'] / peak:>5.1f}%"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
