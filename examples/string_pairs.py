"""What addition.py and dates.py share: train a character-level encoder–decoder on (input,
output) string pairs and score it by exact match on held-out pairs."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from rnnkit.data.parallel import ParallelData
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.seq2seq import Seq2SeqDataConfig, train_seq2seq
from rnnkit.tasks.translator import Translator
from rnnkit.training import TrainConfig

# Luong's general attention without input feeding: the decoder runs as one fused call over the
# output, about twice the steps per second of Bahdanau's step-by-step loop on these problems.
CHAR_MODEL = Seq2SeqConfig(
    cell="lstm",
    hidden_size=128,
    embedding_size=32,
    dropout=0.0,
    attention="general",
    input_feeding=False,
    share_embeddings=True,
)


def as_data(pairs: list[tuple[str, str]], name: str) -> ParallelData:
    return ParallelData(
        [s for s, _ in pairs],
        [t for _, t in pairs],
        [f"{name}:{i + 1}" for i in range(len(pairs))],
        name,
    )


def train_and_test(
    train: list, test: list, out: Path, model: Seq2SeqConfig, steps: int, seed: int = 0
) -> tuple[dict, Translator]:
    """Train on ``train`` (2% of it validates, picking best/ by exact match) for ``steps``
    batches of 64 with a cosine schedule; the figures on ``test`` and the translator."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = train_seq2seq(
        as_data(train, "train"),
        out,
        model,
        Seq2SeqDataConfig(tokenizer="char", val_fraction=0.02, batch_size=64),
        TrainConfig(
            epochs=1000,
            max_steps=steps,
            lr=3e-3,
            lr_schedule="cosine",
            monitor="val_exact_match",
            eval_every=500,
            eval_at_epoch_end=False,
            seed=seed,
            threads=1,
            device="cpu",
            progress=False,
            log_every=500,
        ),
        overwrite=True,
    )
    translator = Translator.load(out)
    scores = translator.evaluate(as_data(test, "test"), batch_size=256)
    errors = [(s, t, h) for (s, t), h in zip(test, scores["hypotheses"], strict=True) if h != t]
    return {
        "exact_match": scores["exact_match"],
        "test_size": len(test),
        "errors": errors,
        "val_exact_match": result.best_metrics.get("val_exact_match"),
        "val_accuracy": result.best_metrics.get("val_accuracy"),
        "steps": result.steps,
        "train_seconds": round(time.perf_counter() - t0, 1),
    }, translator


def report(res: dict, shown: str, what: str) -> None:
    """The summary line of a run and its first errors."""
    print(
        f"{shown} → {res['example']}; exact match {100 * res['exact_match']:.2f}% on "
        f"{res['test_size']} held-out {what} ({res['steps']} steps, "
        f"{res['train_seconds']:.0f} s on the CPU)"
    )
    for source, expected, got in res["errors"][:10]:
        print(f"  {source!r} → {got!r}, expected {expected!r}")
