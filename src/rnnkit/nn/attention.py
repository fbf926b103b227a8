r"""Attention of an encoder–decoder model: a decoder state reads a weighted mix of the source.

A query q (the decoder state) scores every source position s through its key k_s (the
encoder's output there), the scores become weights by a softmax over the source, and the
context is the weighted mean of the values v_s (by default the keys themselves):

.. math::
    e_s &= \operatorname{score}(q, k_s)\\
    α_s &= \exp e_s \,/\, \textstyle\sum_{s'} \exp e_{s'}     \quad\text{over unmasked } s'\\
    c &= \textstyle\sum_s α_s v_s

=============================  ===========================================  ===========
class                          score(q, k)                                  parameters
=============================  ===========================================  ===========
AdditiveAttention              vᵀ tanh(W_q q + W_k k)   (Bahdanau 2015)     W_q (A, Q),
                                                                            W_k (A, K),
                                                                            v (A,)
MultiplicativeAttention dot    qᵀ k                     (Luong 2015)        none; Q = K
MultiplicativeAttention gen.   qᵀ W k                   (Luong 2015)        W (Q, K)
=============================  ===========================================  ===========

Shapes of a call ``context, weights = attn(query, keys, values=None, mask=None)``:

===========  =======================  ===================================================
name         shape                    meaning
===========  =======================  ===================================================
query        (B, Q) or (B, Tq, Q)     one decoder state, or Tq of them (teacher forcing)
keys         (B, S, K)                encoder outputs, or :meth:`~Attention.precompute_keys`
values       (B, S, V)                what is mixed; default ``keys`` (V = K)
mask         (B, S)                   bool, True on real source positions; default all
context      (B, V) or (B, Tq, V)     c
weights      (B, S) or (B, Tq, S)     α: sums to 1 over S, exactly 0 where mask is False
===========  =======================  ===================================================

A decoder calls attention once per output step with the same keys. The key-side part of the
score (W_k k for additive, W k for general) does not depend on the query, so
``memory = attn.precompute_keys(keys)`` computes it once per batch and ``attn(q, memory, ...)``
reuses it; the results are bitwise identical to ``attn(q, keys, ...)``, which runs the very
same two steps. Recompute ``memory`` after the parameters change (each training step).
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.errors import RnnkitError

FORMS = ("dot", "general")


class PrecomputedKeys(NamedTuple):
    """Keys (B, S, K) with the key-side part of the score already applied, (B, S, ·)."""

    keys: Tensor
    projected: Tensor


def _check_size(owner: str, name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RnnkitError(f"{owner} {name} must be an integer >= 1, got {value!r}")
    return value


def _shape(x: object) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__


class Attention(nn.Module):
    """What both attentions share: input checks, masking, the softmax and the weighted sum.

    Subclasses define :meth:`project_keys` (the key-side part of the score, (B, S, K) →
    (B, S, ·)) and :meth:`scores` (query (B, Tq, Q) and projected keys → e, (B, Tq, S)).
    """

    query_size: int
    key_size: int

    def project_keys(self, keys: Tensor) -> Tensor:
        raise NotImplementedError

    def scores(self, query: Tensor, projected: Tensor) -> Tensor:
        raise NotImplementedError

    def precompute_keys(self, keys: Tensor) -> PrecomputedKeys:
        """Apply the key-side part of the score once; pass the result as ``keys``."""
        self._check_keys(keys)
        return PrecomputedKeys(keys, self.project_keys(keys))

    def forward(
        self,
        query: Tensor,
        keys: Tensor | PrecomputedKeys,
        values: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Context and attention weights; shapes in the module docstring."""
        name = type(self).__name__
        memory = keys if isinstance(keys, PrecomputedKeys) else self.precompute_keys(keys)
        keys = memory.keys
        B, S = keys.shape[:2]
        values = keys if values is None else values
        if not isinstance(values, Tensor) or values.dim() != 3 or values.shape[:2] != (B, S):
            raise RnnkitError(
                f"{name} values must have shape ({B}, {S}, V) like keys, got {_shape(values)}"
            )
        Q = self.query_size
        if not isinstance(query, Tensor) or query.dim() not in (2, 3) or query.shape[-1] != Q:
            raise RnnkitError(
                f"{name} query must have shape (B, {Q}) or (B, Tq, {Q}), got {_shape(query)}"
            )
        if query.shape[0] != B:
            raise RnnkitError(
                f"{name} query has batch size {query.shape[0]} but keys have {B}: "
                f"query {tuple(query.shape)}, keys {tuple(keys.shape)}"
            )
        if mask is not None:
            if not isinstance(mask, Tensor) or mask.shape != (B, S) or mask.dtype != torch.bool:
                got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else mask
                raise RnnkitError(
                    f"{name} mask must be a bool tensor of shape ({B}, {S}), got {got}"
                )
            # A row with nothing to attend to would divide 0 by 0 in the softmax.
            if not mask.any(dim=1).all():
                raise RnnkitError(f"{name} mask must keep at least one source position per row")

        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (B, Tq, Q)
        e = self.scores(q, memory.projected)  # (B, Tq, S)
        if mask is not None:
            # exp(-inf) = 0: padded positions get exactly zero weight.
            e = e.masked_fill(~mask.unsqueeze(1), -math.inf)
        α = torch.softmax(e, dim=-1)
        context = torch.bmm(α, values)  # (B, Tq, V)
        return (context.squeeze(1), α.squeeze(1)) if single else (context, α)

    def _check_keys(self, keys: Tensor) -> None:
        K = self.key_size
        if not isinstance(keys, Tensor) or keys.dim() != 3 or keys.shape[2] != K:
            raise RnnkitError(
                f"{type(self).__name__} keys must have shape (B, S, {K}), got {_shape(keys)}"
            )
        if keys.shape[1] < 1:
            raise RnnkitError(f"{type(self).__name__} keys must have at least one position, S = 0")


class AdditiveAttention(Attention):
    r"""Bahdanau et al. (2015): :math:`e_s = v^T \tanh(W_q q + W_k k_s)`.

    Args:
        query_size: Q, features of the decoder state.
        key_size: K, features of an encoder output.
        attn_size: A, the hidden size of the one-layer scoring network.

    Parameters ``W_q`` (A, Q), ``W_k`` (A, K) and ``v`` (A,), no biases as in the paper, start
    at U(-1/√fan_in, 1/√fan_in) (torch.nn.Linear's bound). :meth:`precompute_keys` computes
    W_k k, (B, S, A).
    """

    def __init__(self, query_size: int, key_size: int, attn_size: int) -> None:
        super().__init__()
        name = type(self).__name__
        self.query_size = _check_size(name, "query_size", query_size)
        self.key_size = _check_size(name, "key_size", key_size)
        self.attn_size = _check_size(name, "attn_size", attn_size)
        self.W_q = nn.Parameter(torch.empty(attn_size, query_size))
        self.W_k = nn.Parameter(torch.empty(attn_size, key_size))
        self.v = nn.Parameter(torch.empty(attn_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p, fan_in in ((self.W_q, self.query_size), (self.W_k, self.key_size)):
            nn.init.uniform_(p, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.uniform_(self.v, -1 / math.sqrt(self.attn_size), 1 / math.sqrt(self.attn_size))

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys @ self.W_k.T  # W_k k_s, (B, S, A)

    def scores(self, query: Tensor, projected: Tensor) -> Tensor:
        # (B, Tq, 1, A) + (B, 1, S, A): every query against every source position
        hidden = torch.tanh((query @ self.W_q.T).unsqueeze(2) + projected.unsqueeze(1))
        return hidden @ self.v  # (B, Tq, S)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, attn_size={self.attn_size}"


class MultiplicativeAttention(Attention):
    r"""Luong et al. (2015): ``'dot'`` :math:`e_s = q^T k_s`, ``'general'`` :math:`q^T W k_s`.

    Args:
        query_size: Q.  key_size: K (must equal Q for ``'dot'``).
        form: ``'dot'`` (no parameters) or ``'general'`` (W (Q, K), starts at U(±1/√K)).

    :meth:`precompute_keys` computes W k, (B, S, Q), for ``'general'``; ``'dot'`` has nothing
    to precompute and passes the keys through. No 1/√d scaling (Vaswani et al. 2017 add it for
    large dimensions; Luong's forms have none).
    """

    def __init__(self, query_size: int, key_size: int, form: str = "dot") -> None:
        super().__init__()
        name = type(self).__name__
        self.query_size = _check_size(name, "query_size", query_size)
        self.key_size = _check_size(name, "key_size", key_size)
        if form not in FORMS:
            raise RnnkitError(f"{name} form must be one of {list(FORMS)}, got {form!r}")
        if form == "dot" and query_size != key_size:
            raise RnnkitError(
                f"{name} form='dot' needs query_size == key_size, got {query_size} and "
                f"{key_size}; use form='general' (qᵀ W k) for different sizes"
            )
        self.form = form
        if form == "general":
            self.W = nn.Parameter(torch.empty(query_size, key_size))
        else:
            self.register_parameter("W", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.W is not None:
            bound = 1 / math.sqrt(self.key_size)
            nn.init.uniform_(self.W, -bound, bound)

    def project_keys(self, keys: Tensor) -> Tensor:
        return keys if self.W is None else keys @ self.W.T  # W k_s, (B, S, Q)

    def scores(self, query: Tensor, projected: Tensor) -> Tensor:
        return torch.bmm(query, projected.transpose(1, 2))  # qᵀ (W k_s), (B, Tq, S)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}, form={self.form!r}"
