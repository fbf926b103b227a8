r"""The forward pass and backpropagation through time (BPTT) of RNN, LSTM and GRU, by hand.

This is the maths of :mod:`rnnkit.nn.cells` written out once more in NumPy, without autograd,
so that every gradient can be followed from the loss back to the weights. The tests check it
against torch's autograd and against finite differences; nothing fast depends on it.

Conventions
-----------
Time-major, one layer, one direction, float64: ``x`` is (T, B, d), a state is (B, N). The
parameters are laid out as in :mod:`rnnkit.nn.cells`: ``W_ih`` (G·N, d), ``W_hh`` (G·N, N),
``b`` (G·N,), gate blocks stacked in PyTorch's order (LSTM i, f, c̃, o; GRU r, z, h̃). Rows
are batch items, so every affine map reads a_t = x_t W_ih^T + h_{t-1} W_hh^T + b. In the
code ``dX`` always means ∂L/∂X for the whole loss L.

Backpropagation through time
----------------------------
The loss is a sum over time, L = Σ_t L_t, and the same W_hh is used at every step. The chain
rule gives the lecture's double sum

    ∂L/∂W_hh = Σ_t Σ_{k≤t} ∂L_t/∂h_t · ∂h_t/∂h_k · ∂⁺h_k/∂W_hh

where ∂⁺h_k/∂W_hh is the *immediate* derivative (h_{k-1} held fixed) and
∂h_t/∂h_k = ∂h_t/∂h_{t-1} ··· ∂h_{k+1}/∂h_k is a product of one-step Jacobians. Computed as
written that is O(T²) products of Jacobians. Swap the two sums and name the inner one:

    δ_k := ∂L/∂h_k = Σ_{t≥k} ∂L_t/∂h_t · ∂h_t/∂h_k
                   = ∂L_k/∂h_k + δ_{k+1} · ∂h_{k+1}/∂h_k        (the backward recursion)

    ∂L/∂W_hh = Σ_k δ_k · ∂⁺h_k/∂W_hh

So one sweep from t = T down to 1 carries δ backwards, adds the loss's own gradient at each
step (``dhs[t]``, from the layer above or the loss), and accumulates each parameter's
immediate gradient on the way: O(T). W_ih and b are accumulated the same way. For the vanilla
RNN the one-step Jacobian is ∂h_t/∂h_{t-1} = diag(g'(a_t)) W_hh; its repeated product is why
gradients vanish or explode over long spans.

LSTM: the cell state opens a second path. Because c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t,

    dc_{t-1} = dc_t ⊙ f_t   (+ what reaches c_{t-1} through h_{t-1} = o_{t-1} ⊙ tanh(c_{t-1}))

with no weight matrix and no squashing derivative in between: while the forget gate stays
open (f_t ≈ 1) the gradient rides this "highway" across many steps unchanged. At each step
dc_t therefore has two sources: the highway from c_{t+1}, and h_t = o_t ⊙ tanh(c_t).

GRU: h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t gives ∂h_t/∂h_{t-1} the term diag(1 - z_t), the
same kind of highway while the update gate stays shut (z_t ≈ 0).

Derivatives of activations are taken from their outputs (σ' = σ(1 - σ), tanh' = 1 - tanh²):
the forward pass has the outputs already, and that is all cuDNN keeps too. In the LSTM and GRU
code ``sigma`` and ``tanh`` name the ``gate_activation`` and ``activation`` chosen, whatever
they are, as in the equations.

Example::

    hs, cache = rnn_forward(x, h0, W_ih, W_hh, b)
    loss = (hs * R).sum()                # any loss; its gradient on every h_t is R
    grads = rnn_backward(R, cache)       # grads["W_hh"] == ∂loss/∂W_hh, and so on
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.nn.activations import LEAKY_SLOPE, check_activation

Array = np.ndarray
Cache = dict[str, Any]

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # gate blocks G stacked in W_ih, W_hh, b


def _sigmoid(a: Array) -> Array:
    with np.errstate(over="ignore"):  # exp(-a) = inf for a < -709 gives σ = 0, which is right
        return 1.0 / (1.0 + np.exp(-a))


# name → (g, g' written as a function of the output y = g(a))
ACTIVATIONS: dict[str, tuple[Callable[[Array], Array], Callable[[Array], Array]]] = {
    "tanh": (np.tanh, lambda y: 1.0 - y * y),
    "sigmoid": (_sigmoid, lambda y: y * (1.0 - y)),
    "relu": (lambda a: np.maximum(a, 0.0), lambda y: (y > 0).astype(y.dtype)),
    "leaky_relu": (
        lambda a: np.where(a > 0, a, LEAKY_SLOPE * a),
        lambda y: np.where(y > 0, 1.0, LEAKY_SLOPE),
    ),
    "linear": (lambda a: a, np.ones_like),
}


def _activation(name: str, what: str) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
    return ACTIVATIONS[check_activation(name, what)]


# --------------------------------------------------------------------------------------------
# Argument checks: shapes are named as in the docstrings, so errors read like them.


def _prepare(kind: str, x, h0, W_ih, W_hh, b, c0=None) -> tuple[Array, ...]:
    """float64 copies of the arguments, checked against each other; None states become zeros."""
    x, W_ih, W_hh, b = (np.array(a, dtype=np.float64) for a in (x, W_ih, W_hh, b))
    G = GATES[kind]
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < 1:
        raise RnnkitError(f"x must have shape (T, B, d) with T, B >= 1, got {x.shape}")
    T, B, d = x.shape
    if W_hh.ndim != 2 or W_hh.shape[0] != G * W_hh.shape[1]:
        raise RnnkitError(f"W_hh must have shape ({G}·N, N) for a {kind}, got {W_hh.shape}")
    N = W_hh.shape[1]
    if W_ih.shape != (G * N, d):
        raise RnnkitError(f"W_ih must have shape {(G * N, d)} = ({G}·N, d), got {W_ih.shape}")
    if b.shape != (G * N,):
        raise RnnkitError(f"b must have shape {(G * N,)} = ({G}·N,), got {b.shape}")
    states = [_state("h0", h0, (B, N))]
    if kind == "lstm":
        states.append(_state("c0", c0, (B, N)))
    return (x, *states, W_ih, W_hh, b)


def _state(name: str, s, shape: tuple[int, int]) -> Array:
    s = np.zeros(shape) if s is None else np.array(s, dtype=np.float64)
    if s.shape != shape:
        raise RnnkitError(f"{name} must have shape (B, N) = {shape}, got {s.shape}")
    return s


def _grad(name: str, g, shape: tuple[int, ...]) -> Array:
    """An incoming gradient as float64; None means the loss does not depend on that output."""
    g = np.zeros(shape) if g is None else np.asarray(g, dtype=np.float64)
    if g.shape != shape:
        raise RnnkitError(f"{name} must have shape {shape}, got {g.shape}")
    return g


def _zero_grads(cache: Cache) -> dict[str, Array]:
    names = ("x", "h0", "c0", "W_ih", "W_hh", "b")
    return {k: np.zeros_like(cache[k]) for k in names if k in cache}


# --------------------------------------------------------------------------------------------
# Vanilla (Elman) RNN:  h_t = g(W_ih x_t + W_hh h_{t-1} + b)


def rnn_forward(
    x: Array, h0: Array | None, W_ih: Array, W_hh: Array, b: Array, activation: str = "tanh"
) -> tuple[Array, Cache]:
    """Run an Elman RNN over a sequence.

    Args: x (T, B, d); h0 (B, N) or None for zeros; W_ih (N, d); W_hh (N, N); b (N,);
    activation g, a name from :mod:`rnnkit.nn.activations`.

    Returns: hs (T, B, N), every h_t; and the cache that :func:`rnn_backward` needs.
    """
    x, h0, W_ih, W_hh, b = _prepare("rnn", x, h0, W_ih, W_hh, b)
    g, _ = _activation(activation, "RNN activation")
    hs = np.empty((x.shape[0], *h0.shape))
    h_prev = h0
    for t in range(x.shape[0]):
        a_t = x[t] @ W_ih.T + h_prev @ W_hh.T + b
        hs[t] = h_t = g(a_t)
        h_prev = h_t
    cache = dict(kind="rnn", activation=activation, x=x, h0=h0, W_ih=W_ih, W_hh=W_hh, b=b, h=hs)
    return hs, cache


def rnn_backward(dhs: Array | None, cache: Cache, dh_T: Array | None = None) -> dict[str, Array]:
    """BPTT for :func:`rnn_forward`.

    Args: dhs (T, B, N), ∂L/∂h_t from the loss at every step (None: zeros); dh_T (B, N), an
    extra gradient on the final state h_T (e.g. from a decoder it initialises).

    Returns: {"x", "h0", "W_ih", "W_hh", "b"} → ∂L/∂(that array), same shapes as the inputs.
    """
    x, h0, W_ih, W_hh, hs = (cache[k] for k in ("x", "h0", "W_ih", "W_hh", "h"))
    _, dg = _activation(cache["activation"], "RNN activation")
    dhs = _grad("dhs", dhs, hs.shape)
    grads = _zero_grads(cache)
    # ∂L/∂h_t through the steps after t, i.e. δ_{t+1} · ∂h_{t+1}/∂h_t; only dh_T after the last.
    dh_next = _grad("dh_T", dh_T, h0.shape)
    for t in reversed(range(x.shape[0])):
        h_prev = hs[t - 1] if t > 0 else h0
        dh = dhs[t] + dh_next  # δ_t: L_t's own gradient plus everything later that reads h_t
        da = dh * dg(hs[t])  # back through h_t = g(a_t)
        # a_t is linear in each parameter, so the immediate gradients are outer products;
        # summing them over t is the Σ_k of the derivation.
        grads["W_ih"] += da.T @ x[t]
        grads["W_hh"] += da.T @ h_prev
        grads["b"] += da.sum(axis=0)  # one bias shared by every batch row
        grads["x"][t] = da @ W_ih
        dh_next = da @ W_hh  # δ_t · diag(g'(a_t)) W_hh, handed on to step t-1
    grads["h0"] = dh_next
    return grads


# --------------------------------------------------------------------------------------------
# LSTM:  gates i, f, o = σ(·), candidate c̃ = tanh(·), c_t = f⊙c_{t-1} + i⊙c̃, h_t = o⊙tanh(c_t)


def lstm_forward(
    x: Array,
    h0: Array | None,
    c0: Array | None,
    W_ih: Array,
    W_hh: Array,
    b: Array,
    gate_activation: str = "sigmoid",
    activation: str = "tanh",
) -> tuple[Array, Array, Cache]:
    """Run an LSTM over a sequence.

    Args: x (T, B, d); h0, c0 (B, N) or None for zeros; W_ih (4N, d); W_hh (4N, N); b (4N,),
    blocks in the order i, f, c̃, o; gate_activation σ and activation tanh by name.

    Returns: hs (T, B, N), every h_t; c_T (B, N), the final cell state; the cache.
    """
    x, h0, c0, W_ih, W_hh, b = _prepare("lstm", x, h0, W_ih, W_hh, b, c0)
    sigma, _ = _activation(gate_activation, "LSTM gate_activation")
    tanh, _ = _activation(activation, "LSTM activation")
    T = x.shape[0]
    steps = {k: np.empty((T, *h0.shape)) for k in ("i", "f", "c_tilde", "o", "c", "tanh_c", "h")}
    h_prev, c_prev = h0, c0
    for t in range(T):
        # All four pre-activations come from one product; split in the gate order i, f, c̃, o.
        a_i, a_f, a_c, a_o = np.split(x[t] @ W_ih.T + h_prev @ W_hh.T + b, 4, axis=-1)
        f_t = sigma(a_f)
        i_t = sigma(a_i)
        o_t = sigma(a_o)
        c_tilde = tanh(a_c)
        c_t = f_t * c_prev + i_t * c_tilde
        tanh_c = tanh(c_t)
        h_t = o_t * tanh_c
        for k, v in dict(i=i_t, f=f_t, c_tilde=c_tilde, o=o_t, c=c_t, tanh_c=tanh_c, h=h_t).items():
            steps[k][t] = v
        h_prev, c_prev = h_t, c_t
    cache = dict(
        kind="lstm", gate_activation=gate_activation, activation=activation,
        x=x, h0=h0, c0=c0, W_ih=W_ih, W_hh=W_hh, b=b, **steps,
    )  # fmt: skip
    return steps["h"], steps["c"][-1], cache


def lstm_backward(
    dhs: Array | None, cache: Cache, dh_T: Array | None = None, dc_T: Array | None = None
) -> dict[str, Array]:
    """BPTT for :func:`lstm_forward`.

    Args: dhs (T, B, N), ∂L/∂h_t at every step (None: zeros); dh_T, dc_T (B, N), extra
    gradients on the final h_T and c_T.

    Returns: {"x", "h0", "c0", "W_ih", "W_hh", "b"} → ∂L/∂(that array).
    """
    x, h0, c0, W_ih, W_hh = (cache[k] for k in ("x", "h0", "c0", "W_ih", "W_hh"))
    _, dsigma = _activation(cache["gate_activation"], "LSTM gate_activation")
    _, dtanh = _activation(cache["activation"], "LSTM activation")
    dhs = _grad("dhs", dhs, cache["h"].shape)
    grads = _zero_grads(cache)
    # What the steps after t send back to h_t and to c_t (only dh_T, dc_T after the last step).
    dh_next = _grad("dh_T", dh_T, h0.shape)
    dc_next = _grad("dc_T", dc_T, c0.shape)
    for t in reversed(range(x.shape[0])):
        h_prev = cache["h"][t - 1] if t > 0 else h0
        c_prev = cache["c"][t - 1] if t > 0 else c0
        i_t, f_t, c_tilde, o_t, tanh_c = (
            cache[k][t] for k in ("i", "f", "c_tilde", "o", "tanh_c")
        )  # fmt: skip
        dh = dhs[t] + dh_next
        # h_t = o_t ⊙ tanh(c_t)
        do = dh * tanh_c
        # c_t is reached from two sides: the highway from c_{t+1}, and h_t just above.
        dc = dc_next + dh * o_t * dtanh(tanh_c)
        # c_t = f_t ⊙ c_{t-1} + i_t ⊙ c̃_t
        df = dc * c_prev
        di = dc * c_tilde
        dc_tilde = dc * i_t
        dc_next = dc * f_t  # the highway dc_{t-1} = dc_t ⊙ f_t: no weights, no squashing
        # Back through the activations into the one fused pre-activation, in gate order.
        da = np.concatenate(
            [di * dsigma(i_t), df * dsigma(f_t), dc_tilde * dtanh(c_tilde), do * dsigma(o_t)],
            axis=-1,
        )
        grads["W_ih"] += da.T @ x[t]
        grads["W_hh"] += da.T @ h_prev
        grads["b"] += da.sum(axis=0)
        grads["x"][t] = da @ W_ih
        dh_next = da @ W_hh  # the other path to step t-1: through h_{t-1} into all four gates
    grads["h0"], grads["c0"] = dh_next, dc_next
    return grads


# --------------------------------------------------------------------------------------------
# GRU:  z, r = σ(·), h̃ = tanh(·) with the reset inside, h_t = (1 - z)⊙h_{t-1} + z⊙h̃


def gru_forward(
    x: Array,
    h0: Array | None,
    W_ih: Array,
    W_hh: Array,
    b: Array,
    gate_activation: str = "sigmoid",
    activation: str = "tanh",
    reset_after: bool = False,
) -> tuple[Array, Cache]:
    """Run a GRU over a sequence, in the lecture's convention h_t = (1 - z_t) h_{t-1} + z_t h̃_t.

    Args: x (T, B, d); h0 (B, N) or None for zeros; W_ih (3N, d); W_hh (3N, N); b (3N,),
    blocks in the order r, z, h̃; gate_activation σ, activation tanh by name; reset_after
    False: h̃_t = tanh(W_h x_t + U_h (r_t ⊙ h_{t-1}) + b_h) (textbook), True:
    h̃_t = tanh(W_h x_t + r_t ⊙ (U_h h_{t-1}) + b_h) (cuDNN form, one bias per gate).

    Returns: hs (T, B, N), every h_t; the cache.
    """
    x, h0, W_ih, W_hh, b = _prepare("gru", x, h0, W_ih, W_hh, b)
    sigma, _ = _activation(gate_activation, "GRU gate_activation")
    tanh, _ = _activation(activation, "GRU activation")
    W_r, W_z, W_h = np.split(W_ih, 3)  # input weights of each gate
    U_r, U_z, U_h = np.split(W_hh, 3)  # recurrent weights of each gate
    b_r, b_z, b_h = np.split(b, 3)
    T = x.shape[0]
    # U_h h_{t-1} is kept for reset_after=True only: backward needs it as the factor that
    # multiplies r_t (with reset_after=False it recomputes r_t ⊙ h_{t-1} instead).
    names = ("z", "r", "h_tilde", "h") + (("U_h_h",) if reset_after else ())
    steps = {k: np.empty((T, *h0.shape)) for k in names}
    h_prev = h0
    for t in range(T):
        z_t = sigma(x[t] @ W_z.T + h_prev @ U_z.T + b_z)
        r_t = sigma(x[t] @ W_r.T + h_prev @ U_r.T + b_r)
        if reset_after:
            steps["U_h_h"][t] = U_h_h = h_prev @ U_h.T
            h_tilde = tanh(x[t] @ W_h.T + r_t * U_h_h + b_h)
        else:
            h_tilde = tanh(x[t] @ W_h.T + (r_t * h_prev) @ U_h.T + b_h)
        h_t = (1 - z_t) * h_prev + z_t * h_tilde
        for k, v in dict(z=z_t, r=r_t, h_tilde=h_tilde, h=h_t).items():
            steps[k][t] = v
        h_prev = h_t
    cache = dict(
        kind="gru", gate_activation=gate_activation, activation=activation,
        reset_after=bool(reset_after), x=x, h0=h0, W_ih=W_ih, W_hh=W_hh, b=b, **steps,
    )  # fmt: skip
    return steps["h"], cache


def gru_backward(dhs: Array | None, cache: Cache, dh_T: Array | None = None) -> dict[str, Array]:
    """BPTT for :func:`gru_forward`.

    Args: dhs (T, B, N), ∂L/∂h_t at every step (None: zeros); dh_T (B, N), an extra gradient
    on the final state h_T.

    Returns: {"x", "h0", "W_ih", "W_hh", "b"} → ∂L/∂(that array).
    """
    x, h0, W_ih, W_hh = (cache[k] for k in ("x", "h0", "W_ih", "W_hh"))
    _, dsigma = _activation(cache["gate_activation"], "GRU gate_activation")
    _, dtanh = _activation(cache["activation"], "GRU activation")
    dhs = _grad("dhs", dhs, cache["h"].shape)
    grads = _zero_grads(cache)
    U_r, U_z, U_h = np.split(W_hh, 3)
    # Views into grads["W_hh"]: the three recurrent blocks see different inputs when
    # reset_after=False (U_h multiplies r_t ⊙ h_{t-1}), so they are accumulated one by one.
    dU_r, dU_z, dU_h = np.split(grads["W_hh"], 3)
    dh_next = _grad("dh_T", dh_T, h0.shape)
    for t in reversed(range(x.shape[0])):
        h_prev = cache["h"][t - 1] if t > 0 else h0
        z_t, r_t, h_tilde = (cache[k][t] for k in ("z", "r", "h_tilde"))
        dh = dhs[t] + dh_next
        # h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t: an interpolation, so three gradients.
        dz = dh * (h_tilde - h_prev)
        dh_tilde = dh * z_t
        dh_prev = dh * (1 - z_t)  # the GRU's highway, open while z_t ≈ 0
        da_h = dh_tilde * dtanh(h_tilde)
        if cache["reset_after"]:
            # a_h = W_h x_t + r_t ⊙ (U_h h_{t-1}) + b_h
            dr = da_h * cache["U_h_h"][t]
            dU_h_h = da_h * r_t  # gradient on the product U_h h_{t-1}
            dU_h += dU_h_h.T @ h_prev
            dh_prev += dU_h_h @ U_h
        else:
            # a_h = W_h x_t + U_h (r_t ⊙ h_{t-1}) + b_h
            dr_h = da_h @ U_h  # gradient on r_t ⊙ h_{t-1}
            dr = dr_h * h_prev
            dU_h += da_h.T @ (r_t * h_prev)
            dh_prev += dr_h * r_t
        da_r = dr * dsigma(r_t)
        da_z = dz * dsigma(z_t)
        dU_r += da_r.T @ h_prev
        dU_z += da_z.T @ h_prev
        dh_prev += da_r @ U_r + da_z @ U_z  # h_{t-1} also reaches h_t through both gates
        # On the input side all three gates are one affine map of x_t, in the order r, z, h̃.
        da = np.concatenate([da_r, da_z, da_h], axis=-1)
        grads["W_ih"] += da.T @ x[t]
        grads["b"] += da.sum(axis=0)
        grads["x"][t] = da @ W_ih
        dh_next = dh_prev
    grads["h0"] = dh_next
    return grads


# --------------------------------------------------------------------------------------------
# Conveniences for tests and teaching.


def forward(
    kind: str,
    x: Array,
    h0: Array | None,
    W_ih: Array,
    W_hh: Array,
    b: Array,
    c0: Array | None = None,
    **config: Any,
) -> tuple[Array, Cache]:
    """Any of the three forwards by ``kind`` ('rnn', 'lstm', 'gru'): returns (hs, cache).

    ``config`` is the cell's options (activation, gate_activation, reset_after); for an LSTM,
    ``c0`` is the initial cell state and the cell states are in ``cache["c"]`` (T, B, N).
    """
    if kind == "rnn":
        return rnn_forward(x, h0, W_ih, W_hh, b, **config)
    if kind == "lstm":
        hs, _, cache = lstm_forward(x, h0, c0, W_ih, W_hh, b, **config)
        return hs, cache
    if kind == "gru":
        return gru_forward(x, h0, W_ih, W_hh, b, **config)
    raise RnnkitError(f"kind must be one of {sorted(GATES)}, got {kind!r}")


def backward(
    dhs: Array | None, cache: Cache, dh_T: Array | None = None, dc_T: Array | None = None
) -> dict[str, Array]:
    """The backward pass matching ``cache`` (from any forward); ``dc_T`` is for an LSTM only."""
    if cache["kind"] == "lstm":
        return lstm_backward(dhs, cache, dh_T, dc_T)
    if dc_T is not None:
        raise RnnkitError(f"dc_T is only for an lstm, got a cache from a {cache['kind']}")
    return {"rnn": rnn_backward, "gru": gru_backward}[cache["kind"]](dhs, cache, dh_T)


def numerical_gradient(f: Callable[[], float], array: Array, eps: float = 1e-6) -> Array:
    """∂f/∂array by central differences, (f(a + ε) - f(a - ε)) / 2ε for each entry in turn.

    ``f`` takes no argument and must read ``array`` (a float64 array), which is changed in
    place one entry at a time and restored. The error is O(ε²) from the Taylor series plus
    O(machine-ε·|f|/ε) from rounding, hence ε ≈ 1e-6 in float64.
    """
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + eps
        f_plus = f()
        array[idx] = old - eps
        f_minus = f()
        array[idx] = old
        grad[idx] = (f_plus - f_minus) / (2 * eps)
    return grad
