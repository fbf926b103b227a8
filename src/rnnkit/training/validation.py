"""Validation inside a run: the monitored figure, ``best/``, early stopping and the non-finite
stop.

``TrainConfig.monitor`` names the figure (``val_loss``, ``val_accuracy``, ...) and
``monitor_mode`` its direction; internally it becomes a *cost*, lower is better, so one
comparison serves both. Two bests are kept apart: the best cost of the regular validations
(early stopping and the plateau schedule count against it) and the figures of ``best/``, which
the final validation of a run cut short may also improve without touching what a resumed run
depends on. :class:`MonitoredRun` is the part of
:class:`~rnnkit.training.trainer.Trainer` that does this (a mixin: it uses the Trainer's
attributes).
"""

from __future__ import annotations

import math

from rnnkit.errors import RnnkitError
from rnnkit.training.rng import preserve_rng


class MonitoredRun:
    """Validating, and deciding what a validation means for the run."""

    def _measure(self) -> tuple[dict[str, float], float]:
        """Validate: ({"val_loss": ..., "val_<metric>": ...}, the monitored value as a cost)."""
        max_batches = self.config.eval_batches or None
        found = self.dist.evaluate(self.model, self.val_source, max_batches, device=self.device)
        metrics = {f"val_{k}": v for k, v in found.items()}
        monitor = self.config.monitor
        if monitor not in metrics:
            raise RnnkitError(
                f"monitor={monitor!r} is not among the validation figures of this model: "
                f"{', '.join(sorted(metrics))}"
            )
        self.last_metrics, self.last_eval_step = metrics, self.step
        value = metrics[monitor]
        # A cost: lower is better whatever the mode, so one comparison serves both.
        cost = -value if self.config.maximize else value
        return metrics, cost if math.isfinite(value) else math.inf

    def check_monitor(self) -> None:
        """Fail now, not after the first epoch, when the model does not report the monitor
        (one validation batch tells; done once, :meth:`fit` calls it too)."""
        monitor = self.config.monitor
        if self.val_source is None or monitor == "val_loss" or self._monitor_checked:
            return
        with preserve_rng():
            found = self.dist.evaluate(self.model, self.val_source, 1, device=self.device)
        if monitor.removeprefix("val_") not in found:
            raise RnnkitError(
                f"monitor={monitor!r} is not among the validation figures of this model: "
                f"{', '.join(sorted('val_' + k for k in found))}"
            )
        self._monitor_checked = True

    def _beats_best_checkpoint(self, cost: float) -> bool:
        if not math.isfinite(cost):
            return False
        best = self.best_metrics.get(self.config.monitor)
        if best is None:
            return True
        return cost < (-best if self.config.maximize else best)

    def _validate(self) -> tuple[dict[str, float], bool]:
        """A regular validation: it moves early stopping and the plateau schedule."""
        metrics, cost = self._measure()
        if math.isfinite(cost) and (self.best_score is None or cost < self.best_score):
            self.best_score, self.bad_evals = cost, 0
        else:
            self.bad_evals += 1
        self.schedule.on_eval(cost)
        new_best = self._beats_best_checkpoint(cost)
        if new_best:
            self.best_metrics, self.best_step = dict(metrics), self.step
        return metrics, new_best

    def _final_validation(self) -> None:
        """Where a run cut short ended: logged, and ``best/`` if it is the best so far. It
        leaves the early-stopping count and the schedule alone, so resume stays exact."""
        with preserve_rng():
            metrics, cost = self._measure()
        row = {**self._row(self.schedule.lr(self.step, self.elapsed)), **metrics}
        self._log.write(row)
        self._callback("on_log", row)
        if self._beats_best_checkpoint(cost):
            self.best_metrics, self.best_step = dict(metrics), self.step
            self._save("best")

    def _nonfinite(self, what: str, value: float) -> str:
        """Stop on a NaN/inf: nothing more is saved, and the message names the last good
        checkpoint."""
        self.request_stop("nonfinite_loss")
        if self._last_saved_step is None:
            good = "no checkpoint was written before it"
        else:
            good = f"last/ at step {self._last_saved_step} is the last good checkpoint"
            if self.best_step is not None:
                good += f" (best/ is from step {self.best_step})"
        self._log.message(f"{what} is {value} at step {self.step + 1}: stopped; {good}")
        return "nonfinite_loss"
