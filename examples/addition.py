"""Learning to add: "535+61" → "596", characters in and characters out (Keras' addition_rnn).

The problem of Keras' ``addition_rnn`` example (after Zaremba & Sutskever, "Learning to
Execute", 2014): a query is two numbers of 1 to 3 digits joined by ``+``, the answer is their
sum, and the model sees both as strings of characters. An encoder–decoder with attention reads
the query and writes the answer digit by digit until ``<eos>``; it is scored by exact match on
problems it never saw in training. Measured: 99.84% (8 wrong of 5,000) after 6,000 steps of 64,
19 minutes on a loaded 2-core CPU (validation: 99.9% of 1,000); Luong's one-call decoder, twice
the steps per second, reached 97.88% in the same 6,000 steps.

    python examples/addition.py             # 99.84% exact on 5,000 held-out problems (target 99.5)
    python examples/addition.py --train 5000 --steps 300    # a quick look

Problems are drawn as Keras draws them (each number has 1 to 3 digits, a+b and b+a are one
problem) into one pool, shuffled and split as Keras splits it: the test problems are never seen
in training or validation, and come from the same distribution.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import tempfile
from pathlib import Path

from string_pairs import CHAR_MODEL, report, train_and_test

from rnnkit.models.seq2seq import Seq2SeqConfig

# Bahdanau's attention with input feeding: the carry into a digit depends on digits to its right,
# and feeding each step what it attended to gets there in fewer steps than Luong's one-call
# decoder (measured: 99.84% against 97.88% at 6,000 steps).
MODEL = dataclasses.replace(CHAR_MODEL, attention="additive", input_feeding=True)


def problems(n: int, seed: int = 0, digits: int = 3) -> list[tuple[str, str]]:
    """``n`` distinct (query, answer) pairs such as ("535+61", "596"), in the order drawn."""
    rng = random.Random(seed)
    seen, out = set(), []
    while len(out) < n:
        a, b = (rng.randrange(10 ** rng.randint(1, digits)) for _ in range(2))
        if (min(a, b), max(a, b)) not in seen:
            seen.add((min(a, b), max(a, b)))
            out.append((f"{a}+{b}", str(a + b)))
    return out


def split(train_size: int, test_size: int, seed: int = 0) -> tuple[list, list]:
    """(train, test): one pool of distinct problems, shuffled and cut."""
    pool = problems(train_size + test_size, seed)
    random.Random(seed + 1).shuffle(pool)
    return pool[test_size:], pool[:test_size]


def run(
    out: Path,
    train_size: int = 50000,
    test_size: int = 5000,
    steps: int = 6000,
    seed: int = 0,
    model: Seq2SeqConfig = MODEL,
) -> dict:
    """Train on ``train_size`` problems, test on ``test_size`` others."""
    train, test = split(train_size, test_size, seed)
    res, translator = train_and_test(train, test, out, model, steps, seed)
    return {**res, "example": translator.translate(["535+61"])[0].text}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=50000, help="training problems")
    p.add_argument("--test", type=int, default=5000, help="held-out test problems")
    p.add_argument("--steps", type=int, default=6000, help="optimizer steps (batch 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default: a temporary one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(Path(args.out or tmp), args.train, args.test, args.steps, args.seed)
    report(res, "535+61", "problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
