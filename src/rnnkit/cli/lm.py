"""``rnnkit lm train|sample|predict|eval``: flags map one to one onto the Python API's configs."""

import argparse
import dataclasses
import json
import logging
import sys
from dataclasses import dataclass, field

from rnnkit.cli.args import add_dataclass_args, dataclass_from_args, given_fields
from rnnkit.cli.serve import register_serve
from rnnkit.errors import RnnkitError
from rnnkit.low_precision import ENGINES

ENGINE_HELP = "fp32 is exact; int8 / bf16 weights are faster, not exact"


@dataclass
class SampleConfig:
    """Flags of ``rnnkit lm sample``; the fields are :meth:`TextGenerator.sample`'s arguments."""

    prime: str = field(default="", metadata={"help": "text to continue"})
    length: int = field(default=500, metadata={"help": "tokens to generate"})
    temperature: float = field(default=1.0, metadata={"help": "< 1 is safer, > 1 wilder"})
    top_k: int = field(default=0, metadata={"help": "sample among the k best (0 = all)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (1 = all)"})
    greedy: bool = field(default=False, metadata={"help": "always take the most likely token"})
    beam: int = field(default=0, metadata={"help": "beam search of this width (0 = sample)"})
    num_samples: int = field(
        default=1, metadata={"help": "independent samples (with --beam: the n best)"}
    )
    stop: str = field(default="", metadata={"help": "end a sample after this string"})
    seed: int = field(default=0, metadata={"help": "random seed of the sampler"})
    engine: str = field(default="fp32", metadata={"help": ENGINE_HELP, "choices": list(ENGINES)})


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.models.language_model import LMConfig
    from rnnkit.tasks.lm import LMDataConfig
    from rnnkit.training import TrainConfig

    lm = tasks.add_parser("lm", help="character- and word-level language models")
    verbs = lm.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("train", help="train a language model on a text file or directory")
    p.add_argument("data", metavar="DATA", help="a UTF-8 text file or a directory of them")
    p.add_argument("--out", required=True, help="run directory (checkpoints, logs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out exactly (flags given change its training config)",
    )
    add_dataclass_args(p, LMDataConfig, title="data")
    add_dataclass_args(p, LMConfig, title="model")
    add_dataclass_args(p, TrainConfig, title="training", exclude=("betas",))
    p.set_defaults(run=_train)

    p = verbs.add_parser("sample", help="generate text from a trained model")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    add_dataclass_args(p, SampleConfig, title="sampling")
    p.set_defaults(run=_sample)

    p = verbs.add_parser("predict", help="the most likely next tokens")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    p.add_argument("--prefix", default=None, help="text so far (omit for an interactive prompt)")
    p.add_argument("--top", type=int, default=5, help="how many candidates (default: 5)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--engine", default="fp32", choices=ENGINES, help=ENGINE_HELP)
    p.set_defaults(run=_predict)

    p = verbs.add_parser("eval", help="loss, bits per character and perplexity on a text")
    p.add_argument("model", metavar="DIR", help="run or checkpoint directory")
    p.add_argument("data", metavar="DATA", help="a UTF-8 text file or a directory of them")
    p.add_argument("--batch-size", type=int, default=0, help="default: the training batch size")
    p.add_argument("--seq-length", type=int, default=0, help="default: the training length")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=_eval)
    register_serve(verbs)


# ---- train ------------------------------------------------------------------------------------


def _train_configs(args: argparse.Namespace):
    """(model, data, train) configs: the flags given, over the defaults, or over the configs
    saved in the run to resume / the checkpoint to start from."""
    from rnnkit.models.language_model import LMConfig
    from rnnkit.tasks.lm import LMDataConfig, last_checkpoint, load_configs
    from rnnkit.training import TrainConfig

    model, data, train = (given_fields(c, args) for c in (LMConfig, LMDataConfig, TrainConfig))
    if args.resume:
        base = load_configs(last_checkpoint(args.out))
    elif train.get("init_from"):
        saved_model, saved_data, _ = load_configs(train["init_from"])
        base = saved_model, saved_data, TrainConfig()
    else:
        base = LMConfig(), LMDataConfig(), TrainConfig()
    saved_model, saved_data, saved_train = base
    return (
        dataclasses.replace(saved_model, **model),
        dataclasses.replace(saved_data, **data),
        dataclasses.replace(saved_train or TrainConfig(), **train),
    )


def _train(args: argparse.Namespace) -> int:
    from rnnkit.tasks.lm import train_language_model

    model, data, train = _train_configs(args)
    # Without a progress bar the log rows are the only sign of life: show them on stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("rnnkit")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if train.progress else logging.INFO)
    try:
        result = train_language_model(args.data, args.out, model, data, train, resume=args.resume)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    losses = [
        f"{name} {value:.4f}"
        for name, value in (("best", result.best_val_loss), ("last", result.last_val_loss))
        if value is not None
    ]
    print(
        f"stopped ({result.stopped_reason}) after {result.steps} steps; validation loss "
        f"{', '.join(losses) or 'not measured'}; checkpoints in {args.out}"
    )
    return 130 if result.stopped_reason == "interrupted" else 0


# ---- sample / predict / eval ------------------------------------------------------------------


def _sample(args: argparse.Namespace) -> int:
    from rnnkit.tasks.text_generator import TextGenerator

    cfg = dataclass_from_args(SampleConfig, args)
    if cfg.num_samples < 1:
        raise RnnkitError(f"--num-samples must be >= 1, got {cfg.num_samples}")
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
    for line in sys.stdin:
        try:
            preds = gen.predict(line.rstrip("\r\n"), args.top)
        except RnnkitError as err:  # e.g. a character the model never saw: try another line
            print(f"rnnkit: error: {err}", file=sys.stderr)
            continue
        _show_predictions(preds, args.json)
    return 0


def _type_ahead(gen, top: int) -> int:
    """Suggest whole words under the cursor line as you type (a terminal in raw mode)."""
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
                hint = f"({err})"
            sys.stdout.write(f"\r\033[K> {text}\033[2m   [{hint}]\033[0m")
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


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.tasks.lm import evaluate_language_model

    res = evaluate_language_model(args.model, args.data, args.batch_size, args.seq_length)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res.items():
            print(f"{k:>15}: {v:.4f}" if isinstance(v, float) else f"{k:>15}: {v}")
    return 0
