"""Building blocks of the scan engine's time loops: in-place activations and their derivatives,
the per-step recurrent product, and the thread policy of the loops.

The per-step product :class:`Product` packs its weight once per call for MKL
(``cblas_sgemm_pack``) on CPU float32: a 64-row product against an unpacked weight spends a
large share of its time re-packing that weight at every step (measured 0.88 vs 0.81 ms per
step at N=512, 4.1 vs 3.4 ms at N=1024, one thread).
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.activations import LEAKY_SLOPE, derivative_from_output

USE_MKL_PACKED = True  # False: plain products (to compare)
SERIAL_STEPS = True  # False: per-step elementwise operations on all threads (to compare)
_HAS_MKL_PACK = torch.backends.mkl.is_available() and hasattr(torch.ops.mkl, "_mkl_linear")

# In-place activations: the gates are activated where the products wrote them.
INPLACE = {
    "tanh": torch.Tensor.tanh_,
    "sigmoid": torch.Tensor.sigmoid_,
    "relu": torch.Tensor.relu_,
    "leaky_relu": lambda t: F.leaky_relu_(t, LEAKY_SLOPE),
    "linear": lambda t: t,
}


def deriv(name: str, y: Tensor, out: Tensor | None = None) -> Tensor:
    """g'(a) from y = g(a), written to ``out`` (may be ``y`` itself) or a new tensor.

    The formulas are :func:`~rnnkit.nn.activations.derivative_from_output`'s; sigmoid's y(1-y)
    and tanh's 1-y² are written as one fused operation each, which matters in the loop.
    """
    if out is None:
        out = torch.empty_like(y)
    if name == "sigmoid":
        return torch.addcmul(y, y, y, value=-1, out=out)  # y - y² = y(1 - y)
    if name == "tanh":
        return torch.addcmul(y.new_ones(()), y, y, value=-1, out=out)  # 1 - y²
    return out.copy_(derivative_from_output(name, y))


def act_into(name: str, src: Tensor, dst: Tensor) -> Tensor:
    """dst = g(src) without allocating."""
    if name == "tanh":
        return torch.tanh(src, out=dst)
    if name == "sigmoid":
        return torch.sigmoid(src, out=dst)
    INPLACE[name](dst.copy_(src))
    return dst


class StepThreads:
    """Time loops run their small per-step operations on one thread, products on all of them.

    An elementwise operation on one step's B·N or B·G·N values is too small to pay for an
    OpenMP parallel region: on two cores the barrier costs about what the split saves, and when
    other processes share the cores a descheduled thread stalls every barrier (a (64, 2048)
    sigmoid measured 48 µs on one thread and 260 µs on two on a loaded machine). So inside
    ``with StepThreads(x) as threads:`` torch runs on one thread, and :class:`Product` (and
    ``threads.all()``) switch back to all threads for the work that does scale. Switching the
    thread count costs about 0.2 µs.
    """

    def __init__(self, x: Tensor) -> None:
        self.n = torch.get_num_threads()
        self.on = SERIAL_STEPS and self.n > 1 and x.device.type == "cpu"

    def __enter__(self) -> "StepThreads":
        if self.on:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.on:
            torch.set_num_threads(self.n)

    @contextmanager
    def all(self):
        """All threads inside, one thread again after."""
        if not self.on:
            yield
            return
        torch.set_num_threads(self.n)
        try:
            yield
        finally:
            torch.set_num_threads(1)


class Product:
    """``h ↦ h wᵀ`` for one weight w (out, in) and a fixed number of rows, packed for MKL once.

    Falls back to a plain product off CPU, for float64, or without MKL. Runs on all threads
    even inside a :class:`StepThreads` loop.
    """

    def __init__(self, w: Tensor, rows: int, threads: StepThreads) -> None:
        self.w, self.rows, self.threads = w.contiguous(), rows, threads
        self.packed = None
        if USE_MKL_PACKED and _HAS_MKL_PACK and w.dtype == torch.float32 and not w.is_cuda:
            try:  # a private op of torch's: plain products if it is not there or fails
                self.packed = torch.ops.mkl._mkl_reorder_linear_weight(self.w, rows)
            except RuntimeError:
                self.packed = None
        self.wt = self.w.t()

    def __call__(self, h: Tensor) -> Tensor:
        wide = self.threads.on
        if wide:
            torch.set_num_threads(self.threads.n)
        try:
            if self.packed is not None:
                return torch.ops.mkl._mkl_linear(h, self.packed, self.w, None, self.rows)
            return torch.mm(h, self.wt)
        finally:
            if wide:
                torch.set_num_threads(1)

    def add_to(self, out: Tensor, h: Tensor) -> Tensor:
        """out += h wᵀ, in place."""
        return out.add_(self(h))
