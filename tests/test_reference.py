"""The hand-written BPTT in rnnkit.reference against torch autograd, finite differences and
the cells of rnnkit.nn.cells."""

import numpy as np
import pytest
import torch

from rnnkit import reference as ref
from rnnkit.errors import RnnkitError
from rnnkit.nn.activations import ACTIVATIONS
from rnnkit.nn.cells import CELLS

D, N = 3, 4  # input and hidden size: tiny, every case runs in milliseconds

CONFIGS = [
    *[("rnn", {"activation": a}) for a in sorted(ACTIVATIONS)],
    ("lstm", {}),
    ("lstm", {"activation": "linear"}),  # the lecture's hand calculations
    ("lstm", {"gate_activation": "tanh", "activation": "relu"}),
    ("lstm", {"gate_activation": "leaky_relu", "activation": "sigmoid"}),
    ("gru", {"reset_after": False}),
    ("gru", {"reset_after": True}),
    ("gru", {"reset_after": False, "gate_activation": "tanh", "activation": "leaky_relu"}),
    ("gru", {"reset_after": True, "activation": "linear"}),
]
CONFIG_IDS = [f"{k}-" + "-".join(f"{v}" for v in c.values()) for k, c in CONFIGS]
SHAPES = [(5, 3), (1, 2), (4, 1), (1, 1)]  # (T, B), with T = 1 and B = 1


def make_problem(kind, T, B, seed=0):
    """Random parameters, inputs, initial states, and the loss's weights R, S, S_c."""
    rng = np.random.default_rng(seed)
    G = ref.GATES[kind]
    p = dict(
        x=rng.normal(size=(T, B, D)),
        h0=0.5 * rng.normal(size=(B, N)),
        c0=0.5 * rng.normal(size=(B, N)) if kind == "lstm" else None,
        W_ih=rng.uniform(-0.8, 0.8, size=(G * N, D)),
        W_hh=rng.uniform(-0.8, 0.8, size=(G * N, N)),
        b=rng.uniform(-0.5, 0.5, size=(G * N,)),
    )
    # L = Σ_t <h_t, R_t> + <h_T, S> (+ <c_T, S_c>): so ∂L/∂h_t = R_t, and dh_T = S, dc_T = S_c.
    w = dict(
        R=rng.normal(size=(T, B, N)),
        S=rng.normal(size=(B, N)),
        S_c=rng.normal(size=(B, N)) if kind == "lstm" else None,
    )
    return p, w


def loss_of(hs, cache, w):
    loss = np.sum(hs * w["R"]) + np.sum(hs[-1] * w["S"])
    if w["S_c"] is not None:
        loss += np.sum(cache["c"][-1] * w["S_c"])
    return loss


def reference_grads(kind, config, p, w):
    hs, cache = ref.forward(kind, **p, **config)
    return hs, cache, ref.backward(w["R"], cache, dh_T=w["S"], dc_T=w["S_c"])


def torch_run(kind, config, p, w):
    """The same loss through rnnkit.nn.cells stepped over time, differentiated by autograd."""
    cell = CELLS[kind](D, N, **config).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(p["W_ih"]))
        cell.weight_hh.copy_(torch.from_numpy(p["W_hh"]))
        cell.bias.copy_(torch.from_numpy(p["b"]))
    leaves = {
        k: torch.tensor(p[k], requires_grad=True) for k in ("x", "h0", "c0") if p[k] is not None
    }
    h, c = leaves["h0"], leaves.get("c0")
    hs = []
    for x_t in leaves["x"].unbind(0):
        if kind == "lstm":
            h, c = cell(x_t, (h, c))
        else:
            h = cell(x_t, h)
        hs.append(h)
    hs = torch.stack(hs)
    loss = (hs * torch.from_numpy(w["R"])).sum() + (hs[-1] * torch.from_numpy(w["S"])).sum()
    if kind == "lstm":
        loss = loss + (c * torch.from_numpy(w["S_c"])).sum()
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in leaves.items()}
    grads.update(W_ih=cell.weight_ih.grad.numpy(), W_hh=cell.weight_hh.grad.numpy())
    grads["b"] = cell.bias.grad.numpy()
    return hs.detach().numpy(), (c.detach().numpy() if c is not None else None), grads


def rel_err(a, b):
    assert a.shape == b.shape
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else np.linalg.norm(a - b) / scale


def expected_keys(kind):
    return {"x", "h0", "W_ih", "W_hh", "b"} | ({"c0"} if kind == "lstm" else set())


@pytest.mark.parametrize("T,B", SHAPES)
@pytest.mark.parametrize("kind,config", CONFIGS, ids=CONFIG_IDS)
def test_forward_matches_cell(kind, config, T, B):
    p, w = make_problem(kind, T, B)
    hs, cache = ref.forward(kind, **p, **config)
    hs_torch, c_torch, _ = torch_run(kind, config, p, w)
    assert hs.shape == (T, B, N)
    np.testing.assert_allclose(hs, hs_torch, rtol=1e-12, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(cache["c"][-1], c_torch, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T,B", SHAPES)
@pytest.mark.parametrize("kind,config", CONFIGS, ids=CONFIG_IDS)
def test_backward_matches_autograd(kind, config, T, B):
    p, w = make_problem(kind, T, B, seed=T * 10 + B)
    _, _, grads = reference_grads(kind, config, p, w)
    _, _, grads_torch = torch_run(kind, config, p, w)
    assert set(grads) == expected_keys(kind) == set(grads_torch)
    for name in grads:
        assert np.linalg.norm(grads_torch[name]) > 0, name  # a real comparison, not 0 == 0
        assert rel_err(grads[name], grads_torch[name]) <= 1e-8, name


@pytest.mark.parametrize("T,B", [(3, 2), (1, 1)])
@pytest.mark.parametrize("kind,config", CONFIGS, ids=CONFIG_IDS)
def test_backward_matches_finite_differences(kind, config, T, B):
    p, w = make_problem(kind, T, B, seed=7)
    _, _, grads = reference_grads(kind, config, p, w)
    for name in expected_keys(kind):
        before = p[name].copy()

        def loss():
            hs, cache = ref.forward(kind, **p, **config)
            return loss_of(hs, cache, w)

        numeric = ref.numerical_gradient(loss, p[name], eps=1e-6)
        np.testing.assert_array_equal(p[name], before)  # restored after probing
        assert rel_err(grads[name], numeric) <= 1e-6, name


def test_bptt_recursion_equals_the_double_sum():
    """∂L/∂W_hh = Σ_t Σ_{k≤t} ∂L_t/∂h_t · ∂h_t/∂h_k · ∂⁺h_k/∂W_hh, written out literally."""
    T, N_ = 5, N
    p, w = make_problem("rnn", T, 1, seed=3)
    hs, cache = ref.rnn_forward(p["x"], p["h0"], p["W_ih"], p["W_hh"], p["b"])
    h, h_prev = hs[:, 0], np.concatenate([p["h0"], hs[:-1, 0]])
    g_prime = 1 - h**2  # tanh' at every step, (T, N)
    jac = [np.diag(g_prime[j]) @ p["W_hh"] for j in range(T)]  # ∂h_j/∂h_{j-1}
    dW_hh = np.zeros((N_, N_))
    for t in range(T):
        v = w["R"][t, 0]  # ∂L_t/∂h_t
        for k in range(t, -1, -1):  # v = ∂L_t/∂h_t · ∂h_t/∂h_k
            dW_hh += np.outer(v * g_prime[k], h_prev[k])  # · ∂⁺h_k/∂W_hh
            v = v @ jac[k]
    grads = ref.rnn_backward(w["R"], cache)
    assert rel_err(grads["W_hh"], dW_hh) <= 1e-12


def test_lstm_cell_state_highway():
    """With W_hh = 0 and a loss on c_T only, the gradient reaching c_0 is S_c ⊙ Π_t f_t."""
    p, w = make_problem("lstm", 6, 2, seed=1)
    p["W_hh"][:] = 0
    _, _, cache = ref.lstm_forward(p["x"], p["h0"], p["c0"], p["W_ih"], p["W_hh"], p["b"])
    grads = ref.lstm_backward(None, cache, dc_T=w["S_c"])
    np.testing.assert_allclose(grads["c0"], w["S_c"] * cache["f"].prod(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(grads["h0"], 0)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_update_gate_highway(reset_after):
    """With W_hh = 0 and a loss on h_T only, the gradient reaching h_0 is S ⊙ Π_t (1 - z_t)."""
    p, w = make_problem("gru", 6, 2, seed=2)
    p["W_hh"][:] = 0
    hs, cache = ref.gru_forward(
        p["x"], p["h0"], p["W_ih"], p["W_hh"], p["b"], reset_after=reset_after
    )
    grads = ref.gru_backward(None, cache, dh_T=w["S"])
    np.testing.assert_allclose(grads["h0"], w["S"] * (1 - cache["z"]).prod(axis=0), rtol=1e-12)


def test_none_initial_state_is_zeros():
    p, _ = make_problem("lstm", 3, 2)
    hs, c_T, _ = ref.lstm_forward(p["x"], None, None, p["W_ih"], p["W_hh"], p["b"])
    hs0, c_T0, _ = ref.lstm_forward(
        p["x"], np.zeros((2, N)), np.zeros((2, N)), p["W_ih"], p["W_hh"], p["b"]
    )
    np.testing.assert_array_equal(hs, hs0)
    np.testing.assert_array_equal(c_T, c_T0)


def test_bad_arguments_raise_rnnkit_error():
    p, _ = make_problem("gru", 3, 2)
    args = (p["h0"], p["W_ih"], p["W_hh"], p["b"])
    with pytest.raises(RnnkitError, match=r"x must have shape \(T, B, d\)"):
        ref.gru_forward(p["x"][0], *args)
    with pytest.raises(RnnkitError, match="W_ih must have shape"):
        ref.rnn_forward(p["x"], p["h0"], p["W_ih"], p["W_hh"][:N], p["b"][:N])
    with pytest.raises(RnnkitError, match="W_hh must have shape"):
        ref.gru_forward(p["x"], p["h0"], p["W_ih"], p["W_hh"][:, :2], p["b"])
    with pytest.raises(RnnkitError, match=r"h0 must have shape \(B, N\)"):
        ref.gru_forward(p["x"], p["h0"][:1], *args[1:])
    with pytest.raises(RnnkitError, match="GRU activation"):
        ref.gru_forward(p["x"], *args, activation="softplus")
    _, cache = ref.gru_forward(p["x"], *args)
    with pytest.raises(RnnkitError, match="dhs must have shape"):
        ref.gru_backward(np.zeros((2, 2, N)), cache)
    with pytest.raises(RnnkitError, match="dc_T is only for an lstm"):
        ref.backward(None, cache, dc_T=np.zeros((2, N)))
    with pytest.raises(RnnkitError, match="kind must be one of"):
        ref.forward("transformer", *(p[k] for k in ("x", "h0", "W_ih", "W_hh", "b")))
