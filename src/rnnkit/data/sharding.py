"""One process's share of a :class:`~rnnkit.contracts.BatchSource` in a data-parallel run.

W processes (ranks 0 … W-1) train one model together; each reads its own part of every epoch,
decided by (epoch, rank, W) and the source's own seed only, so a resumed run reads the same
parts again. A source is split one of two ways, by its kind:

* **stateless** (:class:`BatchShard`: padded examples, random windows): rank r takes batches
  r, r+W, r+2W, … of each epoch's order, whole. A step reads W batches, one per rank: the
  global batch is W×B (``--batch-size`` is per process, as with PyTorch's
  ``DistributedSampler``) and an epoch has ⌊n/W⌋ steps; the n mod W batches at the end of an
  epoch's order are not read (other ones each epoch when the source shuffles). Any batch
  structure works: nothing is cut.
* **stateful** (:class:`StreamShard`: the language model's streams): every batch's B rows are
  cut into W contiguous blocks and rank r takes block r, so row i of batch k+1 continues row i
  of batch k on the same rank and the recurrent state can be carried. The global batch stays B
  streams and an epoch keeps its n steps: the run is the single-process run, split. B ≥ W.

For evaluation (``train=False``) nothing is dropped: the first ``limit`` batches are shared out
as above, and a rank may get none (then its part has no batches).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from rnnkit.contracts import BatchSource
from rnnkit.errors import RnnkitError


def shard(
    source: BatchSource, rank: int, world_size: int, *, train: bool = True, limit: int = 0
) -> BatchSource:
    """Rank ``rank``'s part of ``source`` (see the module docstring); ``limit`` > 0 keeps the
    first ``limit`` batches of each epoch only (evaluation's ``eval_batches``). One process
    without a limit gets ``source`` itself."""
    if not 0 <= rank < world_size:
        raise RnnkitError(f"rank must be in 0..{world_size - 1}, got {rank}")
    if world_size == 1 and not limit:
        return source
    if source.stateful:
        return StreamShard(source, rank, world_size, train=train, limit=limit)
    return BatchShard(source, rank, world_size, train=train, limit=limit)


def row_bounds(rows: int, rank: int, world_size: int) -> tuple[int, int]:
    """[lo, hi): rank's contiguous block of ``rows`` rows (sizes differ by one at most)."""
    return rank * rows // world_size, (rank + 1) * rows // world_size


class BatchShard:
    """Rank r of W reads batches r, r+W, … of a stateless source (whole batches)."""

    stateful = False

    def __init__(
        self, source: BatchSource, rank: int, world_size: int, *, train: bool, limit: int = 0
    ) -> None:
        self.source, self.rank, self.world_size = source, rank, world_size
        self.train, self.limit = train, limit
        # A step reads this many of the source's batches (resume under another W maps the
        # position through it).
        self.batches_per_step = world_size
        if train and self.num_batches() < 1:
            n = source.num_batches()
            raise RnnkitError(
                f"the training data has {n} batch{'es' if n != 1 else ''} per epoch, fewer than "
                f"the {world_size} processes: each needs one a step (use a smaller --batch-size "
                "or fewer processes)"
            )

    def _available(self) -> int:
        n = int(self.source.num_batches())
        return min(n, self.limit) if self.limit else n

    def num_batches(self) -> int:
        n = self._available()
        if self.train:  # every rank must take the same number of steps
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))

    def batch(self, epoch: int, index: int) -> Any:
        """Batch ``index·W + rank`` of the source's ``epoch``."""
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch index {index} out of range [0, {self.num_batches()})")
        return self.source.batch(epoch, index * self.world_size + self.rank)

    def __repr__(self) -> str:
        return f"BatchShard({self.source!r}, rank={self.rank}, world_size={self.world_size})"


class StreamShard:
    """Rank r of W reads block r of the rows (streams) of every batch of a stateful source."""

    stateful = True
    batches_per_step = 1

    def __init__(
        self, source: BatchSource, rank: int, world_size: int, *, train: bool, limit: int = 0
    ) -> None:
        self.source, self.rank, self.world_size = source, rank, world_size
        self.train, self.limit = train, limit
        rows = getattr(source, "batch_size", None)
        if rows is None and source.num_batches() > 0:
            rows = batch_rows(source.batch(0, 0))
        self.rows = int(rows or 0)  # B, the streams of the whole batch
        self.lo, self.hi = row_bounds(self.rows, rank, world_size)
        if train and self.hi == self.lo:
            raise RnnkitError(
                f"a batch of {self.rows} stream{'s' if self.rows != 1 else ''} cannot be split "
                f"across {world_size} processes: use a --batch-size of at least {world_size}"
            )

    def num_batches(self) -> int:
        if self.hi == self.lo:  # evaluation with fewer streams than ranks: nothing here
            return 0
        n = int(self.source.num_batches())
        return min(n, self.limit) if self.limit else n

    def batch(self, epoch: int, index: int) -> Any:
        """Rows [lo, hi) of the source's batch ``index`` of ``epoch``."""
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch index {index} out of range [0, {self.num_batches()})")
        return take_rows(self.source.batch(epoch, index), self.lo, self.hi)

    def __repr__(self) -> str:
        return (
            f"StreamShard({self.source!r}, rank={self.rank}, world_size={self.world_size}, "
            f"rows={self.lo}:{self.hi})"
        )


def batch_rows(batch: Any) -> int:
    """B, the first dimension of the first tensor found in ``batch``."""
    rows = _first_rows(batch)
    if rows is None:
        raise RnnkitError(f"a batch of a stateful source holds no tensor: {type(batch).__name__}")
    return rows


def _first_rows(tree: Any) -> int | None:
    if isinstance(tree, Tensor):
        return int(tree.shape[0]) if tree.dim() else None
    items = tree.values() if isinstance(tree, Mapping) else tree
    if not isinstance(items, tuple | list) and not isinstance(tree, Mapping):
        return None
    for item in items:
        rows = _first_rows(item)
        if rows is not None:
            return rows
    return None


def take_rows(tree: Any, lo: int, hi: int, dim: int = 0) -> Any:
    """``tree`` with every tensor cut to [lo, hi) along ``dim`` (the batch rows: 0 for a
    batch, 1 for a recurrent state (L, B, N)); tuples, lists and mappings keep their shape."""
    if isinstance(tree, Tensor):
        return tree.narrow(dim, lo, hi - lo).contiguous()
    if isinstance(tree, tuple):
        items = [take_rows(v, lo, hi, dim) for v in tree]
        return type(tree)._make(items) if hasattr(type(tree), "_fields") else tuple(items)
    if isinstance(tree, list):
        return [take_rows(v, lo, hi, dim) for v in tree]
    if isinstance(tree, Mapping):
        return {k: take_rows(v, lo, hi, dim) for k, v in tree.items()}
    return tree
