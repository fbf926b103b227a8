"""``rnnkit tag train|eval|predict``: flags map one to one onto the Python API's configs."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from rnnkit.cli.run import add_train_command
from rnnkit.errors import RnnkitError

DATA_HELP = "a CoNLL column file (token ... tag) or a CoNLL-U file"
EVAL_KEYS = ("f1", "precision", "recall", "accuracy", "per_type", "num_sentences")


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.tag import TAG_TASK

    tag = tasks.add_parser("tag", help="many-to-many: one tag per word (entities, parts of speech)")
    verbs = tag.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train_command(
        verbs,
        TAG_TASK,
        help="train a BiLSTM(-CRF) tagger on a CoNLL or CoNLL-U file",
        add_data=lambda p: p.add_argument("data", metavar="FILE", help=DATA_HELP),
        data_usage="FILE [--val FILE]",
    )

    p = verbs.add_parser(
        "eval",
        help="span F1, precision, recall (overall and per type) and token accuracy on a file",
        usage="rnnkit tag eval RUN FILE [--json] [--output FILE]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("data", metavar="FILE", help=DATA_HELP + ", with gold tags")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--output",
        metavar="FILE",
        help="write the file's lines with the predicted tag appended (conlleval's layout)",
    )
    _column_args(p)
    p.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    p.set_defaults(run=_eval)

    p = verbs.add_parser(
        "predict",
        help="tag raw text: token/TAG, or entities with character offsets (--json)",
        usage="rnnkit tag predict RUN [TEXT ...] [--tokens] [--json]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument(
        "texts",
        nargs="*",
        metavar="TEXT",
        help="sentences split on whitespace (default: each line of stdin); with --tokens, the "
        "tokens of one sentence",
    )
    p.add_argument(
        "--tokens",
        action="store_true",
        help="pre-tokenised input: the TEXT words are one sentence's tokens; stdin has one "
        "token a line and a blank line between sentences",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per sentence")
    p.add_argument("--scheme", default="", help="span tags in this scheme (default: the model's)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per batch (default: 64)")
    p.set_defaults(run=_predict)


def _column_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--token-column",
        default=None,
        help="CoNLL: 0-based column of the words; CoNLL-U: form (default: as in training)",
    )
    p.add_argument(
        "--tag-column",
        default=None,
        help="CoNLL: 0-based column of the gold tags (-1: last); CoNLL-U: upos or xpos "
        "(default: as in training)",
    )


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.data.conll import write_tagged
    from rnnkit.tasks.tag import TagPredictor

    if args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be >= 1, got {args.batch_size}")
    tagger = TagPredictor.load(args.model)
    columns = {
        name: value
        for name in ("token_column", "tag_column")
        if (value := getattr(args, name)) is not None
    }
    corpus = tagger.data_config.read(args.data, **columns)
    result = tagger.evaluate_corpus(corpus, args.batch_size)
    for tag, (n, line) in result.unseen.items():
        print(
            f"rnnkit: warning: {corpus.path}:{line}: tag {tag!r} was never seen in training "
            f"({n} word{'s' if n > 1 else ''}): the model cannot predict it, so it counts as wrong",
            file=sys.stderr,
        )
    if args.output:
        write_tagged(corpus, result.predictions, args.output)
    res = result.scores
    if args.json:
        print(json.dumps({k: res[k] for k in EVAL_KEYS}, ensure_ascii=False))
        return 0
    print(
        f"f1 {res['f1']:.4f}   precision {res['precision']:.4f}   recall {res['recall']:.4f}   "
        f"accuracy {res['accuracy']:.4f}   ({res['num_sentences']} sentences)"
    )
    width = max(len(t) for t in [*res["per_type"], "type"]) + 2
    print(f"{'type':<{width}}precision  recall  f1      support")
    for typ, s in res["per_type"].items():
        print(
            f"{typ:<{width}}{s['precision']:<11.4f}{s['recall']:<8.4f}{s['f1']:<8.4f}{s['support']}"
        )
    if args.output:
        print(f"predictions: {args.output}")
    return 0


def _sentences(args: argparse.Namespace) -> list:
    """Texts (str) or, with --tokens, token lists, from the arguments or stdin."""
    if args.texts:
        return [list(args.texts)] if args.tokens else list(args.texts)
    lines = sys.stdin.read().splitlines()
    if not args.tokens:
        texts = [line for line in lines if line.strip()]
        if not texts:
            raise RnnkitError("stdin holds no text to tag")
        return texts
    sentences, current = [], []
    for line in [*lines, ""]:
        token = line.strip()
        if token:
            current.append(token)
        elif current:
            sentences.append(current)
            current = []
    if not sentences:
        raise RnnkitError("stdin holds no tokens to tag (--tokens: one token a line)")
    return sentences


def _predict(args: argparse.Namespace) -> int:
    from rnnkit.tasks.tag import TagPredictor

    if args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be >= 1, got {args.batch_size}")
    tagger = TagPredictor.load(args.model)
    for tagged in tagger.predict(_sentences(args), args.scheme, args.batch_size):
        if args.json:
            obj = {
                "text": tagged.text,
                "tokens": tagged.tokens,
                "tags": tagged.tags,
                "entities": [dataclasses.asdict(e) for e in tagged.entities],
            }
            print(json.dumps(obj, ensure_ascii=False))
        else:
            print(" ".join(f"{t}/{g}" for t, g in zip(tagged.tokens, tagged.tags, strict=True)))
    return 0
