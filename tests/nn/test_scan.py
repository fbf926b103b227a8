"""The scan engine against the cells run step by step: outputs, final states and every gradient."""

import itertools
from types import SimpleNamespace

import pytest
import torch

from rnnkit.nn.activations import ACTIVATIONS, activation
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.engines import scan_functions, scan_ops
from rnnkit.nn.engines.scan import scan_layer

ACTS = sorted(ACTIVATIONS)


def make_cell(kind, d, N, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    cell = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}[kind](d, N, **kw).to(dtype)
    return cell


def make_state(kind, B, N, dtype, requires_grad=True):
    h0 = (0.5 * torch.randn(B, N, dtype=dtype)).requires_grad_(requires_grad)
    if kind == "lstm":
        return (h0, (0.5 * torch.randn(B, N, dtype=dtype)).requires_grad_(requires_grad))
    return h0


def gru_step_masked(cell, x_t, h, m):
    """GRUCell's step with the recurrent dropout mask on h_{t-1} inside the products only."""
    σ, g = activation(cell.gate_activation), activation(cell.activation)
    W_r, W_z, W_h = cell.weight_ih.chunk(3)
    U_r, U_z, U_h = cell.weight_hh.chunk(3)
    b_r, b_z, b_h = cell.bias.chunk(3)
    hm = h * m
    z = σ(x_t @ W_z.T + hm @ U_z.T + b_z)
    r = σ(x_t @ W_r.T + hm @ U_r.T + b_r)
    if cell.reset_after:
        hh = g(x_t @ W_h.T + r * (hm @ U_h.T) + b_h)
    else:
        hh = g(x_t @ W_h.T + (r * hm) @ U_h.T + b_h)
    return (1 - z) * h + z * hh


def step(cell, x_t, state, mask):
    """One step of the cell, with the dropout mask applied where the scan engine applies it."""
    if mask is None:
        return cell(x_t, state)
    if cell.kind == "lstm":
        h, c = cell(x_t, (state[0] * mask, state[1]))
        return h, c
    if cell.kind == "rnn":
        return cell(x_t, state * mask)
    return gru_step_masked(cell, x_t, state, mask)


def reference(cell, x, state0, lengths=None, reverse=False, mask=None):
    """Each row alone through the cell, one step at a time: the definition of the semantics."""
    T, B, _ = x.shape
    lstm = cell.kind == "lstm"
    outs, finals = [], []
    for b in range(B):
        L = T if lengths is None else int(lengths[b])
        st = (state0[0][b : b + 1], state0[1][b : b + 1]) if lstm else state0[b : b + 1]
        m = None if mask is None else mask[b : b + 1]
        rows = [None] * T
        order = range(L - 1, -1, -1) if reverse else range(L)
        for t in order:
            st = step(cell, x[t, b : b + 1], st, m)
            rows[t] = st[0] if lstm else st
        zero = x.new_zeros(1, cell.hidden_size)
        outs.append(torch.cat([r if r is not None else zero for r in rows], 0))
        finals.append(st)
    out = torch.stack(outs, 1)
    if lstm:
        return out, (torch.cat([f[0] for f in finals]), torch.cat([f[1] for f in finals]))
    return out, torch.cat(finals)


def flat(out, final):
    return [out, *final] if isinstance(final, tuple) else [out, final]


def leaves(cell, x, state0):
    st = list(state0) if isinstance(state0, tuple) else [state0]
    return [x, *st, cell.weight_ih, cell.weight_hh, cell.bias]


def compare(cell, x, state0, tol, **kw):
    """Forward values and gradients wrt x, state0 and the weights, engine vs reference."""
    ref_kw = {"lengths": kw.get("lengths"), "reverse": kw.get("reverse", False)}
    ref_kw["mask"] = kw.get("dropout_mask")
    got = flat(*scan_layer(cell, x, state0, **kw))
    want = flat(*reference(cell, x, state0, **ref_kw))
    torch.manual_seed(123)
    cot = [torch.randn_like(w) for w in want]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, atol=tol, rtol=tol)
    ins = leaves(cell, x, state0)
    g_got = torch.autograd.grad(got, ins, cot)
    g_want = torch.autograd.grad(want, ins, cot)
    for name, a, b in zip(
        ["x", "state", "state", "W_ih", "W_hh", "b"], g_got, g_want, strict=False
    ):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol, msg=lambda m, n=name: f"d{n}: {m}")


CONFIGS = (
    [("rnn", {"activation": a}) for a in ACTS]
    + [("lstm", {"gate_activation": "sigmoid", "activation": a}) for a in ACTS]
    + [("lstm", {"gate_activation": a, "activation": "tanh"}) for a in ACTS if a != "sigmoid"]
    + [
        ("gru", {"reset_after": ra, "activation": a, "gate_activation": "sigmoid"})
        for ra in (False, True)
        for a in ACTS
    ]
    + [("gru", {"reset_after": False, "gate_activation": a}) for a in ACTS if a != "sigmoid"]
)


@pytest.mark.parametrize("kind,kw", CONFIGS, ids=lambda v: str(v))
def test_matches_cell_float64(kind, kw):
    cell = make_cell(kind, 3, 4, **kw)
    x = torch.randn(5, 3, 3, dtype=torch.float64, requires_grad=True)
    compare(cell, x, make_state(kind, 3, 4, torch.float64), 1e-10)


@pytest.mark.parametrize(
    "kind,reset_after,reverse,use_len,use_mask",
    [
        (k, ra, rv, ln, mk)
        for k, ra in (("rnn", False), ("lstm", False), ("gru", False), ("gru", True))
        for rv, ln, mk in itertools.product((False, True), repeat=3)
    ],
)
def test_options_float64(kind, reset_after, reverse, use_len, use_mask):
    kw = {"reset_after": reset_after} if kind == "gru" else {}
    cell = make_cell(kind, 3, 4, **kw)
    T, B = 6, 4
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([6, 1, 4, 3]) if use_len else None
    mask = None
    if use_mask:
        mask = (torch.rand(B, 4) > 0.3).double() / 0.7
    compare(
        cell,
        x,
        make_state(kind, B, 4, torch.float64),
        1e-10,
        lengths=lengths,
        reverse=reverse,
        dropout_mask=mask,
    )


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("T,B", [(1, 3), (5, 1), (1, 1)])
def test_edge_sizes(kind, T, B):
    cell = make_cell(kind, 2, 3)
    x = torch.randn(T, B, 2, dtype=torch.float64, requires_grad=True)
    compare(cell, x, make_state(kind, B, 3, torch.float64), 1e-10, lengths=torch.full((B,), T))
    compare(cell, x, make_state(kind, B, 3, torch.float64), 1e-10, reverse=True)


@pytest.mark.parametrize(
    "kind,kw",
    [("rnn", {}), ("lstm", {}), ("gru", {"reset_after": False}), ("gru", {"reset_after": True})],
)
def test_float32_tolerance(kind, kw):
    cell = make_cell(kind, 16, 32, dtype=torch.float32, **kw)
    T, B = 20, 8
    x = torch.randn(T, B, 16, requires_grad=True)
    lengths = torch.randint(1, T + 1, (B,))
    mask = (torch.rand(B, 32) > 0.25).float() / 0.75
    compare(cell, x, make_state(kind, B, 32, torch.float32), 1e-5, lengths=lengths)
    compare(cell, x, make_state(kind, B, 32, torch.float32), 1e-5, reverse=True, dropout_mask=mask)


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("rnn", {"activation": "tanh"}),
        ("lstm", {}),
        ("lstm", {"gate_activation": "sigmoid", "activation": "linear"}),
        ("gru", {"reset_after": False}),
        ("gru", {"reset_after": True}),
    ],
)
@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck(kind, kw, reverse):
    cell = make_cell(kind, 2, 3, **kw)
    B = 2
    x = torch.randn(4, B, 2, dtype=torch.float64, requires_grad=True)
    state0 = make_state(kind, B, 3, torch.float64)
    st = list(state0) if isinstance(state0, tuple) else [state0]
    lengths = torch.tensor([4, 2])
    mask = torch.tensor([[2.0, 0.0, 2.0], [2.0, 2.0, 0.0]], dtype=torch.float64)
    params = [
        p.detach().clone().requires_grad_() for p in (cell.weight_ih, cell.weight_hh, cell.bias)
    ]
    # The engine reads only these attributes, so a stand-in lets gradcheck own the weights.
    attrs = {a: getattr(cell, a) for a in ("kind", "activation", "hidden_size", "gates")}
    attrs.update(
        {a: getattr(cell, a) for a in ("gate_activation", "reset_after") if hasattr(cell, a)}
    )

    def fn(x, *rest):
        s = tuple(rest[: len(st)])
        w_ih, w_hh, b = rest[len(st) :]
        c = SimpleNamespace(weight_ih=w_ih, weight_hh=w_hh, bias=b, **attrs)
        s0 = s if kind == "lstm" else s[0]
        return tuple(
            flat(*scan_layer(c, x, s0, lengths=lengths, reverse=reverse, dropout_mask=mask))
        )

    assert torch.autograd.gradcheck(fn, (x, *st, *params))


@pytest.mark.parametrize(
    "kind,kw", [("rnn", {}), ("lstm", {}), ("gru", {}), ("gru", {"reset_after": True})]
)
@pytest.mark.parametrize("steps_per_run", [1, 2])
def test_runs_of_steps(monkeypatch, kind, kw, steps_per_run):
    """The backward factors are computed per run of steps; runs that do not divide T."""
    cell = make_cell(kind, 3, 4, **kw)
    T, B = 5, 3
    row_bytes = B * cell.weight_hh.shape[0] * 8
    monkeypatch.setattr(scan_functions, "CHUNK_BYTES", steps_per_run * row_bytes)
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(B, 4) > 0.3).double() / 0.7
    for reverse in (False, True):
        compare(
            cell, x, make_state(kind, B, 4, torch.float64), 1e-10,
            lengths=torch.tensor([5, 2, 3]), reverse=reverse, dropout_mask=mask,
        )  # fmt: skip


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_no_grad_and_partial_grads(kind):
    """Inference keeps nothing for backward and gives the same numbers; frozen inputs work."""
    cell = make_cell(kind, 3, 4, dtype=torch.float32)
    x = torch.randn(6, 2, 3)
    state0 = make_state(kind, 2, 4, torch.float32, requires_grad=False)
    with torch.no_grad():
        out_ng, fin_ng = scan_layer(cell, x, state0, reverse=True)
    out, fin = scan_layer(cell, x, state0, reverse=True)
    torch.testing.assert_close(out_ng, out.detach())
    want = reference(cell, x, state0, reverse=True)[0]
    torch.testing.assert_close(out, want, atol=1e-5, rtol=1e-5)
    # only the recurrent weight asks for a gradient
    for p in (cell.weight_ih, cell.bias):
        p.requires_grad_(False)
    (g,) = torch.autograd.grad(out.sum(), [cell.weight_hh])
    (g_ref,) = torch.autograd.grad(want.sum(), [cell.weight_hh])
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_packed_products_match_plain(monkeypatch, kind):
    """float32 on CPU runs the per-step products MKL-packed; same numbers as plain products."""
    cell = make_cell(kind, 8, 16, dtype=torch.float32)
    x = torch.randn(7, 5, 8, requires_grad=True)
    state0 = make_state(kind, 5, 16, torch.float32)
    results = []
    for packed in (True, False):
        monkeypatch.setattr(scan_ops, "USE_MKL_PACKED", packed)
        got = flat(*scan_layer(cell, x, state0))
        grads = torch.autograd.grad(sum(g.sum() for g in got), leaves(cell, x, state0))
        results.append([*got, *grads])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_thread_count_restored(monkeypatch):
    """The loops run small operations on one thread; the caller's setting comes back."""
    cell = make_cell("lstm", 8, 16, dtype=torch.float32)
    x = torch.randn(6, 4, 8, requires_grad=True)
    state0 = make_state("lstm", 4, 16, torch.float32)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        results = []
        for serial in (True, False):
            monkeypatch.setattr(scan_ops, "SERIAL_STEPS", serial)
            out, (h, c) = scan_layer(cell, x, state0, reverse=True)
            assert torch.get_num_threads() == 2
            (g,) = torch.autograd.grad((out.sum() + c.sum()), [cell.weight_hh])
            assert torch.get_num_threads() == 2
            results.append((out, g))
        torch.testing.assert_close(results[0], results[1])
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_retain_graph_twice(kind):
    """A kept graph gives the same gradients on a second backward pass (the first one may not
    overwrite what the second needs)."""
    cell = make_cell(kind, 3, 4, dtype=torch.float32)
    x = torch.randn(5, 2, 3, requires_grad=True)
    out, _ = scan_layer(cell, x, make_state(kind, 2, 4, torch.float32), reverse=True)
    loss = (out * torch.randn_like(out)).sum()
    first = torch.autograd.grad(loss, [x, cell.weight_hh], retain_graph=True)
    second = torch.autograd.grad(loss, [x, cell.weight_hh])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)
