"""Activation functions a cell may use, by name, with their derivatives.

Every derivative here is written in terms of the activation's *output* y = g(a): that is all
the scan engine's hand-written backward pass keeps from the forward pass (as cuDNN does).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

from rnnkit.errors import RnnkitError

LEAKY_SLOPE = 0.01  # as torch.nn.LeakyReLU and Keras' leaky_relu default


def _linear(a: torch.Tensor) -> torch.Tensor:
    return a


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "leaky_relu": lambda a: F.leaky_relu(a, LEAKY_SLOPE),
    "linear": _linear,
}


def check_activation(name: str, what: str = "activation") -> str:
    """Return ``name`` if it is a known activation, else raise :class:`RnnkitError`."""
    if name not in ACTIVATIONS:
        raise RnnkitError(f"{what} must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return name


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function g for ``name`` ('tanh', 'sigmoid', 'relu', 'leaky_relu', 'linear')."""
    return ACTIVATIONS[check_activation(name)]


def derivative_from_output(name: str, y: torch.Tensor) -> torch.Tensor:
    """g'(a) computed from y = g(a), same shape as ``y``."""
    if name == "tanh":
        return 1 - y * y
    if name == "sigmoid":
        return y * (1 - y)
    if name == "relu":
        return (y > 0).to(y.dtype)
    if name == "leaky_relu":
        return torch.where(y > 0, y.new_ones(()), y.new_full((), LEAKY_SLOPE))
    if name == "linear":
        return torch.ones_like(y)
    raise RnnkitError(f"unknown activation {name!r}")
