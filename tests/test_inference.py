"""The NumPy step engine against the torch cells it is built from."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnkit import RnnkitError
from rnnkit.decoding import beam_search, collect, greedy
from rnnkit.inference import StepEngine
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell

V = 7

CELL_KINDS = {
    "rnn": (RNNCell, {}),
    "lstm": (LSTMCell, {}),
    "gru": (GRUCell, {}),
    "gru_reset_after": (GRUCell, {"reset_after": True}),
}
ACTIVATIONS = {  # the less common activation choices, one model each
    "rnn_relu": (RNNCell, {"activation": "relu"}),
    "rnn_leaky_relu": (RNNCell, {"activation": "leaky_relu"}),
    "rnn_sigmoid": (RNNCell, {"activation": "sigmoid"}),
    "lstm_linear": (LSTMCell, {"activation": "linear"}),
    "lstm_tanh_gates": (LSTMCell, {"gate_activation": "tanh", "activation": "relu"}),
    "gru_relu": (GRUCell, {"activation": "relu", "gate_activation": "sigmoid"}),
    "gru_ra_linear": (GRUCell, {"activation": "linear", "reset_after": True}),
}


def make_model(kind, layers=2, embedding=True, sizes=(6, 5, 4), seed=0):
    """Random float64 cells (biases included), embedding (V, 5) or None, head (V, N_last)."""
    torch.manual_seed(seed)
    cls, options = {**CELL_KINDS, **ACTIVATIONS}[kind]
    emb = torch.randn(V, 5, dtype=torch.float64) if embedding else None
    d, cells = (5 if embedding else V), []
    for N in sizes[:layers]:
        cell = cls(d, N, **options).double()
        with torch.no_grad():
            cell.bias.normal_()  # every bias matters (the LSTM's forget bias starts at 1)
        cells.append(cell)
        d = N
    head_w = torch.randn(V, d, dtype=torch.float64)
    head_b = torch.randn(V, dtype=torch.float64)
    return emb, cells, head_w, head_b


@torch.no_grad()
def torch_log_probs(model, tokens):
    """Log-probs after each token of ``tokens`` (B, T), running the torch cells step by step."""
    emb, cells, head_w, head_b = model
    tokens = torch.as_tensor(tokens)
    states, out = [None] * len(cells), []
    for t in range(tokens.shape[1]):
        x = emb[tokens[:, t]] if emb is not None else F.one_hot(tokens[:, t], V).double()
        for k, cell in enumerate(cells):
            states[k] = cell(x, states[k])
            x = states[k][0] if isinstance(states[k], tuple) else states[k]
        out.append(torch.log_softmax(x @ head_w.T + head_b, dim=-1))
    return torch.stack(out, dim=1).numpy()  # (B, T, V)


def engine_log_probs(engine, tokens):
    tokens = np.asarray(tokens)
    state, out = engine.initial_state(len(tokens)), []
    for t in range(tokens.shape[1]):
        lp, state = engine.step(tokens[:, t], state)
        out.append(lp)
    return np.stack(out, axis=1), state


TOKENS = np.array([[1, 3, 0, 6, 2, 2, 5, 4], [0, 0, 6, 1, 5, 3, 3, 2]])


@pytest.mark.parametrize("embedding", [True, False], ids=["embedding", "one_hot"])
@pytest.mark.parametrize("layers", [1, 3])
@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_steps_equal_the_torch_cells(kind, layers, embedding):
    model = make_model(kind, layers, embedding)
    want = torch_log_probs(model, TOKENS)
    got64, _ = engine_log_probs(StepEngine(*model, dtype=np.float64), TOKENS)
    np.testing.assert_allclose(got64, want, rtol=0, atol=1e-10)
    got32, _ = engine_log_probs(StepEngine(*model, dtype=np.float32), TOKENS)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_an_embedding_too_big_to_fold_gives_the_same_steps(kind):
    model = make_model(kind, layers=2)
    engine = StepEngine(*model, dtype=np.float64, max_table_bytes=0)
    assert engine.embedding is not None and engine.layers[0].table is None
    want = torch_log_probs(model, TOKENS)
    got, state = engine_log_probs(engine, TOKENS)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    lp, primed = engine.prime(TOKENS)
    np.testing.assert_allclose(lp, want[:, -1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(primed, state, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", list(ACTIVATIONS))
def test_every_activation_equals_the_torch_cells(kind):
    model = make_model(kind, layers=2)
    want = torch_log_probs(model, TOKENS)
    got, _ = engine_log_probs(StepEngine(*model, dtype=np.float64), TOKENS)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_prime_equals_stepping_through_the_prompt(kind):
    engine = StepEngine(*make_model(kind, layers=3), dtype=np.float64)
    want_lp, want_state = engine_log_probs(engine, TOKENS)
    lp, state = engine.prime(TOKENS)
    np.testing.assert_allclose(lp, want_lp[:, -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(state, want_state, rtol=0, atol=1e-12)
    # From a given state, and a single (T,) prompt.
    lp2, state2 = engine.prime(TOKENS[0, 5:], engine.prime(TOKENS[:1, :5])[1])
    np.testing.assert_allclose(lp2, want_lp[:1, -1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(state2, want_state[:1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", list(CELL_KINDS))
def test_rows_are_independent_and_reorder_selects_them(kind):
    engine = StepEngine(*make_model(kind, layers=2), dtype=np.float64)
    _, state = engine.prime(TOKENS)  # two rows with different histories
    picked = engine.reorder(state, np.array([1, 0, 1]))
    lp, new = engine.step(np.array([4, 2, 4]), picked)
    for j, row in enumerate([1, 0, 1]):
        lp1, new1 = engine.step(np.array([[4, 2, 4][j]]), state[row : row + 1])
        np.testing.assert_allclose(lp[j : j + 1], lp1, rtol=0, atol=1e-13)
        np.testing.assert_allclose(new[j : j + 1], new1, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kind", ["lstm", "gru_reset_after"])
def test_wide_batches_equal_the_torch_cells(kind):
    # 8 rows × 256 units: big enough for the paths that batches take (torch's GEMM and sigmoid).
    model = make_model(kind, layers=2, sizes=(256, 256))
    tokens = np.random.default_rng(0).integers(0, V, size=(8, 3))
    want = torch_log_probs(model, tokens)
    got, _ = engine_log_probs(StepEngine(*model, dtype=np.float64), tokens)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    got32, _ = engine_log_probs(StepEngine(*model, dtype=np.float32), tokens)
    np.testing.assert_allclose(got32, want, rtol=0, atol=1e-4)


def test_step_leaves_its_input_state_unchanged():
    engine = StepEngine(*make_model("lstm"))
    _, state = engine.prime(TOKENS)
    before = state.copy()
    a, _ = engine.step(np.array([1, 2]), state)
    b, _ = engine.step(np.array([1, 2]), state)
    assert np.array_equal(state, before) and np.array_equal(a, b)


def test_state_from_torch_matches_the_torch_state():
    model = make_model("lstm", layers=2, sizes=(6, 6))
    engine = StepEngine(*model, dtype=np.float64)
    _, want = engine.prime(TOKENS)
    # Rebuild the (h, c) of a torch layer, (L, B, N), from the cells run step by step.
    emb, cells, _, _ = model
    states = [None, None]
    with torch.no_grad():
        for t in range(TOKENS.shape[1]):
            x = emb[torch.as_tensor(TOKENS[:, t])]
            for k, cell in enumerate(cells):
                states[k] = cell(x, states[k])
                x = states[k][0]
    h = torch.stack([s[0] for s in states])
    c = torch.stack([s[1] for s in states])
    np.testing.assert_allclose(engine.state_from_torch((h, c)), want, atol=1e-13)
    with pytest.raises(RnnkitError, match="h must have shape"):
        engine.state_from_torch((h[:1], c[:1]))
    with pytest.raises(RnnkitError, match="pair"):
        engine.state_from_torch(h)


def test_greedy_tokens_equal_a_torch_greedy_chain():
    emb, cells, head_w, head_b = make_model("lstm", layers=2, sizes=(16, 16))
    emb, head_w, head_b = emb.float(), head_w.float(), head_b.float()
    cells = [cell.float() for cell in cells]
    engine = StepEngine(emb, cells, head_w, head_b, dtype=np.float32)
    lp, state = engine.prime(TOKENS[:1])
    got = collect(greedy(engine, state, lp, 40))[0]
    seq = TOKENS[:1].tolist()
    for _ in range(40):  # torch: rerun the whole sequence, take the argmax of the last step
        seq[0].append(int(torch_log_probs((emb, cells, head_w, head_b), seq)[0, -1].argmax()))
    assert got == seq[0][TOKENS.shape[1] :]


def test_from_language_model_reads_embedding_rnn_cells_and_head():
    layers = pytest.importorskip("rnnkit.nn.layers")
    torch.manual_seed(0)
    lm = SimpleNamespace(
        embedding=torch.nn.Embedding(V, 5).double(),
        rnn=layers.GRU(5, 6, num_layers=2, reset_after=False).double(),
        head=torch.nn.Linear(6, V).double(),
    )
    engine = StepEngine.from_language_model(lm, dtype=np.float64)
    with torch.no_grad():
        y, _ = lm.rnn(lm.embedding(torch.as_tensor(TOKENS)))
        want = torch.log_softmax(lm.head(y), dim=-1).numpy()
    got, _ = engine_log_probs(engine, TOKENS)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    lm.rnn = layers.GRU(5, 6, bidirectional=True)
    with pytest.raises(RnnkitError, match="unidirectional"):
        StepEngine.from_language_model(lm)


def test_the_language_model_generates_the_same_greedy_text():
    lm_module = pytest.importorskip("rnnkit.models.language_model")
    torch.manual_seed(0)
    config = lm_module.LMConfig(vocab_size=V, hidden_size=24, num_layers=2, embedding_size=8)
    lm = lm_module.LanguageModel(config).eval()
    engine = StepEngine.from_language_model(lm)
    prompt = torch.as_tensor(TOKENS[:1])
    lp, state = engine.prime(TOKENS[:1])
    got = collect(greedy(engine, state, lp, 30))[0]
    want, tokens, torch_state = [], prompt, None
    with torch.no_grad():
        for _ in range(30):
            logits, torch_state = lm(tokens, torch_state)
            want.append(int(logits[0, -1].argmax()))
            tokens = torch.tensor([[want[-1]]])
    assert got == want
    with torch.no_grad():
        want_lp = torch.log_softmax(lm(prompt)[0][:, -1], dim=-1).numpy()
    np.testing.assert_allclose(lp, want_lp, rtol=0, atol=1e-5)


def test_beam_search_runs_on_the_engine():
    engine = StepEngine(*make_model("gru", layers=2), dtype=np.float64)
    lp, state = engine.prime(TOKENS)
    best = beam_search(engine, state, lp, 6, beam_width=1)
    assert [b[0].tokens for b in best] == collect(greedy(engine, state, lp, 6))
    wide = beam_search(engine, state, lp, 6, beam_width=4, n_best=4)
    assert all(b[0].score >= w[0].score for b, w in zip(wide, best, strict=True))


def test_bad_inputs_are_rejected():
    emb, cells, head_w, head_b = make_model("lstm")
    engine = StepEngine(emb, cells, head_w, head_b)
    state = engine.initial_state(2)
    with pytest.raises(RnnkitError, match="tokens"):
        engine.step(np.array([0, V]), state)
    with pytest.raises(RnnkitError, match="tokens"):
        engine.step(np.array([0.0, 1.0]), state)
    with pytest.raises(RnnkitError, match="tokens"):
        engine.step(np.array([[0, 1]]), state)
    with pytest.raises(RnnkitError, match="state"):
        engine.step(np.array([0, 1, 2]), state)
    with pytest.raises(RnnkitError, match="tokens"):
        engine.prime(np.zeros((2, 0), dtype=np.int64))
    with pytest.raises(RnnkitError, match="embedding"):
        StepEngine(emb[:3], cells, head_w, head_b)
    with pytest.raises(RnnkitError, match="input size"):
        StepEngine(None, cells, head_w, head_b)
    with pytest.raises(RnnkitError, match="head_weight"):
        StepEngine(emb, cells, head_w[:, :2], head_b)
    with pytest.raises(RnnkitError, match="dtype"):
        StepEngine(emb, cells, head_w, head_b, dtype=np.int32)
    with pytest.raises(RnnkitError, match="kind"):
        StepEngine(emb, [SimpleNamespace(kind="transformer")], head_w, head_b)
