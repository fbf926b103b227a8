"""Date normalisation: "Thursday, May 3, 1979", "05/03/79", "3.5.1979" → "1979-05-03".

The lecture's small translation problem: human-readable dates written in many formats become
ISO 8601, character by character, with an attention model. The attention shows the alignment:
the year's digits come from the year, the month from the month's name or number (see
docs/dates_attention.png, drawn by ``--attention-png``). Measured: 100.00% (0 wrong of 5,000)
after 3,000 steps of 64, under 5 minutes on a loaded 2-core CPU; validation reached 99.9% by
step 1,000.

    python examples/dates.py                # 100.00% exact on 5,000 held-out dates (target 99.9)
    python examples/dates.py --attention-png docs/dates_attention.png
    python examples/dates.py --train 3000 --steps 300         # a quick look

Dates run from 1950 to 2049 (a two-digit year 50–99 is 19xx, 00–49 is 20xx). Slashes are
month/day/year (US), dots day.month.year (European); the held-out test dates are days that no
training or validation example was written from, in any format.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import sys
import tempfile
from pathlib import Path

from string_pairs import CHAR_MODEL, report, train_and_test

from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.translator import save_attention_png

FIRST, DAYS = dt.date(1950, 1, 1), (dt.date(2050, 1, 1) - dt.date(1950, 1, 1)).days
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
WEEKDAYS = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
]  # date.weekday()
SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
FORMATS = [
    lambda d, M, W: f"{d.day} {M} {d.year}",  # 3 May 1979
    lambda d, M, W: f"{d.day:02d} {M[:3]} {d.year}",  # 03 May 1979
    lambda d, M, W: f"{M} {d.day}, {d.year}",  # May 3, 1979
    lambda d, M, W: f"{W}, {M} {d.day}, {d.year}",  # Thursday, May 3, 1979
    lambda d, M, W: f"{W[:3]} {d.day} {M[:3]} {d.year}",  # Thu 3 May 1979
    lambda d, M, W: f"{d.month:02d}/{d.day:02d}/{d.year % 100:02d}",  # 05/03/79
    lambda d, M, W: f"{d.month}/{d.day}/{d.year}",  # 5/3/1979
    lambda d, M, W: f"{d.day}.{d.month}.{d.year}",  # 3.5.1979
    lambda d, M, W: f"{d.day:02d}.{d.month:02d}.{d.year % 100:02d}",  # 03.05.79
    lambda d, M, W: f"{M[:3]} {d.day}{SUFFIX.get(d.day, 'th')}, {d.year}",  # May 3rd, 1979
    lambda d, M, W: f"the {d.day}{SUFFIX.get(d.day, 'th')} of {M} {d.year}",
    lambda d, M, W: f"{d.day} {M.lower()} {d.year % 100:02d}",  # 3 may 79
    lambda d, M, W: f"{M.upper()} {d.day} {d.year}",  # MAY 3 1979
    lambda d, M, W: d.isoformat(),  # 1979-05-03
    lambda d, M, W: f"{d.year}/{d.month:02d}/{d.day:02d}",  # 1979/05/03
    lambda d, M, W: f"{d.year}{d.month:02d}{d.day:02d}",  # 19790503
]
MODEL = dataclasses.replace(CHAR_MODEL, hidden_size=64)  # the mapping is mostly copying


def written(day: dt.date, form: int) -> str:
    """``day`` in format ``form`` (an index into FORMATS)."""
    return FORMATS[form](day, MONTHS[day.month - 1], WEEKDAYS[day.weekday()])


def examples(n: int, days: list[int], seed: int) -> list[tuple[str, str]]:
    """``n`` (written, ISO) pairs: a day drawn from ``days`` (offsets from 1950-01-01) and a
    format drawn uniformly."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        day = FIRST + dt.timedelta(days=rng.choice(days))
        out.append((written(day, rng.randrange(len(FORMATS))), day.isoformat()))
    return out


def split_days(test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training days, held-out days) of the century."""
    days = list(range(DAYS))
    random.Random(seed).shuffle(days)
    k = int(len(days) * test_fraction)
    return days[k:], days[:k]


def run(
    out: Path,
    train_size: int = 50000,
    test_size: int = 5000,
    steps: int = 3000,
    seed: int = 0,
    model: Seq2SeqConfig = MODEL,
    attention_png: str | None = None,
) -> dict:
    """Train on ``train_size`` examples, test on ``test_size`` written from held-out days;
    optionally draw the attention of one translation."""
    train_days, test_days = split_days(0.1, seed)
    train, test = examples(train_size, train_days, seed), examples(test_size, test_days, seed + 1)
    res, translator = train_and_test(train, test, out, model, steps, seed)
    shown = translator.translate(["Thursday, May 3, 1979"], attention=True)[0]
    if attention_png:
        save_attention_png(attention_png, shown, title=f"{shown.source} → {shown.text}")
    return {**res, "example": shown.text}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", type=int, default=50000, help="training examples")
    p.add_argument("--test", type=int, default=5000, help="held-out test examples")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps (batch 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attention-png", help="draw the attention of one date here")
    p.add_argument("--out", help="run directory (default: a temporary one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        res = run(
            Path(args.out or tmp),
            args.train,
            args.test,
            args.steps,
            args.seed,
            attention_png=args.attention_png,
        )
    report(res, "Thursday, May 3, 1979", "dates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
