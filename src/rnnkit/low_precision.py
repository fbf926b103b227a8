r"""Generation with low-precision weights: the step engine with int8 or bfloat16 products (opt-in).

At batch 1 a generation step reads every weight once, so its speed is the speed at which the
weights stream through the caches: a 2×512 LSTM is 12.6 MB in float32, more than the L2 caches
hold (benchmarks/gemv_ceiling.py). Stored in int8 the same weights are a quarter of the bytes;
in bfloat16, half. :class:`LowPrecisionEngine` is :class:`rnnkit.inference.StepEngine` with its
products done that way; everything else (the gate activations, the cell state, the head's
softmax) stays float32.

``int8``: each output row of W gets its own scale (symmetric, max |w| → 127), and FBGEMM's
dynamic linear quantizes the input vector per call to uint8 (its own min/max), multiplies in
integers and rescales to float32 (``torch.ops.quantized.linear_dynamic``, prepacked weights).
``bf16``: weights rounded to bfloat16, the input rounded to bfloat16 per call, products in
oneDNN with float32 accumulation, the result rounded to bfloat16 then widened to float32
(``torch.ops.mkldnn._linear_pointwise``, prepacked weights); without oneDNN's bf16 a plain
``F.linear`` in bfloat16 (slower).

Neither is exact: log-probabilities move by ~1e-2 and greedy chains part from the float32
engine's after some tokens; benchmarks/generate_speed.py measures the speed, the agreement
of greedy tokens and the validation perplexity against float32.

For an LSTM with its standard activations the step is fused further: each layer does one
product (layer 0: ``U h`` beside a row of the input table; above it: ``[W U] [x; h]`` with the
bias inside), the rows of the sigmoid gates are halved at load time so that one ``tanh`` over
all four gates gives them all (σ(a) = (1 + tanh(a/2)) / 2), and the buffers are kept per batch
size. Other cells (GRU, vanilla RNN, other activations) run the float32 engine's equations with
the low-precision products. The output head stays float32 unless it is large (a word
vocabulary), as then it is most of the bytes.
"""

import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.errors import RnnkitError
from rnnkit.inference import StepEngine, _matmul

ENGINES = ("fp32", "int8", "bf16")
"""The engines :class:`rnnkit.tasks.text_generator.TextGenerator` offers (fp32: StepEngine)."""

LOW_PRECISIONS = ("int8", "bf16")


def check_engine(engine: str) -> str:
    """Return ``engine`` if it is one of :data:`ENGINES`, else raise :class:`RnnkitError`."""
    if engine not in ENGINES:
        raise RnnkitError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
    return engine


class LowPrecisionMatrix:
    """A product ``x @ W + b`` with W stored in int8 or bfloat16; x and the result float32.

    Args:
        w: (K, M) float array, the engine's (in, out) layout.
        precision: "int8" or "bf16".
        bias: (M,) float array added in the product, or None.
    """

    def __init__(self, w: np.ndarray, precision: str, bias: np.ndarray | None = None) -> None:
        if precision not in LOW_PRECISIONS:
            raise RnnkitError(f"precision must be one of {list(LOW_PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.shape = w.shape
        w_t = torch.from_numpy(np.ascontiguousarray(w.T, dtype=np.float32))  # (out, in)
        b = None if bias is None else torch.from_numpy(np.asarray(bias, dtype=np.float32).copy())
        if precision == "int8":
            scale = (w_t.abs().amax(dim=1).double() / 127).clamp_min(1e-12)
            with warnings.catch_warnings():  # torch marks its quantized tensors deprecated
                warnings.simplefilter("ignore")
                q = torch.quantize_per_channel(
                    w_t, scale, torch.zeros(len(scale), dtype=torch.long), 0, torch.qint8
                )
                try:
                    self._packed = torch.ops.quantized.linear_prepack(q, b)
                except RuntimeError as err:  # a torch built without FBGEMM / oneDNN / QNNPACK
                    first = str(err).splitlines()[0] if str(err) else type(err).__name__
                    raise RnnkitError(
                        f"the int8 engine needs torch's quantized kernels, which this torch "
                        f"lacks ({first}): use engine 'fp32' or 'bf16'"
                    ) from None
            self._op = torch.ops.quantized.linear_dynamic.default
            self.nbytes = w_t.numel() + 4 * len(scale)
        else:
            w_b = w_t.to(torch.bfloat16)
            self._bias = b
            self.nbytes = 2 * w_t.numel()
            mkldnn = torch.backends.mkldnn.is_available()
            if mkldnn and torch.ops.mkldnn._is_mkldnn_bf16_supported():
                self._packed = torch.ops.mkldnn._reorder_linear_weight(w_b)
                self._op = torch.ops.mkldnn._linear_pointwise.default
            else:  # correct everywhere, fast only with oneDNN
                self._packed, self._op = w_b, None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, K) float32 tensor → (B, M) float32 tensor."""
        if self.precision == "int8":
            return self._op(x, self._packed)
        x = x.to(torch.bfloat16)
        if self._op is None:
            y = F.linear(x, self._packed)
            return y.float() if self._bias is None else y.float() + self._bias
        return self._op(x, self._packed, self._bias, "none", [], "").float()

    def matmul(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        """out = x @ W + b for NumPy x (B, K) and out (B, M): the float32 engine's product."""
        np.copyto(out, self(torch.from_numpy(np.ascontiguousarray(x))).numpy())
        return out


def _halve_sigmoid_gates(a: np.ndarray, N: int) -> np.ndarray:
    """Columns i, f, o (the first 3N, engine order) halved: tanh then gives σ via 1 + tanh(a/2)."""
    a = np.array(a, dtype=np.float32)
    a[..., : 3 * N] *= 0.5
    return a


class _FastBuffers:
    """Per batch size B: the input of each layer's product, ``xh[k]`` (B, d_k + N) = [x; h]
    (d_0 = 0 when layer 0 reads a table), with its torch view, and the top layer's output."""

    def __init__(self, engine: "LowPrecisionEngine", B: int) -> None:
        self.xh = [np.zeros((B, w), np.float32) for w in engine._in_widths]
        self.xh_t = [torch.from_numpy(a) for a in self.xh]
        self.top = np.zeros((B, engine.layers[-1].N), np.float32)
        self.tmp = [np.empty((B, L.N), np.float32) for L in engine.layers]


class LowPrecisionEngine(StepEngine):
    """:class:`rnnkit.inference.StepEngine` with the weights stored in int8 or bfloat16.

    Args:
        embedding, cells, head_weight, head_bias, max_table_bytes: as :class:`StepEngine`.
        precision: "int8" (a quarter of float32's bytes) or "bf16" (half).
        max_head_bytes: the head stays float32 up to this size (small, and what ranks tokens).

    Same interface as :class:`StepEngine` (step, prime, reorder, initial_state): states are
    float32 (B, state_size) arrays. Not thread-safe.
    """

    def __init__(
        self,
        embedding: Any | None,
        cells: list[Any],
        head_weight: Any,
        head_bias: Any | None = None,
        precision: str = "int8",
        max_table_bytes: int = 64 * 2**20,
        max_head_bytes: int = 2**20,
    ) -> None:
        if precision not in LOW_PRECISIONS:
            raise RnnkitError(f"precision must be one of {list(LOW_PRECISIONS)}, got {precision!r}")
        super().__init__(
            embedding, cells, head_weight, head_bias, np.float32, max_table_bytes=max_table_bytes
        )
        self.precision = precision
        self._fast = all(
            L.kind == "lstm" and L.gate_activation == "sigmoid" and L.activation == "tanh"
            for L in self.layers
        )
        for k, L in enumerate(self.layers):
            if self._fast:
                self._fuse_lstm(L, k)
            else:  # the float32 engine's equations, each product in low precision
                for name in ("w_ih", "w_hh", "w_hh_rz", "w_hh_n"):
                    w = getattr(L, name, None)
                    if w is not None:
                        setattr(L, name, LowPrecisionMatrix(w, precision))
        if self.head_weight.nbytes > max_head_bytes:
            self.head_weight = LowPrecisionMatrix(self.head_weight, precision, self.head_bias)
            self.head_bias = np.zeros_like(self.head_bias)
        self._in_widths = [
            L.N if L.table is not None else L.d + L.N for L in self.layers
        ]  # the width of [x; h]
        self._fast_buffers: dict[int, _FastBuffers] = {}

    def _fuse_lstm(self, L: Any, k: int) -> None:
        """One product per layer: [x; h] @ [W; U] + b, sigmoid-gate columns halved."""
        N = L.N
        if L.table is not None:  # x W + b is a row of the table: the product is U h alone
            L.table = _halve_sigmoid_gates(L.table, N)
            w, bias = L.w_hh, None
        else:
            w, bias = np.concatenate([L.w_ih, L.w_hh]), _halve_sigmoid_gates(L.bias, N)
        L.fused = LowPrecisionMatrix(_halve_sigmoid_gates(w, N), self.precision, bias)
        L.w_ih = L.w_hh = None  # the float32 copies are no longer needed

    @property
    def weight_bytes(self) -> int:
        """Bytes of the weights a step reads (products in their precision, the rest float32)."""
        total = 0
        for L in self.layers:
            for name in ("fused", "w_ih", "w_hh", "w_hh_rz", "w_hh_n"):
                w = getattr(L, name, None)
                total += 0 if w is None else w.nbytes
            total += 0 if L.table is None else L.table.shape[1] * 4  # one row per step
        return total + self.head_weight.nbytes

    # ---------------------------------------------------------------- the fused LSTM step

    def _fbuf(self, B: int) -> _FastBuffers:
        buf = self._fast_buffers.get(B)
        if buf is None:
            if len(self._fast_buffers) >= 8:  # searches shrink the batch: keep a few sizes only
                self._fast_buffers.clear()
            buf = self._fast_buffers[B] = _FastBuffers(self, B)
        return buf

    def _advance(self, tokens: np.ndarray, state: np.ndarray, buf: _FastBuffers) -> np.ndarray:
        """The state after one token per row (the top h is left in ``buf.top``)."""
        new = np.empty(state.shape, np.float32)
        last = len(self.layers) - 1
        for k, L in enumerate(self.layers):
            N, xh = L.N, buf.xh[k]
            xh[:, xh.shape[1] - N :] = state[:, L.h]
            if k == 0 and L.table is None:
                xh[:, : L.d] = self.embedding[tokens]
            g = L.fused(buf.xh_t[k]).numpy()  # (B, 4N) pre-activations, i f o halved
            if L.table is not None:  # (one row: a view, no copy)
                g += L.table[tokens[0]] if len(tokens) == 1 else L.table[tokens]
            np.tanh(g, out=g)
            s = g[:, : 3 * N]
            s *= 0.5
            s += 0.5  # σ of i, f, o
            i, f, o, c̃ = g[:, :N], g[:, N : 2 * N], g[:, 2 * N : 3 * N], g[:, 3 * N :]
            c = new[:, L.c]
            np.multiply(f, state[:, L.c], out=c)
            i *= c̃
            c += i  # c_t = f ⊙ c_{t-1} + i ⊙ c̃
            tmp = buf.tmp[k]
            np.tanh(c, out=tmp)
            h = buf.top if k == last else buf.xh[k + 1][:, :N]
            np.multiply(o, tmp, out=h)  # h_t = o ⊙ tanh(c_t)
            new[:, L.h] = h
        return new

    def _log_softmax_head(self, h: np.ndarray) -> np.ndarray:
        """(B, N) top hidden state → (B, V) log-probabilities (torch's one-call log-softmax)."""
        logits = _matmul(h, self.head_weight, np.empty((h.shape[0], self.vocab_size), np.float32))
        logits += self.head_bias
        return torch.log_softmax(torch.from_numpy(logits), dim=1).numpy()

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`StepEngine.step`: tokens (B,), state (B, S) → log-probs (B, V), new state."""
        if not self._fast:
            return super().step(tokens, state)
        tokens = self._check_tokens(tokens)
        if tokens.ndim != 1:
            raise RnnkitError(f"tokens must have shape (B,), got {tokens.shape}")
        state = self._check_state(state, len(tokens))
        buf = self._fbuf(len(tokens))
        new = self._advance(tokens, state, buf)
        return self._log_softmax_head(buf.top), new

    def prime(self, tokens: Any, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`StepEngine.prime`: a prompt (T,) or (B, T) → log-probs (B, V), state."""
        if not self._fast:
            return super().prime(tokens, state)
        tokens = self._check_tokens(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or tokens.shape[1] < 1:
            raise RnnkitError(
                f"tokens must have shape (T,) or (B, T) with T >= 1, got {tokens.shape}"
            )
        B, T = tokens.shape
        state = self._check_state(self.initial_state(B) if state is None else state, B)
        buf = self._fbuf(B)
        columns = np.ascontiguousarray(tokens.T)
        for t in range(T):
            state = self._advance(columns[t], state, buf)
        return self._log_softmax_head(buf.top), state


def engine_for(lm: Any, engine: str = "fp32") -> StepEngine:
    """The step engine of a language model (see :meth:`StepEngine.from_language_model`):
    ``fp32`` the exact float32 engine, ``int8`` / ``bf16`` a :class:`LowPrecisionEngine`."""
    if check_engine(engine) == "fp32":
        return StepEngine.from_language_model(lm)
    if getattr(lm.rnn, "bidirectional", False):
        raise RnnkitError("StepEngine needs a unidirectional recurrent layer")
    embedding = None if lm.embedding is None else lm.embedding.weight
    return LowPrecisionEngine(
        embedding, list(lm.rnn.cells), lm.head.weight, lm.head.bias, precision=engine
    )
