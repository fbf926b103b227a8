r"""The encoder–decoder: read a source sentence, write its translation one token at a time.

.. code-block:: text

    source (B, S) ─► embedding ─► encoder RNN × L (bidirectional) ─► outputs (B, S, K), K = D·N
                                        │ final state per layer ─► bridge ─► decoder's first state
    y_{t-1} ─► embedding ─┬─► decoder RNN × L ─► h_t ─┬─► h̃_t = tanh(W_c [h_t; c_t]) ─► softmax
                          │        ▲                  │         │
          [h̃_{t-1}] (input feeding), [c_t] (Bahdanau, Cho) ───────┘

The context c_t that the decoder reads at step t:

================  ==========================================================================
``attention``     c_t
================  ==========================================================================
``none``          the encoder's final state [h→_S; h←_1] of the top layer, the one fixed vector
                  of the lecture; it starts the decoder (through the bridge) and, with
                  ``context_every_step`` (Cho et al. 2014), is fed to every step and to the
                  output; without it the decoder sees the source only through its first state
                  (Sutskever et al. 2014, who also reverse the source: ``reverse_source``)
``additive``      Σ_s α_s enc_s with α from vᵀ tanh(W_q h_{t-1} + W_k enc_s) (Bahdanau et al.
                  2015): computed from the previous state, fed into the RNN and the output
``dot``/``general``  α from h_tᵀ enc_s or h_tᵀ W enc_s on the new state (Luong et al. 2015)
================  ==========================================================================

``input_feeding`` (Luong) feeds the previous attentional vector h̃_{t-1} into the next step, so
the decoder knows what it attended to. Padding never receives attention (a mask from
``lengths``); ``reverse_source`` reverses each row's real tokens only and the encoder outputs
are turned back, so attention weights always index the source as written.

Training feeds the true previous token (teacher forcing); ``teacher_forcing`` < 1 feeds the
model's own previous prediction (its argmax) with probability 1 − ratio per token, and
``sampling_schedule`` lowers the ratio as training goes on (scheduled sampling, Bengio et al.
2015; :func:`teacher_forcing_ratio`). ``label_smoothing`` spreads that much of the target mass
over the vocabulary (training loss only: ``val_loss`` stays the plain cross-entropy).
``share_embeddings`` uses one table for source and target (one joint vocabulary);
``tie_embeddings`` uses the target table as the output layer (Press & Wolf 2017).

=====================  ======================================================
tensor                 shape
=====================  ======================================================
source                 (B, S) int64 ids, padded with ``pad_id``
lengths                (B,) int64, 1 ≤ lengths ≤ S
decoder input          (B, T) ids: ``<bos> y_1 … y_{T-1}``
targets                (B, T) ids: ``y_1 … y_{T-1} <eos>``, padded with -1
logits (out)           (B, T, V_target)
attention (out)        (B, T, S), rows sum to 1, 0 on padding; None without
=====================  ======================================================
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.contracts import LossOutput
from rnnkit.errors import RnnkitError
from rnnkit.metrics.translation import bleu_from_statistics, bleu_statistics
from rnnkit.models.seq2seq_config import Seq2SeqConfig, teacher_forcing_ratio
from rnnkit.nn.attention import AdditiveAttention, MultiplicativeAttention, PrecomputedKeys
from rnnkit.registry import register_model

IGNORE_INDEX = -1  # padded targets (rnnkit.data.padded.IGNORE_INDEX)
# Validation decodes at most 2·S + 10 tokens per row (a model early in training may never stop).
VAL_LENGTH = (2.0, 10)


class Memory(NamedTuple):
    """What the decoder reads from the encoder, computed once per source batch."""

    values: Tensor  # (B, S, K) encoder outputs, in source order
    keys: PrecomputedKeys | None  # attention's key side, precomputed; None without attention
    mask: Tensor  # (B, S) bool, True on real tokens
    context: Tensor  # (B, K) the top layer's final state [fwd; bwd]


class DecoderState(NamedTuple):
    """The decoder between two steps; rows can be reordered (beam search)."""

    h: Tensor  # (L, B, N)
    c: Tensor | None  # (L, B, N) for an LSTM
    feed: Tensor | None  # (B, N) previous attentional vector (input feeding)
    memory: Memory


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """The state whose row j is row ``index[j]`` of ``state`` (index (B',) int64)."""
    m = state.memory
    keys = None if m.keys is None else PrecomputedKeys(*(t.index_select(0, index) for t in m.keys))
    memory = Memory(
        m.values.index_select(0, index),
        keys,
        m.mask.index_select(0, index),
        m.context.index_select(0, index),
    )
    return DecoderState(
        state.h.index_select(1, index),
        None if state.c is None else state.c.index_select(1, index),
        None if state.feed is None else state.feed.index_select(0, index),
        memory,
    )


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Each row's first ``lengths[b]`` steps reversed, padding left in place: x (B, S[, F])."""
    S = x.shape[1]
    pos = torch.arange(S, device=x.device)[None, :]
    L = lengths.to(x.device)[:, None]
    index = torch.where(pos < L, L - 1 - pos, pos)
    if x.dim() == 3:
        index = index.unsqueeze(-1).expand_as(x)
    return x.gather(1, index)


@register_model
class Seq2Seq(nn.Module):
    """Encoder–decoder with optional attention (see the module docstring)."""

    model_type = "seq2seq"
    config_class = Seq2SeqConfig

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        c = self.config = config
        if c.source_vocab_size < 1 or c.target_vocab_size < 1:
            raise RnnkitError(
                "source_vocab_size and target_vocab_size must be >= 1, got "
                f"{c.source_vocab_size} and {c.target_vocab_size}"
            )
        if c.share_embeddings and c.source_vocab_size != c.target_vocab_size:
            raise RnnkitError(
                "share_embeddings needs one vocabulary for both sides, got sizes "
                f"{c.source_vocab_size} and {c.target_vocab_size}"
            )
        N, E, D = c.hidden_size, c.embedding_size, 2 if c.bidirectional else 1
        K = D * N
        self.src_embed = nn.Embedding(c.source_vocab_size, E, padding_idx=c.pad_id)
        self.tgt_embed = (
            self.src_embed
            if c.share_embeddings
            else nn.Embedding(c.target_vocab_size, E, padding_idx=c.pad_id)
        )
        self.drop = nn.Dropout(c.dropout)
        self.encoder = c.build_rnn(E)
        self.bridge_h = nn.Linear(K, N)
        self.bridge_c = nn.Linear(K, N) if c.cell == "lstm" else None
        self.key_proj = None
        if c.attention == "additive":
            self.attn: nn.Module | None = AdditiveAttention(N, K, c.attention_size or N)
        elif c.attention == "dot":
            # dot needs keys of the query's size: a bidirectional encoder's are projected.
            self.key_proj = nn.Linear(K, N, bias=False) if K != N else None
            self.attn = MultiplicativeAttention(N, N, "dot")
        elif c.attention == "general":
            self.attn = MultiplicativeAttention(N, K, "general")
        else:
            self.attn = None
        self.feeding = c.input_feeding and c.attention != "none"
        self.uses_context = c.attention != "none" or c.context_every_step
        extra = (N if self.feeding else 0) + (
            K
            if c.attention == "additive" or (c.attention == "none" and c.context_every_step)
            else 0
        )
        self.decoder = dataclasses.replace(c, bidirectional=False).build_rnn(E + extra)
        self.combine = nn.Linear(N + K, N) if self.uses_context else None
        if c.tie_embeddings:
            self.out_proj: nn.Module = nn.Linear(N, E) if N != E else nn.Identity()
            self.out_bias = nn.Parameter(torch.zeros(c.target_vocab_size))
            self.out = None
        else:
            self.out = nn.Linear(N, c.target_vocab_size)
        # The decoder input of a step does not depend on the step before: one call for all T.
        self.parallel = c.attention in ("none", "dot", "general") and not self.feeding

    # ---- encoder ---------------------------------------------------------------------------

    def encode(self, source: Tensor, lengths: Tensor | None = None) -> DecoderState:
        """Source (B, S) ids → the decoder's first state, holding the encoder memory."""
        if not isinstance(source, Tensor) or source.dim() != 2 or source.dtype != torch.int64:
            raise RnnkitError(f"source must be an int64 tensor (B, S), got {_shape(source)}")
        c, (B, S) = self.config, source.shape
        if lengths is None:
            lengths = torch.full((B,), S, dtype=torch.int64)
        lengths = lengths.to(source.device)
        mask = torch.arange(S, device=source.device)[None, :] < lengths[:, None]
        tokens = reverse_padded(source, lengths) if c.reverse_source else source
        outputs, final = self.encoder(self.drop(self.src_embed(tokens)), lengths=lengths.cpu())
        if c.reverse_source:
            outputs = reverse_padded(outputs, lengths)
        h_n, c_n = final if c.cell == "lstm" else (final, None)
        D = 2 if c.bidirectional else 1

        def per_layer(s: Tensor) -> Tensor:  # (L·D, B, N) → (L, B, D·N): [fwd; bwd] per layer
            return s.view(c.num_layers, D, B, -1).permute(0, 2, 1, 3).reshape(c.num_layers, B, -1)

        top = per_layer(h_n)
        dtype = self.bridge_h.weight.dtype  # a state in the parameters' precision (autocast)
        h0 = torch.tanh(self.bridge_h(top)).to(dtype)
        c0 = self.bridge_c(per_layer(c_n)).to(dtype) if self.bridge_c is not None else None
        keys = None
        if self.attn is not None:
            key_input = self.key_proj(outputs) if self.key_proj is not None else outputs
            keys = self.attn.precompute_keys(key_input)
        feed = h0.new_zeros(B, c.hidden_size) if self.feeding else None
        return DecoderState(h0, c0, feed, Memory(outputs, keys, mask, top[-1]))

    # ---- decoder ---------------------------------------------------------------------------

    def _attend(self, query: Tensor, m: Memory) -> tuple[Tensor, Tensor]:
        return self.attn(query, m.keys, m.values, m.mask)  # type: ignore[misc]

    def _step(self, emb: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step from the embedded previous token (B, E): the attentional vector
        h̃_t (B, N), the new state, and the attention weights (B, S) or None."""
        c, m = self.config, state.memory
        parts, alpha, context = [emb], None, None
        if self.feeding:
            parts.append(state.feed)
        if c.attention == "additive":
            context, alpha = self._attend(state.h[-1], m)
            parts.append(context)
        elif c.attention == "none" and c.context_every_step:
            context = m.context
            parts.append(context)
        x = torch.cat(parts, dim=-1)
        hs, cs = [], []
        for k, cell in enumerate(self.decoder.cells):
            if k > 0:
                x = F.dropout(x, c.dropout, self.training)
            if state.c is not None:
                h, cc = cell(x, (state.h[k], state.c[k]))
                cs.append(cc)
            else:
                h = cell(x, state.h[k])
            hs.append(h)
            x = h
        if c.attention in ("dot", "general"):
            context, alpha = self._attend(x, m)
        out = torch.tanh(self.combine(torch.cat([x, context], -1))) if context is not None else x
        new = DecoderState(
            torch.stack(hs), torch.stack(cs) if cs else None, out if self.feeding else None, m
        )
        return out, new, alpha

    def _parallel(self, emb: Tensor, state: DecoderState) -> tuple[Tensor, Tensor | None]:
        """All T steps at once when no step's input depends on the step before."""
        m, T = state.memory, emb.shape[1]
        x = emb
        if self.config.attention == "none" and self.config.context_every_step:
            x = torch.cat([emb, m.context[:, None].expand(-1, T, -1)], -1)
        init = (state.h, state.c) if state.c is not None else state.h
        outputs, _ = self.decoder(x, init)
        if self.attn is not None:
            context, alpha = self._attend(outputs, m)
        else:
            context, alpha = (
                (m.context[:, None].expand(-1, T, -1) if self.uses_context else None),
                None,
            )
        if context is None:
            return outputs, None
        return torch.tanh(self.combine(torch.cat([outputs, context], -1))), alpha

    def project(self, out: Tensor) -> Tensor:
        """Attentional vectors (…, N) → logits (…, V_target)."""
        out = self.drop(out)
        if self.out is not None:
            return self.out(out)
        return F.linear(self.out_proj(out), self.tgt_embed.weight, self.out_bias)

    def decode_step(self, tokens: Tensor, state: DecoderState):
        """Previous tokens (B,) → (log-probabilities (B, V) float32, new state, attention
        (B, S) or None)."""
        out, new, alpha = self._step(self.drop(self.tgt_embed(tokens)), state)
        return torch.log_softmax(self.project(out).float(), dim=-1), new, alpha

    def forward(
        self,
        source: Tensor,
        lengths: Tensor | None,
        decoder_input: Tensor,
        teacher_forcing: float = 1.0,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, V) for decoder input (B, T), and the attention (B, T, S) or None.
        With ``teacher_forcing`` < 1, each token after the first is replaced by the model's own
        previous prediction with probability 1 − teacher_forcing."""
        state = self.encode(source, lengths)
        emb = self.drop(self.tgt_embed(decoder_input))
        if self.parallel and teacher_forcing >= 1.0:
            out, alpha = self._parallel(emb, state)
            return self.project(out), alpha
        outs, logits, alphas = [], [], []
        for t in range(decoder_input.shape[1]):
            e_t = emb[:, t]
            if t > 0 and teacher_forcing < 1.0:
                own = logits[-1].detach().argmax(-1)
                truth = torch.rand(own.shape, device=own.device) < teacher_forcing
                e_t = torch.where(truth[:, None], e_t, self.drop(self.tgt_embed(own)))
            out, state, alpha = self._step(e_t, state)
            if teacher_forcing < 1.0:
                logits.append(self.project(out))
            outs.append(out)
            alphas.append(alpha)
        result = torch.stack(logits, 1) if logits else self.project(torch.stack(outs, 1))
        return result, (torch.stack(alphas, 1) if alphas[0] is not None else None)

    @torch.no_grad()
    def greedy_decode(self, source: Tensor, lengths: Tensor | None, max_len: Tensor) -> list:
        """The most probable token at each step, batched: one id list per row, without
        ``<eos>``, at most ``max_len[b]`` tokens (max_len (B,) int64)."""
        c = self.config
        state = self.encode(source, lengths)
        B = source.shape[0]
        tokens = torch.full((B,), c.bos_id, dtype=torch.int64, device=source.device)
        done = torch.zeros(B, dtype=torch.bool, device=source.device)
        limit = max_len.to(source.device)
        steps = []
        for t in range(int(limit.max())):
            log_probs, state, _ = self.decode_step(tokens, state)
            tokens = log_probs.argmax(-1)
            steps.append(tokens)
            done |= (tokens == c.eos_id) | (t + 1 >= limit)
            if bool(done.all()):
                break
        rows = []
        for b, ids in enumerate(torch.stack(steps, 1).tolist()):
            ids = ids[: int(limit[b])]
            rows.append(ids[: ids.index(c.eos_id)] if c.eos_id in ids else ids)
        return rows

    # ---- training --------------------------------------------------------------------------

    def shift_right(self, targets: Tensor) -> Tensor:
        """Targets ``y_1 … <eos>`` (padded with -1) → decoder input ``<bos> y_1 …``."""
        c = self.config
        bos = targets.new_full((targets.shape[0], 1), c.bos_id)
        previous = targets[:, :-1]
        return torch.cat([bos, previous.masked_fill(previous < 0, c.pad_id)], 1)

    def compute_loss(self, batch: dict[str, Any], state: Any = None) -> LossOutput:
        """Token cross-entropy (label-smoothed in training). Metrics: correct tokens; in eval
        mode with ``batch["references"]`` and ``batch["detokenize"]``, the greedy translations'
        BLEU counts (summable: :mod:`rnnkit.metrics.translation`) and exact matches."""
        source, lengths, targets = batch["inputs"], batch["lengths"], batch["targets"]
        ratio = 1.0
        if self.training:
            ratio = teacher_forcing_ratio(self.config, int(batch.get("step", 0)))
        logits, _ = self(source, lengths, self.shift_right(targets), ratio)
        flat, y = logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1)
        smoothing = self.config.label_smoothing if self.training else 0.0
        loss = F.cross_entropy(flat, y, ignore_index=IGNORE_INDEX, label_smoothing=smoothing)
        real = y != IGNORE_INDEX
        metrics: dict[str, Any] = {"correct": ((flat.detach().argmax(-1) == y) & real).sum()}
        if not self.training and "references" in batch:
            a, b = VAL_LENGTH
            limit = (lengths.float() * a + b).long()
            hyps = self.greedy_decode(source, lengths, limit)
            texts = [batch["detokenize"](ids) for ids in hyps]
            refs = batch["references"]
            metrics["bleu_counts"] = torch.from_numpy(bleu_statistics(texts, refs))
            metrics["exact"] = sum(h == r for h, r in zip(texts, refs, strict=True))
            metrics["sentences"] = len(refs)
        return LossOutput(loss, None, int(real.sum()), metrics)

    def summarize_metrics(self, totals: dict, num_tokens: int) -> dict[str, float]:
        """Token accuracy; corpus BLEU from the summed counts and the fraction of sentences
        translated exactly (text equal to the reference)."""
        out = {}
        if "correct" in totals:
            out["accuracy"] = float(totals["correct"]) / max(num_tokens, 1)
        if "bleu_counts" in totals:
            out["bleu"] = bleu_from_statistics(totals["bleu_counts"])
        if totals.get("sentences"):
            out["exact_match"] = float(totals["exact"]) / float(totals["sentences"])
        return out


def _shape(x: object) -> object:
    return f"{x.dtype} {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
