"""The encoder–decoder's configuration (:class:`Seq2SeqConfig`: every field a flag of ``rnnkit
seq2seq train``) and the teacher-forcing schedule it describes (:func:`teacher_forcing_ratio`).
The model they shape is :mod:`rnnkit.models.seq2seq`, which also exports both names."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rnnkit.errors import RnnkitError
from rnnkit.models.recurrent import RecurrentConfig

ATTENTIONS = ("none", "additive", "dot", "general")
SCHEDULES = ("none", "linear", "exponential", "inverse_sigmoid")


def _tune(help: str) -> dict:
    return {"help": help, "fine_tune": True}


def _derived() -> dict:
    return {"cli": False, "derived": True}


@dataclass
class Seq2SeqConfig(RecurrentConfig):
    """The shape of an encoder–decoder; every field without ``cli: False`` is a flag."""

    hidden_size: int = field(default=256, metadata={"help": "N, units per recurrent layer"})
    num_layers: int = field(default=1, metadata={"help": "L, layers of encoder and decoder each"})
    bidirectional: bool = field(
        default=True, metadata={"help": "the encoder reads the source in both directions"}
    )
    dropout: float = field(
        default=0.2,
        metadata=_tune("dropout on embeddings, between layers and before the output layer"),
    )
    embedding_size: int = field(default=256, metadata={"help": "E, token embedding size"})
    attention: str = field(
        default="additive",
        metadata={
            "help": "none: one context vector; additive: Bahdanau; dot/general: Luong",
            "choices": list(ATTENTIONS),
        },
    )
    attention_size: int = field(
        default=0, metadata={"help": "additive attention's hidden size (0 = hidden_size)"}
    )
    input_feeding: bool = field(
        default=True, metadata={"help": "feed the previous attentional vector to the next step"}
    )
    context_every_step: bool = field(
        default=True,
        metadata={"help": "attention none: feed the context vector to every decoder step (Cho)"},
    )
    reverse_source: bool = field(
        default=False, metadata={"help": "read the source backwards (Sutskever et al. 2014)"}
    )
    share_embeddings: bool = field(
        default=False, metadata={"help": "one embedding table (and vocabulary) for both sides"}
    )
    tie_embeddings: bool = field(
        default=False, metadata={"help": "the target embedding is also the output layer"}
    )
    label_smoothing: float = field(default=0.0, metadata=_tune("label smoothing of the loss"))
    teacher_forcing: float = field(
        default=1.0, metadata=_tune("probability of feeding the true previous token")
    )
    sampling_schedule: str = field(
        default="none",
        metadata={
            **_tune("scheduled sampling: how the teacher-forcing ratio decays"),
            "choices": list(SCHEDULES),
        },
    )
    sampling_steps: int = field(
        default=10000,
        metadata=_tune(
            "steps to the floor (linear), half-life (exponential), midpoint (inverse_sigmoid)"
        ),
    )
    teacher_forcing_min: float = field(
        default=0.0, metadata=_tune("floor of the teacher-forcing ratio")
    )
    source_vocab_size: int = field(default=0, metadata=_derived())
    target_vocab_size: int = field(default=0, metadata=_derived())
    pad_id: int = field(default=0, metadata=_derived())
    bos_id: int = field(default=2, metadata=_derived())
    eos_id: int = field(default=3, metadata=_derived())

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, choices in (("attention", ATTENTIONS), ("sampling_schedule", SCHEDULES)):
            if getattr(self, name) not in choices:
                raise RnnkitError(
                    f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}"
                )
        if self.embedding_size < 1 or self.attention_size < 0 or self.sampling_steps < 1:
            raise RnnkitError(
                "embedding_size and sampling_steps must be >= 1, attention_size "
                f">= 0; got {self.embedding_size}, {self.sampling_steps}, "
                f"{self.attention_size}"
            )
        for name in ("label_smoothing", "teacher_forcing", "teacher_forcing_min"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0 or (name == "label_smoothing" and value >= 1.0):
                raise RnnkitError(f"{name} must be in [0, 1], got {value}")
        if self.teacher_forcing_min > self.teacher_forcing:
            raise RnnkitError(
                f"teacher_forcing_min {self.teacher_forcing_min} exceeds "
                f"teacher_forcing {self.teacher_forcing}"
            )


def teacher_forcing_ratio(config: Seq2SeqConfig, step: int) -> float:
    """ε_i, the probability of feeding the true token at training step i (Bengio et al. 2015):
    from ε_0 = ``teacher_forcing`` down to ``teacher_forcing_min`` = ε_min, with s =
    ``sampling_steps``: linear ε_0 − (ε_0 − ε_min)·i/s; exponential ε_min + (ε_0 − ε_min)·2^(−i/s);
    inverse sigmoid ε_min + (ε_0 − ε_min)·k/(k + e^{i/k}) with k·ln k = s (midpoint at i = s)."""
    hi, lo, s = config.teacher_forcing, config.teacher_forcing_min, config.sampling_steps
    form = config.sampling_schedule
    if form == "none" or hi == lo:
        return hi
    if form == "linear":
        return max(lo, hi - (hi - lo) * step / s)
    if form == "exponential":
        return lo + (hi - lo) * 0.5 ** (step / s)
    k = max(2.0, s / math.log(s + 1.0))
    for _ in range(30):  # Newton on k·ln k = s
        k = max(1.0 + 1e-9, k - (k * math.log(k) - s) / (math.log(k) + 1.0))
    return lo + (hi - lo) * k / (k + math.exp(min(step / k, 700.0)))
