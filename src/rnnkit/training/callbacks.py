"""Callbacks: hooks into :meth:`rnnkit.training.Trainer.fit`.

The hooks receive the Trainer itself; this module does not import it (the Trainer imports this
module), so the hints name it as ``Any``.
"""

from __future__ import annotations

from typing import Any


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need.

    Hooks run with the RNG state saved and restored around them (sampling text in ``on_eval``
    does not shift the training stream, so resume stays exact) and the model put back into
    training mode afterwards. Call ``trainer.request_stop()`` to end the run after this step.
    """

    def on_fit_start(self, trainer: Any) -> None:
        """Before the first step (of this process: after a resume too)."""

    def on_log(self, trainer: Any, row: dict[str, Any]) -> None:
        """After a log row (the CSV columns) is written."""

    def on_eval(self, trainer: Any, metrics: dict[str, float], improved: bool) -> None:
        """After a validation pass (``metrics`` holds val_loss and every val_ metric), before
        the checkpoints of this step are written."""

    def on_save(self, trainer: Any, path: Any) -> None:
        """After a checkpoint directory was written."""

    def on_fit_end(self, trainer: Any, result: Any) -> None:
        """After the loop has stopped, whatever the reason (``result`` is a TrainResult)."""
