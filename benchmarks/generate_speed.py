"""Generation speed: rnnkit's step engines against torch's nn.LSTM called one step at a time.

All run the same weights in the same process, through the same decoding code (rnnkit.decoding),
so the ratios are what the engines buy. A "step" is one call of the model: one token for each
of B rows (beam search: B = beam width). Engines: fp32 (StepEngine, exact: its greedy chain
must equal nn.LSTM's), int8 and bf16 (LowPrecisionEngine: weights in fewer bytes, not exact).

With --train-seconds the model is a real one: a char LSTM trained that long on Tiny Shakespeare
(../shared/data, kept in --run and reused), and each low-precision engine is measured against
fp32 on it: validation perplexity (the last 10% of the text, read in --ppl-streams streams) and
greedy agreement over --agree-steps steps: the share of steps whose most likely token is the
same when both read fp32's greedy text, and the length of the identical start of the chains
each engine writes by itself. Without it the weights are random (speed only).

    python benchmarks/generate_speed.py --train-seconds 90   # 2×512 LSTM, vocab 65, E 64
    python benchmarks/generate_speed.py --engines fp32,int8 --hidden 1024 --layers 1
    python benchmarks/generate_speed.py --blas-threads 1 --torch-threads 1

Measured on an idle 2-core AMD EPYC (no AMX), --train-seconds 90 (490 steps of 32×64
characters, validation 1.665 nats/char), steps/s:
                              nn.LSTM     fp32     int8     bf16
  greedy, batch 1                 674    7,629    9,430    8,348   (2 threads, the default)
  greedy, batch 1                 341    4,696    9,955    6,040   (--blas-threads 1
  beam search, width 8            310      670    4,878    3,367    --torch-threads 1)
  beam search, width 8            721      684    4,663    3,856   (2 threads)
Perplexity fp32 5.2784, int8 5.2782, bf16 5.2783; the same most likely character at 99.69%
(int8) / 99.90% (bf16) of 111,520 validation positions; peak RSS 335-353 MiB. int8 greedy
is within 0.5% of the issue's 10,000 steps/s (the model step alone: 10,524), beam 8 above
its 3,000.

Earlier, with --train-seconds 90 --blas-threads 1 --torch-threads 1 (the model: 101 steps
of 32×64 characters, validation 2.233 nats/char), four runs at load 4-9 on the 2 shared cores
(nn.LSTM reached 80-236 steps/s, a third or less of its idle 700): int8 greedy at batch 1
2.2-2.9× fp32 (2,744-6,377 steps/s), beam width 8 5.5-8.6× (1,042-3,522); bf16 1.2-2.0× and
2.7-5.8×. Perplexity fp32 9.3174, int8 9.3179, bf16 9.3172; the same most likely character
at 99.91% (int8) / 99.97% (bf16) of the validation positions. That model's greedy text is
"the the the …", so its 10,000-step chains agree trivially; a 2×256 trained 2 minutes (1.74
nats/char) gives 99.97% / 99.99% reading fp32's chain, but the free chains part at token 1
(a near tie), as chaotic chains do. Peak RSS 340-358 MiB.
"""

import argparse
import os
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
    p.add_argument("--engines", default="fp32,int8,bf16", help="comma-separated engines")
    p.add_argument("--train-seconds", type=float, default=0, help="0 = random weights")
    p.add_argument("--data", default=str(DATA / "tinyshakespeare" / "input.txt"))
    p.add_argument("--run", default="runs/generate_speed", help="where the trained model lives")
    p.add_argument("--retrain", action="store_true", help="train anew even if --run holds one")
    p.add_argument("--agree-steps", type=int, default=10_000, help="greedy steps compared")
    p.add_argument("--ppl-streams", type=int, default=16, help="batch rows reading validation")
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
from rnnkit.low_precision import ENGINES, LowPrecisionEngine  # noqa: E402


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


def trained_model():
    """(embedding, nn.LSTM, head, vocab, validation ids, run) of a char LSTM trained for
    --train-seconds on --data, or the one already in --run."""
    from rnnkit.models.language_model import LMConfig
    from rnnkit.nn import to_torch
    from rnnkit.tasks.lm import LMDataConfig, train_language_model
    from rnnkit.tasks.text_generator import TextGenerator
    from rnnkit.training import TrainConfig

    run, text = Path(args.run), Path(args.data).read_text(encoding="utf-8")
    if args.retrain or not (run / "last").is_dir():
        result = train_language_model(
            args.data,
            run,
            LMConfig(
                cell=args.cell,
                hidden_size=args.hidden,
                num_layers=args.layers,
                embedding_size=args.embedding,
            ),
            LMDataConfig(level="char", seq_length=64, batch_size=32, val_fraction=0.1),
            TrainConfig(
                lr=3e-3,
                epochs=1000,
                max_minutes=args.train_seconds / 60,
                progress=False,
                device="cpu",
                threads=args.torch_threads,
            ),
        )
        print(
            f"trained {result.steps} steps of 32×64 characters in {result.elapsed:.0f} s: "
            f"validation loss {result.last_val_loss:.3f} nats/char"
        )
    gen = TextGenerator.load(run)
    lm = gen.model.eval()
    val = gen.vocab.encode_array(text[int(len(text) * 0.9) :], where=args.data)
    return lm.embedding, to_torch(lm.rnn), lm.head, gen.vocab, val, run


def read_text(engine, ids: np.ndarray, streams: int) -> tuple[float, np.ndarray]:
    """Perplexity exp(mean -log p) of every next token of ``ids`` and the most likely token at
    each position; ``ids`` is read as ``streams`` equal parts in one batch, each from a zero
    state (the same handicap for every engine)."""
    T = len(ids) // streams
    rows = ids[: T * streams].reshape(streams, T)
    lp, state = engine.prime(rows[:, :1])
    total, best = 0.0, np.empty((streams, T - 1), np.int64)
    for t in range(1, T):
        total -= lp[np.arange(streams), rows[:, t]].astype(np.float64).sum()
        best[:, t - 1] = lp.argmax(axis=1)
        if t < T - 1:
            lp, state = engine.step(rows[:, t], state)
    return float(np.exp(total / (streams * (T - 1)))), best


def agreement(exact, low, start: np.ndarray, n: int) -> tuple[float, int, float]:
    """(share of steps whose argmax is the same when both read exact's greedy text, length of
    the identical start of the chains each writes, share of equal tokens in those chains)."""
    lp_e, st_e = exact.prime(start)
    chain = decoding.collect(decoding.greedy(exact, st_e, lp_e, n))[0]
    lp_l, st_l = low.prime(start)
    own = decoding.collect(decoding.greedy(low, st_l, lp_l, n))[0]
    same = int(lp_l.argmax() == chain[0])
    for t in range(1, n):  # low reads exact's text: does it pick the same next token?
        lp_l, st_l = low.step(np.array([chain[t - 1]]), st_l)
        same += int(lp_l.argmax() == chain[t])
    a, b = np.array(chain), np.array(own)
    prefix = int(np.argmin(a == b)) if (a != b).any() else n
    return same / n, prefix, float((a == b).mean())


def weight_mb(engine) -> float:
    if isinstance(engine, LowPrecisionEngine):
        return engine.weight_bytes / 1e6
    arrays = [engine.head_weight] + [
        getattr(L, n, None) for L in engine.layers for n in ("w_ih", "w_hh", "w_hh_rz", "w_hh_n")
    ]
    return sum(a.nbytes for a in arrays if a is not None) / 1e6


def main() -> int:
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    names = args.engines.split(",")
    if not names or any(n not in ENGINES for n in names):
        raise SystemExit(f"--engines: a comma-separated subset of {ENGINES}, got {args.engines}")
    torch.manual_seed(0)
    layer_class = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[args.cell]
    if args.train_seconds:
        if args.cell == "gru":
            raise SystemExit("--train-seconds: lstm or rnn (rnnkit's GRU is not nn.GRU's)")
        embedding, rnn, head, vocab, val, run = trained_model()
        V, E, N, L = len(vocab), args.embedding, args.hidden, args.layers
        weights = f"trained in {run}, {len(val):,} validation characters"
    else:
        V, E, N, L = args.vocab, args.embedding, args.hidden, args.layers
        rnn = layer_class(E or V, N, L, batch_first=True).eval()
        if args.cell == "gru":
            with torch.no_grad():  # rnnkit's GRU has one bias per gate: b_hn = 0
                for k in range(L):
                    getattr(rnn, f"bias_hh_l{k}")[2 * N :] = 0
        embedding = nn.Embedding(V, E).eval() if E else None
        head = nn.Linear(N, V).eval()
        weights = "random weights"
    naive = TorchStepper(embedding, rnn, head, V)
    emb_w, cells = None if embedding is None else embedding.weight, cells_of(rnn, args.cell)
    engines = {}
    for name in names:
        if name == "fp32":
            engines[name] = StepEngine(
                emb_w, cells, head.weight, head.bias, dtype=np.dtype(args.dtype)
            )
        else:
            engines[name] = LowPrecisionEngine(emb_w, cells, head.weight, head.bias, name)

    prompt = np.arange(16) % V
    primed = {name: e.prime(prompt) for name, e in engines.items()}
    lp_t, st_t = naive.step(prompt[:1], None)
    for tok in prompt[1:]:
        lp_t, st_t = naive.step(np.array([tok]), st_t)

    # Same model: the log-probs after the prompt agree, and so do the greedy chains from there.
    n_check = 100
    chain_t = decoding.collect(decoding.greedy(naive, st_t, lp_t, n_check))[0]
    checks = {}
    for name, (lp_e, st_e) in primed.items():
        chain_e = decoding.collect(decoding.greedy(engines[name], st_e, lp_e, n_check))[0]
        checks[name] = (chain_e == chain_t, float(np.abs(lp_e - lp_t).max()))

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
        f"{args.cell.upper()} {L}×{N}, vocab {V}, embedding {E or 'one-hot'}, {weights}; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), NumPy {np.__version__} "
        f"(OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}); "
        f"{args.clock} clock, best of {args.repeats}"
    )
    for name, (agree, diff) in checks.items():
        print(
            f"check {name}: greedy chain of {n_check} tokens "
            f"{'equals' if agree else 'differs from'} nn.LSTM's; "
            f"max |log-prob difference| after the prompt {diff:.1e}; "
            f"weights read per step {weight_mb(engines[name]):.1f} MB"
        )
    baseline = f"nn.{layer_class.__name__} loop"
    print(f"{'steps/s':38s}{baseline:>16s}" + "".join(f"{n:>12s}" for n in names))
    for title, make, extra in rows:
        runs = [make(naive, st_t, lp_t, *extra)]
        runs += [make(engines[n], primed[n][1], primed[n][0], *extra) for n in names]
        rates = best_rates(runs, [args.baseline_steps] + [args.steps] * len(names), args.repeats)
        print(f"{title:38s}{rates[0]:16,.0f}" + "".join(f"{r:12,.0f}" for r in rates[1:]))

    if "fp32" in engines and len(engines) > 1:
        low_names = [n for n in names if n != "fp32"]
        exact = engines["fp32"]
        n = args.agree_steps
        print(f"agreement with fp32 ({weights}), greedy from a line break, {n:,} steps:")
        start = np.array([vocab.stoi.get("\n", 0)]) if args.train_seconds else prompt[:1]
        for name in low_names:
            forced, prefix, own = agreement(exact, engines[name], start, n)
            print(
                f"  {name}: same most likely token at {forced:.2%} of the steps reading fp32's "
                f"text; its own chain equals fp32's for the first {prefix:,} tokens "
                f"({own:.1%} of positions equal)"
            )
        if args.train_seconds:
            read = {name: read_text(e, val, args.ppl_streams) for name, e in engines.items()}
            ppl = {name: r[0] for name, r in read.items()}
            print(
                "validation perplexity: "
                + ", ".join(
                    f"{k} {v:.4f}" + ("" if k == "fp32" else f" ({v / ppl['fp32'] - 1:+.2%})")
                    for k, v in ppl.items()
                )
            )
            best = read["fp32"][1]
            print(
                f"same most likely next character as fp32 at the {best.size:,} validation "
                "positions: "
                + ", ".join(f"{n} {(read[n][1] == best).mean():.2%}" for n in low_names)
            )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")
    ok = all(agree and diff < 1e-4 for agree, diff in [checks.get("fp32", (True, 0.0))])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
