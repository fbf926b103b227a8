r"""The speech recogniser: spectral vectors in, characters out, trained with CTC.

.. code-block:: text

    features (B, T, F) ─► [SpecAugment] ─► subsample ×s ─► dropout ─► BiLSTM/GRU × L ─► dropout
                          (training only)   (B, T', F')               (B, T', 2N), lengths
                                                                      ─► linear ─► (B, T', C+1)

The lecture's speech example (SpeechBrain's recipe, Graves et al. 2006/2013): a bidirectional
recurrent stack reads the log-mel frames with ``lengths=`` (padding never reaches a state),
and a linear layer gives, per frame, a score for each of the C characters of the transcripts
and for the CTC blank (label 0). CTC sums over every alignment of the transcript to the
frames, so no frame needs a label.

Time subsampling shortens the sequence the recurrent stack reads (speech frames come every
10 ms, characters every ~60 ms): ``stack`` concatenates s consecutive frames into one vector
(F' = s·F), ``conv`` is a 1-D convolution of stride s (F' = ``conv_channels``, with a ReLU).
T' = ceil(T / s). A transcript of L characters with r adjacent repeats needs T' ≥ L + r frames
(a blank must separate repeats): :func:`ctc_frames_needed`.

=========================  ==========================================
``forward`` argument        shape
=========================  ==========================================
features                    (B, T, F) float
lengths                     (B,) int64, 1 ≤ lengths ≤ T
logits (out)                (B, T', C + 1)
out_lengths (out)           (B,) int64
=========================  ==========================================

In training ``compute_loss`` returns the CTC loss per target character; in eval mode it also
greedy-decodes the batch and returns edit-distance counts (summable), from which
``summarize_metrics`` gives ``cer`` and ``wer`` (so ``--monitor val_cer`` works).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.contracts import LossOutput
from rnnkit.ctc_decoding import collapse_path
from rnnkit.data.features import spec_augment
from rnnkit.errors import RnnkitError
from rnnkit.metrics.edit_distance import error_counts, error_rates
from rnnkit.models.recurrent import RecurrentConfig
from rnnkit.registry import register_model

SUBSAMPLING = ("none", "stack", "conv")
BLANK = 0


@dataclass
class SpeechConfig(RecurrentConfig):
    """The shape of a CTC recogniser. Fields without a flag are filled from the data."""

    hidden_size: int = field(default=256, metadata={"help": "N, units per recurrent layer"})
    num_layers: int = field(default=3, metadata={"help": "stacked recurrent layers"})
    bidirectional: bool = field(
        default=True, metadata={"help": "read the sequence in both directions"}
    )
    dropout: float = field(
        default=0.2,
        metadata={
            "help": "dropout on the inputs, between layers and before the output layer",
            "fine_tune": True,
        },
    )
    subsample: str = field(
        default="stack",
        metadata={"help": "time subsampling before the RNN", "choices": list(SUBSAMPLING)},
    )
    subsample_factor: int = field(
        default=2, metadata={"help": "s: frames per step of the RNN (subsample stack/conv)"}
    )
    conv_channels: int = field(
        default=256, metadata={"help": "subsample conv: output channels of the convolution"}
    )
    spec_freq_masks: int = field(
        default=2,
        metadata={
            "help": "SpecAugment: frequency masks per utterance in training (0 = off)",
            "fine_tune": True,
        },
    )
    spec_freq_width: int = field(
        default=8,
        metadata={"help": "SpecAugment: widest frequency mask, in mel bands", "fine_tune": True},
    )
    spec_time_masks: int = field(
        default=2,
        metadata={
            "help": "SpecAugment: time masks per utterance in training (0 = off)",
            "fine_tune": True,
        },
    )
    spec_time_width: int = field(
        default=20,
        metadata={"help": "SpecAugment: longest time mask, in frames", "fine_tune": True},
    )
    num_features: int = field(default=0, metadata={"cli": False, "derived": True})
    alphabet: str = field(default="", metadata={"cli": False, "derived": True})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.subsample not in SUBSAMPLING:
            raise RnnkitError(
                f"subsample must be one of {list(SUBSAMPLING)}, got {self.subsample!r}"
            )
        if self.subsample_factor < 1:
            raise RnnkitError(f"subsample_factor must be >= 1, got {self.subsample_factor}")
        if self.conv_channels < 1:
            raise RnnkitError(f"conv_channels must be >= 1, got {self.conv_channels}")
        for name in ("spec_freq_masks", "spec_freq_width", "spec_time_masks", "spec_time_width"):
            if getattr(self, name) < 0:
                raise RnnkitError(f"{name} must be >= 0, got {getattr(self, name)}")
        if len(set(self.alphabet)) != len(self.alphabet):
            raise RnnkitError("alphabet holds a character twice")

    @property
    def factor(self) -> int:
        """Frames per recurrent step: 1 without subsampling."""
        return 1 if self.subsample == "none" else self.subsample_factor

    @property
    def num_labels(self) -> int:
        """C + 1: the characters and the blank."""
        return len(self.alphabet) + 1


def ctc_frames_needed(labels: Sequence[int]) -> int:
    """The fewest frames CTC can align ``labels`` to: their number plus one blank between
    each two equal neighbours."""
    repeats = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a == b)
    return len(labels) + repeats


@register_model
class SpeechRecognizer(nn.Module):
    """Subsampling → stacked (bi)directional recurrent layers → linear over characters + blank."""

    model_type = "ctc_speech"
    config_class = SpeechConfig

    def __init__(self, config: SpeechConfig) -> None:
        super().__init__()
        c = config
        if c.num_features < 1:
            raise RnnkitError(f"num_features must be >= 1, got {c.num_features}")
        if not c.alphabet:
            raise RnnkitError("the alphabet is empty: the model needs characters to emit")
        self.config = config
        s = c.factor
        if c.subsample == "conv":
            # kernel 2s-1, padding s-1: T' = ceil(T / s), each step sees its s frames and the
            # s-1 on either side.
            self.conv = nn.Conv1d(c.num_features, c.conv_channels, 2 * s - 1, s, padding=s - 1)
            width = c.conv_channels
        else:
            self.conv = None
            width = c.num_features * s
        self.drop = nn.Dropout(c.dropout)
        self.rnn = c.build_rnn(width)
        self.head = nn.Linear(c.output_size, c.num_labels)

    def out_lengths(self, lengths: Tensor) -> Tensor:
        """(B,) frames → (B,) recurrent steps: ceil(lengths / s)."""
        s = self.config.factor
        return torch.div(lengths + s - 1, s, rounding_mode="floor")

    def _subsample(self, x: Tensor) -> Tensor:
        s = self.config.factor
        if self.conv is not None:
            return torch.relu(self.conv(x.transpose(1, 2))).transpose(1, 2)
        if s == 1:
            return x
        B, T, Fdim = x.shape
        steps = (T + s - 1) // s  # the last step zero-padded; no branch, so it traces (ONNX)
        return F.pad(x, (0, 0, 0, s - 1))[:, : steps * s].reshape(B, steps, s * Fdim)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(B, T, F) features → (B, T', C+1) logits and (B,) output lengths."""
        if features.dim() != 3 or features.shape[-1] != self.config.num_features:
            raise RnnkitError(
                f"features must have shape (B, T, {self.config.num_features}), got "
                f"{tuple(features.shape)}"
            )
        B, T = features.shape[:2]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.int64)
        lengths = lengths.to(torch.int64).cpu()
        x = self._subsample(features.float())
        out_lengths = self.out_lengths(lengths)
        x = x[:, : int(out_lengths.max())]
        outputs, _ = self.rnn(self.drop(x), lengths=out_lengths)
        return self.head(self.drop(outputs)), out_lengths

    def compute_loss(self, batch: dict[str, Tensor], state=None) -> LossOutput:
        """CTC loss per target character; in eval mode also edit-distance counts of the
        greedy transcripts (char_errors, chars, word_errors, words)."""
        c = self.config
        x, lengths, targets = batch["inputs"].float(), batch["lengths"], batch["targets"]
        if self.training and (c.spec_freq_masks or c.spec_time_masks):
            x = spec_augment(
                x,
                lengths,
                freq_masks=c.spec_freq_masks,
                freq_width=c.spec_freq_width,
                time_masks=c.spec_time_masks,
                time_width=c.spec_time_width,
            )
        logits, out_lengths = self(x, lengths)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        valid = targets >= 0
        target_lengths = valid.sum(1).cpu()
        num_chars = int(target_lengths.sum())
        loss = F.ctc_loss(
            log_probs.transpose(0, 1),
            targets[valid],
            out_lengths,
            target_lengths,
            blank=BLANK,
            reduction="sum",
            zero_infinity=True,
        ) / max(num_chars, 1)
        metrics = {}
        if not self.training:
            hyps = self.greedy_transcripts(log_probs, out_lengths)
            refs = [self.decode_labels(row[row >= 0].tolist()) for row in targets.cpu()]
            metrics = error_counts(refs, hyps)
        return LossOutput(loss, None, max(num_chars, 1), metrics)

    def summarize_metrics(self, totals: dict, num_tokens: int) -> dict[str, float]:
        """cer and wer from the summed edit-distance counts."""
        return error_rates(totals) if "chars" in totals else {}

    def decode_labels(self, labels: Sequence[int]) -> str:
        """Labels 1..C → the text (the blank and unknown labels are skipped)."""
        alphabet = self.config.alphabet
        return "".join(alphabet[i - 1] for i in labels if 0 < i <= len(alphabet))

    def greedy_transcripts(self, log_probs: Tensor, lengths: Tensor) -> list[str]:
        """(B, T', C+1) log-probabilities → the B best-path texts."""
        best = log_probs.detach().argmax(-1).cpu().numpy()
        return [
            self.decode_labels(collapse_path(row[: int(n)], BLANK))
            for row, n in zip(best, lengths.tolist(), strict=True)
        ]
