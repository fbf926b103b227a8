"""``rnnkit classify train|eval|predict|cv``: flags map one to one onto the Python API's configs."""

from __future__ import annotations

import argparse
import json
import sys

from rnnkit.cli.args import add_dataclass_args, add_threads_flag, apply_threads, given_fields
from rnnkit.cli.run import add_train_command
from rnnkit.errors import RnnkitError

DATA_HELP = (
    "a directory with one sub-directory per class, LABEL=PATH pairs, a CSV/TSV file, or "
    "UCR/UEA .ts/.tsv files"
)


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.classify import CLASSIFY_TASK, ClassifyDataConfig
    from rnnkit.training import TrainConfig

    cls = tasks.add_parser("classify", help="many-to-one: one label per text or series")
    verbs = cls.add_subparsers(dest="verb", metavar="VERB", required=True)
    add_train_command(
        verbs,
        CLASSIFY_TASK,
        help="train a classifier on labelled text or series",
        add_data=lambda p: p.add_argument("data", nargs="+", metavar="DATA", help=DATA_HELP),
        data_usage="DATA [DATA ...]",
    )

    p = verbs.add_parser(
        "eval",
        help="accuracy, macro-F1, per-class scores and the confusion matrix on labelled data",
        usage="rnnkit classify eval RUN DATA [DATA ...] [--json] [--plot PNG]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("data", nargs="+", metavar="DATA", help="labelled data in the training format")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="PNG", help="write the confusion matrix as a PNG")
    p.add_argument("--batch-size", type=int, default=64, help="examples per batch (default: 64)")
    add_threads_flag(p)
    p.set_defaults(run=_eval)

    p = verbs.add_parser(
        "predict",
        help="the label and class probabilities of each input",
        usage="rnnkit classify predict RUN [TEXT ...] [--file F] [--json] [--explain]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify (default: stdin)")
    p.add_argument("--file", help="classify each line of this file ('-' for stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument(
        "--explain",
        action="store_true",
        help="attention pooling: show how much each token weighed in the decision",
    )
    add_threads_flag(p)
    p.set_defaults(run=_predict)

    p = verbs.add_parser(
        "cv",
        help="stratified K-fold cross-validation (mean ± std), for sets without a test split",
        usage="rnnkit classify cv DATA [DATA ...] --out DIR [--folds K] [options]",
    )
    p.add_argument("data", nargs="+", metavar="DATA", help=DATA_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="one run per fold goes here")
    p.add_argument("--folds", type=int, default=10, help="K (default: 10)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier cv in --out")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_dataclass_args(p, ClassifyDataConfig, title="data", exclude=("val",))
    add_dataclass_args(p, CLASSIFY_TASK.model_class.config_class, title="model")
    add_dataclass_args(p, TrainConfig, title="training", exclude=("betas", "init_from"))
    p.set_defaults(run=_cv)


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.tasks.classify import Classifier

    if args.batch_size < 1:
        raise RnnkitError(f"--batch-size must be >= 1, got {args.batch_size}")
    apply_threads(args)
    clf = Classifier.load(args.model)
    res = clf.evaluate(args.data, args.batch_size)
    if args.plot:
        plot_confusion(res["confusion_matrix"], res["labels"], args.plot)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
        return 0
    print(f"accuracy {res['accuracy']:.4f}   macro-F1 {res['macro_f1']:.4f}   ", end="")
    print(f"({res['num_examples']} examples)")
    width = max(len(label) for label in [*res["labels"], "class"]) + 2
    print(f"{'class':<{width}}precision  recall  f1      support")
    for label, s in res["per_class"].items():
        print(
            f"{label:<{width}}{s['precision']:<11.4f}{s['recall']:<8.4f}{s['f1']:<8.4f}"
            f"{s['support']}"
        )
    if args.plot:
        print(f"confusion matrix: {args.plot}")
    return 0


def plot_confusion(matrix: list[list[int]], labels: list[str], path: str) -> None:
    """The confusion matrix (rows: true class, columns: prediction) as a PNG."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnkitError("--plot needs matplotlib: pip install 'rnnkit[plot]'") from None
    k = len(labels)
    fig = Figure(figsize=(1.2 + 0.6 * k, 1.0 + 0.6 * k), layout="tight")
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > top / 2 else "k")
    fig.savefig(path, dpi=100)


def _inputs(args: argparse.Namespace) -> list[str]:
    if args.texts and args.file:
        raise RnnkitError("give texts or --file, not both")
    if args.texts:
        return list(args.texts)
    if args.file and args.file != "-":
        from pathlib import Path

        from rnnkit.data.labeled import read_text_file

        lines = read_text_file(Path(args.file)).splitlines()
    else:
        lines = sys.stdin.read().splitlines()
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise RnnkitError(f"{args.file or 'stdin'} holds no text to classify")
    return lines


def _predict(args: argparse.Namespace) -> int:
    from rnnkit.tasks.classify import Classifier

    apply_threads(args)
    clf = Classifier.load(args.model)
    if args.explain and clf.model.config.pooling != "attention":
        raise RnnkitError(
            "--explain needs a model trained with --pooling attention (this one pools by "
            f"{clf.model.config.pooling})"
        )
    texts = _inputs(args)
    for text, pred in zip(texts, clf.predict(texts), strict=True):
        if args.json:
            obj = {"text": text, "label": pred.label, "probabilities": pred.probabilities}
            if args.explain:
                obj["tokens"] = [
                    {"token": t, "weight": w}
                    for t, w in zip(pred.tokens, pred.weights, strict=True)
                ]
            print(json.dumps(obj, ensure_ascii=False))
            continue
        probs = "  ".join(f"{k} {v:.3f}" for k, v in pred.probabilities.items())
        print(f"{pred.label}\t{probs}\t{text}")
        if args.explain:
            print("\t" + explain_line(pred.tokens, pred.weights))
    return 0


def explain_line(tokens: list[str], weights: list[float]) -> str:
    """Tokens with their attention weight in percent, the heaviest marked: 'great[41%] film[7%]'."""
    top = max(weights)
    parts = []
    for t, w in zip(tokens, weights, strict=True):
        mark = "*" if w == top else ""
        parts.append(f"{mark}{t}[{100 * w:.0f}%]")
    return " ".join(parts)


def _cv(args: argparse.Namespace) -> int:
    import dataclasses

    from rnnkit.tasks.classify import CLASSIFY_TASK, ClassifyDataConfig, cross_validate
    from rnnkit.training import TrainConfig

    model_cls = CLASSIFY_TASK.model_class.config_class
    model = model_cls(**given_fields(model_cls, args))
    data = ClassifyDataConfig(**given_fields(ClassifyDataConfig, args))
    train = dataclasses.replace(CLASSIFY_TASK.default_train, **given_fields(TrainConfig, args))
    if args.folds < 2:
        raise RnnkitError(f"--folds must be >= 2, got {args.folds}")
    res = cross_validate(
        args.data, args.out, model, data, train, folds=args.folds, overwrite=args.overwrite
    )
    if args.json:
        print(json.dumps(res))
        return 0
    for r in res["folds"]:
        print(f"fold {r['fold']:>2}: accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}")
    acc, f1 = res["accuracy"], res["macro_f1"]
    print(
        f"{len(res['folds'])}-fold: accuracy {acc['mean']:.4f} ± {acc['std']:.4f}, macro-F1 "
        f"{f1['mean']:.4f} ± {f1['std']:.4f} ({res['num_examples']} examples); runs in {args.out}"
    )
    return 0
