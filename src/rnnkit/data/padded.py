"""Batches of whole sequences of different lengths: padded, with their lengths, bucketed.

Classification, tagging and translation read whole examples, not streams. An epoch of
:class:`PaddedBatches` is a permutation of the examples drawn from (seed, epoch); with
``bucket=True`` the permutation is cut into pools of ``bucket_pool`` batches, each pool is
sorted by length and cut into batches, and the batches are shuffled again, so a batch holds
examples of similar length (little padding, up to several times faster for an RNN) while every
epoch still sees them in a new order. Everything is a function of (seed, epoch, index): a
resumed run sees exactly the batches it would have seen.

A batch is a dict:

==============  ===========================================  ==================================
key             shape                                        what
==============  ===========================================  ==================================
``inputs``      (B, T) int64, or (B, T, C) float32           padded with ``pad_value`` (or 0.0)
``lengths``     (B,) int64                                   real steps of each row, ≥ 1
``targets``     (B,) int64, or (B, T) int64 padded with -1    one label per row, or per step
``index``       (B,) int64                                   the examples' positions
==============  ===========================================  ==================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rnnkit.contracts import BatchSource  # noqa: F401  (the protocol PaddedBatches meets)
from rnnkit.errors import RnnkitError

IGNORE_INDEX = -1  # padded per-step targets: what cross_entropy(ignore_index=...) skips


def pad_sequences(
    seqs: Sequence[np.ndarray], pad_value: float = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stack 1-D (T_i,) or 2-D (T_i, C) arrays into (B, T_max[, C]) and their lengths (B,)."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    first = np.asarray(seqs[0])
    out = np.full((len(seqs), int(lengths.max()), *first.shape[1:]), pad_value, dtype=first.dtype)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out, lengths


class PaddedBatches:
    """Examples (each a (T_i,) id array or a (T_i, C) float array) and their targets, batched.

    Args:
        inputs: one array per example, T_i ≥ 1.
        targets: one int per example (classification), or one (T_i,) int array per example
            (tagging), or None.
        batch_size: examples per batch (the last batch of an epoch may be smaller).
        seed: with the epoch, fixes the order.
        shuffle: draw a new order each epoch (training); False keeps file order (evaluation).
        bucket: group examples of similar length (see the module docstring).
        pad_value: what pads ``inputs`` (the vocabulary's ``<pad>`` id for tokens).
        bucket_pool: batches per sorting pool.
    """

    stateful = False

    def __init__(
        self,
        inputs: Sequence[np.ndarray],
        targets: Sequence | None,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        bucket: bool = True,
        pad_value: float = 0,
        bucket_pool: int = 50,
        name: str = "the data",
    ) -> None:
        if batch_size < 1:
            raise RnnkitError(f"batch_size must be >= 1, got {batch_size}")
        if len(inputs) == 0:
            raise RnnkitError(f"{name} holds no examples")
        if targets is not None and len(targets) != len(inputs):
            raise RnnkitError(f"{name}: {len(inputs)} inputs but {len(targets)} targets")
        self.inputs = list(inputs)
        self.targets = targets
        self.lengths = np.array([len(x) for x in self.inputs], dtype=np.int64)
        if self.lengths.min() < 1:
            i = int(np.argmin(self.lengths))
            raise RnnkitError(f"{name}: example {i} is empty (every example needs one step)")
        self.batch_size = batch_size
        self.seed, self.shuffle, self.bucket = seed, shuffle, bucket
        self.pad_value, self.bucket_pool = pad_value, bucket_pool
        self._plan: tuple[int, list[np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def num_batches(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def _order(self, epoch: int) -> list[np.ndarray]:
        """The batches of ``epoch`` as arrays of example indices (cached for one epoch)."""
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1]
        n, B = len(self.inputs), self.batch_size
        if not self.shuffle:
            order = np.arange(n)
            if self.bucket:  # evaluation: sort by length once, no randomness
                order = np.argsort(self.lengths, kind="stable")
            batches = [order[i : i + B] for i in range(0, n, B)]
        else:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(n)
            if self.bucket:
                pool = B * self.bucket_pool
                chunks = []
                for start in range(0, n, pool):
                    part = order[start : start + pool]
                    part = part[np.argsort(self.lengths[part], kind="stable")]
                    chunks += [part[i : i + B] for i in range(0, len(part), B)]
                batches = [chunks[i] for i in rng.permutation(len(chunks))]
            else:
                batches = [order[i : i + B] for i in range(0, n, B)]
        self._plan = (epoch, batches)
        return batches

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        """Batch ``index`` of ``epoch`` (see the table in the module docstring)."""
        batches = self._order(epoch)
        if not 0 <= index < len(batches):
            raise RnnkitError(f"batch index {index} out of range 0..{len(batches) - 1}")
        rows = batches[index]
        x, lengths = pad_sequences([self.inputs[i] for i in rows], self.pad_value)
        out = {
            "inputs": torch.from_numpy(x),
            "lengths": torch.from_numpy(lengths),
            "index": torch.from_numpy(rows.astype(np.int64)),
        }
        if self.targets is not None:
            t = [self.targets[i] for i in rows]
            if np.ndim(t[0]) == 0:
                out["targets"] = torch.tensor(t, dtype=torch.int64)
            else:
                y, _ = pad_sequences([np.asarray(v, dtype=np.int64) for v in t], IGNORE_INDEX)
                out["targets"] = torch.from_numpy(y)
        return out
