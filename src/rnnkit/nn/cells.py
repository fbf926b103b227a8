r"""One time step of a vanilla RNN, an LSTM and a GRU, written as the lecture's equations.

Each cell holds three parameters, one block per gate stacked in PyTorch's gate order, so that
conversion to and from ``torch.nn`` is exact:

=============  ==================  ==================  ==========  ==================
cell           ``weight_ih``       ``weight_hh``       ``bias``    gate order
=============  ==================  ==================  ==========  ==================
RNNCell        (N, d)              (N, N)              (N,)        --
LSTMCell       (4N, d)             (4N, N)             (4N,)       i, f, c̃ (g), o
GRUCell        (3N, d)             (3N, N)             (3N,)       r, z, h̃ (n)
=============  ==================  ==================  ==========  ==================

with d the input size and N the hidden size. One bias per gate block (the textbook count), so
a cell has G·(N·d + N² + N) parameters with G = 1, 4, 3.

Shapes of one call: input ``x`` is (B, d) or unbatched (d,); a hidden state is (B, N) or (N,).
These cells run one step; :mod:`rnnkit.nn.layers` runs them over a sequence through a fast
engine, and gives the same numbers.
"""

import math

import torch
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.nn.activations import activation, check_activation


class Cell(nn.Module):
    """What the three cells share: the fused parameters and their initialisation."""

    gates: int = 1  # gate blocks G stacked in the fused weights
    kind: str = ""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1:
            raise RnnkitError(
                f"input_size and hidden_size must be >= 1, got {input_size} and {hidden_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        G, N = self.gates, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(G * N, input_size))  # W_x, one block per gate
        self.weight_hh = nn.Parameter(torch.empty(G * N, N))  # W_h
        self.bias = nn.Parameter(torch.empty(G * N))  # b
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(-1/√N, 1/√N) for every weight and bias, as torch.nn and char-rnn do."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias):
            nn.init.uniform_(p, -bound, bound)

    @property
    def num_parameters_formula(self) -> str:
        return ("" if self.gates == 1 else f"{self.gates}·") + "(N·d + N² + N)"

    def expected_num_parameters(self) -> int:
        """G·(N·d + N² + N): the lecture's count for this cell."""
        N, d = self.hidden_size, self.input_size
        return self.gates * (N * d + N * N + N)

    @property
    def native(self) -> bool:
        """True when torch's fused kernel computes exactly this cell (see engines)."""
        return False

    def _check_input(self, x: Tensor) -> None:
        if x.dim() not in (1, 2) or x.shape[-1] != self.input_size:
            raise RnnkitError(
                f"{type(self).__name__} input x must have shape (B, {self.input_size}) or "
                f"({self.input_size},), got {tuple(x.shape)}"
            )

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros(x.shape[:-1] + (self.hidden_size,))

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(Cell):
    r"""Elman RNN step: :math:`h_t = g(W_x x_t + W_h h_{t-1} + b)`.

    Args:
        input_size: d, features of :math:`x_t`.
        hidden_size: N, features of :math:`h_t`.
        activation: g, one of 'tanh' (default), 'relu', 'sigmoid', 'leaky_relu', 'linear'.

    Call: ``h_t = cell(x_t, h_prev=None)``; shapes (B, d), (B, N) → (B, N).
    """

    gates = 1
    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, activation: str = "tanh") -> None:
        self.activation = check_activation(activation, "RNN activation")
        super().__init__(input_size, hidden_size)

    @property
    def native(self) -> bool:
        return self.activation in ("tanh", "relu")

    def forward(self, x: Tensor, h_prev: Tensor | None = None) -> Tensor:
        self._check_input(x)
        h_prev = self._zeros(x) if h_prev is None else h_prev
        g = activation(self.activation)
        return g(x @ self.weight_ih.T + h_prev @ self.weight_hh.T + self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation!r}"


class LSTMCell(Cell):
    r"""LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

    .. math::
        f_t &= σ(W_f x_t + U_f h_{t-1} + b_f)          \quad\text{forget gate}\\
        i_t &= σ(W_i x_t + U_i h_{t-1} + b_i)          \quad\text{input gate}\\
        o_t &= σ(W_o x_t + U_o h_{t-1} + b_o)          \quad\text{output gate}\\
        c̃_t &= \tanh(W_c x_t + U_c h_{t-1} + b_c)     \quad\text{candidate cell state}\\
        c_t &= f_t ⊙ c_{t-1} + i_t ⊙ c̃_t\\
        h_t &= o_t ⊙ \tanh(c_t)

    Args:
        input_size: d.  hidden_size: N.
        gate_activation: σ above (default 'sigmoid'; Keras calls it recurrent_activation).
        activation: the tanh above, used for c̃_t and for c_t in h_t (default 'tanh'; the
            lecture's hand calculations use 'linear').
        forget_bias: initial value of b_f (default 1.0, as Keras' unit_forget_bias): a new
            LSTM starts by remembering, so gradients flow through time from the first step.

    Call: ``h_t, c_t = cell(x_t, (h_prev, c_prev) or None)``.
    """

    gates = 4
    kind = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        gate_activation: str = "sigmoid",
        activation: str = "tanh",
        forget_bias: float = 1.0,
    ) -> None:
        self.gate_activation = check_activation(gate_activation, "LSTM gate_activation")
        self.activation = check_activation(activation, "LSTM activation")
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        N = self.hidden_size
        with torch.no_grad():
            self.bias[N : 2 * N].fill_(self.forget_bias)

    @property
    def native(self) -> bool:
        return self.gate_activation == "sigmoid" and self.activation == "tanh"

    def forward(
        self, x: Tensor, state: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        self._check_input(x)
        h_prev, c_prev = (self._zeros(x), self._zeros(x)) if state is None else state
        σ, tanh = activation(self.gate_activation), activation(self.activation)
        # All four pre-activations in one product; chunk follows the gate order i, f, c̃, o.
        a_i, a_f, a_c, a_o = (x @ self.weight_ih.T + h_prev @ self.weight_hh.T + self.bias).chunk(
            4, dim=-1
        )
        f_t = σ(a_f)
        i_t = σ(a_i)
        o_t = σ(a_o)
        c̃_t = tanh(a_c)
        c_t = f_t * c_prev + i_t * c̃_t
        h_t = o_t * tanh(c_t)
        return h_t, c_t

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, gate_activation={self.gate_activation!r}, "
            f"activation={self.activation!r}, forget_bias={self.forget_bias}"
        )


class GRUCell(Cell):
    r"""GRU step (Cho et al. 2014), in the lecture's convention for the update gate.

    .. math::
        z_t &= σ(W_z x_t + U_z h_{t-1} + b_z)                   \quad\text{update gate}\\
        r_t &= σ(W_r x_t + U_r h_{t-1} + b_r)                   \quad\text{reset gate}\\
        h̃_t &= \tanh(W_h x_t + U_h (r_t ⊙ h_{t-1}) + b_h)      \quad\text{reset_after=False}\\
        h̃_t &= \tanh(W_h x_t + r_t ⊙ (U_h h_{t-1}) + b_h)      \quad\text{reset_after=True}\\
        h_t &= (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    ``reset_after=False`` (the default) is the textbook form of the lecture notes and of Cho
    et al.: the reset gate scales h_{t-1} before the product. ``reset_after=True`` is the cuDNN
    form (Keras' default): the reset gate scales the product, which lets all three recurrent
    products run as one matrix product, and lets the layer use torch's fused kernel. cuDNN's
    form has a second bias inside the reset, r_t ⊙ (U_h h_{t-1} + b_hn); we keep one bias per
    gate (the textbook count 3·(N·d + N² + N)) and feed the native kernel b_hn = 0.

    torch.nn.GRU writes h_t = (1 - z'_t) ⊙ h̃_t + z'_t ⊙ h_{t-1}, i.e. z' = 1 - z: conversion
    negates the z block of weights and bias (σ(-a) = 1 - σ(a), exact in floating point).

    Args:
        input_size: d.  hidden_size: N.
        gate_activation: σ (default 'sigmoid').  activation: tanh above (default 'tanh').
        reset_after: where the reset gate applies (default False, textbook).

    Call: ``h_t = cell(x_t, h_prev=None)``.
    """

    gates = 3
    kind = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        gate_activation: str = "sigmoid",
        activation: str = "tanh",
        reset_after: bool = False,
    ) -> None:
        self.gate_activation = check_activation(gate_activation, "GRU gate_activation")
        self.activation = check_activation(activation, "GRU activation")
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size)

    @property
    def native(self) -> bool:
        return self.reset_after and self.gate_activation == "sigmoid" and self.activation == "tanh"

    def forward(self, x: Tensor, h_prev: Tensor | None = None) -> Tensor:
        self._check_input(x)
        h_prev = self._zeros(x) if h_prev is None else h_prev
        σ, tanh = activation(self.gate_activation), activation(self.activation)
        W_r, W_z, W_h = self.weight_ih.chunk(3)
        U_r, U_z, U_h = self.weight_hh.chunk(3)
        b_r, b_z, b_h = self.bias.chunk(3)
        z_t = σ(x @ W_z.T + h_prev @ U_z.T + b_z)
        r_t = σ(x @ W_r.T + h_prev @ U_r.T + b_r)
        if self.reset_after:
            h̃_t = tanh(x @ W_h.T + r_t * (h_prev @ U_h.T) + b_h)
        else:
            h̃_t = tanh(x @ W_h.T + (r_t * h_prev) @ U_h.T + b_h)
        h_t = (1 - z_t) * h_prev + z_t * h̃_t
        return h_t

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, gate_activation={self.gate_activation!r}, "
            f"activation={self.activation!r}, reset_after={self.reset_after}"
        )


CELLS: dict[str, type[Cell]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
