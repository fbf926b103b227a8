r"""A step engine for generation on CPU: one token in, next-token log-probabilities out.

Generating text calls the model once per token at batch 1 (or one row per beam). There torch's
per-call overhead dominates (``nn.LSTM`` one step at a time costs ~1–2 ms), so this engine
reruns the same equations as :mod:`rnnkit.nn.cells` in NumPy, with the weights rearranged once
for one-token steps:

* Layer 0's input projection is a table: an embedding E (V, E) folds into it as
  ``E @ W_ih^T + b`` (V, G·N), one-hot input is ``W_ih^T + b`` itself; so layer 0 costs a row
  lookup plus one product with W_hh (unless the table would be large, see ``max_table_bytes``).
* Weights are stored transposed and contiguous in ``dtype`` (x @ W reads W row by row); the
  LSTM's gates are reordered i, f, o, c̃ so the three sigmoids are one call; buffers are
  preallocated per batch size; activations run in place.
* One row (batch 1) multiplies through NumPy's OpenBLAS GEMV, several rows through torch's GEMM
  (see :func:`_matmul`).

A step reads every weight once, so at batch 1 it is bound by memory bandwidth: a 2×512 LSTM is
12.6 MB of float32 weights, more than the L2 caches hold; benchmarks/gemv_ceiling.py measures
that ceiling, and benchmarks/generate_speed.py the engine against ``nn.LSTM``.
float32 (default) matches the torch model within ~1e-5 on the logits; float64 within ~1e-12.

The state of B rows is one (B, S) array: for each layer, its h (N columns), then its c for an
LSTM. The engine implements :class:`rnnkit.decoding.Stepper`, so it plugs into greedy,
sampling and beam search.
"""

from typing import Any

import numpy as np
import torch

from rnnkit.errors import RnnkitError
from rnnkit.nn.activations import LEAKY_SLOPE, check_activation

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _numpy(x: Any, dtype=np.float64) -> np.ndarray:
    """A torch tensor / parameter or array-like as a NumPy array of ``dtype``."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=dtype)


def _activate(name: str, x: np.ndarray, out: np.ndarray) -> None:
    """out = g(x) for the activation ``name``, without temporaries for the common ones."""
    if name == "tanh":
        np.tanh(x, out=out)
    elif name == "sigmoid" and x.size >= 4096:  # torch's kernel: one pass, ~3× faster here
        torch.sigmoid(torch.from_numpy(x), out=torch.from_numpy(out))
    elif name == "sigmoid":  # σ(a) = (1 + tanh(a / 2)) / 2: no overflow, one transcendental
        np.multiply(x, 0.5, out=out)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
    elif name == "relu":
        np.maximum(x, 0, out=out)
    elif name == "leaky_relu":
        np.maximum(x, LEAKY_SLOPE * x, out=out)
    elif out is not x:  # linear
        np.copyto(out, x)


def _matmul(x: np.ndarray, w: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = x @ w for x (B, K), w (K, M) contiguous, out (B, M) C-contiguous.

    One row goes to NumPy's OpenBLAS GEMV (lowest call overhead, and MKL's GEMV is slower on
    these CPUs); several rows go to torch's GEMM (MKL/oneDNN), which at 8 rows is ~1.7× faster
    than OpenBLAS's. Both views share memory with the NumPy arrays: nothing is copied.
    """
    if not isinstance(w, np.ndarray):  # weights in low precision (rnnkit.low_precision)
        return w.matmul(x, out)
    if x.shape[0] == 1:
        return np.dot(x, w, out=out)
    torch.mm(torch.from_numpy(x), torch.from_numpy(w), out=torch.from_numpy(out))
    return out


class _Layer:
    """One layer's rearranged weights and where its h (and c) live in the state array."""

    def __init__(self, cell: Any, index: int, d: int, offset: int, table_of, dtype) -> None:
        """``table_of``: None (x comes as a vector), "one_hot", or the (V, E) embedding."""
        kind = getattr(cell, "kind", None)
        if kind not in GATES:
            raise RnnkitError(f"cells[{index}].kind must be one of {list(GATES)}, got {kind!r}")
        self.kind, G = kind, GATES[kind]
        w_ih, w_hh, b = (_numpy(getattr(cell, n)) for n in ("weight_ih", "weight_hh", "bias"))
        N = w_hh.shape[-1]
        if w_ih.ndim != 2 or w_ih.shape[1] != d:
            raise RnnkitError(
                f"cells[{index}] must have input size {d}, got weight_ih {w_ih.shape}"
            )
        if w_ih.shape[0] != G * N or w_hh.shape != (G * N, N) or b.shape != (G * N,):
            raise RnnkitError(
                f"cells[{index}] ({kind}) must have weight_ih ({G * N}, d), weight_hh "
                f"({G * N}, {N}), bias ({G * N},), got {w_ih.shape}, {w_hh.shape}, {b.shape}"
            )
        self.N, self.d = N, d
        self.activation = check_activation(getattr(cell, "activation", "tanh"))
        self.gate_activation = check_activation(getattr(cell, "gate_activation", "sigmoid"))
        self.reset_after = bool(getattr(cell, "reset_after", False))
        if kind == "lstm":  # i, f, c̃, o -> i, f, o, c̃: the sigmoid gates side by side
            perm = np.r_[0 : 2 * N, 3 * N : 4 * N, 2 * N : 3 * N]
            w_ih, w_hh, b = w_ih[perm], w_hh[perm], b[perm]
        self.h = slice(offset, offset + N)
        self.c = slice(offset + N, offset + 2 * N) if kind == "lstm" else None
        self.size = 2 * N if kind == "lstm" else N

        def c(a: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(a, dtype=dtype)

        # Products are x @ W with W stored (in, out), so a row of x meets contiguous rows of W.
        if isinstance(table_of, str):  # one-hot: row v of the table is column v of W_ih, + b
            self.table, self.w_ih = c(w_ih.T + b), None
        elif table_of is not None:  # an embedding: (V, E) rows -> (V, G·N) table
            self.table, self.w_ih = c(table_of @ w_ih.T + b), None
        else:
            self.table, self.w_ih = None, c(w_ih.T)
        self.bias = c(b)
        if kind == "gru" and not self.reset_after:  # r_t comes between U_rz h and U_h (r ⊙ h)
            self.w_hh_rz, self.w_hh_n = c(w_hh[: 2 * N].T), c(w_hh[2 * N :].T)
        else:
            self.w_hh = c(w_hh.T)


class _Buffers:
    """Scratch arrays for one batch size B, reused by every step (``np.dot(out=)`` needs
    C-contiguous outputs, hence one array per use)."""

    def __init__(self, layers: list[_Layer], B: int, dtype) -> None:
        def empty(n: int) -> np.ndarray:
            return np.empty((B, n), dtype)

        self.g = [empty(GATES[L.kind] * L.N) for L in layers]  # gate pre-activations
        self.gh = [empty(GATES[L.kind] * L.N) for L in layers]  # recurrent products U h
        self.tmp = [empty(L.N) for L in layers]
        self.gh_rz = [empty(2 * L.N) for L in layers]  # GRU with the reset gate before U_h
        self.gh_n = [empty(L.N) for L in layers]


class StepEngine:
    """Fast one-token steps of an embedding → stacked RNN/LSTM/GRU → linear head model.

    Args:
        embedding: (V, E) input embedding, or None for one-hot input of size V.
        cells: layer k's cell at index k (objects with ``kind``, ``weight_ih`` (G·N, d),
            ``weight_hh`` (G·N, N), ``bias`` (G·N,), activations, GRU ``reset_after``), e.g.
            ``layer.cells`` of a unidirectional :mod:`rnnkit.nn.layers` layer. Tensors or arrays.
        head_weight: (V, N) output matrix; head_bias: (V,) or None.
        dtype: np.float32 (fast, default) or np.float64 (exact reference).
        max_table_bytes: fold the embedding into layer 0's (V, G·N) input table only up to
            this size (a large vocabulary keeps its embedding and one more product).

    Not thread-safe: steps share scratch buffers. A state belongs to the engine's dtype.
    """

    def __init__(
        self,
        embedding: Any | None,
        cells: list[Any],
        head_weight: Any,
        head_bias: Any | None = None,
        dtype: type = np.float32,
        max_table_bytes: int = 64 * 2**20,
    ) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise RnnkitError(f"dtype must be float32 or float64, got {self.dtype}")
        cells = list(cells)
        if not cells:
            raise RnnkitError("cells must hold at least one cell")
        head_weight = _numpy(head_weight)
        if head_weight.ndim != 2:
            raise RnnkitError(f"head_weight must have shape (V, N), got {head_weight.shape}")
        V = head_weight.shape[0]
        if embedding is not None:
            embedding = _numpy(embedding)
            if embedding.ndim != 2 or embedding.shape[0] != V:
                raise RnnkitError(
                    f"embedding must have shape ({V}, E) to match head_weight, "
                    f"got {embedding.shape}"
                )
        self.vocab_size = V
        # Fold the embedding into layer 0 unless the (V, G·N) table would be big (a large
        # vocabulary); one-hot input always folds, its table is W_ih^T itself.
        gates_0 = getattr(getattr(cells[0], "weight_ih", None), "shape", (0,))[0]  # G·N
        fold = embedding is None or V * gates_0 * self.dtype.itemsize <= max_table_bytes
        self.embedding = None if fold else np.ascontiguousarray(embedding, dtype=self.dtype)
        table_of = ("one_hot" if embedding is None else embedding) if fold else None
        self.layers: list[_Layer] = []
        offset, d = 0, V if embedding is None else embedding.shape[1]
        for k, cell in enumerate(cells):
            layer = _Layer(cell, k, d, offset, table_of if k == 0 else None, self.dtype)
            self.layers.append(layer)
            offset, d = offset + layer.size, layer.N
        if head_weight.shape[1] != d:
            raise RnnkitError(f"head_weight must have shape ({V}, {d}), got {head_weight.shape}")
        head_bias = np.zeros(V) if head_bias is None else _numpy(head_bias)
        if head_bias.shape != (V,):
            raise RnnkitError(f"head_bias must have shape ({V},), got {head_bias.shape}")
        self.head_weight = np.ascontiguousarray(head_weight.T, dtype=self.dtype)  # (N, V)
        self.head_bias = head_bias.astype(self.dtype)
        self.state_size = offset
        self._buffers: dict[int, _Buffers] = {}

    @classmethod
    def from_language_model(cls, lm: Any, dtype: type = np.float32) -> "StepEngine":
        """The engine for a language model with ``embedding`` (nn.Embedding or None),
        ``rnn`` (a unidirectional layer whose ``cells[k]`` is layer k) and ``head``
        (nn.Linear)."""
        if getattr(lm.rnn, "bidirectional", False):
            raise RnnkitError("StepEngine needs a unidirectional recurrent layer")
        embedding = None if lm.embedding is None else lm.embedding.weight
        return cls(embedding, list(lm.rnn.cells), lm.head.weight, lm.head.bias, dtype=dtype)

    # ------------------------------------------------------------------------- state

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def initial_state(self, batch_size: int = 1) -> np.ndarray:
        """Zeros, (batch_size, state_size): the state before the first token."""
        return np.zeros((batch_size, self.state_size), self.dtype)

    def state_from_torch(self, state: Any) -> np.ndarray:
        """The engine state for a torch layer's state: h (L, B, N), or (h, c) for an LSTM."""
        hs, cs = state if isinstance(state, tuple | list) else (state, None)
        h = _numpy(hs)
        c = None if cs is None else _numpy(cs)
        widths = {L.N for L in self.layers}
        if h.ndim != 3 or h.shape[0] != self.num_layers or {h.shape[2]} != widths:
            raise RnnkitError(
                f"h must have shape ({self.num_layers}, B, N) with N in {sorted(widths)}, "
                f"got {h.shape}"
            )
        out = np.empty((h.shape[1], self.state_size), self.dtype)
        for k, L in enumerate(self.layers):
            out[:, L.h] = h[k]
            if L.c is not None:
                if c is None:
                    raise RnnkitError("an LSTM state must be a pair (h, c)")
                out[:, L.c] = c[k]
        return out

    def reorder(self, state: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` (B',) of ``state``: selects and duplicates rows (beam search)."""
        return state[np.asarray(index, dtype=np.int64)]

    def _check_tokens(self, tokens: Any) -> np.ndarray:
        tokens = np.asarray(tokens)
        if tokens.dtype.kind not in "iu":
            raise RnnkitError(f"tokens must be integer ids, got dtype {tokens.dtype}")
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.vocab_size):
            raise RnnkitError(
                f"tokens must be ids in [0, {self.vocab_size}), got min {tokens.min()} "
                f"and max {tokens.max()}"
            )
        return tokens

    def _check_state(self, state: Any, B: int) -> np.ndarray:
        if not isinstance(state, np.ndarray) or state.shape != (B, self.state_size):
            shape = getattr(state, "shape", type(state).__name__)
            raise RnnkitError(
                f"state must be an array of shape ({B}, {self.state_size}), got {shape}"
            )
        return state

    # -------------------------------------------------------------------------- step

    def _cell(self, L: _Layer, k: int, buf: _Buffers, g, h_prev, c_prev, h_out, c_out) -> None:
        """One cell step given ``g`` = W_x x + b (B, G·N), overwritten as scratch: writes h_t
        (and c_t) into ``h_out`` (``c_out``). The equations of :mod:`rnnkit.nn.cells`."""
        N = L.N
        if L.kind != "gru":  # the whole pre-activation: W_x x + b + U h
            g += _matmul(h_prev, L.w_hh, buf.gh[k])
        if L.kind == "rnn":
            _activate(L.activation, g, h_out)
        elif L.kind == "lstm":
            _activate(L.gate_activation, g[:, : 3 * N], g[:, : 3 * N])
            _activate(L.activation, g[:, 3 * N :], g[:, 3 * N :])
            i, f, o, c̃ = g[:, :N], g[:, N : 2 * N], g[:, 2 * N : 3 * N], g[:, 3 * N :]
            np.multiply(f, c_prev, out=c_out)
            np.multiply(i, c̃, out=i)
            np.add(c_out, i, out=c_out)  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
            tmp = buf.tmp[k]
            _activate(L.activation, c_out, tmp)
            np.multiply(o, tmp, out=h_out)  # h_t = o ⊙ tanh(c_t)
        else:  # gru
            if L.reset_after:
                gh = buf.gh[k]
                _matmul(h_prev, L.w_hh, gh)  # U h for r, z and the candidate at once
                gh_rz, gh_n = gh[:, : 2 * N], gh[:, 2 * N :]
            else:
                gh_rz = buf.gh_rz[k]
                _matmul(h_prev, L.w_hh_rz, gh_rz)
            rz = g[:, : 2 * N]
            rz += gh_rz
            _activate(L.gate_activation, rz, rz)
            r, z, n = g[:, :N], g[:, N : 2 * N], g[:, 2 * N :]
            tmp = buf.tmp[k]
            if L.reset_after:  # h̃ = g(W x + b + r ⊙ (U h))
                np.multiply(r, gh_n, out=tmp)
                n += tmp
            else:  # h̃ = g(W x + b + U (r ⊙ h))
                np.multiply(r, h_prev, out=tmp)
                n += _matmul(tmp, L.w_hh_n, buf.gh_n[k])
            _activate(L.activation, n, n)
            np.subtract(n, h_prev, out=n)
            np.multiply(z, n, out=n)
            np.add(h_prev, n, out=h_out)  # h_t = h_{t-1} + z ⊙ (h̃ - h_{t-1})

    def _buf(self, B: int) -> _Buffers:
        buf = self._buffers.get(B)
        if buf is None:
            if len(self._buffers) >= 8:  # searches shrink the batch: keep a few sizes only
                self._buffers.clear()
            buf = self._buffers[B] = _Buffers(self.layers, B, self.dtype)
        return buf

    def _log_softmax_head(self, h: np.ndarray) -> np.ndarray:
        """(B, N) top hidden state → (B, V) log-probabilities, a new array (callers keep it)."""
        out = _matmul(h, self.head_weight, np.empty((h.shape[0], self.vocab_size), self.dtype))
        out += self.head_bias
        out -= out.max(axis=1, keepdims=True)
        out -= np.log(np.exp(out).sum(axis=1, keepdims=True))
        return out

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One token per row: tokens (B,) int, state (B, S) → log-probs (B, V), new state.

        The input ``state`` is left unchanged (it may be kept, e.g. by a search)."""
        tokens = self._check_tokens(tokens)
        if tokens.ndim != 1:
            raise RnnkitError(f"tokens must have shape (B,), got {tokens.shape}")
        state = self._check_state(state, len(tokens))
        buf = self._buf(len(tokens))
        new = np.empty(state.shape, self.dtype)
        x = None if self.embedding is None else self.embedding[tokens]
        for k, L in enumerate(self.layers):
            g = buf.g[k]
            if L.table is not None:  # layer 0: a row of the table is W_x x + b
                np.take(L.table, tokens, axis=0, out=g)
            else:
                _matmul(x, L.w_ih, g)
                g += L.bias
            c_prev = state[:, L.c] if L.c is not None else None
            c_out = new[:, L.c] if L.c is not None else None
            self._cell(L, k, buf, g, state[:, L.h], c_prev, new[:, L.h], c_out)
            x = new[:, L.h]
        return self._log_softmax_head(x), new

    def prime(self, tokens: Any, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Consume a prompt: tokens (T,) or (B, T), T >= 1, from ``state`` (default zeros).

        Runs layer by layer over the whole prompt, so each layer's input projection is one
        matrix product for all T steps.

        Returns:
            log-probs (B, V) of the token after the prompt, and the state after it (B, S).
        """
        tokens = self._check_tokens(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] < 1:
            raise RnnkitError(
                f"tokens must have shape (T,) or (B, T) with T >= 1, got {tokens.shape}"
            )
        B, T = tokens.shape
        if state is None:
            state = self.initial_state(B)
        state = self._check_state(state, B)
        buf = self._buf(B)
        new = np.empty(state.shape, self.dtype)
        # (T, B, d): the layer's input sequence, time first so that x[t] is contiguous
        x = None if self.embedding is None else self.embedding[tokens.T]
        for k, L in enumerate(self.layers):
            if L.table is not None:
                gx = L.table[tokens.T]  # (T, B, G·N)
            else:
                gx = np.empty((T, B, GATES[L.kind] * L.N), self.dtype)
                _matmul(x.reshape(T * B, L.d), L.w_ih, gx.reshape(T * B, -1))
                gx += L.bias
            h_seq = np.empty((T, B, L.N), self.dtype)
            h_prev = state[:, L.h]
            if L.c is not None:  # two c buffers in turn: the cell reads one, writes the other
                c_prev, c_next = state[:, L.c].copy(), np.empty((B, L.N), self.dtype)
            else:
                c_prev = c_next = None
            for t in range(T):
                self._cell(L, k, buf, gx[t], h_prev, c_prev, h_seq[t], c_next)
                h_prev = h_seq[t]
                if L.c is not None:
                    c_prev, c_next = c_next, c_prev
            new[:, L.h] = h_seq[-1]
            if L.c is not None:
                new[:, L.c] = c_prev
            x = h_seq
        return self._log_softmax_head(x[-1]), new
