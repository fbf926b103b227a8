"""Apply a function to every tensor in a batch or a recurrent state, keeping its structure."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor


def map_tensors(fn: Callable[[Tensor], Tensor], obj: Any) -> Any:
    """``obj`` with each tensor ``t`` replaced by ``fn(t)``.

    Walks tuples (namedtuples too), lists, mappings (rebuilt as dicts) and dataclass instances;
    other leaves are kept as they are.
    """
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        items = [map_tensors(fn, v) for v in obj]
        return type(obj)._make(items) if hasattr(type(obj), "_fields") else tuple(items)
    if isinstance(obj, list):
        return [map_tensors(fn, v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: map_tensors(fn, v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: map_tensors(fn, getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def _detach_state(state: Any) -> Any:
    return map_tensors(Tensor.detach, state)


try:  # the layers' own version, when it exists, knows their state types best
    from rnnkit.nn.state import detach_state
except ImportError:
    detach_state = _detach_state


def move_to(obj: Any, device: torch.device) -> Any:
    """``obj`` with its tensors on ``device`` (non-blocking copies to a GPU)."""
    non_blocking = device.type == "cuda"
    return map_tensors(lambda t: t.to(device, non_blocking=non_blocking), obj)
