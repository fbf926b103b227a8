"""The native engine (torch's fused kernel) gives the scan engine's numbers, and is chosen when
it applies."""

import pytest
import torch

import rnnkit.nn.layers as layers_module
from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN

B, T, D_IN, N = 3, 5, 4, 6
NATIVE_CONFIGS = {
    "lstm": (LSTM, {}),
    "gru": (GRU, {"reset_after": True}),
    "rnn_tanh": (RNN, {}),
    "rnn_relu": (RNN, {"activation": "relu"}),
}
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


def run_with_grads(layer, x, state, lengths, weights):
    """Outputs, final state, and the gradients of a random linear loss w.r.t. everything."""
    layer.zero_grad()
    x = x.clone().requires_grad_()
    state = tuple(s.clone().requires_grad_() for s in state)
    outputs, final = layer(x, state if layer.kind == "lstm" else state[0], lengths)
    final = final if isinstance(final, tuple) else (final,)
    loss = (outputs * weights[0]).sum() + sum(
        (f * w).sum() for f, w in zip(final, weights[1:], strict=True)
    )
    loss.backward()
    grads = [x.grad, *(s.grad for s in state)] + [p.grad for p in layer.parameters()]
    return [outputs, *final, *grads]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("varied_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("config", list(NATIVE_CONFIGS))
def test_native_and_scan_agree(config, bidirectional, num_layers, varied_lengths, dtype):
    cls, options = NATIVE_CONFIGS[config]
    layer = cls(D_IN, N, num_layers=num_layers, bidirectional=bidirectional, **options)
    layer = layer.to(dtype)
    LD = num_layers * layer.num_directions
    x = torch.randn(B, T, D_IN, dtype=dtype)
    state = (torch.randn(LD, B, N, dtype=dtype),)
    if layer.kind == "lstm":
        state += (torch.randn(LD, B, N, dtype=dtype),)
    lengths = torch.tensor([T, 2, 4]) if varied_lengths else None
    weights = [torch.randn(B, T, layer.num_directions * N, dtype=dtype)]
    weights += [torch.randn(LD, B, N, dtype=dtype) for _ in state]

    assert layer.uses_native
    layer.engine = "native"  # 'auto' gives a variable-length CPU batch to the scan engine
    native = run_with_grads(layer, x, state, lengths, weights)
    layer.engine = "scan"
    scan = run_with_grads(layer, x, state, lengths, weights)
    tol = TOLERANCE[dtype]
    for a, b in zip(native, scan, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    if varied_lengths:
        assert native[0][1, 2:].abs().max() == 0  # padded outputs are 0


def test_native_and_scan_agree_in_training_mode_without_dropout():
    layer = LSTM(D_IN, N, num_layers=2, bidirectional=True).train()
    x = torch.randn(B, T, D_IN)
    a, _ = layer(x, lengths=torch.tensor([1, 5, 3]))
    layer.engine = "scan"
    b, _ = layer(x, lengths=torch.tensor([1, 5, 3]))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_auto_runs_native_kernel_only(monkeypatch):
    """engine='auto' on a native configuration and a full-length batch never touches the scan
    engine."""

    def fail(*args, **kwargs):
        raise AssertionError("scan engine called")

    monkeypatch.setattr(layers_module, "scan_layer", fail)
    for cls, options in NATIVE_CONFIGS.values():
        layer = cls(D_IN, N, num_layers=2, bidirectional=True, **options)
        layer(torch.randn(B, T, D_IN))
        layer(torch.randn(B, T, D_IN), lengths=torch.tensor([T, T, T]))


@pytest.mark.parametrize(
    ("cls", "options", "reason"),
    [
        (GRU, {}, "reset_after=False"),
        (LSTM, {"activation": "linear"}, "activation='linear'"),
        (LSTM, {"gate_activation": "linear"}, "gate_activation='linear'"),
        (RNN, {"activation": "sigmoid"}, "activation='sigmoid'"),
        (LSTM, {"recurrent_dropout": 0.2}, "recurrent_dropout"),
    ],
)
def test_auto_falls_back_to_scan_and_native_says_why(monkeypatch, cls, options, reason):
    layer = cls(D_IN, N, **options)
    assert not layer.uses_native
    assert reason in layer.native_blocker()

    def fail(*args, **kwargs):
        raise AssertionError("native engine called")

    monkeypatch.setattr(layers_module, "native_forward", fail)
    outputs, _ = layer(torch.randn(B, T, D_IN))
    assert outputs.shape == (B, T, N)
    with pytest.raises(RnnkitError, match=f"engine='native'.*{reason}"):
        cls(D_IN, N, engine="native", **options)
    # A layer whose cells change after construction is checked again at call time.
    layer.engine = "native"
    with pytest.raises(RnnkitError, match="engine='native'"):
        layer(torch.randn(B, T, D_IN))


def test_native_gru_leaves_parameters_untouched():
    """The z block is negated in a copy fed to the kernel, never in the parameters."""
    layer = GRU(D_IN, N, reset_after=True)
    before = [p.detach().clone() for p in layer.parameters()]
    layer(torch.randn(B, T, D_IN))[0].sum().backward()
    for p, q in zip(layer.parameters(), before, strict=True):
        assert torch.equal(p, q)


def test_native_dropout_is_applied_in_training_and_not_in_eval():
    layer = LSTM(D_IN, N, num_layers=2, dropout=0.5)
    x = torch.randn(B, T, D_IN)
    layer.eval()
    a, _ = layer(x)
    b, _ = layer(x)
    assert torch.equal(a, b)
    layer.train()
    c, _ = layer(x)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("config", list(NATIVE_CONFIGS))
def test_auto_runs_variable_lengths_on_the_cpu_through_scan(monkeypatch, config):
    """The packed kernel is the slow one on the CPU (benchmarks/packed_lengths.py): 'auto' uses
    it for full-length batches only; lengths that are all T count as full length."""
    cls, options = NATIVE_CONFIGS[config]
    layer = cls(D_IN, N, bidirectional=True, batch_first=True, **options)
    calls = []
    real = layers_module.native_forward

    def spy(*args, **kwargs):
        calls.append(kwargs["lengths"])
        return real(*args, **kwargs)

    monkeypatch.setattr(layers_module, "native_forward", spy)
    x = torch.randn(B, T, D_IN)
    varied, _ = layer(x, lengths=torch.tensor([T, 2, 4]))
    assert calls == []
    layer(x, lengths=torch.tensor([T, T, T]))
    layer(x)
    assert calls == [None, None]
    layer.engine = "native"
    packed, _ = layer(x, lengths=torch.tensor([T, 2, 4]))
    assert len(calls) == 3 and calls[2] is not None
    torch.testing.assert_close(varied, packed, rtol=1e-5, atol=1e-5)
