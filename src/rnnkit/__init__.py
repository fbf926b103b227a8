"""rnnkit: recurrent sequence models (RNN, LSTM, GRU) that read like the equations."""

from rnnkit.errors import RnnkitError

__version__ = "0.1.0"
__all__ = ["RnnkitError", "__version__"]
