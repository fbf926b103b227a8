"""rnnkit: recurrent sequence models (RNN, LSTM, GRU) that read like the equations."""

from rnnkit.errors import RnnkitError
from rnnkit.summary import summary

__version__ = "0.1.0"
__all__ = ["RnnkitError", "summary", "__version__"]
