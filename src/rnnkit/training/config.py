"""TrainConfig: every knob of the training loop, one field per CLI flag, checked on creation."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnkit.errors import RnnkitError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "exponential", "plateau", "cosine", "linear")
CLIP_MODES = ("norm", "value")
PRECISIONS = ("fp32", "bf16", "auto")
MONITOR_MODES = ("auto", "min", "max")
# Metrics where lower is better; monitor_mode='auto' minimises these and maximises the rest.
LOWER_IS_BETTER = ("loss", "perplexity", "error", "cer", "wer", "mae", "rmse", "mape", "mase")


@dataclass
class TrainConfig:
    """How to train. Steps are optimizer updates (one batch each); 0 turns a limit off.

    Optimizer
        optimizer: 'adam' | 'adamw' | 'sgd' | 'rmsprop'.
        lr: peak learning rate. weight_decay: L2 (decoupled for 'adamw').
        momentum: for 'sgd' and 'rmsprop'. betas: Adam's (β1, β2); rmsprop_alpha: RMSprop's
        smoothing constant.
        grad_clip: clip threshold, 0 = off (5 is char-rnn's classic for RNNs).
        clip_mode: 'norm' rescales all gradients so their global L2 norm ≤ grad_clip;
        'value' clamps each element to [-grad_clip, grad_clip].
    Learning-rate schedule (step counts are optimizer steps)
        lr_schedule: 'none'; 'step' (× lr_decay every lr_decay_every steps); 'exponential'
        (× lr_decay per lr_decay_every steps, smoothly); 'plateau' (× lr_decay after
        plateau_patience validations without improvement); 'cosine' / 'linear' (from lr to min_lr
        over the run's steps after warm-up, or over the time budget when max_minutes is set).
        lr_decay_start: 'step'/'exponential' decay only after this many steps (char-rnn's
        learning_rate_decay_after; Zaremba et al. halve the rate only after epoch 4).
        warmup_steps: linear ramp from lr/warmup_steps to lr over the first steps.
        min_lr: floor of every schedule.
    Length
        epochs: passes over the training source. max_steps: total steps, 0 = no limit.
        max_minutes: wall-clock budget over all resumed parts, 0 = none.
    Validation and stopping
        eval_every: validate every this many steps (0 = only at epoch ends).
        eval_at_epoch_end: also validate at each epoch end (default); turn it off when epochs
        are short (Tiny Shakespeare at 64×128 is a 121-step epoch) and eval_every says when.
        eval_batches: validate on at most this many batches, 0 = all.
        early_stopping_patience: stop after this many validations without improvement, 0 = off.
        monitor: the validation figure that chooses ``best/``, early stopping and the plateau
        schedule: 'val_loss' or any 'val_<metric>' the model reports (val_accuracy, val_f1,
        val_bleu, ...).
        monitor_mode: 'min' or 'max'; 'auto' minimises losses and errors (names ending in
        loss, perplexity, error, cer, wer, mae, rmse, mape, mase) and maximises the rest.
    Reproducibility and output
        seed: seeds python, numpy and torch at the start of a fresh run.
        device: 'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'.
        threads: torch's CPU threads (process-wide), 0 = torch's default of one per core.
        precision: 'fp32'; 'bf16' for mixed precision: the training forward pass runs under
        ``torch.autocast`` in bfloat16 while the weights, the optimiser, the carried state and
        validation stay float32 (see benchmarks/train_throughput.py for the speed-up);
        'auto': bf16 where the hardware has fast bfloat16 products (a CPU with AMX, a CUDA
        GPU that supports bf16), fp32 elsewhere.
        log_every: steps per log row (CSV, progress bar, TensorBoard).
        progress: show a tqdm bar. tensorboard: write TensorBoard events (if installed).
        save_every: also write ``last/`` every this many steps, 0 = at validations and the end.
        init_from: checkpoint whose weights start a fresh run (fine-tuning), '' = none.
    """

    optimizer: str = field(
        default="adam", metadata={"help": "optimiser", "choices": list(OPTIMIZERS)}
    )
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "L2 penalty (decoupled for adamw)"})
    momentum: float = field(default=0.0, metadata={"help": "momentum of sgd and rmsprop"})
    betas: tuple[float, float] = field(
        default=(0.9, 0.999), metadata={"help": "Adam's (beta1, beta2)", "cli": False}
    )
    rmsprop_alpha: float = field(default=0.99, metadata={"help": "RMSprop's smoothing constant"})
    grad_clip: float = field(default=5.0, metadata={"help": "clip threshold, 0 = off"})
    clip_mode: str = field(
        default="norm",
        metadata={
            "help": "clip the global gradient norm or each value",
            "choices": list(CLIP_MODES),
        },
    )
    epochs: int = field(default=10, metadata={"help": "passes over the training data"})
    max_steps: int = field(
        default=0, metadata={"help": "stop after this many optimizer steps, 0 = no limit"}
    )
    max_minutes: float = field(
        default=0.0, metadata={"help": "wall-clock budget over all resumed parts, 0 = none"}
    )
    lr_schedule: str = field(
        default="none", metadata={"help": "learning-rate schedule", "choices": list(SCHEDULES)}
    )
    lr_decay: float = field(
        default=0.5, metadata={"help": "factor of the step/exponential/plateau schedules"}
    )
    lr_decay_every: int = field(
        default=1000, metadata={"help": "steps per decay of the step/exponential schedules"}
    )
    lr_decay_start: int = field(
        default=0, metadata={"help": "steps before the step/exponential decay begins"}
    )
    plateau_patience: int = field(
        default=1, metadata={"help": "validations without improvement before a plateau decay"}
    )
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    min_lr: float = field(default=0.0, metadata={"help": "floor of every schedule"})
    eval_every: int = field(
        default=0, metadata={"help": "validate every this many steps (0 = at epoch ends only)"}
    )
    eval_at_epoch_end: bool = field(
        default=True, metadata={"help": "also validate at each epoch end"}
    )
    eval_batches: int = field(
        default=0, metadata={"help": "validate on at most this many batches, 0 = all"}
    )
    early_stopping_patience: int = field(
        default=0,
        metadata={"help": "stop after this many validations without improvement, 0 = off"},
    )
    monitor: str = field(
        default="val_loss",
        metadata={
            "help": "validation figure that picks best/, early stopping and the plateau "
            "schedule: val_loss or val_<metric> (val_accuracy, val_f1, val_bleu, ...)"
        },
    )
    monitor_mode: str = field(
        default="auto",
        metadata={
            "help": "whether the monitored figure should go down or up; auto: down for "
            "losses and errors, up for the rest",
            "choices": list(MONITOR_MODES),
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of every random number generator"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch, 0 = torch's default (one per core); two trainings "
            "on the same cores run far faster with 1 each"
        },
    )
    precision: str = field(
        default="fp32",
        metadata={
            "help": "bf16: mixed-precision forward pass (autocast), weights stay fp32; auto: "
            "bf16 where the CPU has AMX or the GPU supports bf16",
            "choices": list(PRECISIONS),
        },
    )
    log_every: int = field(default=50, metadata={"help": "steps per log row"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    tensorboard: bool = field(
        default=False, metadata={"help": "write TensorBoard events (if installed)"}
    )
    save_every: int = field(
        default=0,
        metadata={"help": "also save last/ every this many steps, 0 = at validations and the end"},
    )
    init_from: str = field(
        default="", metadata={"help": "start from the weights of this checkpoint (fine-tuning)"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        self._check()

    def _check(self) -> None:
        for f in dataclasses.fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("lr_schedule", self.lr_schedule, SCHEDULES)
        _choice("clip_mode", self.clip_mode, CLIP_MODES)
        _choice("precision", self.precision, PRECISIONS)
        _range("lr", self.lr, "> 0", self.lr > 0)
        _range("weight_decay", self.weight_decay, ">= 0", self.weight_decay >= 0)
        _range("momentum", self.momentum, "in [0, 1)", 0 <= self.momentum < 1)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise RnnkitError(f"betas must be two numbers in [0, 1), got {self.betas}")
        _range("rmsprop_alpha", self.rmsprop_alpha, "in (0, 1)", 0 < self.rmsprop_alpha < 1)
        _range("grad_clip", self.grad_clip, ">= 0 (0 = off)", self.grad_clip >= 0)
        _range("epochs", self.epochs, ">= 1", self.epochs >= 1)
        _range("max_steps", self.max_steps, ">= 0 (0 = no limit)", self.max_steps >= 0)
        _range("max_minutes", self.max_minutes, ">= 0 (0 = none)", self.max_minutes >= 0)
        _range("lr_decay", self.lr_decay, "in (0, 1]", 0 < self.lr_decay <= 1)
        _range("lr_decay_every", self.lr_decay_every, ">= 1", self.lr_decay_every >= 1)
        _range("lr_decay_start", self.lr_decay_start, ">= 0", self.lr_decay_start >= 0)
        _range("plateau_patience", self.plateau_patience, ">= 1", self.plateau_patience >= 1)
        _range("warmup_steps", self.warmup_steps, ">= 0", self.warmup_steps >= 0)
        _range("min_lr", self.min_lr, f"in [0, lr={self.lr}]", 0 <= self.min_lr <= self.lr)
        _range("eval_every", self.eval_every, ">= 0", self.eval_every >= 0)
        if not self.eval_at_epoch_end and self.eval_every == 0:
            raise RnnkitError("eval_at_epoch_end=False needs eval_every > 0, or nothing validates")
        _range("eval_batches", self.eval_batches, ">= 0 (0 = all)", self.eval_batches >= 0)
        _range(
            "early_stopping_patience",
            self.early_stopping_patience,
            ">= 0 (0 = off)",
            self.early_stopping_patience >= 0,
        )
        _choice("monitor_mode", self.monitor_mode, MONITOR_MODES)
        if not self.monitor.startswith("val_") or self.monitor == "val_":
            raise RnnkitError(
                f"monitor must name a validation figure: val_loss or val_<metric>, got "
                f"{self.monitor!r}"
            )
        _range("seed", self.seed, ">= 0", self.seed >= 0)
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise RnnkitError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )
        _range("threads", self.threads, ">= 0 (0 = torch's default)", self.threads >= 0)
        _range("log_every", self.log_every, ">= 1", self.log_every >= 1)
        _range("save_every", self.save_every, ">= 0 (0 = off)", self.save_every >= 0)

    @property
    def maximize(self) -> bool:
        """Whether a higher ``monitor`` is better (monitor_mode, or the name under 'auto')."""
        if self.monitor_mode != "auto":
            return self.monitor_mode == "max"
        return not self.monitor.endswith(LOWER_IS_BETTER)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (betas as a list)."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown fields are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise RnnkitError(f"unknown TrainConfig fields {unknown}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (and checked)."""
        return dataclasses.replace(self, **changes)


def _check_type(name: str, value: Any, hint: str) -> None:
    # Annotations are strings here (from __future__); the four kinds of field are easy to tell.
    if hint == "bool":
        ok = isinstance(value, bool)
    elif hint == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif hint == "str":
        ok = isinstance(value, str)
    else:  # betas
        ok = isinstance(value, tuple) and all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in value
        )
    if not ok:
        raise RnnkitError(f"{name} must be {hint}, got {value!r}")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RnnkitError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _range(name: str, value: Any, expected: str, ok: bool) -> None:
    if not ok:
        raise RnnkitError(f"{name} must be {expected}, got {value!r}")
