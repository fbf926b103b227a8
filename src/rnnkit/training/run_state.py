"""What a checkpoint holds of a training run, and how a Trainer takes it back.

Everything the next step depends on is saved between two steps: weights, optimizer and schedule
state, (epoch, index), the carried recurrent state, every RNG state, the best loss and the
early-stopping count, the elapsed time, the train-loss meter. :class:`CheckpointedRun` is the
part of :class:`~rnnkit.training.trainer.Trainer` that writes and reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.checkpoint import CONFIG_FILE, load_trainer_state, load_weights, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.training.rng import capture_rng
from rnnkit.training.trees import move_to


class CheckpointedRun:
    """Saving and loading a Trainer's state (a mixin: it uses the Trainer's attributes)."""

    def _state(self) -> dict[str, Any]:
        # A distributed run adds every rank's part (a collective: every rank calls this).
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "index": self.index,
            "num_batches": self.num_batches,
            "best_score": self.best_score,
            "best_metrics": self.best_metrics,
            "best_step": self.best_step,
            "last_metrics": self.last_metrics,
            "last_eval_step": self.last_eval_step,
            "bad_evals": self.bad_evals,
            "elapsed": self.elapsed,
            "optimizer_type": self.config.optimizer,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "rng": capture_rng(),
            "carried_state": self.carried,
            "meter": self._meter.state_dict(),
        }
        return self.dist.gather_state(state, self.train_source)

    def _save(self, name: str) -> None:
        if self.out_dir is None:
            return
        state = self._state()
        if not self.dist.is_main:  # rank 0 writes for every rank
            if name == "last":
                self._last_saved_step = self.step
            return
        path = save_checkpoint(
            self.out_dir / name,
            self.model,
            train_config=self.config.to_dict(),
            extra_files=self.extra_files,
            trainer_state=state,
            info={
                "step": self.step,
                "epoch": self.epoch,
                "precision": self.precision,
                "monitor": self.config.monitor,
                "metrics": self.last_metrics,
                "best_metrics": self.best_metrics,
            },
        )
        if name == "last":
            self._last_saved_step = self.step
        self._callback("on_save", path)

    def _load(self, ckpt: Path) -> None:
        """Take over the run saved at ``ckpt`` (its RNG state is restored just before the loop)."""
        # This rank's view: its RNG and stream rows, the position in this run's batches.
        state = self.dist.local_state(load_trainer_state(ckpt), self.train_source)
        load_weights(ckpt, self.model)
        if state["optimizer_type"] != self.config.optimizer:
            raise RnnkitError(
                f"{ckpt} was trained with optimizer={state['optimizer_type']!r}, the config says "
                f"{self.config.optimizer!r}: to switch, start a new run with init_from='{ckpt}'"
            )
        # The saved state holds the moments; hyperparameters follow the (possibly new) config.
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as e:
            raise RnnkitError(f"{ckpt}: optimizer state does not fit this model: {e}") from None
        for group, hyper in zip(self.optimizer.param_groups, fresh, strict=True):
            group.update(hyper)
        self.schedule.load_state_dict(state["schedule"])
        self.step, self.epoch, self.index = state["step"], state["epoch"], state["index"]
        if self.index >= self.num_batches:
            raise RnnkitError(
                f"{ckpt} stopped at batch {self.index} of epoch {self.epoch}, but train_source has "
                f"only {self.num_batches} batches per epoch (it had {state['num_batches']})"
            )
        self.best_step, self.bad_evals = state["best_step"], state["bad_evals"]
        if "best_metrics" in state:
            self.best_score = state["best_score"]
            self.best_metrics = dict(state["best_metrics"])
            self.last_metrics = dict(state["last_metrics"])
            self.last_eval_step = state["last_eval_step"]
        else:  # a checkpoint from before monitors: it tracked val_loss only
            self.best_score = state["best_val_loss"]
            best, last = state["best_val_loss"], state["last_val_loss"]
            self.best_metrics = {"val_loss": best} if best is not None else {}
            self.last_metrics = {"val_loss": last} if last is not None else {}
        self._elapsed_before = float(state["elapsed"])
        carried = state["carried_state"]
        self.carried = move_to(carried, self.device) if carried is not None else None
        self._meter.load_state_dict(state["meter"])
        self._last_saved_step = self.step
        self._pending_rng = state["rng"]
        self._started = True


def _checkpoint_to_resume(path: Path) -> Path:
    """The checkpoint to continue from: ``path/last`` when there is one, else ``path`` itself.

    Either may be found as ``<name>.old``: a checkpoint whose swap-in was cut short.
    """
    path = path.expanduser().resolve()
    for cand in (path / "last", path):
        for c in (cand, cand.with_name(cand.name + ".old")):
            if (c / CONFIG_FILE).is_file():
                return c
    raise RnnkitError(f"nothing to resume at {path}: expected a checkpoint or a last/ inside it")
