"""Generation speed: rnnkit's NumPy step engine against torch's nn.LSTM called one step at a time.

Both run the same weights in the same process, through the same decoding code
(rnnkit.decoding), so the ratio is what the engine buys. A "step" is one call of the model: one
token for each of B rows (beam search: B = beam width).

    python benchmarks/generate_speed.py                     # 2×512 LSTM, vocab 65, embedding 64
    python benchmarks/generate_speed.py --hidden 1024 --layers 1 --steps 500
    python benchmarks/generate_speed.py --blas-threads 1    # OpenBLAS threads (default: all)
"""

import argparse
import os
import sys


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--hidden", type=int, default=512, help="N, units per layer")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--embedding", type=int, default=64, help="E; 0 = one-hot input")
    p.add_argument("--steps", type=int, default=2000, help="engine steps per measurement")
    p.add_argument("--baseline-steps", type=int, default=300, help="nn.LSTM steps per measurement")
    p.add_argument("--beam", type=int, default=8, help="beam width (and the batch size)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=5, help="best of this many runs")
    p.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="wall: elapsed time; cpu: CPU time of the process (steadier on a shared machine\n"
        "with one thread each, meaningless with several)",
    )
    p.add_argument("--blas-threads", type=int, default=0, help="OpenBLAS threads; 0 = default")
    p.add_argument("--torch-threads", type=int, default=0, help="torch threads; 0 = default")
    return p.parse_args()


args = parse_args()
if args.blas_threads:  # OpenBLAS reads this once, when NumPy is first imported
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)

import resource  # noqa: E402
import time  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from rnnkit import decoding  # noqa: E402
from rnnkit.inference import StepEngine  # noqa: E402


class TorchStepper:
    """The naive way: embedding → nn.LSTM/GRU/RNN on one time step → linear → log-softmax."""

    def __init__(self, embedding, rnn: nn.RNNBase, head: nn.Linear, vocab: int) -> None:
        self.embedding, self.rnn, self.head, self.vocab = embedding, rnn, head, vocab

    @torch.no_grad()
    def step(self, tokens: np.ndarray, state):
        t = torch.from_numpy(tokens)[:, None]
        x = (
            self.embedding(t)
            if self.embedding is not None
            else nn.functional.one_hot(t, self.vocab).float()
        )
        y, state = self.rnn(x, state)
        return torch.log_softmax(self.head(y[:, -1]), -1).numpy(), state

    def reorder(self, state, index: np.ndarray):
        i = torch.from_numpy(index)
        if isinstance(state, tuple):
            return tuple(s.index_select(1, i) for s in state)
        return state.index_select(1, i)


def cells_of(rnn: nn.RNNBase, kind: str) -> list:
    """rnnkit-layout cells (one bias per gate) from a torch layer's parameters."""
    cells = []
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    N = rnn.hidden_size
    for k in range(rnn.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{k}"), getattr(rnn, f"bias_hh_l{k}")
        cell = SimpleNamespace(kind=kind, weight_ih=w_ih, weight_hh=w_hh, bias=b_ih + b_hh)
        if kind == "gru":  # torch's z' = 1 - z and its second bias inside the reset
            if b_hh[2 * N :].abs().max() > 0:
                raise SystemExit("internal: GRU needs b_hn = 0")
            flip = torch.ones(G * N, 1)
            flip[N : 2 * N] = -1
            cell.weight_ih, cell.weight_hh = w_ih * flip, w_hh * flip
            cell.bias = (b_ih + b_hh) * flip[:, 0]
            cell.reset_after = True
        cells.append(cell)
    return cells


def best_rates(runs: list, steps: list[int], repeats: int) -> list[float]:
    """Steps per second of each run, best of ``repeats``; the runs take turns, so that load
    from other processes hits them alike."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    for run in runs:
        run(20)  # warm up: buffers, caches, thread pools
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, (run, n) in enumerate(zip(runs, steps, strict=True)):
            t0 = clock()
            run(n)
            best[i] = min(best[i], clock() - t0)
    return [n / b for n, b in zip(steps, best, strict=True)]


def main() -> int:
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    V, E, N, L = args.vocab, args.embedding, args.hidden, args.layers
    layer_class = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[args.cell]
    rnn = layer_class(E or V, N, L, batch_first=True).eval()
    if args.cell == "gru":
        with torch.no_grad():  # rnnkit's GRU has one bias per gate: b_hn = 0
            for k in range(L):
                getattr(rnn, f"bias_hh_l{k}")[2 * N :] = 0
    embedding = nn.Embedding(V, E).eval() if E else None
    head = nn.Linear(N, V).eval()
    naive = TorchStepper(embedding, rnn, head, V)
    engine = StepEngine(
        None if embedding is None else embedding.weight,
        cells_of(rnn, args.cell),
        head.weight,
        head.bias,
        dtype=np.dtype(args.dtype),
    )

    prompt = np.arange(16) % V
    lp_e, st_e = engine.prime(prompt)
    lp_t, st_t = naive.step(prompt[:1], None)
    for tok in prompt[1:]:
        lp_t, st_t = naive.step(np.array([tok]), st_t)

    # Same model: the log-probs after the prompt agree, and so do the greedy chains from there.
    n_check = 100
    chain_e = decoding.collect(decoding.greedy(engine, st_e, lp_e, n_check))[0]
    chain_t = decoding.collect(decoding.greedy(naive, st_t, lp_t, n_check))[0]
    diff = float(np.abs(lp_e - lp_t).max())

    def greedy_run(stepper, state, lp):
        return lambda n: decoding.collect(decoding.greedy(stepper, state, lp, n))

    def sample_run(stepper, state, lp):
        rng = np.random.default_rng(0)
        return lambda n: decoding.collect(
            decoding.sample(stepper, state, lp, n, temperature=0.8, top_k=20, rng=rng)
        )

    def raw_run(stepper, state, lp, B):  # bare model steps, B rows, no decoding
        tokens = np.zeros(B, dtype=np.int64)
        state0 = stepper.reorder(state, np.zeros(B, dtype=np.int64))

        def run(n):
            s = state0
            for _ in range(n):
                _, s = stepper.step(tokens, s)

        return run

    def beam_run(stepper, state, lp, K):
        return lambda n: decoding.beam_search(stepper, state, lp, n, K)

    K = args.beam
    rows = [
        ("greedy, batch 1", greedy_run, ()),
        ("sample (T=0.8, top-k 20), batch 1", sample_run, ()),
        ("model step only, batch 1", raw_run, (1,)),
        (f"model step only, batch {K}", raw_run, (K,)),
        (f"beam search, width {K}", beam_run, (K,)),
    ]
    print(
        f"{args.cell.upper()} {L}×{N}, vocab {V}, embedding {E or 'one-hot'}, {args.dtype}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), NumPy {np.__version__} "
        f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}); "
        f"{args.clock} clock, best of {args.repeats}"
    )
    print(
        f"check: greedy chains of {n_check} tokens {'agree' if chain_e == chain_t else 'DIFFER'}; "
        f"max |log-prob difference| after the prompt {diff:.1e}"
    )
    baseline = f"nn.{layer_class.__name__} loop"
    print(f"{'':38s}{baseline:>14s}{'StepEngine':>14s}{'ratio':>8s}{'engine µs/step':>16s}")
    for name, make, extra in rows:
        base, fast = best_rates(
            [make(naive, st_t, lp_t, *extra), make(engine, st_e, lp_e, *extra)],
            [args.baseline_steps, args.steps],
            args.repeats,
        )
        print(f"{name:38s}{base:12.0f}/s{fast:12.0f}/s{fast / base:7.1f}×{1e6 / fast:14.0f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")
    return 0 if chain_e == chain_t and diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
