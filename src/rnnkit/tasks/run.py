"""The one run lifecycle of every task: start, resume, init_from, overwrite, config comparison.

A task (language model, classifier, tagger, ...) describes itself with a :class:`Task`: its model
class, its data config class, and ``prepare``, which turns data files into batch sources. This
module does the rest, the same way for every task:

* **fresh** (``train(task, data, out, ...)``): refuses an ``out`` that already holds a run unless
  ``overwrite=True``; prepares the data, seeds every RNG, builds the model, trains. A run that
  cannot start leaves no directory behind.
* **resume** (``resume=True``): continues the run in ``out`` exactly, from ``out/last``. The
  model and data configs are the saved ones (giving different ones is an error that names the
  fields); the training config may change (e.g. a larger ``max_steps``).
* **init_from** (``TrainConfig(init_from=ckpt)``): a new run (new optimiser, step 0) that starts
  from the weights of ``ckpt``, with its vocabularies and model shape; only fields marked
  ``metadata={"fine_tune": True}`` (dropout) may change.

A checkpoint of a run holds, besides the weights: ``config.json`` (model and training configs),
``data.json`` (the data config) and the task's own extra files (vocabularies, scalers).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from torch import nn

from rnnkit.checkpoint import load_extra_file, read_config, resolve_checkpoint
from rnnkit.contracts import BatchSource
from rnnkit.errors import RnnkitError
from rnnkit.registry import dataclass_from_dict
from rnnkit.training import TrainConfig, Trainer, TrainResult, resolve_device, seed_everything
from rnnkit.training.distributed import setup

DATA_FILE = "data.json"
# What a run directory holds besides the task's own caches; --overwrite removes these.
RUN_CONTENTS = ("last", "last.old", "best", "best.old", "log.csv", "loss_curve.png", "tensorboard")


@dataclass
class Saved:
    """What a checkpoint holds of a run: its configs and extra files.

    ``resume`` is True when the run is being continued (the data must be the same), False when
    the checkpoint only starts a new run (``init_from``).
    """

    path: Path
    model: Any
    data: Any
    train: TrainConfig | None
    extras: dict[str, Any]
    resume: bool


@dataclass
class Prepared:
    """What a task's ``prepare`` returns: the model config completed from the data (vocabulary
    size, number of classes), the batch sources, the JSON files every checkpoint keeps, and
    optionally what to do to a fresh model once it is built (e.g. copy pretrained vectors in)."""

    model: Any
    train: BatchSource
    val: BatchSource | None
    extra_files: dict[str, Any] = field(default_factory=dict)
    initialize: Callable[[nn.Module], None] | None = None


class Task(Protocol):
    """One application, as the run lifecycle sees it."""

    name: str  # the CLI's word: "lm", "classify", ...
    what: str  # for messages: "a language model"
    model_class: type[nn.Module]  # with model_type and config_class
    data_config_class: type

    def prepare(
        self,
        data: Any,
        out: Path,
        model: Any,
        data_config: Any,
        train: TrainConfig,
        saved: Saved | None,
    ) -> Prepared:
        """Read ``data`` into batch sources for a run in ``out``. With ``saved`` (resume or
        init_from), reuse its vocabularies and, on resume, check the data is the same."""
        ...


# ---- what a checkpoint holds -------------------------------------------------------------------


def check_task(task: Task, path: str | Path) -> Path:
    """The checkpoint at ``path``, checked to hold ``task``'s model (a clear error otherwise)."""
    ckpt = resolve_checkpoint(path)
    model_type = read_config(ckpt)["model_type"]
    if model_type != task.model_class.model_type:
        raise RnnkitError(
            f"checkpoint {ckpt} holds a {model_type!r} model, not {task.what} "
            f"('{task.model_class.model_type}'): use the rnnkit command of its task"
        )
    return ckpt


def load_saved(task: Task, path: str | Path, *, resume: bool = False) -> Saved:
    """The configs and extra files of the checkpoint at ``path`` (or a run's best/last)."""
    ckpt = check_task(task, path)
    config = read_config(ckpt)
    config_class = task.model_class.config_class
    model = dataclass_from_dict(config_class, config["model_config"], f"{ckpt}/config.json")
    extras = {name: load_extra_file(ckpt, name) for name in config.get("extra_files", [])}
    if DATA_FILE not in extras:
        raise RnnkitError(f"checkpoint {ckpt} has no {DATA_FILE}: it was not written by a run")
    data = dataclass_from_dict(task.data_config_class, extras[DATA_FILE], f"{ckpt}/{DATA_FILE}")
    saved_train = config.get("train_config")
    train = TrainConfig.from_dict(saved_train) if saved_train else None
    return Saved(ckpt, model, data, train, extras, resume)


def last_checkpoint(out: str | Path) -> Path:
    """The ``last/`` checkpoint of the run in ``out``, the one a resumed run continues from."""
    try:
        return resolve_checkpoint(Path(out) / "last")
    except RnnkitError:
        raise RnnkitError(
            f"nothing to resume in {out}: it holds no last/ checkpoint (start the run without "
            "resume first)"
        ) from None


def holds_run(out: Path) -> bool:
    """Whether ``out`` holds (part of) an earlier run that a fresh run would destroy."""
    return any((out / name).exists() for name in RUN_CONTENTS if name != "loss_curve.png")


def config_differences(given: Any, saved: Any, *, allow: tuple[str, ...] = ()) -> list[str]:
    """'name X (saved Y)' for each field that differs, except derived fields (filled from the
    data, ``metadata={"derived": True}``) and the fields named in ``allow``."""
    out = []
    for f in dataclasses.fields(saved):
        if f.metadata.get("derived") or f.name in allow:
            continue
        a, b = getattr(given, f.name), getattr(saved, f.name)
        if a != b:
            out.append(f"{f.name} {a!r} (saved {b!r})")
    return out


def fine_tune_fields(config_class: type) -> tuple[str, ...]:
    """Fields that a run started from a checkpoint may change (dropout and the like)."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.metadata.get("fine_tune"))


# ---- training ----------------------------------------------------------------------------------


def train(
    task: Task,
    data: Any,
    out: str | Path,
    model: Any = None,
    data_config: Any = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train ``task``'s model on ``data`` into the run directory ``out`` (see the module docs)."""
    out = Path(out)
    if resume:
        return _resume(task, data, out, model, data_config, train)
    train = train or getattr(task, "default_train", None) or TrainConfig()
    data_config = data_config or task.data_config_class()
    # A wrong device fails now, not after reading the data; under torchrun, join the others.
    dist = setup(resolve_device(train.device))
    if holds_run(out) and not overwrite:
        raise RnnkitError(
            f"{out} already holds a run: --resume (resume=True) continues it, --overwrite "
            "(overwrite=True) replaces it, or choose another --out"
        )
    saved = None
    if train.init_from:
        saved = load_saved(task, train.init_from)
        if saved.path.resolve().is_relative_to(out.resolve()):
            raise RnnkitError(
                f"init_from {train.init_from} lies in {out}, which the new run replaces: copy it "
                "elsewhere, or train into another directory"
            )
        model = _fine_tuned(task, saved, model)
    model = model or task.model_class.config_class()
    created = not out.exists()
    try:  # a run that cannot start leaves no directory behind
        # One rank after the other: rank 0 writes the data caches, the others find them.
        prepared = dist.in_turn(lambda: task.prepare(data, out, model, data_config, train, saved))
        seed_everything(train.seed)  # the initial weights depend on the seed too
        model_object = task.model_class(prepared.model)
        if prepared.initialize is not None:
            prepared.initialize(model_object)
        trainer = Trainer(
            model_object,
            prepared.train,
            prepared.val,
            train,
            out,
            extra_files={**prepared.extra_files, DATA_FILE: dataclasses.asdict(data_config)},
        )
        trainer.check_monitor()
    except BaseException:
        if created and dist.is_main:
            shutil.rmtree(out, ignore_errors=True)
        raise
    # The earlier run's checkpoints would outlive this run's first ones (best/ is what a
    # loader picks): the new run replaces them.
    for name in RUN_CONTENTS if dist.is_main else ():
        stale = out / name
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        elif stale.exists():
            stale.unlink()
    return trainer.fit()


def _resume(task: Task, data: Any, out: Path, model: Any, data_config: Any, train: Any):
    ckpt = last_checkpoint(out)
    saved = load_saved(task, ckpt, resume=True)
    for what, given, was in (("model", model, saved.model), ("data", data_config, saved.data)):
        changed = config_differences(given, was) if given is not None else []
        if changed:
            raise RnnkitError(
                f"a resumed run keeps its {what} config; {', '.join(changed)}: start a new run "
                "(init_from to keep the weights) to change them"
            )
    train = train or saved.train or TrainConfig()
    dist = setup(resolve_device(train.device))
    prepared = dist.in_turn(lambda: task.prepare(data, out, saved.model, saved.data, train, saved))
    return Trainer.resume(ckpt, prepared.train, prepared.val, config=train).fit()


def _fine_tuned(task: Task, saved: Saved, model: Any) -> Any:
    """The checkpoint's model config; ``model`` may change its fine-tune fields, not its shape."""
    if model is None:
        return saved.model
    allowed = fine_tune_fields(type(saved.model))
    changed = config_differences(model, saved.model, allow=allowed)
    if changed:
        raise RnnkitError(
            f"init_from {saved.path} fixes the model's shape; {', '.join(changed)} (leave them "
            "out to take the checkpoint's)"
        )
    return dataclasses.replace(saved.model, **{n: getattr(model, n) for n in allowed})
