"""Data-parallel training throughput: 1 process against 2 under torchrun, one thread each.

The Trainer fits a language model (embedding 65 → 64, LSTM of hidden size N, head) on
StreamBatches of random tokens, B streams × T steps a batch. Under 2 processes the B streams
are split 16 + 16 (the same global batch, half the work per process) and DDP all-reduces the
gradients in the backward pass. Each configuration runs in its own
``python -m torch.distributed.run --nproc-per-node W`` (W = 1 is the plain single-process path)
and reports tokens/s over the whole job (log rows after the first, best of them), then times
the collectives of one step on their own:

* ``gradients``  an all-reduce of the model's parameter count in float32 (DDP's traffic; in
                 training it overlaps the backward pass)
* ``agree``, ``reduce_step``  the two small all-reduces the Trainer adds per step (stop and
                 clock agreement; loss, token and metric sums)

    python benchmarks/ddp_throughput.py [--hidden 256] [--steps 60] [--batch 32] [--seq 64]

Figures depend on how many cores are free: on a shared machine, run it when it is quiet and
read the overhead per step rather than the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCAB, EMBED = 65, 64


def worker(args: argparse.Namespace) -> None:
    """One rank: train, then time the collectives; rank 0 prints a JSON line."""
    import numpy as np
    import torch

    from rnnkit.data import StreamBatches
    from rnnkit.models.language_model import LanguageModel, LMConfig
    from rnnkit.training import TrainConfig, Trainer

    torch.set_num_threads(1)
    tokens = np.random.default_rng(0).integers(0, VOCAB, args.batch * args.seq * 200 + 1)
    source = StreamBatches(tokens, args.batch, args.seq)
    torch.manual_seed(0)
    config = LMConfig(vocab_size=VOCAB, embedding_size=EMBED, hidden_size=args.hidden, num_layers=1)
    model = LanguageModel(config)
    cfg = TrainConfig(max_steps=args.steps, log_every=10, progress=False, device="cpu", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, source, None, cfg, Path(tmp) / "run")
        result = trainer.fit()
    rates = [r["tokens_per_s"] for r in result.history if r.get("tokens_per_s")][1:]
    figures = {"world": trainer.dist.world_size, "tokens_per_s": max(rates)}
    if trainer.dist.active:
        import torch.distributed as dist

        params = sum(p.numel() for p in model.parameters())
        flat, loss = torch.zeros(params), torch.tensor(1.0, requires_grad=True)
        figures["params"] = params
        figures["gradients_ms"] = _time(lambda: dist.all_reduce(flat), args.repeats)
        figures["agree_ms"] = _time(lambda: trainer.dist.agree(1.0, None, None), args.repeats)
        step_sums = lambda: trainer.dist.reduce_step(loss, 100, {})  # noqa: E731
        figures["reduce_step_ms"] = _time(step_sums, args.repeats)
    if trainer.dist.is_main:
        print("RESULT " + json.dumps(figures), flush=True)


def _time(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` (the ranks call it in lockstep)."""
    import statistics

    import torch.distributed as dist

    dist.barrier()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def launch(world: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc-per-node", str(world), __file__, "--worker"]
    cmd += ["--hidden", str(args.hidden), "--steps", str(args.steps)]
    cmd += ["--batch", str(args.batch), "--seq", str(args.seq), "--repeats", str(args.repeats)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"{world} processes failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch", type=int, default=32, help="B, streams of the global batch")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--repeats", type=int, default=200, help="timings of each collective")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    print(
        f"LM 65→{EMBED}→LSTM {args.hidden}→65, global batch {args.batch}×{args.seq}, "
        f"{args.steps} steps, 1 thread per process (cores: {os.cpu_count()})"
    )
    one, two = launch(1, args), launch(2, args)
    step_ms = 1000 * args.batch * args.seq / two["tokens_per_s"]
    speedup = two["tokens_per_s"] / one["tokens_per_s"]
    print(f"  1 process    {one['tokens_per_s']:9.0f} tok/s")
    print(f"  2 processes  {two['tokens_per_s']:9.0f} tok/s  ({speedup:.2f}×)")
    print(
        f"  per step of {step_ms:.1f} ms: gradient all-reduce ({two['params']:,} floats) "
        f"{two['gradients_ms']:.2f} ms; the Trainer's agree {two['agree_ms']:.2f} ms and "
        f"reduce_step {two['reduce_step_ms']:.2f} ms (medians)"
    )


if __name__ == "__main__":
    main()
