"""Cells: the lecture's hand calculations, parameter counts, and agreement with torch's cells."""

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

# The lecture's running example: 1-d input and hidden state, h_0 = 0, all weights 1, no bias,
# linear activation, so h_t = h_{t-1} + x_t: the running sum.
XS = [1.0, 2.0, 3.0, 4.0]
RUNNING_SUM = [1.0, 3.0, 6.0, 10.0]


def rnn_sum_cell() -> RNNCell:
    cell = RNNCell(1, 1, activation="linear")
    with torch.no_grad():
        cell.weight_ih.fill_(1)
        cell.weight_hh.fill_(1)
        cell.bias.zero_()
    return cell


def lstm_sum_cell() -> LSTMCell:
    """i_t = 1, f_t = 0, o_t = 1 exactly (linear gates with W = U = 0 and b = 1, 0, 1), and
    c̃_t = W_c x_t + U_c h_{t-1} with W_c = U_c = 1, b_c = 0: c_t = c̃_t, h_t = c_t."""
    cell = LSTMCell(1, 1, gate_activation="linear", activation="linear")
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.0], [0.0], [1.0], [0.0]]))  # i, f, c̃, o
        cell.weight_hh.copy_(torch.tensor([[0.0], [0.0], [1.0], [0.0]]))
        cell.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]))
    return cell


def gru_sum_cell(reset_after: bool) -> GRUCell:
    """z_t = 1, r_t = 1 exactly (linear gates, W = U = 0, b = 1), candidate weights 1, b_h = 0:
    h_t = (1 - 1) h_{t-1} + 1 · (x_t + 1 · h_{t-1})."""
    cell = GRUCell(1, 1, gate_activation="linear", activation="linear", reset_after=reset_after)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.tensor([[0.0], [0.0], [1.0]]))  # r, z, h̃
        cell.weight_hh.copy_(torch.tensor([[0.0], [0.0], [1.0]]))
        cell.bias.copy_(torch.tensor([1.0, 1.0, 0.0]))
    return cell


def run_cell(cell, xs: list[float]) -> list[float]:
    state = None
    hs = []
    for x in xs:
        state = cell(torch.tensor([x]), state)
        h = state[0] if isinstance(state, tuple) else state
        hs.append(h.item())
    return hs


def test_rnn_hand_calculation():
    assert run_cell(rnn_sum_cell(), XS) == RUNNING_SUM


def test_lstm_hand_calculation_gives_the_running_sum():
    cell = lstm_sum_cell()
    assert run_cell(cell, XS) == RUNNING_SUM
    # With f_t = 0 the cell state forgets everything but this step's candidate: c_t = h_t.
    h, c = cell(torch.tensor([5.0]), (torch.tensor([10.0]), torch.tensor([123.0])))
    assert (h.item(), c.item()) == (15.0, 15.0)


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_hand_calculation_gives_the_running_sum(reset_after):
    assert run_cell(gru_sum_cell(reset_after), XS) == RUNNING_SUM


def test_gru_update_gate_convention():
    """z_t = 0 keeps the previous state (our convention; torch's z is 1 - ours)."""
    cell = gru_sum_cell(reset_after=False)
    with torch.no_grad():
        cell.bias[1] = 0.0  # z_t = 0
    assert cell(torch.tensor([7.0]), torch.tensor([2.0])).item() == 2.0


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_hand_calculation_through_a_layer(kind):
    """The same numbers through a whole layer: each layer's single cell is the hand cell."""
    cell = {"rnn": rnn_sum_cell, "lstm": lstm_sum_cell, "gru": lambda: gru_sum_cell(False)}[kind]()
    layer_class = {"rnn": RNN, "lstm": LSTM, "gru": GRU}[kind]
    options = {k: getattr(cell, k) for k in ("activation", "gate_activation") if hasattr(cell, k)}
    layer = layer_class(1, 1, **options)  # linear activations: the scan engine
    layer.cells[0].load_state_dict(cell.state_dict())
    outputs, _ = layer(torch.tensor(XS).view(1, 4, 1))
    assert outputs.view(-1).tolist() == RUNNING_SUM


@pytest.mark.parametrize(
    ("cell_class", "G"), [(RNNCell, 1), (LSTMCell, 4), (GRUCell, 3)], ids=["rnn", "lstm", "gru"]
)
def test_parameter_count_is_the_lecture_formula(cell_class, G):
    d, N = 7, 5
    cell = cell_class(d, N)
    held = sum(p.numel() for p in cell.parameters())
    assert held == cell.expected_num_parameters() == G * (N * d + N * N + N)


def test_lstm_forget_bias_initialisation():
    cell = LSTMCell(3, 4, forget_bias=2.5)
    assert torch.equal(cell.bias[4:8], torch.full((4,), 2.5))


def test_cells_match_torch_cells():
    """With torch's weights and b_ih + b_hh as our bias (GRU: z block negated, b_hn = 0)."""
    x, h, c = torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)
    ref = torch.nn.LSTMCell(4, 5)
    ours = LSTMCell(4, 5)
    with torch.no_grad():
        ours.weight_ih.copy_(ref.weight_ih)
        ours.weight_hh.copy_(ref.weight_hh)
        ours.bias.copy_(ref.bias_ih + ref.bias_hh)
    for a, b in zip(ours(x, (h, c)), ref(x, (h, c)), strict=True):
        torch.testing.assert_close(a, b)

    ref = torch.nn.GRUCell(4, 5)
    ours = GRUCell(4, 5, reset_after=True)
    sign = torch.tensor([1.0] * 5 + [-1.0] * 5 + [1.0] * 5)
    with torch.no_grad():
        ref.bias_hh[10:].zero_()
        ours.weight_ih.copy_(ref.weight_ih * sign[:, None])
        ours.weight_hh.copy_(ref.weight_hh * sign[:, None])
        ours.bias.copy_((ref.bias_ih + ref.bias_hh) * sign)
    torch.testing.assert_close(ours(x, h), ref(x, h))


def test_cell_errors_name_the_argument():
    with pytest.raises(RnnkitError, match="input_size and hidden_size"):
        RNNCell(0, 3)
    with pytest.raises(RnnkitError, match="LSTM gate_activation"):
        LSTMCell(2, 3, gate_activation="softmax")
    with pytest.raises(RnnkitError, match=r"input x must have shape \(B, 2\)"):
        GRUCell(2, 3)(torch.randn(4, 5))


def test_leaky_relu_derivative_keeps_the_dtype_exactly():
    from rnnkit.nn.activations import LEAKY_SLOPE, derivative_from_output

    y = torch.tensor([-2.0, 3.0], dtype=torch.float64)
    d = derivative_from_output("leaky_relu", y)
    assert d.dtype == torch.float64
    assert d.tolist() == [LEAKY_SLOPE, 1.0]  # 0.01 exactly, not float32's 0.0099999998
