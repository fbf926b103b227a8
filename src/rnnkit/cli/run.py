"""``rnnkit <task> train``, the same for every task: one command built from the task's configs.

A task's CLI file calls :func:`add_train_command` with its :class:`~rnnkit.tasks.run.Task` and
the arguments that name its data; the flags come from the data, model and training config
dataclasses, and the run goes through :func:`rnnkit.tasks.run.train`, so ``--out``,
``--resume``, ``--overwrite``, ``--init-from``, ``--monitor``, the summary line and the exit
status are the same for every task.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import Any

from rnnkit.cli.args import add_dataclass_args, given_fields

# Exit status of a run stopped by a signal: the shell's 128 + signal number.
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}


def add_train_command(
    verbs: argparse._SubParsersAction,
    task: Any,
    *,
    help: str,
    add_data: Callable[[argparse.ArgumentParser], None],
    data_usage: str = "DATA",
    get_data: Callable[[argparse.Namespace], Any] = lambda args: args.data,
) -> argparse.ArgumentParser:
    """Add ``train`` to ``verbs``: ``add_data`` adds the arguments naming the data, ``get_data``
    turns them into what ``task.prepare`` reads."""
    from rnnkit.training import TrainConfig

    p = verbs.add_parser(
        "train",
        help=help,
        description=help,
        usage=f"rnnkit {task.name} train {data_usage} --out DIR [options]",
    )
    add_data(p)
    p.add_argument("--out", required=True, metavar="DIR", help="run directory (checkpoints, logs)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out exactly (flags given change its training config)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run that --out already holds"
    )
    add_dataclass_args(p, task.data_config_class, title="data")
    add_dataclass_args(p, task.model_class.config_class, title="model")
    add_dataclass_args(
        p,
        TrainConfig,
        title="training",
        exclude=("betas",),
        defaults=getattr(task, "default_train", None),
    )
    p.set_defaults(run=lambda args: run_train(task, args, get_data(args)))
    return p


def train_configs(task: Any, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(model, data, train) configs: the flags given, over the defaults, or over the configs
    saved in the run to resume / the checkpoint to start from."""
    from rnnkit.tasks import run
    from rnnkit.training import TrainConfig

    model_class = task.model_class.config_class
    classes = (model_class, task.data_config_class, TrainConfig)
    model, data, train = (given_fields(c, args) for c in classes)
    if args.resume:
        saved = run.load_saved(task, run.last_checkpoint(args.out))
        base = saved.model, saved.data, saved.train or TrainConfig()
    elif train.get("init_from"):
        saved = run.load_saved(task, train["init_from"])
        base = saved.model, saved.data, getattr(task, "default_train", None) or TrainConfig()
    else:
        default_train = getattr(task, "default_train", None) or TrainConfig()
        base = model_class(), task.data_config_class(), default_train
    return tuple(
        dataclasses.replace(b, **g) for b, g in zip(base, (model, data, train), strict=True)
    )


def run_train(task: Any, args: argparse.Namespace, data: Any) -> int:
    """Run ``rnnkit <task> train`` and print one summary line; the exit status says how it
    ended (0 done, 130/143 stopped by a signal after saving, 1 a non-finite loss)."""
    from rnnkit.tasks import run

    model, data_config, train = train_configs(task, args)
    # Without a progress bar the log rows are the only sign of life: show them on stderr.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("rnnkit")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if train.progress else logging.INFO)
    try:
        result = run.train(
            task,
            data,
            args.out,
            model,
            data_config,
            train,
            resume=args.resume,
            overwrite=args.overwrite,
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    from rnnkit.training.distributed import is_main_process

    if not is_main_process():  # under torchrun, rank 0 speaks for every rank
        return 1 if result.stopped_reason == "nonfinite_loss" else _signal_exit(result)
    if result.stopped_reason == "nonfinite_loss":
        good = (
            f"last/ (step {result.last_good_step}) in {args.out} is the last good checkpoint"
            if result.last_good_step is not None
            else "no checkpoint was written"
        )
        print(
            f"rnnkit: error: the loss became NaN or infinite after {result.steps} steps; {good}; "
            "lower --lr or keep --grad-clip on",
            file=sys.stderr,
        )
        return 1
    print(summary_line(result, args.out))
    return _signal_exit(result)


def _signal_exit(result: Any) -> int:
    if result.stopped_reason == "interrupted":
        return SIGNAL_EXIT.get(result.signal or "SIGINT", 130)
    return 0


def summary_line(result: Any, out: str) -> str:
    """'stopped (max_steps) after 300 steps; val_accuracy best 0.912 (step 250), last 0.905;
    checkpoints in runs/x'."""
    monitor = result.monitor
    best, last = result.best_metrics.get(monitor), result.last_metrics.get(monitor)
    figures = []
    if best is not None:
        figures.append(f"best {best:.4f} (step {result.best_step})")
    if last is not None:
        figures.append(f"last {last:.4f}")
    measured = f"{monitor} {', '.join(figures)}" if figures else "no validation"
    return (
        f"stopped ({result.stopped_reason}) after {result.steps} steps in {result.precision}; "
        f"{measured}; checkpoints in {out}"
    )
