"""Recurrent layers: shapes, lengths, state, gradients, parameter counts, errors."""

import itertools

import pytest
import torch
from torch.func import functional_call

from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN, detach_state, reset_state_rows

B, T, D_IN, N = 3, 5, 4, 6
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
# Configurations for the behavioural tests: each engine, and cells only the scan engine runs.
CONFIGS = {
    "lstm-native": (LSTM, {}),
    "gru-native": (GRU, {"reset_after": True}),
    "rnn-native": (RNN, {}),
    "lstm-scan": (LSTM, {"engine": "scan"}),
    "gru-textbook": (GRU, {}),
    "rnn-linear": (RNN, {"activation": "linear"}),
}


def hidden(state):
    return state[0] if isinstance(state, tuple) else state


def all_close(a, b, tol=1e-5):
    if isinstance(a, tuple):
        for u, v in zip(a, b, strict=True):
            torch.testing.assert_close(u, v, rtol=tol, atol=tol)
    else:
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize(
    ("kind", "engine", "bidirectional", "num_layers", "batch_first", "return_sequences"),
    list(
        itertools.product(
            LAYERS, ["auto", "scan"], [False, True], [1, 2], [True, False], [True, False]
        )
    ),
)
def test_shapes(kind, engine, bidirectional, num_layers, batch_first, return_sequences):
    layer = LAYERS[kind](
        D_IN,
        N,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        engine=engine,
        return_sequences=return_sequences,
        **({"reset_after": True} if kind == "gru" else {}),  # 'auto' runs native
    )
    assert layer.uses_native == (engine == "auto")
    D = 2 if bidirectional else 1
    LD = num_layers * D
    x = torch.randn(B, T, D_IN) if batch_first else torch.randn(T, B, D_IN)
    for lengths in (None, torch.tensor([T, 1, 3])):
        outputs, state = layer(x, lengths=lengths)
        if return_sequences:
            assert outputs.shape == ((B, T, D * N) if batch_first else (T, B, D * N))
        else:
            assert outputs.shape == (B, D * N)
        for s in state if kind == "lstm" else (state,):
            assert s.shape == (LD, B, N)

        # Unbatched: the same numbers as a batch of one, without the batch axis.
        x1 = x[0] if batch_first else x[:, 0]
        lengths1 = None if lengths is None else lengths[0]
        outputs1, state1 = layer(x1, lengths=lengths1)
        if return_sequences:
            assert outputs1.shape == (T, D * N)
            all_close(outputs1, outputs[0] if batch_first else outputs[:, 0])
        else:
            assert outputs1.shape == (D * N,)
            all_close(outputs1, outputs[0])
        for s1, s in zip(
            *((st if kind == "lstm" else (st,)) for st in (state1, state)), strict=True
        ):
            assert s1.shape == (LD, N)
            all_close(s1, s[:, 0])
        layer(x1, state1, lengths=lengths1)  # an unbatched state goes back in


@pytest.mark.parametrize("kind", list(LAYERS))
def test_parameter_counts_are_the_formulas(kind):
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    d, n = 7, 5
    layer = LAYERS[kind](d, n, num_layers=3, bidirectional=True)
    formula = 2 * G * (n * d + n * n + n) + 4 * G * (n * 2 * n + n * n + n)
    assert sum(p.numel() for p in layer.parameters()) == formula == layer.expected_num_parameters()
    assert len(layer.cells) == 6
    assert layer.cell(1, 1) is layer.cells[3]
    assert layer.cells[2].input_size == 2 * n and layer.cells[1].input_size == d


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_variable_lengths_equal_each_sequence_alone(config, bidirectional):
    cls, options = CONFIGS[config]
    layer = cls(D_IN, N, num_layers=2, bidirectional=bidirectional, **options).double()
    lengths = torch.tensor([T, 2, 4])
    x = torch.randn(B, T, D_IN, dtype=torch.float64)
    x_padded = x.clone()
    for b, n in enumerate(lengths):
        x_padded[b, n:] = 1e3  # padding must not leak into any output or state
    outputs, state = layer(x_padded, lengths=lengths)
    layer.return_sequences = False
    last_valid, _ = layer(x_padded, lengths=lengths)
    layer.return_sequences = True
    for b, n in enumerate(lengths.tolist()):
        alone, alone_state = layer(x[b : b + 1, :n])
        torch.testing.assert_close(outputs[b : b + 1, :n], alone, rtol=1e-10, atol=1e-10)
        if n < T:
            assert outputs[b, n:].abs().max() == 0
        for s, a in zip(
            *((st if isinstance(st, tuple) else (st,)) for st in (state, alone_state)), strict=True
        ):
            torch.testing.assert_close(s[:, b : b + 1], a, rtol=1e-10, atol=1e-10)
        # return_sequences=False: forward at the last valid step, backward at step 0.
        expected = alone[0, n - 1, :N]
        if bidirectional:
            expected = torch.cat([expected, alone[0, 0, N:]])
        torch.testing.assert_close(last_valid[b], expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_two_stateful_calls_equal_one_call(config):
    cls, options = CONFIGS[config]
    layer = cls(D_IN, N, num_layers=2, **options)
    x = torch.randn(B, 2 * T, D_IN)
    whole, whole_state = layer(x)
    first, state = layer(x[:, :T])
    second, state = layer(x[:, T:], detach_state(state))
    all_close(torch.cat([first, second], dim=1), whole)
    all_close(state, whole_state)


def test_initial_state_is_used_and_time_major_agrees():
    layer = LSTM(D_IN, N, num_layers=2, bidirectional=True)
    x = torch.randn(B, T, D_IN)
    h0, c0 = torch.randn(4, B, N), torch.randn(4, B, N)
    a, (h, c) = layer(x, (h0, c0))
    zero, _ = layer(x)
    assert not torch.allclose(a, zero)
    layer.batch_first = False
    b, (h2, c2) = layer(x.transpose(0, 1), (h0, c0))
    all_close(b.transpose(0, 1), a)
    all_close((h2, c2), (h, c))


@pytest.mark.parametrize("config", ["lstm-native", "gru-native", "gru-textbook", "rnn-linear"])
def test_gradcheck(config):
    """Gradients w.r.t. input, initial state and every parameter, bidirectional, lengths."""
    cls, options = CONFIGS[config]
    layer = cls(2, 3, num_layers=2, bidirectional=True, **options).double()
    names = [name for name, _ in layer.named_parameters()]
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])

    def f(x, h0, *params):
        state = (h0, torch.ones_like(h0)) if layer.kind == "lstm" else h0
        outputs, final = functional_call(
            layer, dict(zip(names, params, strict=True)), (x, state, lengths)
        )
        return outputs, hidden(final)

    params = [p.detach().clone().requires_grad_() for p in layer.parameters()]
    assert torch.autograd.gradcheck(f, (x, h0, *params), fast_mode=True)


def test_recurrent_dropout_acts_in_training_only():
    layer = LSTM(D_IN, N, recurrent_dropout=0.5)
    x = torch.randn(B, T, D_IN)
    layer.eval()
    reference, _ = layer(x)
    layer.engine = "scan"
    layer.recurrent_dropout = 0.0
    without, _ = layer(x)
    all_close(reference, without)  # eval: no dropout at all
    layer.recurrent_dropout = 0.5
    layer.train()
    dropped, _ = layer(x)
    assert not torch.allclose(dropped, reference)
    # Step 0 sees h_0 = 0, so the mask cannot change it.
    all_close(dropped[:, 0], reference[:, 0])


# -------------------------------------------------------------------------------- state helpers


@pytest.mark.parametrize("config", list(CONFIGS))
def test_autocast_bf16_keeps_the_state_in_full_precision(config):
    """Mixed precision: the fused kernel runs in bfloat16, the scan engine in float32 (its
    hand-written backward), and the state handed back stays float32 so it can be fed in again."""
    cls, kw = CONFIGS[config]
    torch.manual_seed(0)
    layer = cls(D_IN, N, num_layers=2, batch_first=True, **kw)
    x = torch.randn(B, T, D_IN)
    ref, ref_state = layer(torch.cat([x, x], dim=1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = layer(x)
        for s in state if isinstance(state, tuple) else (state,):
            assert s.dtype == torch.float32
        y2, state = layer(x, state)  # a float32 state goes back in
        layer(x.bfloat16())  # so does a bfloat16 x (from a layer below, say)
    y2.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in layer.parameters())
    if layer.uses_native:
        assert y.dtype == torch.bfloat16 or kw.get("reset_after")  # torch's GRU returns fp32
        all_close(y2.float(), ref[:, T:], tol=3e-2)
    else:
        assert y.dtype == torch.float32
        all_close(y2, ref[:, T:], tol=1e-6)
    all_close(state, ref_state, tol=3e-2)


def test_detach_state_cuts_the_graph():
    layer = LSTM(D_IN, N)
    _, state = layer(torch.randn(B, T, D_IN))
    detached = detach_state(state)
    assert all(s.grad_fn is None and not s.requires_grad for s in detached)
    assert all(torch.equal(a, b) for a, b in zip(state, detached, strict=True))
    assert detach_state(None) is None


def test_reset_state_rows_zeroes_only_those_rows():
    h = torch.randn(2, 4, 3)
    state = (h, h + 1)
    for rows in (torch.tensor([False, True, False, True]), [1, 3], torch.tensor([1, -1])):
        reset = reset_state_rows(state, rows)
        for s, before in zip(reset, state, strict=True):
            assert s[:, [1, 3]].abs().max() == 0
            assert torch.equal(s[:, [0, 2]], before[:, [0, 2]])
    cell_state = torch.randn(4, 3)
    assert reset_state_rows(cell_state, [0])[0].abs().max() == 0
    assert torch.equal(h, state[0])  # the input is not modified
    with pytest.raises(RnnkitError, match=r"rows mask must have shape \(4,\)"):
        reset_state_rows(h, torch.tensor([True, False]))
    with pytest.raises(RnnkitError, match=r"rows indices must be in \[0, 4\)"):
        reset_state_rows(h, [4])


def test_reset_rows_in_a_stateful_loop_equals_a_fresh_start():
    layer = GRU(D_IN, N, reset_after=True)
    x = torch.randn(B, 2 * T, D_IN)
    _, state = layer(x[:, :T])
    second, _ = layer(x[:, T:], reset_state_rows(state, [1]))
    fresh, _ = layer(x[1:2, T:])
    all_close(second[1:2], fresh)


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda l: l(torch.randn(B, T)), r"x must have shape \(B, T, 4\) or \(T, 4\)"),
        (lambda l: l(torch.randn(B, T, D_IN, 1)), r"x must have shape"),
        (lambda l: l(torch.randn(B, T, 5)), r"x must have shape \(B, T, 4\)"),
        (lambda l: l(torch.randn(B, T, D_IN).double()), r"x has dtype torch.float64"),
        (lambda l: l(torch.randn(B, 0, D_IN)), r"x must have at least one step"),
        (lambda l: l(torch.randn(B, T, D_IN), torch.zeros(2, B, N)), r"must be a tuple \(h, c\)"),
        (
            lambda l: l(torch.randn(B, T, D_IN), (torch.zeros(1, B, N), torch.zeros(2, B, N))),
            r"state h must have shape \(2, 3, 6\)",
        ),
        (
            lambda l: l(torch.randn(B, T, D_IN), (torch.zeros(2, B, N), torch.zeros(2, B, 5))),
            r"state c must have shape \(2, 3, 6\)",
        ),
        (lambda l: l(torch.randn(T, D_IN), (torch.zeros(2, 1, N),) * 2), r"state h .*\(2, 6\)"),
        (lambda l: l(torch.randn(B, T, D_IN), lengths=[T, 0, 1]), r"lengths must be in 1\.\.5"),
        (lambda l: l(torch.randn(B, T, D_IN), lengths=[T, 6, 1]), r"lengths must be in 1\.\.5"),
        (lambda l: l(torch.randn(B, T, D_IN), lengths=[T, 1]), r"lengths must have shape \(3,\)"),
        (lambda l: l(torch.randn(B, T, D_IN), lengths=[[T, 1, 1]]), r"lengths must have shape"),
        (lambda l: l(torch.randn(B, T, D_IN), lengths=[2.0, 1, 1]), r"lengths must be integers"),
    ],
)
def test_call_errors_name_the_argument(call, message):
    layer = LSTM(D_IN, N, num_layers=2)
    with pytest.raises(RnnkitError, match=message):
        call(layer)


def test_state_error_for_a_single_tensor_layer():
    with pytest.raises(RnnkitError, match=r"state must have shape \(1, 3, 6\)"):
        GRU(D_IN, N)(torch.randn(B, T, D_IN), torch.zeros(B, N))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LSTM(0, N), "input_size must be an integer >= 1, got 0"),
        (lambda: LSTM(D_IN, -1), "hidden_size must be an integer >= 1, got -1"),
        (lambda: LSTM(D_IN, N, num_layers=0), "num_layers must be an integer >= 1"),
        (lambda: LSTM(D_IN, 2.5), "hidden_size must be an integer"),
        (lambda: LSTM(D_IN, N, dropout=1.0), r"dropout must be a probability in \[0, 1\)"),
        (lambda: LSTM(D_IN, N, recurrent_dropout=-0.1), "recurrent_dropout must be"),
        (lambda: LSTM(D_IN, N, engine="cudnn"), r"engine must be one of \['auto'"),
        (lambda: LSTM(D_IN, N, reset_after=True), "unknown cell options"),
        (lambda: RNN(D_IN, N, activation="swish"), "RNN activation must be one of"),
        (lambda: GRU(D_IN, N, engine="native"), "engine='native' cannot run this GRU"),
    ],
)
def test_construction_errors_name_the_argument(make, message):
    with pytest.raises(RnnkitError, match=message):
        make()
