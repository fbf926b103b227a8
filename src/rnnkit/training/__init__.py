"""One Trainer for every rnnkit task: loop, clipping, schedules, validation, early stopping,
progress and logs, checkpoints and exact resume.

    from rnnkit.training import Trainer, TrainConfig
    result = Trainer(model, train, val, TrainConfig(epochs=5), out_dir="runs/lm").fit()
    # later, or after Ctrl-C:
    result = Trainer.resume("runs/lm", train, val).fit()
"""

from rnnkit.contracts import BatchSource, LossOutput, TrainableModel
from rnnkit.training.callbacks import Callback
from rnnkit.training.config import TrainConfig
from rnnkit.training.device import resolve_device
from rnnkit.training.metrics import evaluate
from rnnkit.training.optim import LRSchedule, build_optimizer
from rnnkit.training.result import STOP_REASONS, TrainResult
from rnnkit.training.rng import preserve_rng, seed_everything
from rnnkit.training.trainer import Trainer
from rnnkit.training.trees import detach_state, move_to

__all__ = [
    "STOP_REASONS",
    "BatchSource",
    "Callback",
    "LRSchedule",
    "LossOutput",
    "TrainConfig",
    "TrainResult",
    "TrainableModel",
    "Trainer",
    "build_optimizer",
    "detach_state",
    "evaluate",
    "move_to",
    "preserve_rng",
    "resolve_device",
    "seed_everything",
]
