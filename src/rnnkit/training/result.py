"""How a training run ended: :class:`TrainResult`, what :meth:`Trainer.fit` returns, and the
reasons a run stops."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STOP_REASONS = (
    "completed",  # all epochs done
    "max_steps",
    "early_stopping",
    "time_budget",
    "interrupted",  # Ctrl-C / KeyboardInterrupt
    "nonfinite_loss",  # a training or validation loss was NaN/inf; no checkpoint is written
    "callback",  # a callback called trainer.request_stop()
)


@dataclass
class TrainResult:
    """How a :meth:`Trainer.fit` call ended. ``history`` holds the log rows (CSV columns).

    ``best_metrics`` are the validation figures of the ``best/`` checkpoint (the one with the
    best ``monitor``), ``last_metrics`` those of the last validation; ``best_val_loss`` and
    ``last_val_loss`` are their ``val_loss``. ``last_good_step``: the step of the newest
    checkpoint on disk (None when none was written), what a non-finite stop reports.
    """

    stopped_reason: str
    steps: int
    epochs: float
    best_val_loss: float | None
    best_step: int | None
    last_val_loss: float | None
    elapsed: float
    history: list[dict[str, Any]] = field(default_factory=list)
    out_dir: Path | None = None
    monitor: str = "val_loss"
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_metrics: dict[str, float] = field(default_factory=dict)
    last_good_step: int | None = None
    signal: str | None = None  # SIGINT or SIGTERM when stopped_reason is 'interrupted'
    precision: str = "fp32"  # what ran: 'auto' resolved
