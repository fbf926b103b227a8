"""Language-model quality on real corpora: validation loss after a wall-clock budget.

  shakespeare  Tiny Shakespeare, char level, first 90% train / last 10% validation (nanoGPT's
               split). Validation loss (nats/char) after --checkpoint-minutes and --minutes.
               Anchors: nanoGPT's small CPU transformer 1.88 in ~3 min; char-rnn LSTMs
               ~1.40-1.45; nanoGPT on a GPU 1.47.
  ptb          Penn Treebank, whitespace word level, Zaremba et al.'s small configuration
               (2x200 LSTM, batch 20, 35 steps, SGD lr 1 halved each epoch after the 4th, clip 5
               (on the loss summed over the 35 steps), 13 epochs): test perplexity (they report
               114.5).

    python benchmarks/lm_quality.py shakespeare --minutes 3     # rnnkit lm train's defaults
    python benchmarks/lm_quality.py shakespeare --recipe tuned30 --minutes 30 \
        --checkpoint-minutes 3
    python benchmarks/lm_quality.py ptb --epochs 13
    python benchmarks/lm_quality.py ptb --hidden 650 --dropout 0.5 --epochs 39 \
        --lr-decay 0.8333 --decay-after 6        # medium (82.7 reported): a GPU's job

Shakespeare with the defaults (`--recipe defaults --minutes 3`: 2x256 LSTM, embedding 64, batch
16x100, Adam 3e-3 cosine to 1e-4 over the budget, fp32 on this AMD EPYC without AMX), idle
2-core machine: validation 1.4925 (best 1.4879) nats/char for seed 0, 4,587 steps (7.3
epochs), 40,575 tokens/s, peak RSS 440 MB; seed 1: 1.4831, 4,303 steps. The batch size is what
moved it (seed 0, 3 minutes): 64 1.602 (893 steps), 32 1.544, 16 1.486, 8 1.492; hidden 384
(batch 64) 1.698, dropout 0.1 1.717: in three minutes a CPU wants many small updates.

PTB small measured here: valid / test perplexity 121.6 / 116.2 in 20.2 min (fp32); 121.4 / 116.7
in 17.2 min with --precision bf16. PTB medium on this CPU: 3,600 tokens/s in bf16 (2,500 in
fp32), 4.3 minutes an epoch, so the 39 epochs would take 2.8 hours; it has not been run here.

The run is one training run: the Trainer's time budget counts across resumed parts, so the
3-minute figure is the same run as the 30-minute one, stopped, measured and resumed exactly.
Prints tokens/s and peak RSS too.

Shakespeare runs measured here (2x512, embedding 64, Adam 2e-3, batch 64x128, 30 min):
  float32 (--precision fp32, validating at epoch ends too):
  dropout 0.25, plateau (the rate never decayed)         1.4626 at 30 min (1,943 steps)
  dropout 0.25, cosine to 1e-4 over 1,800 steps          1.4894 at 25.8 min
  dropout 0.25, constant to step 1,300 then x0.5/120     1.4622 at 29.8 min (2,000 steps)
  dropout 0.35, same schedule                            1.4967 at step 1,708, cut there
  dropout 0.25, same schedule, --shift-streams           1.4583 at 29.7 min (best 1.4574)
  bfloat16 mixed precision (AMX: 2.8x the float32 steps/s):
  dropout 0.35, constant to step 2,700 then x0.5/220     1.7804 at 3 min, 1.4364 at 30.1 min
                                                         (3,988 steps, 33 epochs): the defaults
  the same, --seed 1                                     1.7235 at 3 min, 1.4330 at 29.4 min
                                                         (4,000 steps); peak RSS 754 MB
In float32, at 0.25 the training loss (1.31, dropout on) ends well below validation and
validation stops improving within the budget; at 0.35 the model has not fitted yet. Shifting
the streams each epoch (the default here) gained 0.004. bfloat16 buys the steps that let the
stronger dropout fit.
"""

import argparse
import math
import resource
import time
from pathlib import Path

import torch

from rnnkit.data import StreamBatches, eval_batches, prepare_corpus
from rnnkit.data.corpus import encode_corpus
from rnnkit.models.language_model import LanguageModel, LMConfig
from rnnkit.tasks.lm import LM_TASK, LMDataConfig, train_language_model
from rnnkit.training import TrainConfig, Trainer, evaluate, resolve_device, seed_everything
from rnnkit.training.config import PRECISIONS
from rnnkit.training.device import uses_bf16

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def shakespeare_defaults(args: argparse.Namespace) -> None:
    """What `rnnkit lm train input.txt --max-minutes M` does with no other flag, on nanoGPT's
    90/10 split: one run of --minutes."""
    text = DATA / "tinyshakespeare" / "input.txt"
    model, data = LMConfig(), LMDataConfig(level="char", val_fraction=0.1)
    train = LM_TASK.default_train.replace(
        max_minutes=args.minutes, progress=False, log_every=100, seed=args.seed
    )
    print(f"model {model}\ndata {data}\ntrain {train}")
    t0 = time.perf_counter()
    result = train_language_model(text, Path(args.out), model, data, train, overwrite=True)
    tokens = result.steps * data.batch_size * data.seq_length
    print(
        f"after {result.elapsed / 60:.2f} min ({result.steps} steps, {result.epochs:.2f} epochs, "
        f"{result.precision}): validation loss {result.last_val_loss:.4f}, best "
        f"{result.best_val_loss:.4f} nats/char; {tokens / result.elapsed:,.0f} tokens/s; "
        f"wall {time.perf_counter() - t0:.0f} s; peak RSS {peak_rss_mb():.0f} MB"
    )


def shakespeare(args: argparse.Namespace) -> None:
    if args.recipe == "defaults":
        return shakespeare_defaults(args)
    text = DATA / "tinyshakespeare" / "input.txt"
    out = Path(args.out)
    model = LMConfig(
        cell=args.cell,
        hidden_size=args.hidden,
        num_layers=args.layers,
        embedding_size=args.embedding,
        dropout=args.dropout,
    )
    data = LMDataConfig(
        level="char",
        seq_length=args.seq_length,
        batch_size=args.batch_size,
        val_fraction=0.1,
        shift_streams=args.shift_streams,
    )
    train = TrainConfig(
        lr=args.lr,
        grad_clip=5.0,
        epochs=1000,
        max_minutes=args.checkpoint_minutes,
        max_steps=args.max_steps,
        eval_every=args.eval_every,
        eval_at_epoch_end=args.eval_at_epoch_end,
        lr_schedule=args.schedule,
        lr_decay=0.5,
        lr_decay_start=args.decay_start if args.schedule == "exponential" else 0,
        lr_decay_every=args.decay_every,
        plateau_patience=2,
        min_lr=1e-4,
        progress=False,
        log_every=100,
        seed=args.seed,
        precision=args.precision,
    )
    print(f"model {model}\ndata {data}\ntrain {train}")
    mixed = uses_bf16(train.precision, resolve_device(train.device))
    print(f"training in {'bfloat16 mixed precision' if mixed else 'float32'}")
    t0 = time.perf_counter()
    first = train_language_model(text, out, model, data, train, overwrite=True)
    print(
        f"after {first.elapsed / 60:.1f} min ({first.steps} steps, {first.epochs:.2f} epochs): "
        f"validation loss {first.last_val_loss:.4f} nats/char"
    )
    train.max_minutes = args.minutes
    second = train_language_model(text, out, model, data, train, resume=True)
    tokens = second.steps * data.batch_size * data.seq_length
    print(
        f"after {second.elapsed / 60:.1f} min ({second.steps} steps, {second.epochs:.2f} epochs): "
        f"validation loss {second.last_val_loss:.4f}, best {second.best_val_loss:.4f} "
        f"(step {second.best_step}) nats/char"
    )
    print(
        f"training throughput {tokens / second.elapsed:,.0f} tokens/s; "
        f"wall {time.perf_counter() - t0:.0f} s; peak RSS {peak_rss_mb():.0f} MB"
    )


def ptb(args: argparse.Namespace) -> None:
    root, out = DATA / "ptb", Path(args.out)
    vocab, train_tokens, _ = prepare_corpus(
        root / "ptb.train.txt", "whitespace", out / "data", val_fraction=0.0
    )
    valid = encode_corpus([root / "ptb.valid.txt"], vocab, out / "data" / "valid.bin").tokens
    test = encode_corpus([root / "ptb.test.txt"], vocab, out / "data" / "test.bin").tokens
    seed_everything(args.seed)
    lm = LanguageModel(
        LMConfig(
            vocab_size=len(vocab),
            cell="lstm",
            hidden_size=args.hidden,
            num_layers=2,
            embedding_size=args.hidden,
            dropout=args.dropout,
        )
    )
    with torch.no_grad():  # Zaremba et al.: U(-0.1, 0.1) everywhere
        for p in lm.parameters():
            p.uniform_(-0.1, 0.1)
    train_src = StreamBatches(train_tokens, 20, 35)
    val_src = eval_batches(valid, 20, 35)
    cfg = TrainConfig(
        # Zaremba et al. take SGD steps on the loss summed over the 35 steps (mean over the
        # batch): lr 1, clip 5. Our loss is the mean per token, 35x smaller, so the same update
        # is lr 35 with the clip at 5/35.
        optimizer="sgd",
        lr=35.0,
        grad_clip=5.0 / 35,
        epochs=args.epochs,
        lr_schedule="step",
        lr_decay=args.lr_decay,
        lr_decay_every=train_src.num_batches(),
        lr_decay_start=args.decay_after * train_src.num_batches(),  # small: halved after the 4th
        warmup_steps=0,
        precision=args.precision,
        max_minutes=args.minutes,
        progress=False,
        log_every=500,
        seed=args.seed,
    )
    t0 = time.perf_counter()
    result = Trainer(
        lm, train_src, val_src, cfg, out, extra_files={"vocab.json": vocab.to_dict()}
    ).fit()
    test_loss = evaluate(lm, eval_batches(test, 20, 35))
    val_loss = evaluate(lm, val_src)
    print(
        f"PTB ({args.hidden}x2, {args.precision}): {result.steps} steps, {result.epochs:.2f} "
        f"epochs in "
        f"{(time.perf_counter() - t0) / 60:.1f} min; valid ppl {math.exp(val_loss):.1f}, "
        f"test ppl {math.exp(test_loss):.1f} (Zaremba et al. small: 120.7 valid, 114.5 test; "
        f"medium 86.2 / 82.7); "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="task", required=True)
    s = sub.add_parser("shakespeare")
    s.add_argument(
        "--recipe",
        choices=["defaults", "tuned30"],
        default="defaults",
        help="defaults: rnnkit lm train's own defaults for --minutes (the other flags do not "
        "apply); tuned30: the 30-minute recipe the flags below describe",
    )
    s.add_argument("--minutes", type=float, default=3.0)
    s.add_argument("--checkpoint-minutes", type=float, default=3.0)
    s.add_argument("--cell", default="lstm")
    s.add_argument("--hidden", type=int, default=512)
    s.add_argument("--layers", type=int, default=2)
    s.add_argument("--embedding", type=int, default=64)
    s.add_argument("--dropout", type=float, default=0.35)
    s.add_argument("--seq-length", type=int, default=128)
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--eval-every", type=int, default=250)
    s.add_argument(
        "--eval-at-epoch-end",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="also validate at every epoch end (121 steps here; ~5 s of float32 validation\n"
        "each time)",
    )
    s.add_argument(
        "--schedule",
        choices=["plateau", "cosine", "exponential"],
        default="exponential",
        help="plateau: x0.5 after 2 validations without improvement; cosine: decay to min_lr\n"
        "over --max-steps; exponential: constant until --decay-start, then x0.5 every\n"
        "--decay-every steps",
    )
    s.add_argument(
        "--max-steps",
        type=int,
        default=4000,
        help="stop here (the cosine horizon); ~0.45 s/step in bf16 with validation here (0.9\n"
        "in fp32, where 2000 fit in 30 minutes)",
    )
    s.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="bf16: mixed-precision training (validation stays fp32); auto: bf16 on a CPU\n"
        "with AMX",
    )
    s.add_argument("--decay-start", type=int, default=2700)
    s.add_argument("--decay-every", type=int, default=220)
    s.add_argument(
        "--shift-streams",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the streams up to seq-length tokens later each epoch",
    )
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="runs/bench-shakespeare")
    p = sub.add_parser("ptb")
    p.add_argument("--hidden", type=int, default=200)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--epochs", type=int, default=13)
    p.add_argument(
        "--lr-decay", type=float, default=0.5, help="per-epoch factor (medium: 1/1.2 = 0.833)"
    )
    p.add_argument("--decay-after", type=int, default=4, help="epochs at lr 1 first (medium: 6)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="see shakespeare")
    p.add_argument("--minutes", type=float, default=0.0, help="time budget (0 = none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench-ptb")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: these benchmarks need ../shared/data")
    {"shakespeare": shakespeare, "ptb": ptb}[args.task](args)


if __name__ == "__main__":
    main()
