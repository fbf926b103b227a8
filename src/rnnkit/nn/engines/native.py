r"""The native engine: a whole recurrent stack in one call to torch's fused kernel.

This is what :meth:`torch.nn.RNNBase.forward` does (``torch._VF.lstm / gru / rnn_tanh /
rnn_relu``: oneDNN on CPU, cuDNN on GPU), fed from rnnkit's cells. The kernel computes exactly
our equations once three differences are bridged, each at the cost of a few cheap tensors per
call:

* **Second bias.** The kernel adds two biases, ``b_ih + b_hh``; we keep one per gate (the
  textbook count), so it gets ``b_ih = cell.bias`` and ``b_hh = 0`` (a constant, not a
  parameter: its gradient is computed by the kernel and thrown away).
* **GRU update gate.** torch writes h_t = (1 - z'_t) ⊙ h̃_t + z'_t ⊙ h_{t-1}, we write
  h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t, so z' = 1 - z = σ(-a_z): the z block of weight_ih,
  weight_hh and bias is negated (a product with ±1, so gradients reach our parameters).
* **Lengths.** Variable-length batches go through a packed sequence
  (``pack_padded_sequence(enforce_sorted=False)`` then the packed ``_VF`` variant), so padded
  steps neither change the state nor reach the backward direction; padded outputs are 0.

Which configurations the kernel can compute is decided by :func:`native_blocker`.

**Packed sequences are slow on the CPU.** The packed kernel runs each time step as its own
small batch, forward and back; on one CPU thread a BiLSTM over 32 rows of up to 400 steps
(E = N = 128) took 1,331 ms a forward + backward pass in torch and 1,769 ms here, against
303 ms for the scan engine and 196 ms for the kernel on the same batch unpacked
(``benchmarks/packed_lengths.py``; 1.4-4.4x over rows of 100-400 steps, level at 30-40). So the
``auto`` engine of :mod:`rnnkit.nn.layers` gives a variable-length CPU batch to the scan engine,
and keeps this one for full-length batches, GPUs (cuDNN packs well) and autocast.
"""

import warnings
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext

import torch
from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.cells import Cell

State = Tensor | tuple[Tensor, Tensor]


def native_blocker(cells: Sequence[Cell], recurrent_dropout: float = 0.0) -> str | None:
    """Why the fused kernel cannot compute these cells, or ``None`` when it can."""
    for index, cell in enumerate(cells):
        if not cell.native:
            return f"cell {index} ({cell.extra_repr()}) is not what the fused kernel computes"
    kinds = {cell.kind for cell in cells}
    if len(kinds) != 1:
        return f"the cells mix kinds {sorted(kinds)}"
    if cells[0].kind == "rnn" and len({cell.activation for cell in cells}) != 1:
        return "the RNN cells mix activations; the fused kernel takes one nonlinearity"
    if recurrent_dropout:
        return f"recurrent_dropout={recurrent_dropout} (the fused kernel has no recurrent dropout)"
    return None


_Z_SIGNS: dict[tuple, Tensor] = {}


def negate_z(w: Tensor) -> Tensor:
    """Negate the z block (rows N:2N of the gate order r, z, n): torch's z' = 1 - z.

    A product with a cached ±1 row vector rather than a ``cat`` of slices: one pass forward
    and one backward, where the backward of three slices would zero-fill three full tensors.
    """
    key = (w.shape[0], w.dtype, w.device)
    sign = _Z_SIGNS.get(key)
    if sign is None:
        N = w.shape[0] // 3
        sign = torch.ones(3 * N, dtype=w.dtype, device=w.device)
        sign[N : 2 * N] = -1
        _Z_SIGNS[key] = sign
    return w * (sign if w.dim() == 1 else sign[:, None])


def flat_weights(cells: Sequence[Cell]) -> list[Tensor]:
    """The kernel's weight list: [w_ih, w_hh, b_ih, b_hh] per layer and direction, in the
    order torch builds ``_flat_weights`` (layer-major, forward before reverse)."""
    flat: list[Tensor] = []
    zeros: dict[int, Tensor] = {}
    for cell in cells:
        w_ih, w_hh, b = cell.weight_ih, cell.weight_hh, cell.bias
        if cell.kind == "gru":
            w_ih, w_hh, b = negate_z(w_ih), negate_z(w_hh), negate_z(b)
        if b.shape[0] not in zeros:  # one constant zero bias per size, shared by every cell
            zeros[b.shape[0]] = torch.zeros_like(cell.bias, requires_grad=False)
        flat += (w_ih, w_hh, b, zeros[b.shape[0]])
    return flat


def _kernel(cells: Sequence[Cell]):
    kind = cells[0].kind
    if kind == "lstm":
        return _VF.lstm
    if kind == "gru":
        return _VF.gru
    return _VF.rnn_relu if cells[0].activation == "relu" else _VF.rnn_tanh


def native_forward(
    cells: Sequence[Cell],
    x: Tensor,
    state: State,
    *,
    num_layers: int,
    bidirectional: bool,
    batch_first: bool,
    dropout: float = 0.0,
    training: bool = False,
    lengths: Tensor | None = None,
) -> tuple[Tensor, State]:
    """Run the whole stack through the fused kernel.

    Args:
        cells: ``num_layers · D`` cells, index ``k·D + d`` (D = 2 if bidirectional).
        x: (B, T, d) if ``batch_first`` else (T, B, d).
        state: h0 (L·D, B, N), or (h0, c0) for an LSTM; never ``None``.
        dropout: probability on the outputs of every layer but the last (when ``training``).
        lengths: CPU int64 (B,), values in 1..T, or ``None`` for full-length rows.

    Returns:
        ``(outputs, final_state)``: outputs (B, T, D·N) or (T, B, D·N), zero at padded steps;
        final state as ``state``, taken at each row's last valid step.
    """
    weights = flat_weights(cells)
    kernel = _kernel(cells)
    is_lstm = cells[0].kind == "lstm"
    # cuDNN warns (once) that our per-cell weights are not one flat buffer: it copies them.
    quiet = _ignore_cudnn_flat_buffer_warning() if x.is_cuda else nullcontext()
    if lengths is None:
        with quiet:
            result = kernel(
                x, state, weights, True, num_layers, dropout, training, bidirectional, batch_first
            )
        output, hidden = result[0], result[1:]
        return output, (hidden if is_lstm else hidden[0])

    T = x.shape[1] if batch_first else x.shape[0]
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    # The kernel sees rows sorted by decreasing length: permute the state in and back out.
    if is_lstm:
        hx = (state[0].index_select(1, sorted_indices), state[1].index_select(1, sorted_indices))
    else:
        hx = state.index_select(1, sorted_indices)
    with quiet:
        result = kernel(
            data, batch_sizes, hx, weights, True, num_layers, dropout, training, bidirectional
        )
    out_packed = packed._replace(data=result[0])
    output, _ = pad_packed_sequence(out_packed, batch_first=batch_first, total_length=T)
    hidden = tuple(h.index_select(1, unsorted_indices) for h in result[1:])
    return output, (hidden if is_lstm else hidden[0])


@contextmanager
def _ignore_cudnn_flat_buffer_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*contiguous chunk of memory")
        yield
