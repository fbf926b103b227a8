"""Where and in what precision a run computes: the device a config names, and whether it trains
in bfloat16 mixed precision there."""

from __future__ import annotations

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RnnkitError(f"device={name!r} but CUDA is not available here; use 'cpu' or 'auto'")
    return torch.device(name)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` ('fp32' | 'bf16' | 'auto') trains in bfloat16 on ``device``."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # bfloat16 pays off on a CPU with AMX tile units (2.8× for a 2×512 LSTM here, see
    # benchmarks/train_throughput.py); without them, stay in float32.
    has_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return device.type == "cpu" and has_amx is not None and bool(has_amx())


def full_precision(t: Tensor) -> Tensor:
    """A bfloat16/float16 tensor in float32; any other unchanged."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t
