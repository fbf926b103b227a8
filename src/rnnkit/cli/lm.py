"""``rnnkit lm train|sample|predict|eval``: flags map one to one onto the Python API's configs."""

import argparse
import json
import sys
from dataclasses import dataclass, field

from rnnkit.cli.args import add_dataclass_args, add_threads_flag, apply_threads, dataclass_from_args
from rnnkit.cli.run import add_train_command
from rnnkit.cli.serve import register_serve
from rnnkit.errors import RnnkitError
from rnnkit.low_precision import ENGINES

ENGINE_HELP = "fp32 is exact; int8 / bf16 weights are faster, not exact"


@dataclass
class SampleConfig:
    """Flags of ``rnnkit lm sample``; the fields are :meth:`TextGenerator.sample`'s arguments."""

    prime: str = field(default="", metadata={"help": "text to continue"})
    length: int = field(default=500, metadata={"help": "tokens to generate"})
    temperature: float = field(
        default=1.0, metadata={"help": "< 1 is safer, > 1 wilder, 0 = greedy"}
    )
    top_k: int = field(default=0, metadata={"help": "sample among the k best (0 = all)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (1 = all)"})
    greedy: bool = field(default=False, metadata={"help": "always take the most likely token"})
    beam: int = field(
        default=0,
        metadata={
            "help": "beam search of this width for the most likely text (0 = sample instead; "
            "the sampling options do not apply to it)"
        },
    )
    num_samples: int = field(
        default=1, metadata={"help": "independent samples (with --beam: the n best)"}
    )
    stop: str = field(default="", metadata={"help": "end a sample after this string"})
    seed: int = field(default=0, metadata={"help": "random seed of the sampler"})
    engine: str = field(default="fp32", metadata={"help": ENGINE_HELP, "choices": list(ENGINES)})


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.lm import LM_TASK

    lm = tasks.add_parser("lm", help="character- and word-level language models")
    verbs = lm.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train_command(
        verbs,
        LM_TASK,
        help="train a language model on a text file or directory",
        add_data=lambda p: p.add_argument(
            "data", metavar="DATA", help="a UTF-8 text file or a directory of them"
        ),
    )

    p = verbs.add_parser("sample", help="generate text from a trained model")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    add_dataclass_args(p, SampleConfig, title="sampling")
    add_threads_flag(p)
    p.set_defaults(run=_sample)

    p = verbs.add_parser("predict", help="the most likely next tokens")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    p.add_argument("--prefix", default=None, help="text so far (omit for an interactive prompt)")
    p.add_argument("--top", type=int, default=5, help="how many candidates (default: 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_threads_flag(p)
    p.add_argument("--engine", default="fp32", choices=ENGINES, help=ENGINE_HELP)
    p.set_defaults(run=_predict)

    p = verbs.add_parser("eval", help="loss, bits per character and perplexity on a text")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    p.add_argument("data", metavar="DATA", help="a UTF-8 text file or a directory of them")
    p.add_argument("--batch-size", type=int, default=0, help="default: the training batch size")
    p.add_argument("--seq-length", type=int, default=0, help="default: the training length")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_threads_flag(p)
    p.set_defaults(run=_eval)
    register_serve(verbs)


# ---- sample / predict / eval ------------------------------------------------------------------


def _sample(args: argparse.Namespace) -> int:
    from rnnkit.tasks.text_generator import TextGenerator

    apply_threads(args)
    cfg = dataclass_from_args(SampleConfig, args)
    if cfg.num_samples < 1:
        raise RnnkitError(f"--num-samples must be >= 1, got {cfg.num_samples}")
    if cfg.beam < 0:
        raise RnnkitError(f"--beam must be >= 1 for beam search, or 0 to sample; got {cfg.beam}")
    sampling = {
        "--top-k": cfg.top_k != 0,
        "--top-p": cfg.top_p != 1.0,
        "--temperature": cfg.temperature != 1.0,
        "--greedy": cfg.greedy,
    }
    if cfg.beam and any(sampling.values()):
        given = ", ".join(k for k, v in sampling.items() if v)
        raise RnnkitError(
            f"--beam searches for the most likely text; {given} only apply to sampling "
            "(drop --beam to sample)"
        )
    gen = TextGenerator.load(args.model, cfg.engine)
    if cfg.beam:
        for text, log_prob in gen.beam(cfg.prime, cfg.length, cfg.beam, n_best=cfg.num_samples):
            print(f"{log_prob:.3f}\t{cfg.prime}{text}")
        return 0
    for s in range(cfg.num_samples):
        pieces = gen.sample(
            cfg.prime,
            cfg.length,
            temperature=cfg.temperature,
            top_k=cfg.top_k,
            top_p=cfg.top_p,
            greedy=cfg.greedy,
            seed=cfg.seed + s,
            stop=cfg.stop or None,
        )
        first = next(pieces, "")  # checks the prime and the options before anything is printed
        sys.stdout.write(cfg.prime + first)
        sys.stdout.flush()
        for piece in pieces:  # streamed: each token's text as soon as it is drawn
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
    return 0


def _show_predictions(preds: list[tuple[str, float]], as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"token": t, "probability": p} for t, p in preds], ensure_ascii=False))
        return
    for token, p in preds:
        print(f"{p:8.4f}  {token!r}")
    sys.stdout.flush()


def _predict(args: argparse.Namespace) -> int:
    from rnnkit.tasks.text_generator import TextGenerator

    apply_threads(args)
    if args.top < 1:
        raise RnnkitError(f"--top must be >= 1, got {args.top}")
    gen = TextGenerator.load(args.model, args.engine)
    if args.prefix is not None:
        _show_predictions(gen.predict(args.prefix, args.top), args.json)
        return 0
    if sys.stdin.isatty() and not args.json:
        return _type_ahead(gen, args.top)
    # The banner goes to stderr so that stdout holds only predictions (one block per line read).
    print(
        "type text and press Enter for the next-token suggestions; Ctrl-D to quit", file=sys.stderr
    )
    # One block per input line, the line echoed first, so the output lines up with the input
    # even when a line cannot be read (its block then holds the error).
    for line in sys.stdin:
        prefix = line.rstrip("\r\n")
        try:
            preds = gen.predict(prefix, args.top)
        except RnnkitError as err:  # e.g. a character the model never saw: try another line
            if args.json:
                print(json.dumps({"prefix": prefix, "error": str(err)}, ensure_ascii=False))
            else:
                print(f"> {prefix}\n  error: {err}")
            sys.stdout.flush()
            continue
        if not args.json:
            print(f"> {prefix}")
        _show_predictions(preds, args.json)
    return 0


def _type_ahead(gen, top: int) -> int:
    """Suggest whole words under the cursor line as you type (a terminal in raw mode)."""
    import shutil
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    text = ""
    print("type; suggestions follow each key. Tab takes the first, Enter starts over, Ctrl-D quits")
    try:
        tty.setcbreak(fd)
        while True:
            try:
                hint = "  |  ".join(w for w, _ in gen.suggest(text, top))
            except RnnkitError as err:
                hint = f"({str(err).split(':')[0]})"  # the short part: which character
            sys.stdout.write(_prompt_line(text, hint, shutil.get_terminal_size().columns))
            sys.stdout.flush()
            key = sys.stdin.read(1)
            if key in ("", "\x04"):
                break
            if key in ("\x7f", "\b"):
                text = text[:-1]
            elif key in ("\r", "\n"):
                sys.stdout.write("\n")
                text = ""
            elif key == "\t":
                words = gen.suggest(text, 1)
                if words:
                    cut = (
                        len(text) - len(text.split()[-1])
                        if text and not text[-1].isspace()
                        else len(text)
                    )
                    text = text[:cut] + words[0][0] + " "
            elif key.isprintable():
                text += key
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sys.stdout.write("\n")
    return 0


def _prompt_line(text: str, hint: str, columns: int) -> str:
    """The prompt line redrawn in place: it must never wrap, or each key press would leave a
    stale line behind; the hint gives way first, then the start of the text."""
    room = max(columns - 1, 10)
    shown = f"> {text}"
    if len(shown) > room:
        shown = "> …" + text[-(room - 3) :]
    hint_room = room - len(shown) - 5
    if len(hint) > hint_room:
        hint = hint[: max(hint_room - 1, 0)] + "…" if hint_room > 1 else ""
    tail = f"\033[2m   [{hint}]\033[0m" if hint else ""
    return f"\r\033[K{shown}{tail}"


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.tasks.lm import evaluate_language_model

    apply_threads(args)
    res = evaluate_language_model(args.model, args.data, args.batch_size, args.seq_length)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>15}: {v:.4f}" if isinstance(v, float) else f"{k:>15}: {v}")
    return 0
