"""Scan engine: run one recurrent layer, in one direction, over time, for any cell configuration.

This is the engine for everything torch's fused kernel cannot compute: the textbook GRU
(``reset_after=False``), custom activations, recurrent dropout. It gives the same numbers as
running the cell step by step (see ``tests/nn/test_scan.py``), and is built for speed:

* the input projection of all steps is one matrix product, x W_ihᵀ + b over T·B rows;
* the recurrence is a custom autograd Function (:mod:`.scan_functions`) whose backward pass is
  hand-written BPTT: it collects the per-step gate gradients into one (T, B, G·N) tensor, so
  each weight gradient, and the input gradient, is one product over all steps too.
"""

import torch
from torch import Tensor

from rnnkit.errors import RnnkitError
from rnnkit.nn.engines.scan_functions import GRUScan, LSTMScan, RNNScan

State = Tensor | tuple[Tensor, Tensor]


def scan_layer(
    cell,
    x: Tensor,
    state0: State,
    *,
    lengths: Tensor | None = None,
    reverse: bool = False,
    dropout_mask: Tensor | None = None,
) -> tuple[Tensor, State]:
    """Run ``cell`` (an RNNCell, LSTMCell or GRUCell) over a time-major sequence.

    Args:
        cell: supplies ``weight_ih`` (G·N, d), ``weight_hh`` (G·N, N), ``bias`` (G·N), ``kind``,
            ``activation``, ``gate_activation`` and ``reset_after`` (GRU).
        x: (T, B, d) inputs, time-major.
        state0: h0 (B, N) for rnn/gru, (h0, c0) for lstm.
        lengths: None or (B,) integers with 1 <= len <= T. Steps t >= len[b] are padding: they
            leave row b's state unchanged and output 0.
        reverse: run each sequence from its last valid step back to step 0 (the backward
            direction of a bidirectional layer); outputs stay at their time positions.
        dropout_mask: None or (B, N), already scaled by 1/(1-p), multiplied into h_{t-1} before
            the recurrent product only (recurrent dropout, Gal & Ghahramani), the same mask at
            every step. It receives no gradient.

    Returns:
        (outputs (T, B, N), final_state) with final_state shaped like ``state0``: the state
        after each row's last valid step (after step 0 when ``reverse``).
    """
    kind = cell.kind
    w_ih, w_hh, bias = cell.weight_ih, cell.weight_hh, cell.bias
    GN, N = w_hh.shape
    if x.dim() != 3 or x.shape[-1] != w_ih.shape[1]:
        raise RnnkitError(f"x must have shape (T, B, {w_ih.shape[1]}), got {tuple(x.shape)}")
    T, B, d = x.shape
    h0, c0 = state0 if kind == "lstm" else (state0, None)
    for name, s in (("h0", h0), ("c0", c0)):
        if s is not None and tuple(s.shape) != (B, N):
            raise RnnkitError(f"{name} must have shape ({B}, {N}), got {tuple(s.shape)}")
    if dropout_mask is not None and tuple(dropout_mask.shape) != (B, N):
        raise RnnkitError(
            f"dropout_mask must have shape ({B}, {N}), got {tuple(dropout_mask.shape)}"
        )
    valid = _valid_steps(lengths, T, B, x.device)
    # Only keep what a backward pass needs when one can follow.
    train = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, w_ih, w_hh, bias, h0, c0)
    )
    weights = (x, w_ih, bias, w_hh)
    if kind == "lstm":
        out, h, c = LSTMScan.apply(
            *weights, h0, c0, dropout_mask, valid, reverse, train,
            cell.gate_activation, cell.activation,
        )  # fmt: skip
        return out, (h, c)
    if kind == "gru":
        return GRUScan.apply(
            *weights, h0, dropout_mask, valid, reverse, train, cell.reset_after,
            cell.gate_activation, cell.activation,
        )  # fmt: skip
    if kind == "rnn":
        return RNNScan.apply(*weights, h0, dropout_mask, valid, reverse, train, cell.activation)
    raise RnnkitError(f"cell.kind must be 'rnn', 'lstm' or 'gru', got {kind!r}")


def _valid_steps(lengths: Tensor | None, T: int, B: int, device) -> Tensor | None:
    """(T, B, 1) bool, False on padding steps; None when no row is padded."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=device)
    if tuple(lengths.shape) != (B,):
        raise RnnkitError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > T).any()):
        raise RnnkitError(f"lengths must be between 1 and T={T}, got {lengths.tolist()}")
    if bool((lengths == T).all()):
        return None
    return (torch.arange(T, device=device).unsqueeze(1) < lengths).unsqueeze(-1)
