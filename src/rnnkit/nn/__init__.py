"""Recurrent building blocks: cells (one step), layers (a sequence), and the parts around them
(a CRF output layer for taggers, attention for encoder–decoders)."""

from rnnkit.nn.attention import AdditiveAttention, MultiplicativeAttention
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.convert import from_torch, to_torch
from rnnkit.nn.crf import CRF, bio_constraints
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
    "CRF",
    "bio_constraints",
    "AdditiveAttention",
    "MultiplicativeAttention",
]
