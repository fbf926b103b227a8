"""The two contracts every task meets: what a batch source yields and what a model's step returns.

They live here, below ``data/``, ``models/`` and ``training/``, so that each of those imports
this module and none imports another for a type: a model says what it returns without knowing
the Trainer, a batch source says what it yields without knowing the model.

Metrics ride along with the loss. A model's ``compute_loss`` returns, besides the loss, a dict
of **sums** over the batch (a count of correct predictions, a confusion matrix, n-gram match
counts for BLEU): numbers or tensors that add up across batches. The Trainer adds them over a
log interval or a validation pass and hands the totals to the model's optional
``summarize_metrics(totals, num_tokens)``, which turns them into the figures a user reads
(accuracy, macro F1, BLEU). Without that method each total is divided by the token count: a
sum of per-token values becomes their mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

from torch import Tensor

NO_METRICS: Mapping[str, Any] = MappingProxyType({})


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

    loss: scalar tensor, the mean loss per unit of the batch (what is back-propagated); a unit
        is a token for a language model or a tagger, an example for a classifier.
    state: the recurrent state after the batch (carried to the next one by stateful sources).
    num_tokens: units the mean is over, a host int, used to weight means across batches.
    metrics: sums over the batch that add up across batches (see the module docstring).
    """

    loss: Tensor
    state: Any
    num_tokens: int
    metrics: Mapping[str, Any] = NO_METRICS


@runtime_checkable
class TrainableModel(Protocol):
    """An ``nn.Module`` the Trainer can fit; ``model_type`` and ``config`` make it saveable.

    Optionally it also defines ``summarize_metrics(totals: dict, num_tokens: int) -> dict``
    (see the module docstring).
    """

    def compute_loss(self, batch: Any, state: Any = None) -> LossOutput: ...


def summarize_metrics(model: Any, totals: Mapping[str, Any], num_tokens: int) -> dict[str, float]:
    """The figures a user reads from metric sums: the model's own rule, else sum / num_tokens."""
    rule = getattr(model, "summarize_metrics", None)
    if rule is not None:
        return {k: float(v) for k, v in rule(dict(totals), num_tokens).items()}
    out = {}
    for name, total in totals.items():
        value = total.sum() if isinstance(total, Tensor) and total.dim() else total
        out[name] = float(value) / max(num_tokens, 1)
    return out


def add_metrics(totals: dict[str, Any], metrics: Mapping[str, Any]) -> None:
    """``totals += metrics``, key by key (detached tensors, so nothing keeps a graph alive)."""
    for name, value in metrics.items():
        if isinstance(value, Tensor):
            value = value.detach()
        prev = totals.get(name)
        totals[name] = value if prev is None else prev + value
