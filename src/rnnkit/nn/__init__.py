"""Recurrent building blocks: cells (one step) and layers (a sequence)."""

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.convert import from_torch, to_torch
from rnnkit.nn.layers import GRU, LSTM, RNN, RecurrentLayer
from rnnkit.nn.state import detach_state, reset_state_rows

__all__ = [
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "RNN",
    "LSTM",
    "GRU",
    "RecurrentLayer",
    "detach_state",
    "reset_state_rows",
    "to_torch",
    "from_torch",
]
