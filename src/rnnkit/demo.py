"""``make demo``: a character-level LSTM learns to write fake Python, in about two minutes.

The corpus is the Python standard library's own source, which every machine with Python has
(the lecture shows an RNN writing fake C code; ours writes fake Python). Run it with
``python -m rnnkit.demo [--minutes M] [--out DIR]``.
"""

import argparse
import sysconfig
import time
from pathlib import Path

from rnnkit.models.language_model import LMConfig
from rnnkit.summary import summary
from rnnkit.tasks.lm import LM_TASK, LMDataConfig, train_language_model
from rnnkit.tasks.text_generator import TextGenerator


def stdlib_corpus(out: Path, max_bytes: int = 3_000_000) -> Path:
    """Concatenate the standard library's top-level modules (UTF-8 only) into one text file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    parts, size = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        parts.append(text)
        size += len(text)
        if size >= max_bytes:
            break
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=2.0, help="training budget")
    parser.add_argument("--out", default="runs/demo", help="run directory")
    args = parser.parse_args(argv)
    out = Path(args.out)
    corpus = stdlib_corpus(out / "corpus" / "stdlib.py.txt")
    print(f"corpus: {corpus} ({corpus.stat().st_size:,} bytes of the Python standard library)")

    # `rnnkit lm train corpus --max-minutes M` with no other flag, validating more often.
    model, data = LMConfig(), LMDataConfig(level="char", val_fraction=0.05)
    train = LM_TASK.default_train.replace(
        max_minutes=args.minutes, eval_every=500, eval_batches=20, progress=True
    )
    start = time.perf_counter()
    # The demo owns its run directory: each `make demo` starts it afresh.
    result = train_language_model(corpus, out / "run", model, data, train, overwrite=True)
    print(
        f"\ntrained {result.steps} steps in {time.perf_counter() - start:.0f} s; "
        f"validation loss {result.last_val_loss:.3f} nats/char"
    )

    gen = TextGenerator.load(out / "run")
    print()
    print(summary(gen.model))
    for temperature in (0.5, 1.0):
        print(f"\n--- sample at temperature {temperature} ---")
        print("def " + "".join(gen.sample("def ", 400, temperature=temperature, seed=1)))
    prefix = "    def __init__(self, "
    print(f"\n--- next-character prediction after {prefix!r} ---")
    for token, p in gen.predict(prefix, top=5):
        print(f"  {p:6.3f}  {token!r}")
    word = "".join(gen.sample(prefix, 20, greedy=True, stop=")"))
    print(f"greedy completion: {prefix}{word}")


if __name__ == "__main__":
    main()
