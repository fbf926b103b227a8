"""What `rnnkit lm train` loses to data loading and bookkeeping, against a bare training loop.

Same process, same model (rnnkit LanguageModel, embedding 65 → 64, 2-layer LSTM, head),
same batch shape (64 × 128), alternated:

* ``bare``     tensors made once in memory; forward, cross-entropy, backward, clip, Adam.
* ``trainer``  the Trainer over StreamBatches read from a memory-mapped token file on disk
               (Tiny Shakespeare when ../shared/data is there, else random text), with the
               carried state, logging, the progress meter — what `rnnkit lm train` runs.

Prints tokens/s of both and the ratio, and the peak RSS. ``--precision bf16`` runs both in
mixed precision (the bare loop under ``torch.autocast``, the Trainer with precision="bf16"):
faster steps leave a larger share to the bookkeeping.

    python benchmarks/lm_train_overhead.py [--hidden 512] [--steps 20] [--repeats 3]
    python benchmarks/lm_train_overhead.py --precision bf16
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rnnkit.data import StreamBatches, prepare_corpus
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.training import TrainConfig, Trainer

SHAKESPEARE = Path(__file__).resolve().parents[1].parent / "shared/data/tinyshakespeare/input.txt"
B, T = 64, 128


def corpus(tmp: Path) -> Path:
    if SHAKESPEARE.exists():
        return SHAKESPEARE
    rng = np.random.default_rng(0)
    path = tmp / "random.txt"
    path.write_text("".join(rng.choice(list("abcdefgh \n"), 1_000_000)), encoding="utf-8")
    return path


def bare_loop(model: LanguageModel, batches: list, steps: int, mixed: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    state = None
    start = time.perf_counter()
    for i in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss, state, _ = model.compute_loss(batches[i % len(batches)], state)
        state = tuple(s.detach() for s in state)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return steps * B * T / (time.perf_counter() - start)


def trainer_loop(
    model: LanguageModel, source: StreamBatches, steps: int, out: Path, precision: str
) -> float:
    cfg = TrainConfig(
        max_steps=steps,
        grad_clip=5.0,
        progress=False,
        log_every=10,
        epochs=100,
        precision=precision,
        device="cpu",
    )
    result = Trainer(model, source, None, cfg, out).fit()
    return steps * B * T / result.elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vocab, train, _ = prepare_corpus(corpus(tmp), "char", tmp / "data", val_fraction=0.1)
        source = StreamBatches(train, B, T)
        batches = [source.batch(0, i) for i in range(8)]
        cfg = LMConfig(vocab_size=len(vocab), hidden_size=args.hidden, num_layers=2)
        bare, trained = [], []
        for r in range(args.repeats):
            torch.manual_seed(r)
            mixed = args.precision == "bf16"
            bare.append(bare_loop(LanguageModel(cfg), batches, args.steps, mixed))
            torch.manual_seed(r)
            model, run = LanguageModel(cfg), tmp / f"run{r}"
            trained.append(trainer_loop(model, source, args.steps, run, args.precision))
    b, t = max(bare), max(trained)
    print(
        f"2×{args.hidden} LSTM char LM, batch {B}×{T}, {args.steps} steps, best of "
        f"{args.repeats}, {args.precision}"
    )
    print(f"bare loop      {b:10,.0f} tokens/s")
    print(
        f"Trainer + data {t:10,.0f} tokens/s   ratio {t / b:.3f} ({(1 - t / b) * 100:+.1f}% lost)"
    )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
