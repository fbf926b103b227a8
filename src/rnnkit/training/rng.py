"""Random-number state: seed it, capture it for a checkpoint, put it back, fence it off."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """Every global generator's state, as a tree of scalars and tensors (checkpoint-ready)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        # Mersenne-Twister words as a tensor: 625 numbers are noise in a JSON file.
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng` (a CUDA state is restored on the GPUs that exist)."""
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss_next"]))
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["name"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].to(torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])[: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([t.to(torch.uint8) for t in cuda])


@contextmanager
def preserve_rng() -> Iterator[None]:
    """Run a block without moving any global generator: the state is put back on exit.

    Evaluation, sampling and callbacks run inside it, so the training stream (dropout) is the
    same whether or not they ran: a prerequisite for exact resume.
    """
    saved = capture_rng()
    try:
        yield
    finally:
        restore_rng(saved)


def torch_rng_snapshot(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The torch generator state(s) a training step on ``device`` draws from (cheap: ~5 KB)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def restore_torch_rng(snapshot: tuple[torch.Tensor, torch.Tensor | None], device: torch.device):
    """Inverse of :func:`torch_rng_snapshot`."""
    cpu, cuda = snapshot
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)
