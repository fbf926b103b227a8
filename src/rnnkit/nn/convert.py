"""Exact conversion between rnnkit layers and ``torch.nn.RNN / LSTM / GRU``.

The parameters line up block for block (same gate order); the differences are the ones the
native engine bridges (see :mod:`rnnkit.nn.engines.native`):

* torch has two biases per gate, we have one: to torch, ``b_ih = ours`` and ``b_hh = 0``; from
  torch, ours = ``b_ih + b_hh``.
* torch.nn.GRU is the cuDNN form (reset after the product, so it converts to and from
  ``GRU(reset_after=True)`` only) whose candidate has a second bias *inside* the reset,
  r ⊙ (W_hn h + b_hn): it cannot fold into ours unless b_hn = 0.
* torch.nn.GRU's update gate is 1 - ours: the z block of weights and bias is negated.

Conversion carries weights, sizes, ``batch_first``, ``dropout`` and the train/eval mode.
``recurrent_dropout`` has no torch counterpart and is not carried (it only acts in training).
"""

import warnings

import torch
from torch import nn

from rnnkit.errors import RnnkitError
from rnnkit.nn.engines.native import native_blocker, negate_z
from rnnkit.nn.layers import GRU, LSTM, RNN, RecurrentLayer


def _torch_names(k: int, d: int) -> tuple[str, str, str, str]:
    s = "_reverse" if d == 1 else ""
    return (f"weight_ih_l{k}{s}", f"weight_hh_l{k}{s}", f"bias_ih_l{k}{s}", f"bias_hh_l{k}{s}")


def to_torch(layer: RecurrentLayer) -> nn.RNNBase:
    """The ``torch.nn.RNN / LSTM / GRU`` computing exactly what ``layer`` computes.

    Raises :class:`RnnkitError` for cells torch cannot express (e.g. a GRU with
    ``reset_after=False``, an LSTM with linear activations, an RNN with sigmoid).
    """
    reason = native_blocker(list(layer.cells))
    if reason is not None:
        raise RnnkitError(f"cannot convert this {type(layer).__name__} to torch.nn: {reason}")
    ref = layer.cells[0].weight_ih
    common = dict(
        input_size=layer.input_size,
        hidden_size=layer.hidden_size,
        num_layers=layer.num_layers,
        bias=True,
        batch_first=layer.batch_first,
        dropout=layer.dropout,
        bidirectional=layer.bidirectional,
        device=ref.device,
        dtype=ref.dtype,
    )
    with warnings.catch_warnings():  # torch warns that one layer has no dropout to apply
        warnings.filterwarnings("ignore", "dropout option adds dropout", UserWarning)
        if layer.kind == "lstm":
            module: nn.RNNBase = nn.LSTM(**common)
        elif layer.kind == "gru":
            module = nn.GRU(**common)
        else:
            module = nn.RNN(nonlinearity=layer.cells[0].activation, **common)
    with torch.no_grad():
        for k in range(layer.num_layers):
            for d in range(layer.num_directions):
                cell = layer.cell(k, d)
                w_ih, w_hh, b = cell.weight_ih, cell.weight_hh, cell.bias
                if layer.kind == "gru":
                    w_ih, w_hh, b = negate_z(w_ih), negate_z(w_hh), negate_z(b)
                n_ih, n_hh, n_bih, n_bhh = _torch_names(k, d)
                getattr(module, n_ih).copy_(w_ih)
                getattr(module, n_hh).copy_(w_hh)
                getattr(module, n_bih).copy_(b)
                getattr(module, n_bhh).zero_()
    return module.train(layer.training)


def from_torch(module: nn.RNNBase, **options) -> RecurrentLayer:
    """The rnnkit layer computing exactly what ``module`` computes.

    ``options`` go to the layer's constructor (e.g. ``engine``, ``return_sequences``).
    Raises :class:`RnnkitError` for an LSTM with ``proj_size > 0`` and for a GRU whose b_hn
    (the n block of ``bias_hh``) is nonzero: rnnkit's GRU has one bias per gate.
    """
    name = type(module).__name__
    if isinstance(module, nn.LSTM):
        if module.proj_size:
            raise RnnkitError(f"from_torch: LSTM proj_size={module.proj_size} is not supported")
        cls, cell_options = LSTM, {}
    elif isinstance(module, nn.GRU):
        cls, cell_options = GRU, {"reset_after": True}
    elif isinstance(module, nn.RNN):
        cls, cell_options = RNN, {"activation": module.nonlinearity}
    else:
        raise RnnkitError(f"from_torch needs a torch.nn.RNN, LSTM or GRU, got {name}")
    D = 2 if module.bidirectional else 1

    if cls is GRU and module.bias:
        N = module.hidden_size
        for k in range(module.num_layers):
            for d in range(D):
                b_hn = getattr(module, _torch_names(k, d)[3])[2 * N :]
                if b_hn.abs().max() != 0:
                    raise RnnkitError(
                        f"from_torch: {_torch_names(k, d)[3]} has a nonzero n block (b_hn). "
                        "torch.nn.GRU computes n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)); "
                        "rnnkit's GRU has one bias per gate and cannot express b_hn inside the "
                        "reset. Zero that block (e.g. fine-tune with it frozen at 0) to convert "
                        "exactly"
                    )

    ref = module.weight_ih_l0
    layer = cls(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        dropout=float(module.dropout),
        batch_first=module.batch_first,
        **{**cell_options, **options},
    ).to(device=ref.device, dtype=ref.dtype)
    with torch.no_grad():
        for k in range(module.num_layers):
            for d in range(D):
                n_ih, n_hh, n_bih, n_bhh = _torch_names(k, d)
                w_ih, w_hh = getattr(module, n_ih), getattr(module, n_hh)
                if module.bias:
                    b = getattr(module, n_bih) + getattr(module, n_bhh)
                else:
                    b = torch.zeros_like(w_ih[:, 0])
                if cls is GRU:
                    w_ih, w_hh, b = negate_z(w_ih), negate_z(w_hh), negate_z(b)
                cell = layer.cell(k, d)
                cell.weight_ih.copy_(w_ih)
                cell.weight_hh.copy_(w_hh)
                cell.bias.copy_(b)
    return layer.train(module.training)
