"""Recurrent state between calls: truncated backpropagation through time.

A stateful training loop feeds each window's final state in as the next window's initial
state. Two things must happen in between:

* :func:`detach_state` cuts the graph, so the backward pass stops at the window's start
  (truncated BPTT) instead of reaching back through every earlier window;
* :func:`reset_state_rows` zeroes the rows of streams that start a new sequence, so one
  document's memory does not leak into the next.

Both work on anything a layer returns as state: a tensor ``h`` or an ``(h, c)`` tuple, and
also on lists / tuples / dicts of those (a model with several recurrent layers).
"""

from collections.abc import Sequence

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError


def _map(state, fn):
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple | list):
        return type(state)(_map(s, fn) for s in state)
    if isinstance(state, dict):
        return {key: _map(s, fn) for key, s in state.items()}
    raise RnnkitError(f"state must be a tensor or a tuple/list/dict of tensors, got {type(state)}")


def detach_state(state):
    """The same state, cut from the autograd graph (values unchanged, no copy)."""
    return _map(state, Tensor.detach)


def reset_state_rows(state, rows: Tensor | Sequence[int] | Sequence[bool], dim: int = -2):
    """The state with the chosen batch rows set to zero (a new sequence starts there).

    Args:
        state: a tensor, an ``(h, c)`` tuple, or a nest of them. Layer states are
            (L·D, B, N) and cell states (B, N): the batch axis is ``dim = -2`` for both.
        rows: a bool mask (B,) (True = reset) or the indices of the rows to reset.
        dim: the batch axis of every tensor.

    Returns a new state (the input is not modified, so it is safe on tensors autograd needs).
    """
    rows = torch.as_tensor(rows)
    if rows.dtype.is_floating_point:
        raise RnnkitError(f"rows must be a bool mask or integer indices, got dtype {rows.dtype}")
    if rows.dim() != 1:
        raise RnnkitError(f"rows must have shape (B,) or (k,), got {tuple(rows.shape)}")

    def reset(s: Tensor) -> Tensor:
        B = s.shape[dim]
        if rows.dtype == torch.bool:
            if rows.shape[0] != B:
                raise RnnkitError(
                    f"rows mask must have shape ({B},) like the state's batch axis, "
                    f"got {tuple(rows.shape)}"
                )
            reset_mask = rows.to(s.device)
        else:
            if rows.numel() and (int(rows.min()) < -B or int(rows.max()) >= B):
                raise RnnkitError(f"rows indices must be in [0, {B}), got {rows.tolist()}")
            reset_mask = torch.zeros(B, dtype=torch.bool, device=s.device)
            reset_mask[rows.to(s.device)] = True
        shape = [1] * s.dim()
        shape[dim] = B
        return s.masked_fill(reset_mask.view(shape), 0)

    return _map(state, reset)
