"""``rnnkit seq2seq train|eval|translate``: flags map one to one onto the Python API.

Data is ``--source F --target F`` (parallel files) or one ``PAIRS`` TSV file. ``translate``
reads sentences from its arguments, ``--file F`` or stdin, and prints one translation per
line (blank input lines stay blank lines), ``--n-best K`` lines per sentence in Moses'
``i ||| text ||| score`` form, or JSON objects with ``--json``. Nothing is printed or written
until every sentence has been read and translated, so a bad line costs no partial output.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from rnnkit.cli.run import add_train_command
from rnnkit.errors import RnnkitError

DATA_HELP = "one TSV file of pairs (source and target columns); or give --source and --target"


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.seq2seq import SEQ2SEQ_TASK

    s2s = tasks.add_parser("seq2seq", help="encoder–decoder: translate one sequence to another")
    verbs = s2s.add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_IntermixedParser
    )
    add_train_command(
        verbs,
        SEQ2SEQ_TASK,
        help="train an encoder–decoder (translation) on sentence pairs",
        add_data=_add_data,
        data_usage="(--source F --target F | PAIRS)",
        get_data=_data,
    )

    p = verbs.add_parser(
        "eval",
        help="BLEU and chrF (sacreBLEU, detokenised, cased) on a test set",
        usage="rnnkit seq2seq eval RUN (--source F --target F | PAIRS) [--json] [options]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    _add_data(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--hypotheses", metavar="F", help="also write the translations to F")
    _add_decoding(p)
    p.set_defaults(run=_eval)

    p = verbs.add_parser(
        "translate",
        help="translate sentences from the arguments, a file or stdin",
        usage="rnnkit seq2seq translate RUN [TEXT ...] [--file F] [options]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="sentences (default: stdin)")
    p.add_argument("--file", help="translate each line of this file ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per sentence")
    p.add_argument("--n-best", type=int, default=1, help="alternatives per sentence (default: 1)")
    p.add_argument(
        "--attention-png", metavar="DIR", help="write one attention heatmap per sentence here"
    )
    p.add_argument(
        "--replace-unk",
        action="store_true",
        help="word models: replace each <unk> by the source word it attends to most",
    )
    _add_decoding(p)
    p.set_defaults(run=_translate)


class _IntermixedParser(argparse.ArgumentParser):
    """Sentences and files may come after the options (``translate RUN --beam 5 "Ein Hund."``),
    which plain argparse refuses once a positional has been read."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        if self._inside:  # parse_known_intermixed_args calls back in, twice
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def _add_data(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", nargs="?", metavar="PAIRS", help=DATA_HELP)
    p.add_argument("--source", metavar="F", help="source sentences, one per line")
    p.add_argument("--target", metavar="F", help="their translations, line by line")


def _data(args: argparse.Namespace):
    if args.data and (args.source or args.target):
        raise RnnkitError("give a PAIRS file or --source/--target, not both")
    if args.data:
        return args.data
    if not (args.source and args.target):
        raise RnnkitError("no data: give --source F --target F (parallel files) or a PAIRS file")
    return (args.source, args.target)


def _add_decoding(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding")
    g.add_argument(
        "--method",
        choices=["greedy", "beam", "sample", "exhaustive"],
        help="search (default: beam when --beam is given, else greedy)",
    )
    g.add_argument("--beam", type=int, metavar="K", help="beam width (implies --method beam)")
    g.add_argument("--length-penalty", type=float, default=0.0, help="GNMT's alpha (default: 0)")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    g.add_argument("--top-k", type=int, default=0, help="sample from the k most probable")
    g.add_argument("--top-p", type=float, default=1.0, help="sample from the nucleus p")
    g.add_argument("--seed", type=int, help="seed of the sampling")
    g.add_argument(
        "--max-len-a", type=float, default=2.0, help="at most a·S + b output tokens (default: 2)"
    )
    g.add_argument("--max-len-b", type=int, default=10, help="see --max-len-a (default: 10)")
    g.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        help="cut longer sources to N tokens with a warning (default: the training limit)",
    )
    g.add_argument(
        "--refuse-long", action="store_true", help="refuse a source longer than --max-length"
    )
    g.add_argument("--batch-size", type=int, default=32, help="sentences per batch (default: 32)")
    g.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")


def _options(args: argparse.Namespace) -> dict:
    if args.beam is not None and args.beam < 1:
        raise RnnkitError(f"--beam must be >= 1, got {args.beam}")
    method = args.method or ("beam" if args.beam else "greedy")
    return {
        "method": method,
        "beam_width": args.beam or 5,
        "length_penalty": args.length_penalty,
        "temperature": args.temperature,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "max_len_a": args.max_len_a,
        "max_len_b": args.max_len_b,
        "max_source_length": args.max_length,
        "refuse_long": args.refuse_long,
        "batch_size": args.batch_size,
    }


class _Warnings:
    """Show the translator's warnings (truncated sources) on stderr while a verb runs."""

    def __enter__(self) -> None:
        self.handler = logging.StreamHandler(sys.stderr)
        self.handler.setFormatter(logging.Formatter("rnnkit: warning: %(message)s"))
        self.handler.setLevel(logging.WARNING)
        logging.getLogger("rnnkit").addHandler(self.handler)

    def __exit__(self, *exc) -> None:
        logging.getLogger("rnnkit").removeHandler(self.handler)


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.tasks.translator import Translator

    options = _options(args)
    translator = Translator.load(args.model, device=args.device)
    with _Warnings():
        res = translator.evaluate(_data(args), **options)
    hyps = res.pop("hypotheses")
    if args.hypotheses:
        Path(args.hypotheses).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return 0
    print(
        f"BLEU {res['bleu']:.2f}   chrF {res['chrf']:.2f}   ({res['num_sentences']} sentences, "
        f"{res['method']}, {res['sentences_per_second']:.1f} sentences/s)"
    )
    print(res["bleu_signature"])
    return 0


def _inputs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(sentences, where each came from)."""
    from rnnkit.data.parallel import decode_lines, read_lines

    if args.texts and args.file:
        raise RnnkitError("give sentences or --file, not both")
    if args.texts:
        return list(args.texts), [f"argument {i + 1}" for i in range(len(args.texts))]
    if args.file and args.file != "-":
        lines, name = read_lines(args.file), args.file
    else:
        lines, name = decode_lines(sys.stdin.buffer.read(), "stdin"), "stdin"
    if not any(line.strip() for line in lines):
        raise RnnkitError(f"{name} holds no sentence to translate")
    return lines, [f"{name}:{i + 1}" for i in range(len(lines))]


def _translate(args: argparse.Namespace) -> int:
    from rnnkit.tasks.translator import Translator, save_attention_png

    if args.n_best < 1:
        raise RnnkitError(f"--n-best must be >= 1, got {args.n_best}")
    options = _options(args)
    translator = Translator.load(args.model, device=args.device)
    if args.attention_png and translator.model.attn is None:
        raise RnnkitError("--attention-png needs a model with attention (this one has none)")
    lines, where = _inputs(args)
    todo = [i for i, line in enumerate(lines) if line.strip()]
    with _Warnings():
        done = translator.translate(
            [lines[i] for i in todo],
            where=[where[i] for i in todo],
            n_best=args.n_best,
            scores=args.json or args.n_best > 1,
            attention=bool(args.attention_png),
            replace_unk=args.replace_unk,
            **options,
        )
    results = dict(zip(todo, done, strict=True))
    if args.attention_png:
        out = Path(args.attention_png)
        out.mkdir(parents=True, exist_ok=True)
        for i, t in results.items():
            save_attention_png(out / f"{i + 1:04d}.png", t, title=where[i])
    for i, line in enumerate(lines):
        t = results.get(i)
        if args.json:
            obj = {"source": line, "translation": t.text if t else ""}
            if t is not None:
                obj["score"] = t.score
                if t.alternatives:
                    obj["n_best"] = [{"text": a, "score": s} for a, s in t.alternatives]
                if t.truncated:
                    obj["truncated_from"] = t.truncated
            print(json.dumps(obj, ensure_ascii=False))
        elif args.n_best > 1 and t is not None:
            for text, score in t.alternatives or [(t.text, t.score)]:
                print(f"{i} ||| {text} ||| {score:.4f}")
        else:
            print(t.text if t else "")
    return 0
