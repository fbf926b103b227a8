"""Conversion to and from torch.nn.RNN / LSTM / GRU is exact."""

import pytest
import torch
from torch import nn

from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN, from_torch, to_torch

B, T, D_IN, N = 3, 5, 4, 6


def zero_b_hn(module: nn.GRU) -> nn.GRU:
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.startswith("bias_hh"):
                p[2 * module.hidden_size :].zero_()
    return module


def torch_modules():
    yield nn.LSTM(D_IN, N, num_layers=2, bidirectional=True, batch_first=True)
    yield nn.LSTM(D_IN, N, batch_first=False, bias=False)
    yield zero_b_hn(nn.GRU(D_IN, N, num_layers=2, bidirectional=True, batch_first=True))
    yield nn.RNN(D_IN, N, num_layers=2, nonlinearity="relu", batch_first=True)
    yield nn.RNN(D_IN, N, bidirectional=True, batch_first=True).double()


@pytest.mark.parametrize("module", list(torch_modules()), ids=lambda m: repr(m))
@pytest.mark.parametrize("engine", ["native", "scan"])
def test_from_torch_computes_the_same(module, engine):
    cls = {nn.LSTM: LSTM, nn.GRU: GRU, nn.RNN: RNN}[type(module)]
    layer = from_torch(module, engine=engine)
    assert isinstance(layer, cls) and layer.batch_first == module.batch_first
    assert layer.cells[0].weight_ih.dtype == module.weight_ih_l0.dtype
    dtype = module.weight_ih_l0.dtype
    x = torch.randn(B, T, D_IN, dtype=dtype)
    if not module.batch_first:
        x = x.transpose(0, 1)
    ours, ours_state = layer(x)
    ref, ref_state = module(x)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)
    for a, b in zip(
        *((s if isinstance(s, tuple) else (s,)) for s in (ours_state, ref_state)), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "layer",
    [
        LSTM(D_IN, N, num_layers=2, bidirectional=True),
        GRU(D_IN, N, num_layers=2, reset_after=True, batch_first=False),
        RNN(D_IN, N, activation="relu", bidirectional=True),
    ],
    ids=["lstm", "gru", "rnn"],
)
def test_to_torch_and_back_round_trips(layer):
    module = to_torch(layer)
    assert module.num_layers == layer.num_layers and module.bidirectional == layer.bidirectional
    for name, p in module.named_parameters():
        if name.startswith("bias_hh"):
            assert p.abs().max() == 0  # the second bias is zero
    x = torch.randn(B, T, D_IN)
    if not layer.batch_first:
        x = x.transpose(0, 1)
    lengths = torch.tensor([T, 2, 3])
    packed = nn.utils.rnn.pack_padded_sequence(
        x, lengths, batch_first=layer.batch_first, enforce_sorted=False
    )
    ref, _ = nn.utils.rnn.pad_packed_sequence(
        module(packed)[0], batch_first=layer.batch_first, total_length=T
    )
    torch.testing.assert_close(layer(x, lengths=lengths)[0], ref, rtol=1e-5, atol=1e-5)

    back = from_torch(module)
    for a, b in zip(layer.parameters(), back.parameters(), strict=True):
        assert torch.equal(a, b)  # negating z twice and adding a zero bias are exact


def test_from_torch_gru_with_b_hn_explains():
    module = nn.GRU(D_IN, N)
    with pytest.raises(RnnkitError, match=r"bias_hh_l0 has a nonzero n block \(b_hn\)"):
        from_torch(module)


def test_conversion_errors():
    with pytest.raises(RnnkitError, match="reset_after=False"):
        to_torch(GRU(D_IN, N))
    with pytest.raises(RnnkitError, match="activation='linear'"):
        to_torch(LSTM(D_IN, N, activation="linear"))
    with pytest.raises(RnnkitError, match="proj_size=2"):
        from_torch(nn.LSTM(D_IN, N, proj_size=2))
    with pytest.raises(RnnkitError, match="got Linear"):
        from_torch(nn.Linear(2, 2))
