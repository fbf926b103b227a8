r"""Recurrent layers: a stack of cells run over a whole sequence.

:class:`RNN`, :class:`LSTM` and :class:`GRU` apply the equations of
:class:`~rnnkit.nn.cells.RNNCell`, :class:`~rnnkit.nn.cells.LSTMCell` and
:class:`~rnnkit.nn.cells.GRUCell` at every time step, stacked ``num_layers`` deep, optionally in
both directions, with variable lengths, dropout between layers and recurrent dropout. They hold
nothing but cells: ``layer.cells[k * D + d]`` is layer k, direction d (0 forward, 1 backward,
D = 2 if bidirectional), so other code (the NumPy generation engine, converters) reads the
parameters from the cells directly.

How the sequence is run is the *engine*'s business, and every engine gives the same numbers:

* ``native``: the whole stack in one call of torch's fused kernel (oneDNN / cuDNN), see
  :mod:`rnnkit.nn.engines.native`. Only for what the kernel computes: standard activations,
  GRU with ``reset_after=True``, no recurrent dropout.
* ``scan``: one cell and one direction at a time, see :mod:`rnnkit.nn.engines.scan`. Any cell.
* ``auto`` (default): ``native`` whenever it applies, else ``scan``; and ``scan`` for a batch
  of variable lengths on the CPU, where torch's packed-sequence kernel is up to 4.4x slower
  than the scan engine (see :mod:`rnnkit.nn.engines.native`, ``benchmarks/packed_lengths.py``).
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import RnnkitError
from rnnkit.nn.cells import Cell, GRUCell, LSTMCell, RNNCell
from rnnkit.nn.engines.native import native_blocker, native_forward
from rnnkit.nn.engines.scan import scan_layer

State = Tensor | tuple[Tensor, Tensor]
ENGINES = ("auto", "native", "scan")


def _check_size(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RnnkitError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def _check_probability(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise RnnkitError(f"{name} must be a probability in [0, 1), got {value!r}")
    return float(value)


class RecurrentLayer(nn.Module):
    """What :class:`RNN`, :class:`LSTM` and :class:`GRU` share; see :class:`LSTM` for the docs."""

    kind: str = ""
    cell_class: type[Cell] = Cell

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        engine: str = "auto",
        return_sequences: bool = True,
        recurrent_dropout: float = 0.0,
        **cell_options,
    ) -> None:
        super().__init__()
        self.input_size = _check_size("input_size", input_size)
        self.hidden_size = _check_size("hidden_size", hidden_size)
        self.num_layers = _check_size("num_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.dropout = _check_probability("dropout", dropout)
        self.recurrent_dropout = _check_probability("recurrent_dropout", recurrent_dropout)
        self.batch_first = bool(batch_first)
        self.return_sequences = bool(return_sequences)
        if engine not in ENGINES:
            raise RnnkitError(f"engine must be one of {list(ENGINES)}, got {engine!r}")
        self.engine = engine
        self.cell_options = dict(cell_options)

        D, N = self.num_directions, self.hidden_size
        cells = []
        for k in range(self.num_layers):
            d_in = self.input_size if k == 0 else D * N
            for _ in range(D):
                try:
                    cells.append(self.cell_class(d_in, N, **cell_options))
                except TypeError as e:  # an option this cell does not take
                    raise RnnkitError(
                        f"{type(self).__name__} got unknown cell options {sorted(cell_options)}: "
                        f"{e}"
                    ) from None
        self.cells = nn.ModuleList(cells)
        if engine == "native":
            self._require_native()

    # ---------------------------------------------------------------- engines

    def native_blocker(self) -> str | None:
        """Why the native kernel cannot run this layer, or ``None`` when it can."""
        return native_blocker(list(self.cells), self.recurrent_dropout)

    @property
    def uses_native(self) -> bool:
        """True when this layer can go through torch's fused kernel: with ``engine='auto'`` a
        call then does so unless its batch has variable lengths on the CPU (``_runs_native``)."""
        if self.engine == "scan":
            return False
        if self.engine == "native":
            return True
        return self.native_blocker() is None

    def _runs_native(self, x: Tensor, lengths: Tensor | None, autocast: bool) -> bool:
        """Whether this call goes through the fused kernel. ``auto`` leaves a variable-length
        batch on the CPU to the scan engine (the packed kernel is the slower one there); under
        autocast the kernel keeps it, being the one that computes in the lower precision."""
        if not self.uses_native:
            return False
        if self.engine == "native" or lengths is None or autocast:
            return True
        return x.device.type != "cpu"

    def _require_native(self) -> None:
        reason = self.native_blocker()
        if reason is not None:
            raise RnnkitError(f"engine='native' cannot run this {type(self).__name__}: {reason}")

    # ---------------------------------------------------------------- forward

    def forward(
        self, x: Tensor, state: State | None = None, lengths: Tensor | None = None
    ) -> tuple[Tensor, State]:
        """Run the stack over ``x``; see the class docstring for shapes."""
        if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            layout = "(B, T, {d})" if self.batch_first else "(T, B, {d})"
            raise RnnkitError(
                f"x must have shape {layout.format(d=self.input_size)} or "
                f"(T, {self.input_size}) unbatched, got {shape}"
            )
        weight = self.cells[0].weight_ih
        # Under autocast (mixed precision) x may come in the lower precision: the kernel casts.
        autocast = torch.is_autocast_enabled(x.device.type)
        if x.dtype != weight.dtype and not autocast:
            raise RnnkitError(
                f"x has dtype {x.dtype} but the layer's parameters are {weight.dtype}: "
                f"convert one of them (x.to(...) or layer.to(...))"
            )
        batched = x.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            x = x.unsqueeze(batch_dim)
        B, T = x.shape[batch_dim], x.shape[1 - batch_dim]
        if T == 0 or B == 0:
            raise RnnkitError(f"x must have at least one step and one row, got {tuple(x.shape)}")

        state = self._check_state(state, weight.dtype, x.device, B, batched)
        lengths = self._check_lengths(lengths, B, T, batched)

        if self.engine == "native":
            self._require_native()
        if self._runs_native(x, lengths, autocast):
            outputs, final = native_forward(
                list(self.cells),
                x,
                state,
                num_layers=self.num_layers,
                bidirectional=self.bidirectional,
                batch_first=self.batch_first,
                dropout=self.dropout,
                training=self.training,
                lengths=lengths,
            )
        elif autocast:  # the scan engine's hand-written backward runs in full precision only
            with torch.autocast(x.device.type, enabled=False):
                outputs, final = self._scan_forward(x.to(weight.dtype), state, lengths)
        else:
            outputs, final = self._scan_forward(x, state, lengths)

        if not self.return_sequences:
            # The last valid step of each direction is the top layer's final h: forward at
            # step length-1, backward at step 0 (as Keras does).
            h_n = final[0] if self.kind == "lstm" else final
            outputs = torch.cat(h_n[-self.num_directions :].unbind(0), dim=-1)  # (B, D·N)
            if not batched:
                outputs = outputs.squeeze(0)
        elif not batched:
            outputs = outputs.squeeze(batch_dim)
        if autocast:  # the state keeps the parameters' precision from call to call
            final = _cast_state(final, weight.dtype)
        if not batched:
            final = tuple(s.squeeze(1) for s in final) if self.kind == "lstm" else final.squeeze(1)
        return outputs, final

    def _scan_forward(
        self, x: Tensor, state: State, lengths: Tensor | None
    ) -> tuple[Tensor, State]:
        """One cell and one direction at a time through the scan engine (time-major)."""
        D = self.num_directions
        is_lstm = self.kind == "lstm"
        h0, c0 = state if is_lstm else (state, None)
        if lengths is not None:
            lengths = lengths.to(x.device)
        layer_input = x.transpose(0, 1) if self.batch_first else x  # (T, B, d)
        finals_h, finals_c = [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outs = []
            for d in range(D):
                i = k * D + d
                mask = None
                if self.recurrent_dropout and self.training:
                    keep = 1.0 - self.recurrent_dropout
                    mask = h0.new_empty(h0.shape[1:]).bernoulli_(keep) / keep  # (B, N)
                out, final = scan_layer(
                    self.cells[i],
                    layer_input,
                    (h0[i], c0[i]) if is_lstm else h0[i],
                    lengths=lengths,
                    reverse=d == 1,
                    dropout_mask=mask,
                )
                outs.append(out)
                finals_h.append(final[0] if is_lstm else final)
                if is_lstm:
                    finals_c.append(final[1])
            layer_input = outs[0] if D == 1 else torch.cat(outs, dim=-1)
        outputs = layer_input.transpose(0, 1) if self.batch_first else layer_input
        h_n = torch.stack(finals_h)
        return outputs, ((h_n, torch.stack(finals_c)) if is_lstm else h_n)

    # ---------------------------------------------------------------- validation

    def _check_state(
        self, state: State | None, dtype: torch.dtype, device: torch.device, B: int, batched: bool
    ) -> State:
        LD, N = self.num_layers * self.num_directions, self.hidden_size
        if state is None:
            zeros = torch.zeros(LD, B, N, dtype=dtype, device=device)
            return (zeros, zeros) if self.kind == "lstm" else zeros
        expected = (LD, B, N) if batched else (LD, N)
        if self.kind == "lstm":
            if not isinstance(state, tuple | list) or len(state) != 2:
                raise RnnkitError(
                    f"LSTM state must be a tuple (h, c) of tensors shaped {expected}, "
                    f"got {type(state).__name__}"
                )
            parts = {"state h": state[0], "state c": state[1]}
        else:
            parts = {"state": state}
        checked = []
        for name, s in parts.items():
            if not isinstance(s, Tensor) or tuple(s.shape) != expected:
                got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
                raise RnnkitError(
                    f"{name} must have shape {expected} (num_layers·num_directions, "
                    f"{'B, ' if batched else ''}hidden_size), got {got}"
                )
            if s.dtype != dtype or s.device != device:
                raise RnnkitError(
                    f"{name} must be {dtype} on {device} like the parameters and x, "
                    f"got {s.dtype} on {s.device}"
                )
            checked.append(s if batched else s.unsqueeze(1))
        return tuple(checked) if self.kind == "lstm" else checked[0]

    @staticmethod
    def _check_lengths(lengths, B: int, T: int, batched: bool) -> Tensor | None:
        """CPU int64 (B,) lengths, or None when every row is full length."""
        if lengths is None:
            return None
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        expected = (B,) if batched else "() or (1,)"
        if (
            lengths.dtype.is_floating_point
            or lengths.dtype.is_complex
            or lengths.dtype == torch.bool
        ):
            raise RnnkitError(f"lengths must be integers, got dtype {lengths.dtype}")
        if not batched and lengths.dim() == 0:
            lengths = lengths.reshape(1)
        if tuple(lengths.shape) != (B,):
            raise RnnkitError(f"lengths must have shape {expected}, got {tuple(lengths.shape)}")
        lengths = lengths.to("cpu", torch.int64)
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > T:
            raise RnnkitError(
                f"lengths must be in 1..{T} (the number of steps in x), got values from "
                f"{low} to {high}"
            )
        return None if low == T else lengths

    # ---------------------------------------------------------------- parameters

    def cell(self, layer: int, direction: int = 0) -> Cell:
        """The cell of layer ``layer`` (0-based) and direction ``direction`` (0 fwd, 1 bwd)."""
        return self.cells[layer * self.num_directions + direction]

    def expected_num_parameters(self) -> int:
        """Sum over layers and directions of G·(N·d + N² + N), d = input_size or D·N."""
        return sum(cell.expected_num_parameters() for cell in self.cells)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if not self.batch_first:
            s += ", batch_first=False"
        if self.engine != "auto":
            s += f", engine={self.engine!r}"
        if not self.return_sequences:
            s += ", return_sequences=False"
        if self.recurrent_dropout:
            s += f", recurrent_dropout={self.recurrent_dropout}"
        return s


_SHAPES_DOC = r"""
    Args:
        input_size: d, features of each input step.
        hidden_size: N, features of the hidden state (per direction).
        num_layers: L, layers stacked (layer k > 0 reads layer k-1's outputs). Default 1.
        bidirectional: also run each layer backward in time and concatenate
            [forward, backward] on the feature axis (D = 2). Default False.
        dropout: dropout probability on the outputs of every layer but the last, in training.
        batch_first: ``x`` is (B, T, d) if True (default), (T, B, d) if False.
        engine: 'auto' (default), 'native' or 'scan'; see :mod:`rnnkit.nn.layers`.
        return_sequences: return every step's output (default) or only the last valid one.
        recurrent_dropout: dropout on h_{{t-1}} before the recurrent product, one mask per
            sequence (Gal & Ghahramani 2016; Keras' recurrent_dropout). Needs the scan engine.
        **cell_options: passed to every cell: {options}.

    Call: ``outputs, state = layer(x, state=None, lengths=None)``

    Inputs:
        * **x**: (B, T, d) if ``batch_first`` else (T, B, d); or unbatched (T, d).
        * **state**: {state_in} Zeros if ``None``.
        * **lengths**: int (B,) with 1 <= lengths[b] <= T, the valid steps of each row (the
          rest is padding), or ``None`` for full rows. Padded steps neither change the state
          nor reach the backward direction.

    Outputs:
        * **outputs**: (B, T, D·N) if ``batch_first`` else (T, B, D·N), the top layer's h_t at
          every step, 0 at padded steps; with ``return_sequences=False`` (B, D·N), the forward
          direction at its last valid step and the backward direction at step 0.
        * **state**: {state_out}

    ========================  ============================================================
    Shape                     meaning
    ========================  ============================================================
    B                         batch size
    T                         sequence length (longest)
    d                         ``input_size``
    N                         ``hidden_size``
    D                         2 if ``bidirectional`` else 1
    L                         ``num_layers``
    ========================  ============================================================

    Unbatched input (T, d) gives unbatched outputs (T, D·N) and states (L·D, N), as torch.

    Attributes:
        cells: ``nn.ModuleList`` of L·D :class:`~rnnkit.nn.cells.{cell}`, index k·D + d for
            layer k and direction d; layer 0's cells have input size d, the others D·N.

    Examples::

        >>> layer = rnnkit.nn.{name}(8, 16, num_layers=2, bidirectional=True)
        >>> x = torch.randn(4, 10, 8)                        # (B, T, d)
        >>> outputs, state = layer(x, lengths=torch.tensor([10, 7, 3, 1]))
        >>> outputs.shape                                    # (B, T, D·N)
        torch.Size([4, 10, 32])
        >>> rnnkit.nn.to_torch(layer)                        # the same numbers in torch.nn
"""


class RNN(RecurrentLayer):
    __doc__ = r"""A stack of Elman RNN layers over a sequence.

    For each layer k, direction and time step t (equations of :class:`~rnnkit.nn.cells.RNNCell`):

    .. math::
        h_t = g(W_x x_t + W_h h_{t-1} + b)

    with g the activation (tanh by default) and x_t the input (layer 0) or the previous
    layer's outputs, after dropout. Parameters per cell: N·d + N² + N.
    """ + _SHAPES_DOC.format(
        options="activation ('tanh', 'relu' run native; 'sigmoid', 'leaky_relu', 'linear')",
        state_in="h0 (L·D, B, N).",
        state_out="h_n (L·D, B, N), each row's h at its last valid step.",
        cell="RNNCell",
        name="RNN",
    )

    kind = "rnn"
    cell_class = RNNCell


class LSTM(RecurrentLayer):
    __doc__ = r"""A stack of LSTM layers over a sequence.

    For each layer k, direction and time step t (equations of :class:`~rnnkit.nn.cells.LSTMCell`):

    .. math::
        f_t &= σ(W_f x_t + U_f h_{t-1} + b_f)\\
        i_t &= σ(W_i x_t + U_i h_{t-1} + b_i)\\
        o_t &= σ(W_o x_t + U_o h_{t-1} + b_o)\\
        c̃_t &= \tanh(W_c x_t + U_c h_{t-1} + b_c)\\
        c_t &= f_t ⊙ c_{t-1} + i_t ⊙ c̃_t\\
        h_t &= o_t ⊙ \tanh(c_t)

    with x_t the input (layer 0) or the previous layer's outputs, after dropout. One bias per
    gate: 4·(N·d + N² + N) parameters per cell (torch.nn.LSTM has two, b_ih + b_hh).
    """ + _SHAPES_DOC.format(
        options="gate_activation, activation, forget_bias (see LSTMCell)",
        state_in="(h0, c0), each (L·D, B, N).",
        state_out="(h_n, c_n), each (L·D, B, N), taken at each row's last valid step.",
        cell="LSTMCell",
        name="LSTM",
    )

    kind = "lstm"
    cell_class = LSTMCell


class GRU(RecurrentLayer):
    __doc__ = r"""A stack of GRU layers over a sequence.

    For each layer k, direction and time step t (equations of :class:`~rnnkit.nn.cells.GRUCell`):

    .. math::
        z_t &= σ(W_z x_t + U_z h_{t-1} + b_z)\\
        r_t &= σ(W_r x_t + U_r h_{t-1} + b_r)\\
        h̃_t &= \tanh(W_h x_t + U_h (r_t ⊙ h_{t-1}) + b_h)      \quad\text{reset_after=False}\\
        h̃_t &= \tanh(W_h x_t + r_t ⊙ (U_h h_{t-1}) + b_h)      \quad\text{reset_after=True}\\
        h_t &= (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t

    Note the update convention: torch.nn.GRU's z is our 1 - z. 3·(N·d + N² + N) parameters per
    cell. The native kernel computes the cuDNN form only (``reset_after=True``, with its second
    bias b_hn fed as 0); the textbook default ``reset_after=False`` runs on the scan engine.
    """ + _SHAPES_DOC.format(
        options="gate_activation, activation, reset_after (see GRUCell)",
        state_in="h0 (L·D, B, N).",
        state_out="h_n (L·D, B, N), each row's h at its last valid step.",
        cell="GRUCell",
        name="GRU",
    )

    kind = "gru"
    cell_class = GRUCell


LAYERS: dict[str, type[RecurrentLayer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def _cast_state(state: State, dtype: torch.dtype) -> State:
    if isinstance(state, tuple):
        return tuple(s.to(dtype) for s in state)
    return state.to(dtype)
