"""What the Trainer asks of data, of models and of callbacks: three small interfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from torch import Tensor

if TYPE_CHECKING:
    from rnnkit.training.trainer import Trainer, TrainResult


@runtime_checkable
class BatchSource(Protocol):
    """Batches of one split, addressed by (epoch, index) so that resuming is exact.

    ``batch(epoch, index)`` must return the same batch for the same arguments in any process
    (shuffle with a generator seeded from ``epoch``, never with the global RNG). When
    ``stateful`` is true, batch ``index + 1`` continues the streams of batch ``index`` and the
    trainer carries the recurrent state across them (truncated BPTT), resetting it at each epoch.
    """

    stateful: bool

    def num_batches(self) -> int:
        """Batches per epoch."""
        ...

    def batch(self, epoch: int, index: int) -> Any:
        """Batch ``index`` (0 ≤ index < num_batches()) of ``epoch``, on the CPU or any device."""
        ...


class LossOutput(NamedTuple):
    """What ``model.compute_loss(batch, state)`` returns.

    loss: scalar tensor, the mean loss per token of the batch (what is back-propagated).
    state: the recurrent state after the batch (carried to the next one by stateful sources).
    num_tokens: tokens the mean is over, a host int, used to weight means across batches.
    """

    loss: Tensor
    state: Any
    num_tokens: int


@runtime_checkable
class TrainableModel(Protocol):
    """An ``nn.Module`` the Trainer can fit; ``model_type`` and ``config`` make it saveable."""

    def compute_loss(self, batch: Any, state: Any = None) -> LossOutput: ...


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need.

    Hooks run with the RNG state saved and restored around them (sampling text in ``on_eval``
    does not shift the training stream, so resume stays exact) and the model put back into
    training mode afterwards. Call ``trainer.request_stop()`` to end the run after this step.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Before the first step (of this process: after a resume too)."""

    def on_log(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After a log row (the CSV columns) is written."""

    def on_eval(self, trainer: Trainer, val_loss: float, improved: bool) -> None:
        """After a validation pass, before the checkpoints of this step are written."""

    def on_save(self, trainer: Trainer, path: Any) -> None:
        """After a checkpoint directory was written."""

    def on_fit_end(self, trainer: Trainer, result: TrainResult) -> None:
        """After the loop has stopped, whatever the reason."""
