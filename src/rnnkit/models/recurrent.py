"""The recurrent part every model shares: one config, one way to build the layer from it.

Each model's config extends :class:`RecurrentConfig` (a dataclass), so the fields that describe
the recurrent stack — cell, hidden size, layers, direction, dropout, the GRU form — are written
once, checked once, and are the same flags for every task (``--cell gru --hidden-size 256
--bidirectional``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from rnnkit.errors import RnnkitError
from rnnkit.nn.layers import LAYERS, RecurrentLayer


@dataclass
class RecurrentConfig:
    """A stack of recurrent layers. Every field is also a flag of ``rnnkit <task> train``."""

    cell: str = field(default="lstm", metadata={"help": "recurrent cell", "choices": list(LAYERS)})
    hidden_size: int = field(default=256, metadata={"help": "N, units per recurrent layer"})
    num_layers: int = field(default=2, metadata={"help": "stacked recurrent layers"})
    bidirectional: bool = field(
        default=False, metadata={"help": "read the sequence in both directions"}
    )
    dropout: float = field(
        default=0.0,
        metadata={
            "help": "dropout on the inputs, between layers and before the output layer",
            "fine_tune": True,  # a run started from a checkpoint (init_from) may change it
        },
    )
    reset_after: bool = field(
        default=False,
        metadata={"help": "GRU only: the cuDNN form (reset after the product, fused kernel)"},
    )

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.cell not in LAYERS:
            raise RnnkitError(f"cell must be one of {list(LAYERS)}, got {self.cell!r}")
        for name in ("hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise RnnkitError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def output_size(self) -> int:
        """Features per step out of the stack: N, or 2N when bidirectional."""
        return self.hidden_size * (2 if self.bidirectional else 1)

    def build_rnn(self, input_size: int, **options) -> RecurrentLayer:
        """The layer this config describes, reading ``input_size`` features per step."""
        if self.cell == "gru":
            options.setdefault("reset_after", self.reset_after)
        return LAYERS[self.cell](
            input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            **options,
        )


def check_field_types(config: object) -> None:
    """A JSON config with ``"hidden_size": "big"`` fails here, naming the field."""
    for f in dataclasses.fields(config):  # type: ignore[arg-type]
        value = getattr(config, f.name)
        hint = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        expected = {"int": int, "float": (int, float), "bool": bool, "str": str}.get(hint)
        if expected is None:
            continue
        wrong_bool = isinstance(value, bool) and hint in ("int", "float")
        if wrong_bool or not isinstance(value, expected):
            raise RnnkitError(f"{f.name} must be {hint}, got {value!r}")
