"""Optimisers and learning-rate schedules, built from a TrainConfig.

The schedule is ours rather than ``torch.optim.lr_scheduler``: the learning rate is a pure
function of the step count (times a plateau factor), so its whole state is three numbers in
JSON and a resumed run sets exactly the rate the uninterrupted run would have.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from rnnkit.training.config import TrainConfig


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over ``params``."""
    params = [p for p in params if p.requires_grad]
    c = config
    if c.optimizer == "adam":
        return torch.optim.Adam(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
    if c.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
    if c.optimizer == "sgd":
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
    if c.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=c.lr, alpha=c.rmsprop_alpha, momentum=c.momentum, weight_decay=c.weight_decay
        )
    raise AssertionError(c.optimizer)  # TrainConfig checked the name


class LRSchedule:
    """lr(step) = max(min_lr, lr · decay(step) · plateau_scale) · warmup(step).

    ``step`` counts optimizer steps already taken (the rate for the first update is ``lr(0)``).

    ========== =====================================================================
    none        decay = 1
    step        decay = lr_decay ** floor(s / lr_decay_every), s = max(0, step - lr_decay_start)
    exponential decay = lr_decay ** (s / lr_decay_every)
    cosine      decay from 1 to min_lr/lr along half a cosine over [warmup, total_steps - 1],
                or over the time budget (elapsed seconds / 60·max_minutes) when there is one
    linear      the same horizon, decaying along a straight line
    plateau     decay = 1; plateau_scale × lr_decay after plateau_patience validations
                without improvement (see :meth:`on_eval`)
    ========== =====================================================================

    warmup(step) = min(1, (step + 1) / warmup_steps) when warmup_steps > 0.

    With ``max_minutes`` the horizon of 'cosine' and 'linear' is the time budget, so that a run
    of M minutes ends at min_lr whatever its speed: what gives the best model a fixed budget can
    give. The elapsed time is part of a checkpoint, so a resumed run continues the schedule
    where it stopped (its rate then follows that run's clock, not the first one's).
    """

    def __init__(self, config: TrainConfig, total_steps: int) -> None:
        self.config = config
        self.total_steps = max(int(total_steps), 1)
        self.plateau_scale = 1.0
        self.plateau_best: float | None = None
        self.plateau_bad = 0

    def progress(self, step: int, elapsed: float = 0.0) -> float:
        """How far along its horizon a cosine/linear schedule is, in [0, 1]."""
        c = self.config
        span = max(self.total_steps - 1 - c.warmup_steps, 1)  # the last step gets min_lr
        by_steps = min(max(step - c.warmup_steps, 0) / span, 1.0)
        if c.max_minutes > 0:  # whichever limit ends the run first is the horizon
            return max(min(max(elapsed / (60 * c.max_minutes), 0.0), 1.0), by_steps)
        return by_steps

    def lr(self, step: int, elapsed: float = 0.0) -> float:
        c = self.config
        decaying = max(step - c.lr_decay_start, 0)
        if c.lr_schedule == "step":
            decay = c.lr_decay ** (decaying // c.lr_decay_every)
        elif c.lr_schedule == "exponential":
            decay = c.lr_decay ** (decaying / c.lr_decay_every)
        elif c.lr_schedule in ("cosine", "linear"):
            progress = self.progress(step, elapsed)
            floor = c.min_lr / c.lr
            if c.lr_schedule == "cosine":
                decay = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
            else:
                decay = floor + (1 - floor) * (1 - progress)
        else:
            decay = 1.0
        lr = max(c.min_lr, c.lr * decay * self.plateau_scale)
        if c.warmup_steps and step < c.warmup_steps:
            lr *= (step + 1) / c.warmup_steps
        return lr

    def on_eval(self, val_loss: float) -> None:
        """Feed a validation loss (only the 'plateau' schedule uses it)."""
        if self.config.lr_schedule != "plateau":
            return
        if self.plateau_best is None or val_loss < self.plateau_best:
            self.plateau_best, self.plateau_bad = val_loss, 0
            return
        self.plateau_bad += 1
        if self.plateau_bad >= self.config.plateau_patience:
            self.plateau_scale *= self.config.lr_decay
            self.plateau_bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "plateau_scale": self.plateau_scale,
            "plateau_best": self.plateau_best,
            "plateau_bad": self.plateau_bad,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad = int(state["plateau_bad"])


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
