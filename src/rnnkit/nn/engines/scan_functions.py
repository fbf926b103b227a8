r"""The recurrences of the scan engine: one autograd Function per cell kind, hand-written BPTT.

Each Function takes the layer input x (T, B, d) and all weights, and is organised the way cuDNN
organises an RNN:

* **Forward.** The input projection of all steps is one matrix product, ``xw = x W_ihᵀ + b``
  over T·B rows, into a (T, B, G·N) buffer. Step t adds the recurrent product into its slice,
  activates the gates in place, and, when a backward pass will follow, turns them in place into
  the factors the backward pass multiplies by: P_i = c̃·σ'(i), P_f = c_{t-1}·σ'(f), ... while
  they are still in cache. Derivatives come from the activations' outputs
  (:func:`~rnnkit.nn.activations.derivative_from_output`), so no pre-activation is kept.
* **Backward.** A loop backwards in time carries only dh (and dc) and writes the gradient of
  each step's pre-activations into one (T, B, G·N) tensor ``dG``. After the loop every weight
  gradient is one product over all T·B rows: dW_hh = dGᵀ H_prev, dW_ih = dGᵀ X, and the input
  gradient dx = dG W_ih.

The per-step recurrent products and the thread policy of the loops are in
:mod:`~rnnkit.nn.engines.scan_ops`.

Shapes: T steps, B rows, N hidden units, G gates. States live in a (T+1, B, N) buffer ``Hs``:
step t reads ``Hs[t]`` and writes ``Hs[t+1]`` (reverse: reads ``Hs[t+1]``, writes ``Hs[t]``),
so outputs and previous states are plain slices of it. Per-step slices come from ``unbind``
once per call: indexing ``x[t]`` in a loop is slow.

Options: ``mask`` (B, N) recurrent dropout on h_{t-1} before the recurrent product only (no
gradient flows to it); ``valid`` (T, B, 1) bool, False on padding steps, which leave the state
unchanged, output 0 and get no gradient.
"""

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from rnnkit.nn.engines.scan_ops import INPLACE, Product, StepThreads, act_into, deriv


def _steps(T: int, reverse: bool) -> list[tuple[int, int, int]]:
    """(t, prev, nxt) in the order the forward pass runs: step t reads Hs[prev], writes Hs[nxt]."""
    if reverse:
        return [(t, t + 1, t) for t in range(T - 1, -1, -1)]
    return [(t, t, t + 1) for t in range(T)]


CHUNK_BYTES = 2 << 20  # steps whose backward factors are computed together (cache-sized)


def _chunks(T: int, reverse: bool, row_bytes: int):
    """The forward steps in runs of consecutive time steps, as (lo, hi, steps of the run).

    The per-step loop keeps to what the recurrence needs; the factors for the backward pass
    are then computed once per run, by a few operations over (hi - lo) steps at a time, while
    the run's gates are still in cache (one launch per run instead of per step, on all cores).
    """
    size = max(1, min(T, CHUNK_BYTES // max(row_bytes, 1)))
    steps = _steps(T, reverse)
    for k in range(0, T, size):
        run = steps[k : k + size]
        lo, hi = min(run[0][0], run[-1][0]), max(run[0][0], run[-1][0]) + 1
        yield lo, hi, run


def _split_states(Hs: Tensor, reverse: bool) -> tuple[Tensor, Tensor]:
    """(outputs, previous states), both (T, B, N) slices of the (T+1, B, N) state buffer."""
    return (Hs[:-1], Hs[1:]) if reverse else (Hs[1:], Hs[:-1])


def _outputs(Hs: Tensor, valid: Tensor | None, reverse: bool) -> Tensor:
    out = _split_states(Hs, reverse)[0]
    return out if valid is None else out * valid


def _final(Hs: Tensor, reverse: bool) -> Tensor:
    return (Hs[0] if reverse else Hs[-1]).clone()


def _masked_prev(Hs: Tensor, mask: Tensor | None, reverse: bool) -> Tensor:
    """h_{t-1} as the recurrent product saw it (after dropout), all steps: (T·B, N)."""
    prev = _split_states(Hs, reverse)[1]
    if mask is not None:
        prev = prev * mask
    return prev.reshape(-1, prev.shape[-1])


def _projection(x: Tensor, w_ih: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(x as (T·B, d), x W_ihᵀ + b as (T, B, G·N)): the input side of every step, one product."""
    T, B, d = x.shape
    x2 = x.reshape(T * B, d)
    return x2, torch.addmm(b, x2, w_ih.t()).view(T, B, -1)


def _weight_grads(ctx, dG: Tensor, x2: Tensor, w_ih: Tensor, x_shape) -> tuple:
    """dx, dW_ih, db from the pre-activation gradients of all steps: one product each."""
    dG2 = dG.view(-1, dG.shape[-1])
    need = ctx.needs_input_grad
    dx = (dG2 @ w_ih).view(x_shape) if need[0] else None
    dw_ih = dG2.t() @ x2 if need[1] else None
    db = dG2.sum(0) if need[2] else None
    return dx, dw_ih, db


def _grad_buffer(P: Tensor) -> Tensor:
    """Where the backward writes dG: over the saved factors P (step t's factors are read just
    before step t's gradient is written), unless the graph is kept for another backward pass
    (retain_graph, create_graph, gradcheck) that will need P again. Saves a fresh buffer as
    large as the gates, and its page faults."""
    try:
        keep = torch._C._autograd._get_current_graph_task_keep_graph()
    except (AttributeError, RuntimeError):  # private API: fresh buffer when it is missing
        keep = True
    return torch.empty_like(P) if keep else P


def _grad_prep(d_out: Tensor, valid: Tensor | None, dtype: torch.dtype):
    """Output gradient without its padding steps, contiguous, and 1 - valid per step."""
    if valid is None:
        return d_out.contiguous(), None
    v = valid.to(dtype)
    return (d_out * v).contiguous(), (1 - v).unbind(0)


def _dh_prev(dG_t: Tensor, rec: Product, k: int, order, Dout, mask, dh, inv) -> Tensor:
    """dL/dh_{t-1}: back through the recurrent product (and dropout), plus the output
    gradient of step t-1, plus dh itself on padding steps (where the state passed through)."""
    out = rec(dG_t)
    if mask is not None:
        out.mul_(mask)
    if k + 1 < len(order):
        out.add_(Dout[order[k + 1][0]])
    if inv is not None:
        out.addcmul_(dh, inv[order[k][0]])
    return out


class RNNScan(torch.autograd.Function):
    """h_t = g(x_t W_ihᵀ + b + (m ⊙ h_{t-1}) W_hhᵀ).  Forward keeps P_t = g'(a_t)."""

    @staticmethod
    def forward(ctx, x, w_ih, b, w_hh, h0, mask, valid, reverse, train, act):
        T, B, _ = x.shape
        N = w_hh.shape[1]
        x2, xw = _projection(x, w_ih, b)
        Hs = x.new_empty(T + 1, B, N)
        steps = _steps(T, reverse)
        Hs[steps[0][1]].copy_(h0)
        H, S = Hs.unbind(0), xw.unbind(0)
        V = valid.unbind(0) if valid is not None else None
        threads = StepThreads(x)
        rec, Hout = Product(w_hh, B, threads), _split_states(Hs, reverse)[0]
        with threads:
            for lo, hi, run in _chunks(T, reverse, xw[0].numel() * xw.element_size()):
                for t, p, n in run:
                    h = H[p] if mask is None else H[p] * mask
                    act_into(act, rec.add_to(S[t], h), H[n])
                    if V is not None:
                        torch.where(V[t], H[n], H[p], out=H[n])
                if train:  # P = g'(a) from the outputs, over the run
                    with threads.all():
                        P = deriv(act, Hout[lo:hi], out=xw[lo:hi])
                        if valid is not None:
                            P.mul_(valid[lo:hi])
        if train:
            ctx.save_for_backward(x2, w_ih, w_hh, xw, Hs, mask, valid)
            ctx.reverse, ctx.x_shape = reverse, x.shape
        return _outputs(Hs, valid, reverse), _final(Hs, reverse)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hT):
        x2, w_ih, w_hh, P, Hs, mask, valid = ctx.saved_tensors
        T, B, N = P.shape
        d_out, inv = _grad_prep(d_out, valid, P.dtype)
        dG = _grad_buffer(P)
        dGl, Pl, Dout = dG.unbind(0), P.unbind(0), d_out.unbind(0)
        threads = StepThreads(P)
        rec = Product(w_hh.t(), B, threads)
        order = _steps(T, ctx.reverse)[::-1]
        dh = Dout[order[0][0]] + d_hT
        with threads:
            for k, (t, _, _) in enumerate(order):
                torch.mul(dh, Pl[t], out=dGl[t])
                dh = _dh_prev(dGl[t], rec, k, order, Dout, mask, dh, inv)
        dx, dw_ih, db = _weight_grads(ctx, dG, x2, w_ih, ctx.x_shape)
        dw_hh = None
        if ctx.needs_input_grad[3]:
            dw_hh = dG.view(T * B, N).t() @ _masked_prev(Hs, mask, ctx.reverse)
        return dx, dw_ih, db, dw_hh, dh, None, None, None, None, None


def _lstm_factors(S, c_prev, tc, Q, Fk, gate_act: str, act: str) -> None:
    """Turn activated gates S = [i, f, c̃, o] (L, B, 4N) into the backward's factors, in place:
    P_i = c̃·σ'(i), P_f = c_{t-1}·σ'(f), P_g = i·g'(c̃), P_o = g(c_t)·σ'(o); Q = o·g'(c_t), F = f."""
    i, f, g, o = S.chunk(4, dim=-1)
    p_g = deriv(act, g).mul_(i)
    deriv(act, tc, out=Q).mul_(o)
    Fk.copy_(f)
    deriv(gate_act, o, out=o).mul_(tc)
    deriv(gate_act, S[..., : 2 * i.shape[-1]], out=S[..., : 2 * i.shape[-1]])  # σ'(i), σ'(f)
    i.mul_(g)
    f.mul_(c_prev)
    g.copy_(p_g)


class LSTMScan(torch.autograd.Function):
    """PyTorch gate order i, f, g (= c̃), o in the weights and in every (·, 4N) buffer.

    Forward keeps, per step, in the projection buffer: P_i = c̃·σ'(i), P_f = c_{t-1}·σ'(f),
    P_g = i·g'(c̃), P_o = g(c_t)·σ'(o); and Q = o·g'(c_t), F = f. The backward step is then
    dc += dh·Q;  dG_o = dh·P_o;  dG_{i,f,g} = dc·P_{i,f,g};  dc_{t-1} = dc·F.
    """

    @staticmethod
    def forward(ctx, x, w_ih, b, w_hh, h0, c0, mask, valid, reverse, train, gate_act, act):
        T, B, _ = x.shape
        N = w_hh.shape[1]
        x2, xw = _projection(x, w_ih, b)
        Hs = x.new_empty(T + 1, B, N)
        Hs[_steps(T, reverse)[0][1]].copy_(h0)
        H, S = Hs.unbind(0), xw.unbind(0)
        I, Fg, G, O = (xw[..., k * N : (k + 1) * N].unbind(0) for k in range(4))
        IF = xw[..., : 2 * N].unbind(0)  # i and f: one sigmoid
        V = valid.unbind(0) if valid is not None else None
        runs = list(_chunks(T, reverse, xw[0].numel() * xw.element_size()))
        # c_t and g(c_t) of one run, indexed like Hs minus the run's first step
        L = max(hi - lo for lo, hi, _ in runs)
        Cw, TCw = x.new_empty(L + 1, B, N), x.new_empty(L, B, N)
        if train:
            Q, Fk = x.new_empty(T, B, N), x.new_empty(T, B, N)
        threads = StepThreads(x)
        rec = Product(w_hh, B, threads)
        gact_, act_ = INPLACE[gate_act], INPLACE[act]
        c = c0
        with threads:
            for lo, hi, run in runs:
                Cl, TCl = Cw[: hi - lo + 1].unbind(0), TCw[: hi - lo].unbind(0)
                Cl[run[0][1] - lo].copy_(c)
                for t, p, n in run:
                    p_, n_, tc = p - lo, n - lo, TCl[t - lo]
                    h = H[p] if mask is None else H[p] * mask
                    rec.add_to(S[t], h)
                    gact_(IF[t])
                    act_(G[t])
                    gact_(O[t])
                    c = torch.mul(I[t], G[t], out=Cl[n_]).addcmul_(Fg[t], Cl[p_])
                    act_into(act, c, tc)
                    torch.mul(O[t], tc, out=H[n])
                    if V is not None:
                        torch.where(V[t], c, Cl[p_], out=c)
                        torch.where(V[t], H[n], H[p], out=H[n])
                if train:
                    with threads.all():
                        c_prev = _split_states(Cw[: hi - lo + 1], reverse)[1]
                        S_, Q_, F_ = xw[lo:hi], Q[lo:hi], Fk[lo:hi]
                        _lstm_factors(S_, c_prev, TCw[: hi - lo], Q_, F_, gate_act, act)
                        if valid is not None:  # padding: no gate gradient, dc passes through
                            v = valid[lo:hi]
                            S_.mul_(v)
                            Q_.mul_(v)
                            F_.masked_fill_(v.logical_not(), 1.0)
        if train:
            ctx.save_for_backward(x2, w_ih, w_hh, xw, Hs, Q, Fk, mask, valid)
            ctx.reverse, ctx.x_shape = reverse, x.shape
        return _outputs(Hs, valid, reverse), _final(Hs, reverse), c.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hT, d_cT):
        x2, w_ih, w_hh, P, Hs, Q, Fk, mask, valid = ctx.saved_tensors
        T, B, G4 = P.shape
        N = G4 // 4
        d_out, inv = _grad_prep(d_out, valid, P.dtype)
        dG = _grad_buffer(P)
        dGl, Dout = dG.unbind(0), d_out.unbind(0)
        dG_ifg = dG[..., : 3 * N].unflatten(-1, (3, N)).unbind(0)
        P_ifg = P[..., : 3 * N].unflatten(-1, (3, N)).unbind(0)
        dG_o, P_o = dG[..., 3 * N :].unbind(0), P[..., 3 * N :].unbind(0)
        Ql, Fl = Q.unbind(0), Fk.unbind(0)
        threads = StepThreads(P)
        rec = Product(w_hh.t(), B, threads)
        order = _steps(T, ctx.reverse)[::-1]
        dh = Dout[order[0][0]] + d_hT
        dc = d_cT.clone(memory_format=torch.contiguous_format)
        with threads:
            for k, (t, _, _) in enumerate(order):
                dc.addcmul_(dh, Ql[t])
                torch.mul(dh, P_o[t], out=dG_o[t])
                torch.mul(P_ifg[t], dc.unsqueeze(1), out=dG_ifg[t])
                dc.mul_(Fl[t])
                dh = _dh_prev(dGl[t], rec, k, order, Dout, mask, dh, inv)
        dx, dw_ih, db = _weight_grads(ctx, dG, x2, w_ih, ctx.x_shape)
        dw_hh = None
        if ctx.needs_input_grad[3]:
            dw_hh = dG.view(T * B, G4).t() @ _masked_prev(Hs, mask, ctx.reverse)
        return dx, dw_ih, db, dw_hh, dh, dc, None, None, None, None, None, None


def _gru_factors(S, k, d, R, Omz, gate_act: str, act: str) -> None:
    """Turn activated gates S = [r, z, n] (L, B, 3N) into the backward's factors, in place:
    P_r = k·σ'(r), P_z = (n - h_{t-1})·σ'(z), P_n = z·g'(n); and keep r, 1 - z."""
    r, z, n = S.chunk(3, dim=-1)
    deriv(act, n, out=n).mul_(z)
    torch.sub(z.new_ones(()), z, out=Omz)
    R.copy_(r)
    deriv(gate_act, S[..., : 2 * r.shape[-1]], out=S[..., : 2 * r.shape[-1]])
    r.mul_(k)
    z.mul_(d)


class GRUScan(torch.autograd.Function):
    """GRU, gate order r, z, n (= h̃) in the weights and in every (·, 3N) buffer.

    h_t = h_{t-1} + z ⊙ (n - h_{t-1}), i.e. (1 - z) ⊙ h_{t-1} + z ⊙ n (the lecture's convention),
    with hm = m ⊙ h_{t-1} the recurrent product's operand and U_r, U_z, U_n the blocks of W_hh:
    reset_after=False: n = g(xn + (r ⊙ hm) U_nᵀ), two products per step, K = r ⊙ hm is kept;
    reset_after=True:  n = g(xn + r ⊙ (hm U_nᵀ)), one product per step, K = hm U_nᵀ is kept.

    Forward keeps P_r = (hm or K)·σ'(r), P_z = (n - h_{t-1})·σ'(z), P_n = z·g'(n) in the
    projection buffer, plus r and 1 - z.
    """

    @staticmethod
    def forward(ctx, x, w_ih, b, w_hh, h0, mask, valid, reverse, train, reset_after, gact, act):
        T, B, _ = x.shape
        N = w_hh.shape[1]
        x2, xw = _projection(x, w_ih, b)
        Hs = x.new_empty(T + 1, B, N)
        Hs[_steps(T, reverse)[0][1]].copy_(h0)
        H = Hs.unbind(0)
        RZ, Rg, Z = xw[..., : 2 * N].unbind(0), xw[..., :N].unbind(0), xw[..., N : 2 * N].unbind(0)
        Nn = xw[..., 2 * N :].unbind(0)
        K = x.new_empty(T, B, N)
        Kl = K.unbind(0)
        if train:
            R, Omz = x.new_empty(T, B, N), x.new_empty(T, B, N)
        V = valid.unbind(0) if valid is not None else None
        gact_, act_ = INPLACE[gact], INPLACE[act]
        threads = StepThreads(x)
        if reset_after:
            rec = Product(w_hh, B, threads)
        else:
            rec_rz, rec_n = Product(w_hh[: 2 * N], B, threads), Product(w_hh[2 * N :], B, threads)
        runs = list(_chunks(T, reverse, xw[0].numel() * xw.element_size()))
        Dw = x.new_empty(max(hi - lo for lo, hi, _ in runs), B, N)  # n - h_{t-1} of one run
        with threads:
            for lo, hi, run in runs:
                for t, p, n in run:
                    hp, d = H[p], Dw[t - lo]
                    hm = hp if mask is None else hp * mask
                    if reset_after:
                        a = rec(hm)
                        gact_(RZ[t].add_(a[:, : 2 * N]))
                        Kl[t].copy_(a[:, 2 * N :])
                        act_(Nn[t].addcmul_(Rg[t], Kl[t]))
                    else:
                        gact_(rec_rz.add_to(RZ[t], hm))
                        torch.mul(Rg[t], hm, out=Kl[t])
                        act_(rec_n.add_to(Nn[t], Kl[t]))
                    torch.sub(Nn[t], hp, out=d)
                    if V is not None:
                        Z[t].mul_(V[t])  # z = 0 on padding: the state passes through unchanged
                    torch.addcmul(hp, Z[t], d, out=H[n])
                if train:
                    with threads.all():
                        hm = _split_states(Hs, reverse)[1][lo:hi]
                        if mask is not None:
                            hm = hm * mask
                        k_ = K[lo:hi] if reset_after else hm
                        _gru_factors(xw[lo:hi], k_, Dw[: hi - lo], R[lo:hi], Omz[lo:hi], gact, act)
                        if valid is not None:  # P_n is 0 there already: z was
                            xw[lo:hi, :, N : 2 * N].mul_(valid[lo:hi])
        if train:
            K_ = None if reset_after else K  # (reset_after's K only served for P_r)
            ctx.save_for_backward(x2, w_ih, w_hh, xw, Hs, K_, R, Omz, mask, valid)
            ctx.reverse, ctx.reset_after, ctx.x_shape = reverse, reset_after, x.shape
        return _outputs(Hs, valid, reverse), _final(Hs, reverse)

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_hT):
        x2, w_ih, w_hh, P, Hs, K, R, Omz, mask, valid = ctx.saved_tensors
        reverse, reset_after = ctx.reverse, ctx.reset_after
        T, B, G3 = P.shape
        N = G3 // 3
        d_out, inv = _grad_prep(d_out, valid, P.dtype)
        dG = _grad_buffer(P)
        dG_rz, dG_r = dG[..., : 2 * N].unbind(0), dG[..., :N].unbind(0)
        dG_n = dG[..., 2 * N :].unbind(0)
        # z and n are adjacent: both are dh times their factor, one broadcast product
        dG_zn = dG[..., N:].unflatten(-1, (2, N)).unbind(0)
        P_zn = P[..., N:].unflatten(-1, (2, N)).unbind(0)
        P_r = P[..., :N].unbind(0)
        Rl, Omzl, Dout = R.unbind(0), Omz.unbind(0), d_out.unbind(0)
        threads = StepThreads(P)
        rec_rz = Product(w_hh[: 2 * N].t(), B, threads)
        rec_n = Product(w_hh[2 * N :].t(), B, threads)
        if reset_after:
            dKn = torch.empty_like(R)  # gradient wrt K = hm U_nᵀ: dG_n ⊙ r
            dKl = dKn.unbind(0)
        order = _steps(T, reverse)[::-1]
        dh = Dout[order[0][0]] + d_hT
        with threads:
            for k, (t, _, _) in enumerate(order):
                torch.mul(P_zn[t], dh.unsqueeze(1), out=dG_zn[t])
                if reset_after:
                    torch.mul(dG_n[t], P_r[t], out=dG_r[t])
                    torch.mul(dG_n[t], Rl[t], out=dKl[t])
                    dhm = rec_rz(dG_rz[t])
                    rec_n.add_to(dhm, dKl[t])
                else:
                    dK = rec_n(dG_n[t])  # gradient wrt K = r ⊙ hm
                    torch.mul(dK, P_r[t], out=dG_r[t])
                    dhm = rec_rz.add_to(dK.mul_(Rl[t]), dG_rz[t])
                if mask is not None:
                    dhm.mul_(mask)
                dhm.addcmul_(dh, Omzl[t])  # the direct path (1 - z) ⊙ h_{t-1}
                if k + 1 < len(order):
                    dhm.add_(Dout[order[k + 1][0]])
                dh = dhm  # z = 0 on padding steps, so 1 - z already passes dh through there
        dx, dw_ih, db = _weight_grads(ctx, dG, x2, w_ih, ctx.x_shape)
        dw_hh = None
        if ctx.needs_input_grad[3]:
            dw_hh = torch.empty_like(w_hh)
            hm_prev = _masked_prev(Hs, mask, reverse)
            torch.mm(dG[..., : 2 * N].reshape(T * B, 2 * N).t(), hm_prev, out=dw_hh[: 2 * N])
            a, c = (dKn, hm_prev) if reset_after else (dG[..., 2 * N :], K)
            torch.mm(a.reshape(T * B, N).t(), c.reshape(T * B, N), out=dw_hh[2 * N :])
        return dx, dw_ih, db, dw_hh, dh, None, None, None, None, None, None, None
