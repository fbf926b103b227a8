"""How fast can a batch-1 generation step be here? The weight-streaming ceiling, measured.

A one-token step of a 2×512 LSTM multiplies one vector by three (512, 2048) matrices (layer 0's
U, layer 1's W and U; layer 0's input is a table lookup) and a small head. Together they are
12.6 MB of float32: more than the L2 caches hold, so each step streams them from L3/memory. This
script times those three products cycling, the way generation does, in every form at hand:

  float32 x @ W   W stored (in, out), the StepEngine's layout (OpenBLAS GEMV)
  float32 W @ x   W stored (out, in), torch's layout
  fp16 weights    FBGEMM's fp16-weight GEMM (fp32 activations): half the bytes
  int8 weights    FBGEMM's dynamic int8 linear: a quarter of the bytes, activations quantized

then the StepEngine's whole step on the same sizes, so that step − products = everything else
(activations, lookups, Python). It prints µs and GB/s of each and the steps/s each would allow
with nothing else to do. fp16 and int8 give up exact agreement with the training model.

    python benchmarks/gemv_ceiling.py
    python benchmarks/gemv_ceiling.py --hidden 1024 --layers 1
"""

import argparse
import time
import warnings
from types import SimpleNamespace

import numpy as np
import torch

from rnnkit.inference import StepEngine


def best_us(fn, n: int, repeats: int = 5) -> float:
    for _ in range(50):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--embedding", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args()
    N, L, V, E = args.hidden, args.layers, args.vocab, args.embedding
    rng = np.random.default_rng(0)
    # The products of one step: U of every layer, W of every layer above the first.
    shapes = [(N, 4 * N)] * L + [(N, 4 * N)] * (L - 1)
    mats = [(rng.standard_normal(s, dtype=np.float32) * 0.05) for s in shapes]  # (in, out)
    mats_t = [np.ascontiguousarray(m.T) for m in mats]  # (out, in)
    mbytes = sum(m.nbytes for m in mats) / 1e6
    x = rng.standard_normal((1, N), dtype=np.float32)
    tx = torch.from_numpy(x)
    out = np.empty((1, 4 * N), np.float32)

    def fp32_xw():
        for m in mats:
            np.dot(x, m, out=out)

    def fp32_wx():
        for m in mats_t:
            np.dot(x, m.T, out=out)

    rows = [("float32, x @ W (engine layout)", fp32_xw, mbytes)]
    rows.append(("float32, W @ x", fp32_wx, mbytes))
    fp16 = [torch.ops.quantized.linear_prepack_fp16(torch.from_numpy(m), None) for m in mats_t]
    rows.append(
        (
            "fp16 weights (FBGEMM)",
            lambda: [torch.ops.quantized.linear_dynamic_fp16(tx, w) for w in fp16],
            mbytes / 2,
        )
    )
    with warnings.catch_warnings():  # torch's quantized tensors are marked deprecated
        warnings.simplefilter("ignore")
        int8 = []
        for m in mats_t:
            w = torch.from_numpy(m)
            scale = w.abs().amax(1) / 127
            qw = torch.quantize_per_channel(w, scale, torch.zeros(len(scale)), 0, torch.qint8)
            int8.append(torch.ops.quantized.linear_prepack(qw, None))
        rows.append(
            (
                "int8 weights (FBGEMM, dynamic)",
                lambda: [torch.ops.quantized.linear_dynamic(tx, w) for w in int8],
                mbytes / 4,
            )
        )

    cells = [
        SimpleNamespace(
            kind="lstm",
            weight_ih=torch.randn(4 * N, E if k == 0 else N) * 0.05,
            weight_hh=torch.randn(4 * N, N) * 0.05,
            bias=torch.zeros(4 * N),
        )
        for k in range(L)
    ]
    engine = StepEngine(torch.randn(V, E), cells, torch.randn(V, N) * 0.05, torch.zeros(V))
    token, state = np.zeros(1, np.int64), engine.initial_state(1)

    def engine_step():
        engine.step(token, state)

    step_us = best_us(engine_step, args.steps)
    print(
        f"LSTM {L}×{N}: {len(mats)} products of (1, {N}) × ({N}, {4 * N}) per step, "
        f"{mbytes:.1f} MB in float32; torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"{'products only':34s}{'µs/step':>9s}{'GB/s':>7s}{'steps/s ceiling':>17s}")
    fp32_us = None
    for name, fn, mb in rows:
        us = best_us(fn, args.steps)
        fp32_us = fp32_us or us
        print(f"{name:34s}{us:9.0f}{mb * 1e3 / us:7.1f}{1e6 / us:17,.0f}")
    rest = step_us - fp32_us
    print(
        f"StepEngine step (float32): {step_us:.0f} µs = {1e6 / step_us:,.0f} steps/s; "
        f"everything but the {len(mats)} products: {rest:.0f} µs "
        f"(a ceiling of {1e6 / rest:,.0f} steps/s even if they cost nothing)"
    )


if __name__ == "__main__":
    main()
