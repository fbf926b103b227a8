r"""The sequence tagger: many-to-many, one tag per word (named entities, chunks, parts of speech).

Lample et al. (2016), "Neural Architectures for Named Entity Recognition": each word is its
embedding, a representation built from its characters and (optionally) a casing feature; a
bidirectional recurrent stack reads the sentence; a linear layer scores every tag at every word
(the emissions), and either a per-word softmax or a linear-chain CRF (:class:`rnnkit.nn.crf.CRF`)
turns the scores into tags.

.. code-block:: text

    words (B, T) ──► embedding (E) ────────────────┐
    chars (B, T, W) ─► char BiLSTM [h→ ; h←] (2C) ──┼─► dropout ─► BiLSTM/GRU × L ─► dropout
       or char CNN, max over the word (C) ─────────┤   (B, T, E+2C+S)  lengths=        │
    casing (B, T) ──► embedding (S) ───────────────┘                                  ▼
                                            tags (B, T) ◄── Viterbi (CRF) / argmax ◄── linear (K)

The char encoder is Lample's bidirectional LSTM (the final forward state reads the suffix, the
final backward state the prefix) or Ma & Hovy's (2016) CNN: a convolution of width
``char_kernel_size`` over the characters, max-pooled over the word. Each distinct word of a
batch is encoded once. With the CRF the scores of tag transitions are learned too and decoding
is Viterbi over the sentence; under a span scheme (BIO, IOB1, BIOES) the CRF forbids the
transitions the scheme does not allow (``O → I-PER`` in BIO) by default.

Training replaces each word seen once in the training data (ids >= ``rare_from``, the
vocabulary being sorted by count) by ``<unk>`` with probability ``unk_replace`` (Lample's 0.5),
so that ``<unk>`` is a trained vector by the time unseen words meet it.

==================  ============================  ========================================
name                shape                         what
==================  ============================  ========================================
words               (B, T) int64                  word ids, 0 (``<pad>``) on padding
chars               (B, T, W) int64               char ids of each word, 0-padded
casing              (B, T) int64                  :data:`CASINGS` ids, 0 on padding
lengths             (B,) int64                    words per sentence, 1 ≤ lengths ≤ T
targets             (B, T) int64                  tag ids, -1 on padding
emissions (out)     (B, T, K) float               score of each tag at each word
decoded tags (out)  (B, T) int64                  -1 on padding
==================  ============================  ========================================
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.contracts import LossOutput
from rnnkit.data.tag_encoding import CASINGS, PAD_ID, UNK_ID
from rnnkit.errors import RnnkitError
from rnnkit.metrics.spans import Counts, span_counts
from rnnkit.models.recurrent import RecurrentConfig
from rnnkit.nn.crf import CRF, bio_constraints
from rnnkit.nn.layers import LSTM
from rnnkit.registry import register_model

CHAR_ENCODERS = ("lstm", "cnn", "none")
OUTPUTS = ("crf", "softmax")
SPAN_SCHEMES = ("IOB1", "BIO", "BIOES")


@dataclass
class TaggerConfig(RecurrentConfig):
    """The shape of a tagger (Lample et al.'s sizes by default). Fields without a flag are
    filled from the data."""

    hidden_size: int = field(default=100, metadata={"help": "N, units per recurrent layer"})
    num_layers: int = field(default=1, metadata={"help": "stacked recurrent layers"})
    bidirectional: bool = field(
        default=True, metadata={"help": "read the sentence in both directions"}
    )
    dropout: float = field(
        default=0.5,
        metadata={
            "help": "dropout on the word representations, between layers and before the output",
            "fine_tune": True,
        },
    )
    embedding_size: int = field(default=100, metadata={"help": "E: word embedding size"})
    char_encoder: str = field(
        default="lstm",
        metadata={
            "help": "character-level word representation: a BiLSTM (Lample et al.), a CNN "
            "(Ma & Hovy) or none",
            "choices": list(CHAR_ENCODERS),
        },
    )
    char_embedding_size: int = field(default=25, metadata={"help": "character embedding size"})
    char_hidden_size: int = field(
        default=25, metadata={"help": "C: char LSTM units per direction, or CNN filters"}
    )
    char_kernel_size: int = field(default=3, metadata={"help": "char CNN: characters per window"})
    casing_size: int = field(
        default=0, metadata={"help": "S: casing feature embedding size (0 = no casing feature)"}
    )
    output: str = field(
        default="crf",
        metadata={
            "help": "crf: a linear-chain CRF over the sentence; softmax: each word on its own",
            "choices": list(OUTPUTS),
        },
    )
    constraints: bool = field(
        default=True,
        metadata={"help": "CRF: forbid transitions the tag scheme does not allow (O → I-PER)"},
    )
    unk_replace: float = field(
        default=0.5,
        metadata={
            "help": "training: replace words seen once by <unk> with this probability",
            "fine_tune": True,
        },
    )
    vocab_size: int = field(default=0, metadata={"cli": False, "derived": True})
    char_vocab_size: int = field(default=0, metadata={"cli": False, "derived": True})
    tags: tuple[str, ...] = field(default=(), metadata={"cli": False, "derived": True})
    tag_scheme: str = field(default="", metadata={"cli": False, "derived": True})
    rare_from: int = field(default=0, metadata={"cli": False, "derived": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name, choices in (("char_encoder", CHAR_ENCODERS), ("output", OUTPUTS)):
            if getattr(self, name) not in choices:
                raise RnnkitError(
                    f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}"
                )
        for name in (
            "embedding_size",
            "char_embedding_size",
            "char_hidden_size",
            "char_kernel_size",
        ):
            if getattr(self, name) < 1:
                raise RnnkitError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.casing_size < 0:
            raise RnnkitError(f"casing_size must be >= 0 (0 = off), got {self.casing_size}")
        if not 0.0 <= self.unk_replace <= 1.0:
            raise RnnkitError(f"unk_replace must be in [0, 1], got {self.unk_replace}")
        if self.tag_scheme not in ("", *SPAN_SCHEMES):
            raise RnnkitError(f"tag_scheme must be '' or one of {list(SPAN_SCHEMES)}")
        self.tags = tuple(self.tags)


@register_model
class Tagger(nn.Module):
    """Word + char (+ casing) representations → recurrent stack → emissions → softmax or CRF."""

    model_type = "tagger"
    config_class = TaggerConfig

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        c = config
        if c.vocab_size < 3:
            raise RnnkitError(f"vocab_size must be >= 3 (<pad>, <unk>, a word), got {c.vocab_size}")
        if len(c.tags) < 1:
            raise RnnkitError("a tagger needs at least one tag")
        if c.char_encoder != "none" and c.char_vocab_size < 3:
            raise RnnkitError(f"char_vocab_size must be >= 3, got {c.char_vocab_size}")
        self.config = config
        self.types = _types(c.tags, c.tag_scheme)
        self.embed = nn.Embedding(c.vocab_size, c.embedding_size, padding_idx=PAD_ID)
        width = c.embedding_size
        if c.char_encoder != "none":
            self.char_embed = nn.Embedding(c.char_vocab_size, c.char_embedding_size, PAD_ID)
            if c.char_encoder == "lstm":
                self.char_rnn = LSTM(c.char_embedding_size, c.char_hidden_size, bidirectional=True)
                width += 2 * c.char_hidden_size
            else:
                k = c.char_kernel_size
                self.char_conv = nn.Conv1d(
                    c.char_embedding_size, c.char_hidden_size, k, padding=k // 2
                )
                width += c.char_hidden_size
        if c.casing_size:
            self.casing_embed = nn.Embedding(len(CASINGS), c.casing_size, padding_idx=0)
            width += c.casing_size
        self.drop = nn.Dropout(c.dropout)
        self.rnn = c.build_rnn(width)
        self.head = nn.Linear(c.output_size, len(c.tags))
        if c.output == "crf":
            allowed = None
            if c.constraints and c.tag_scheme and all(t == "O" or "-" in t for t in c.tags):
                allowed = bio_constraints(list(c.tags), c.tag_scheme)
            self.crf = CRF(len(c.tags), constraints=allowed)
        self._init_embeddings()

    def _init_embeddings(self) -> None:
        # Uniform with variance 1/E (N(0, 1) rows would dwarf the char features).
        for emb in (self.embed, getattr(self, "char_embed", None)):
            if emb is not None:
                bound = math.sqrt(3.0 / emb.embedding_dim)
                with torch.no_grad():
                    nn.init.uniform_(emb.weight, -bound, bound)
                    emb.weight[PAD_ID].zero_()

    def load_embeddings(self, pretrained: np.ndarray) -> None:
        """Pretrained word vectors, (vocab_size, E) float32 with NaN rows for the words that
        have none (those keep their random start)."""
        shape = (self.config.vocab_size, self.config.embedding_size)
        if pretrained.shape != shape:
            raise RnnkitError(f"initial embeddings must have shape {shape}, got {pretrained.shape}")
        found = torch.from_numpy(~np.isnan(pretrained).any(axis=1))
        with torch.no_grad():
            self.embed.weight[found] = torch.from_numpy(pretrained[found.numpy()]).float()

    # ---------------------------------------------------------------- the network

    def forward(
        self,
        words: Tensor,
        chars: Tensor | None = None,
        lengths: Tensor | None = None,
        casing: Tensor | None = None,
    ) -> Tensor:
        """Emissions (B, T, K): the score of every tag at every word (see the module table)."""
        c = self.config
        if words.dim() != 2:
            raise RnnkitError(f"words must have shape (B, T), got {tuple(words.shape)}")
        B, T = words.shape
        mask = _mask(lengths, B, T, words.device)
        if self.training and c.unk_replace > 0 and c.rare_from < c.vocab_size:
            rare = (words >= c.rare_from) & (torch.rand(B, T, device=words.device) < c.unk_replace)
            words = words.masked_fill(rare, UNK_ID)
        parts = [self.embed(words)]
        if c.char_encoder != "none":
            if chars is None or chars.shape[:2] != (B, T):
                got = None if chars is None else tuple(chars.shape)
                raise RnnkitError(f"chars must have shape ({B}, {T}, W), got {got}")
            parts.append(self._char_features(chars, mask))
        if c.casing_size:
            if casing is None:
                raise RnnkitError("this tagger reads casing features: give casing (B, T)")
            parts.append(self.casing_embed(casing))
        x = self.drop(torch.cat(parts, dim=-1))
        outputs, _ = self.rnn(x, lengths=lengths)
        return self.head(self.drop(outputs))

    def _char_features(self, chars: Tensor, mask: Tensor) -> Tensor:
        """(B, T, W) char ids → (B, T, C') word representations, 0 on padding."""
        words = chars[mask]  # (n, W): the real words
        width = max(int((words != PAD_ID).sum(1).max()), 1)
        # Each distinct word once: a sentence batch repeats "the", ",", "." many times.
        distinct, inverse = torch.unique(words[:, :width], dim=0, return_inverse=True)
        lengths = (distinct != PAD_ID).sum(1).clamp(min=1)
        x = self.char_embed(distinct)  # (m, W, Ce)
        if self.config.char_encoder == "lstm":
            _, (h, _) = self.char_rnn(x, lengths=lengths.cpu())
            encoded = torch.cat([h[0], h[1]], dim=-1)  # [h→ at the last char ; h← at the first]
        else:
            conv = self.char_conv(x.transpose(1, 2))[:, :, :width]  # (m, C, W)
            real = torch.arange(width, device=x.device)[None, :] < lengths[:, None]
            encoded = conv.masked_fill(~real[:, None, :], float("-inf")).amax(dim=2)
        out = encoded.new_zeros(*mask.shape, encoded.shape[-1])
        out[mask] = encoded[inverse]
        return out

    def decode(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Best tags (B, T), -1 on padding: Viterbi under the CRF, else argmax per word."""
        B, T, _ = emissions.shape
        mask = _mask(lengths, B, T, emissions.device)
        if self.config.output == "crf":
            return self.crf.decode(emissions.float(), mask)[0]
        return emissions.argmax(-1).masked_fill(~mask, -1)

    @torch.no_grad()
    def tag(self, batch: dict[str, Tensor]) -> Tensor:
        """Tag ids (B, T), -1 on padding, of a batch (keys as in :meth:`compute_loss`)."""
        emissions = self(batch["words"], batch.get("chars"), batch["lengths"], batch.get("casing"))
        return self.decode(emissions, batch["lengths"])

    # ---------------------------------------------------------------- training

    def compute_loss(self, batch: dict[str, Tensor], state=None) -> LossOutput:
        """Mean loss per word (the CRF's sentence NLL summed, over the words); in eval mode the
        metrics are summable counts: ``spans`` (types, 3) = (correct, predicted, gold) per type
        in :attr:`types` order, ``tokens_correct`` and ``sentences``."""
        lengths, targets = batch["lengths"], batch["targets"]
        emissions = self(batch["words"], batch.get("chars"), lengths, batch.get("casing")).float()
        num_words = int(lengths.sum())
        if self.config.output == "crf":
            mask = targets >= 0
            loss = self.crf.neg_log_likelihood(emissions, targets, mask, "sum") / num_words
        else:
            K = emissions.shape[-1]
            loss = F.cross_entropy(emissions.reshape(-1, K), targets.reshape(-1), ignore_index=-1)
        metrics = {}
        if not self.training:
            metrics = self.count(self.decode(emissions.detach(), lengths), targets)
        return LossOutput(loss, None, num_words, metrics)

    def count(self, predicted: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """Summable counts of predicted against gold tag ids (both (B, T), -1 on padding)."""
        real = targets >= 0
        gold_tags = _names(targets, self.config.tags)
        pred_tags = _names(predicted, self.config.tags)
        counts = tag_counts(gold_tags, pred_tags, bool(self.config.tag_scheme))
        table = torch.zeros(len(self.types), 3, dtype=torch.int64)
        for i, typ in enumerate(self.types):
            table[i] = torch.tensor(counts.get(typ, (0, 0, 0)))
        return {
            "spans": table,
            "tokens_correct": ((predicted == targets) & real).sum().cpu(),
            "sentences": torch.tensor(len(targets)),
        }

    def summarize_metrics(self, totals: dict, num_tokens: int) -> dict[str, float]:
        """f1, precision, recall (micro over span types, conlleval's) and token accuracy."""
        if "spans" not in totals:
            return {}
        correct, predicted, gold = (float(x) for x in totals["spans"].sum(0))
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        accuracy = float(totals["tokens_correct"]) / max(num_tokens, 1)
        return {"f1": f1, "precision": precision, "recall": recall, "accuracy": accuracy}


def tag_counts(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], spans: bool) -> Counts:
    """Per type: (correct, predicted, gold). Span tags (``spans=True``) count entities the
    conlleval way (:func:`rnnkit.metrics.spans.span_counts`); plain tags (parts of speech) count
    each word as a one-word span of its tag, so that micro-F1 equals token accuracy and the
    per-type figures are each tag's precision and recall."""
    if spans:
        return span_counts(gold, pred)
    counts: dict[str, list[int]] = {}
    for g_seq, p_seq in zip(gold, pred, strict=True):
        for g, p in zip(g_seq, p_seq, strict=True):
            counts.setdefault(g, [0, 0, 0])[2] += 1
            counts.setdefault(p, [0, 0, 0])[1] += 1
            if g == p:
                counts[g][0] += 1
    return {t: tuple(counts[t]) for t in sorted(counts)}


def _types(tags: Sequence[str], scheme: str) -> tuple[str, ...]:
    """What a per-type score is over: entity types ('PER') for span tags, else the tags."""
    if not scheme:
        return tuple(tags)
    return tuple(sorted({t.partition("-")[2] or "_" for t in tags if t != "O"}))


def _names(ids: Tensor, tags: Sequence[str]) -> list[list[str]]:
    """Tag id rows (-1 padding at the end) → tag name lists."""
    return [[tags[i] for i in row if i >= 0] for row in ids.cpu().tolist()]


def _mask(lengths: Tensor | None, B: int, T: int, device: torch.device) -> Tensor:
    if lengths is None:
        return torch.ones(B, T, dtype=torch.bool, device=device)
    return torch.arange(T, device=device)[None, :] < lengths.to(device)[:, None]
