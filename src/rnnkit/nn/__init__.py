"""Recurrent building blocks: cells (one step) and layers (a sequence)."""

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]
