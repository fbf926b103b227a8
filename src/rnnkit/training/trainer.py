"""The Trainer: one training loop for every rnnkit task, with checkpoints and exact resume.

A step is: batch (epoch, index) from the source → ``model.compute_loss(batch, state)`` →
backward → clip → set the scheduled lr → optimizer step → carry the detached state (stateful
sources) → advance (epoch, index). After the position has advanced come the bookkeeping: a log
row every ``log_every`` steps, validation every ``eval_every`` steps and at each epoch end
(``eval_at_epoch_end``), the ``best/`` and ``last/`` checkpoints. Stopping is decided only at
the top of the loop, so every checkpoint is taken between two steps and holds everything the
next step depends on: weights, optimizer and schedule state, (epoch, index), the carried
recurrent state, all RNG states, the best score and early-stopping count, the elapsed time.
Resuming from it replays the same steps with the same random numbers: on the CPU the weights
match an uninterrupted run bit for bit (in bf16 mixed precision too).

Validation measures the loss and every metric the model reports; ``TrainConfig.monitor`` (e.g.
``val_accuracy``) and ``monitor_mode`` choose which one picks ``best/``, counts towards early
stopping and drives the plateau schedule. A run cut short by ``max_steps`` or the time budget
validates once more at the end: that result is logged and may become ``best/``, but it leaves
the early-stopping count and the schedule alone, so a resumed run still matches an
uninterrupted one.

Ctrl-C or SIGTERM: the first signal finishes the current step, saves ``last/`` and returns with
``stopped_reason='interrupted'``; a second stops at once (and still saves, unless it landed
inside an optimizer update). A ``KeyboardInterrupt`` raised by the model is handled the same
way: the half-done step is discarded and the RNG rewound to before it.

A non-finite loss (or gradient norm) is caught at the step it appears, before the optimizer
touches the weights: the run stops with ``stopped_reason='nonfinite_loss'`` and writes no
checkpoint, so ``last/`` and ``best/`` on disk are the last good ones.

Started by ``torchrun`` with several processes, the same loop trains data-parallel: each rank
reads its part of the data, DistributedDataParallel averages the gradients, the ranks agree on
every decision and rank 0 alone writes (:mod:`rnnkit.training.distributed`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnkit.checkpoint import (
    load_extra_file,
    load_model,
    load_weights,
    read_config,
)
from rnnkit.contracts import BatchSource, summarize_metrics
from rnnkit.errors import RnnkitError
from rnnkit.training.callbacks import Callback
from rnnkit.training.config import TrainConfig
from rnnkit.training.device import full_precision, resolve_device, uses_bf16
from rnnkit.training.distributed import setup
from rnnkit.training.interrupts import GracefulInterrupt
from rnnkit.training.logs import RunLog
from rnnkit.training.metrics import LossMeter
from rnnkit.training.optim import LRSchedule, build_optimizer, set_lr
from rnnkit.training.result import TrainResult
from rnnkit.training.rng import (
    preserve_rng,
    restore_rng,
    restore_torch_rng,
    seed_everything,
    torch_rng_snapshot,
)
from rnnkit.training.run_state import CheckpointedRun, _checkpoint_to_resume
from rnnkit.training.trees import detach_state, map_tensors, move_to
from rnnkit.training.validation import MonitoredRun


class Trainer(MonitoredRun, CheckpointedRun):
    """Fits ``model`` on ``train_source``; see the module docstring for the loop.

    Args:
        model: an ``nn.Module`` with ``compute_loss(batch, state=None) -> LossOutput``. To be
            checkpointed it needs ``model_type`` and a dataclass ``config`` (see checkpoint.py).
        train_source, val_source: :class:`BatchSource` s; without ``val_source`` there is no
            validation, no ``best/`` checkpoint, no early stopping and no 'plateau' schedule.
        config: a :class:`TrainConfig`.
        out_dir: where ``best/``, ``last/``, ``log.csv``, ``loss_curve.png`` go; None = nowhere
            (no checkpoints, no resume).
        extra_files: JSON objects saved into every checkpoint, e.g. ``{"vocab.json": ...}``.
        callbacks: :class:`Callback` objects.
    """

    def __init__(
        self,
        model: nn.Module,
        train_source: BatchSource,
        val_source: BatchSource | None = None,
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        *,
        extra_files: Mapping[str, Any] | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        config = config if config is not None else TrainConfig()
        if not isinstance(config, TrainConfig):
            raise RnnkitError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(model, nn.Module) or not callable(getattr(model, "compute_loss", None)):
            raise RnnkitError("model must be an nn.Module with a compute_loss(batch, state) method")
        for name, source in (("train_source", train_source), ("val_source", val_source)):
            if source is None and name == "val_source":
                continue
            missing = [a for a in ("stateful", "num_batches", "batch") if not hasattr(source, a)]
            if missing:
                raise RnnkitError(f"{name} must be a BatchSource; it has no {', '.join(missing)}")
        if val_source is None:
            if config.lr_schedule == "plateau":
                raise RnnkitError("lr_schedule='plateau' needs a val_source")
            if config.early_stopping_patience:
                raise RnnkitError("early_stopping_patience needs a val_source")
        self.out_dir = Path(out_dir).expanduser() if out_dir is not None else None
        if self.out_dir is not None and not isinstance(getattr(model, "model_type", None), str):
            raise RnnkitError(
                f"{type(model).__name__} has no model_type: it cannot be checkpointed into out_dir"
            )
        self.config = config
        # Under torchrun: this process's rank, device and part of the data (a stand-in that
        # changes nothing otherwise); see rnnkit.training.distributed.
        self.dist = setup(resolve_device(config.device))
        self.train_source = self.dist.shard_train(train_source)
        self.val_source = val_source
        self.extra_files = dict(extra_files or {})
        self.callbacks = list(callbacks)
        self.device = self.dist.device
        # What 'auto' resolves to here: recorded in every checkpoint and told at the start.
        self.precision = "bf16" if uses_bf16(config.precision, self.device) else "fp32"
        if config.threads:  # process-wide: torch has one intra-op pool
            torch.set_num_threads(config.threads)
        self.model = model.to(self.device)
        self._compute_loss = self.dist.wrap(self.model)  # DistributedDataParallel under torchrun
        self._params = [p for p in model.parameters() if p.requires_grad]
        if not self._params:
            raise RnnkitError("the model has no trainable parameters")
        self.optimizer = build_optimizer(self._params, config)
        self.num_batches = self._num_batches()
        epoch_steps = config.epochs * self.num_batches
        self.total_steps = min(config.max_steps, epoch_steps) if config.max_steps else epoch_steps
        self.schedule = LRSchedule(config, self.total_steps)

        # The loop's position and memory: exactly what a checkpoint holds.
        self.step = 0
        self.epoch = 0
        self.index = 0
        self.carried: Any = None
        self.best_score: float | None = None  # best monitored value of the regular validations
        self.best_metrics: dict[str, float] = {}  # what best/ holds: it may also come from a
        self.best_step: int | None = None  # final validation of a run cut short
        self.last_metrics: dict[str, float] = {}
        self.last_eval_step: int | None = None
        self.bad_evals = 0
        self._elapsed_before = 0.0
        self._t0: float | None = None
        self._meter = LossMeter()

        self._started = False  # a fit() has run or a checkpoint was loaded: no fresh seeding
        self._pending_rng: dict[str, Any] | None = None
        self._stop_request: str | None = None
        self._sigint = GracefulInterrupt(second_stops=not self.dist.active)
        self._phase = "idle"  # where a KeyboardInterrupt found the loop
        self._rng_snapshot: tuple[Tensor, Tensor | None] | None = None
        self._last_saved_step: int | None = None
        self._log: RunLog | None = None
        self._monitor_checked = False

    # ------------------------------------------------------------------ construction from disk

    @classmethod
    def resume(
        cls,
        path: str | Path,
        train_source: BatchSource,
        val_source: BatchSource | None = None,
        config: TrainConfig | None = None,
        *,
        model: nn.Module | None = None,
        out_dir: str | Path | None = None,
        extra_files: Mapping[str, Any] | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> Trainer:
        """A Trainer that continues the run saved at ``path``; call :meth:`fit` on it.

        ``path`` is a checkpoint directory or a run's out_dir (then its ``last/``). By default
        the model is rebuilt from the checkpoint, the config and extra files are the saved ones
        and out_dir is the checkpoint's parent; pass ``config`` to change e.g. ``max_steps``.
        """
        ckpt = _checkpoint_to_resume(Path(path))
        saved = read_config(ckpt)
        if config is None:
            if not saved.get("train_config"):
                raise RnnkitError(f"{ckpt} stores no train config: pass config=")
            config = TrainConfig.from_dict(saved["train_config"])
        if model is None:
            model = load_model(ckpt).train()
        if extra_files is None:
            extra_files = {n: load_extra_file(ckpt, n) for n in saved.get("extra_files", [])}
        if out_dir is None:
            out_dir = ckpt.parent
        trainer = cls(
            model,
            train_source,
            val_source,
            config,
            out_dir,
            extra_files=extra_files,
            callbacks=callbacks,
        )
        trainer._load(ckpt)
        return trainer

    # ------------------------------------------------------------------ public API

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, over all resumed parts of the run."""
        running = time.perf_counter() - self._t0 if self._t0 is not None else 0.0
        return self._elapsed_before + running

    def request_stop(self, reason: str = "callback") -> None:
        """Stop before the next step (checkpoints are written as for any other stop)."""
        self._stop_request = reason

    @property
    def best_val_loss(self) -> float | None:
        return self.best_metrics.get("val_loss")

    @property
    def last_val_loss(self) -> float | None:
        return self.last_metrics.get("val_loss")

    def evaluate(
        self, source: BatchSource | None = None, max_batches: int | None = None
    ) -> dict[str, float]:
        """``{"loss": ..., <metric>: ...}`` on ``source`` (default: the validation source)."""
        source = source if source is not None else self.val_source
        if source is None:
            raise RnnkitError("no source to evaluate: pass one or give the Trainer a val_source")
        return self.dist.evaluate(self.model, source, max_batches, device=self.device)

    def fit(self, resume: bool | str | Path = False) -> TrainResult:
        """Train until a stop condition (:data:`~rnnkit.training.result.STOP_REASONS`); return
        how it went.

        ``resume=True`` continues from ``out_dir/last``; a path continues from that checkpoint.
        A fresh run seeds every RNG with ``config.seed`` and loads ``config.init_from``.
        """
        if resume is not False:
            if resume is True:
                if self.out_dir is None:
                    raise RnnkitError("fit(resume=True) needs an out_dir holding last/")
                resume = self.out_dir
            self._load(_checkpoint_to_resume(Path(resume)))
        fresh = not self._started
        if fresh:
            if self.config.init_from:
                load_weights(self.config.init_from, self.model)
            seed_everything(self.dist.rank_seed(self.config.seed))
            self._started = True

        main = self.dist.is_main  # only rank 0 of a distributed run writes and shows a bar
        self._log = RunLog(
            self.out_dir if main else None,
            progress=self.config.progress and main,
            tensorboard=self.config.tensorboard and main,
            total_steps=self.total_steps,
            start_step=self.step,
            time_budget=60 * self.config.max_minutes,
            start_elapsed=self._elapsed_before,
        )
        if self.dist.active:
            self._log.message(self.dist.describe(self.train_source))
        if self.config.precision == "auto":
            self._log.message(f"precision auto: training in {self.precision} on {self.device}")
        if fresh and self.out_dir is not None and (self.out_dir / "last").exists():
            self._log.message(
                f"{self.out_dir} holds an earlier run: a fresh run overwrites its checkpoints "
                "(fit(resume=True) continues it instead)"
            )
        self._stop_request = None
        self.check_monitor()
        self._t0 = time.perf_counter()
        self._meter.resume()
        try:
            self._callback("on_fit_start")
            if self._pending_rng is not None:  # last, so that nothing can move it before the loop
                restore_rng(self._pending_rng)
                self._pending_rng = None
            with self._sigint:
                reason, save = self._run_loop(), True
        except KeyboardInterrupt:
            # Saving is safe between steps, or mid forward/backward once rewound; not inside an
            # optimizer update, nor before the loop started (the RNG is not yet the run's).
            # A distributed rank cannot tell where the others are: it saves nothing.
            reason = "interrupted"
            save = self._phase in ("forward", "bookkeeping") and not self.dist.active
            if self._phase == "forward":  # the step never happened: rewind its random numbers
                restore_torch_rng(self._rng_snapshot, self.device)
            elif self._phase == "update":
                self._log.message(
                    "interrupted inside an optimizer update: last/ is kept from step "
                    f"{self._last_saved_step}"
                )
        finally:
            self._phase = "idle"
        if reason == "interrupted":
            self._log.message(f"interrupted ({self._sigint.signal_name}) at step {self.step}")
        elif (
            reason in ("max_steps", "time_budget")
            and self.val_source is not None
            and self.last_eval_step != self.step
        ):
            self._final_validation()
        if save and reason != "nonfinite_loss" and self._last_saved_step != self.step:
            self._save("last")
        self.dist.barrier()  # no rank leaves (and has torchrun stop the rest) before it is written
        self._elapsed_before, self._t0 = self.elapsed, None
        self._log.close()
        result = TrainResult(
            stopped_reason=reason,
            steps=self.step,
            epochs=self.epoch + self.index / self.num_batches,
            best_val_loss=self.best_val_loss,
            best_step=self.best_step,
            last_val_loss=self.last_val_loss,
            elapsed=self._elapsed_before,
            history=list(self._log.history),
            out_dir=self.out_dir,
            monitor=self.config.monitor,
            best_metrics=dict(self.best_metrics),
            last_metrics=dict(self.last_metrics),
            last_good_step=self._last_saved_step,
            signal=self._sigint.signal_name if reason == "interrupted" else None,
            precision=self.precision,
        )
        self._callback("on_fit_end", result)
        return result

    # ------------------------------------------------------------------ the loop

    def _run_loop(self) -> str:
        cfg = self.config
        model, optimizer, source = self.model, self.optimizer, self.train_source
        stateful = bool(source.stateful)
        on_cpu = self.device.type == "cpu"
        mixed = self.precision == "bf16"
        checked = False
        model.train()
        while True:
            # What this step decides on; a distributed run agrees on it (one all-reduce), so
            # every rank stops at the same step and schedules the same lr.
            now, signal, self._stop_request = self.dist.agree(
                self.elapsed, self._sigint.pending(), self._stop_request
            )
            reason = self._stop_reason(now, signal)
            if reason is not None:
                return reason
            # Snapshot so that an interrupt inside the forward pass can rewind its dropout draws.
            self._rng_snapshot = torch_rng_snapshot(self.device)
            self._phase = "forward"
            batch = source.batch(self.epoch, self.index)
            if not on_cpu:
                batch = move_to(batch, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=mixed):
                out = self._compute_loss(batch, state=self.carried if stateful else None)
            loss, state = out.loss, out.state
            if not checked:
                _check_loss(loss)
                checked = True
            # Distributed: the step's mean over every rank, and this rank's loss weighted by
            # its share of the tokens; one process: the loss as it is.
            mean, num_tokens, metrics, loss = self.dist.reduce_step(
                loss, out.num_tokens, out.metrics
            )
            # One host sync a step: a NaN must never reach the weights nor a checkpoint.
            if not torch.isfinite(mean):
                return self._nonfinite("training loss", float(mean))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                if cfg.clip_mode == "norm":
                    norm = nn.utils.clip_grad_norm_(self._params, cfg.grad_clip)
                    if not torch.isfinite(norm):
                        return self._nonfinite("gradient norm", float(norm))
                else:
                    nn.utils.clip_grad_value_(self._params, cfg.grad_clip)
            lr = self.schedule.lr(self.step, now)
            set_lr(optimizer, lr)
            self._phase = "update"
            optimizer.step()
            self.carried = detach_state(state) if stateful else None
            if mixed and self.carried is not None:  # autocast hands back a bf16 state
                self.carried = map_tensors(full_precision, self.carried)
            self.step += 1
            self.index += 1
            epoch_end = self.index >= self.num_batches
            if epoch_end:  # streams restart with the next epoch: so does the state
                self.epoch, self.index, self.carried = self.epoch + 1, 0, None
                self.num_batches = self._num_batches()
            self._phase = "bookkeeping"
            self._meter.add(mean, num_tokens, metrics)
            self._log.step(self.elapsed)
            self._after_step(epoch_end, lr)

    def _stop_reason(self, now: float, signal: str | None) -> str | None:
        """Why the run stops before the next step: ``now`` is the elapsed time and ``signal``
        the signal received, both as :meth:`Distributed.agree` has them."""
        cfg = self.config
        if self.epoch >= cfg.epochs:
            return "completed"
        if cfg.max_steps and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.early_stopping_patience and self.bad_evals >= cfg.early_stopping_patience:
            return "early_stopping"
        if cfg.max_minutes and now >= 60 * cfg.max_minutes:
            return "time_budget"
        if signal is not None:
            self._sigint.signal_name = signal  # another rank's, in a distributed run
            return "interrupted"
        return self._stop_request

    def _after_step(self, epoch_end: bool, lr: float) -> None:
        cfg = self.config
        row = None
        if self.step % cfg.log_every == 0:
            train_loss, tokens_per_s, sums, tokens = self._meter.take()
            train_metrics = summarize_metrics(self.model, sums, tokens) if sums else {}
            row = self._row(
                lr,
                train_loss=train_loss,
                tokens_per_s=tokens_per_s,
                **{f"train_{k}": v for k, v in train_metrics.items()},
            )
        eval_due = self.val_source is not None and (
            (epoch_end and cfg.eval_at_epoch_end)
            or (cfg.eval_every > 0 and self.step % cfg.eval_every == 0)
        )
        save_due = eval_due or (cfg.save_every > 0 and self.step % cfg.save_every == 0)
        if not (row or eval_due or save_due):
            return
        self._meter.pause()
        new_best = False
        if eval_due:
            metrics, new_best = self._validate()
            row = row or self._row(lr)
            row.update(metrics)
            if not math.isfinite(metrics["val_loss"]):
                self._nonfinite("validation loss", metrics["val_loss"])
        if row is not None:
            self._log.write(row)
            self._callback("on_log", row)
        if eval_due:
            self._callback("on_eval", dict(self.last_metrics), new_best)
        if self._stop_request != "nonfinite_loss":
            if new_best:
                self._save("best")
            if save_due:
                self._save("last")
        self._meter.resume()

    def _row(self, lr: float, **values: Any) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": round(self.epoch + self.index / self.num_batches, 4),
            "lr": lr,
            "elapsed": round(self.elapsed, 3),
            **values,
        }

    def _num_batches(self) -> int:
        n = int(self.train_source.num_batches())
        if n < 1:
            raise RnnkitError("train_source has no batches")
        return n

    # ------------------------------------------------------------------ callbacks

    def _callback(self, hook: str, *args: Any) -> None:
        if not self.callbacks:
            return
        with preserve_rng():  # sampling in a callback must not shift the training stream
            for cb in self.callbacks:
                fn = getattr(cb, hook, None)
                if fn is not None:
                    fn(self, *args)
        self.model.train()


def _check_loss(loss: Any) -> None:
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise RnnkitError(f"compute_loss must return a scalar loss tensor, got {shape}")
    if not loss.requires_grad:
        raise RnnkitError("the loss from compute_loss does not require grad: nothing to train")
