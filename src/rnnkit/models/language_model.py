r"""The recurrent language model: many-to-many, predict the next token at every step.

.. code-block:: text

    tokens (B, T) ─► embedding (B, T, E) ─► dropout ─► RNN/LSTM/GRU × L ─► dropout ─► linear
                     (or one-hot, E = V)                (B, T, N)                      (B, T, V)

This is the lecture's "machin" → "achine" model and Karpathy's char-rnn: trained on text, it
gives P(x_{t+1} | x_1 … x_t) at every position; sampled one step at a time it writes text.

=========================  ==========================================
``forward`` argument        shape
=========================  ==========================================
tokens                      (B, T) int64
state (in and out)          h (L, B, N), or (h, c) for an LSTM
logits (out)                (B, T, V)
=========================  ==========================================
"""

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.contracts import LossOutput
from rnnkit.errors import RnnkitError
from rnnkit.models.recurrent import RecurrentConfig
from rnnkit.registry import register_model


@dataclass
class LMConfig(RecurrentConfig):
    """The shape of a language model: the recurrent stack (:class:`RecurrentConfig`) plus the
    embedding and the head. Every field is also a flag of ``rnnkit lm train``."""

    vocab_size: int = field(default=0, metadata={"cli": False, "derived": True})
    embedding_size: int = field(
        default=64, metadata={"help": "E, token embedding size; 0 = one-hot input (char-rnn)"}
    )
    tie_weights: bool = field(
        default=False,
        metadata={"help": "share the embedding and output matrices (needs E = N)"},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bidirectional:
            raise RnnkitError(
                "a language model predicts the next token from the past only: bidirectional "
                "must be False"
            )
        if self.embedding_size < 0:
            raise RnnkitError(f"embedding_size must be >= 0, got {self.embedding_size}")
        if self.tie_weights and self.embedding_size != self.hidden_size:
            raise RnnkitError(
                "tie_weights needs embedding_size == hidden_size, got "
                f"{self.embedding_size} and {self.hidden_size}"
            )


@register_model
class LanguageModel(nn.Module):
    """Embedding → stacked recurrent layers → linear head over the vocabulary."""

    model_type = "language_model"
    config_class = LMConfig

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        if config.vocab_size < 1:
            raise RnnkitError(f"vocab_size must be >= 1, got {config.vocab_size}")
        self.config = config
        V, E, N = config.vocab_size, config.embedding_size, config.hidden_size
        self.embedding = nn.Embedding(V, E) if E > 0 else None
        self.rnn = config.build_rnn(E or V)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(N, V)
        if config.tie_weights:
            self.head.weight = self.embedding.weight  # type: ignore[union-attr]

    def embed(self, tokens: Tensor) -> Tensor:
        """(B, T) ids → (B, T, E) vectors, or one-hot (B, T, V) when there is no embedding."""
        if self.embedding is None:
            return F.one_hot(tokens, self.config.vocab_size).to(self.head.weight.dtype)
        return self.embedding(tokens)

    def forward(self, tokens: Tensor, state=None) -> tuple[Tensor, object]:
        """tokens (B, T) → logits (B, T, V) and the recurrent state after the last step."""
        if tokens.dim() != 2:
            raise RnnkitError(f"tokens must have shape (B, T), got {tuple(tokens.shape)}")
        hidden, state = self.rnn(self.drop(self.embed(tokens)), state)
        return self.head(self.drop(hidden)), state

    def compute_loss(self, batch: tuple[Tensor, Tensor], state=None) -> LossOutput:
        """Mean cross-entropy (nats/token) of predicting ``targets`` from ``inputs``."""
        inputs, targets = batch
        logits, state = self(inputs, state)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return LossOutput(loss=loss, state=state, num_tokens=targets.numel())

    def config_dict(self) -> dict:
        return asdict(self.config)

    @torch.no_grad()
    def next_log_probs(self, tokens: Tensor, state=None) -> tuple[Tensor, object]:
        """Log-probabilities of the token after ``tokens`` (B, T) → (B, V), and the state."""
        logits, state = self(tokens, state)
        return torch.log_softmax(logits[:, -1].float(), dim=-1), state
