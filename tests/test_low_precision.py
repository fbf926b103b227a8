"""The int8 / bf16 step engines against the exact float32 engine: close, not equal.

Tolerances (a tiny trained char LSTM, 2×32; random float64 cells of 4–6 units): log-probs
within 0.05 nats (int8) and 0.02 (bf16) of the float32 engine's, and the most likely next
token the same at >= 95% of the steps of a greedy chain.
"""

import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnnkit import RnnkitError
from rnnkit.cli.main import main
from rnnkit.decoding import beam_search, collect, greedy
from rnnkit.inference import StepEngine
from rnnkit.low_precision import LowPrecisionEngine, LowPrecisionMatrix, engine_for
from rnnkit.models.language_model import LMConfig
from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.tasks.lm import LMDataConfig, train_language_model
from rnnkit.tasks.text_generator import TextGenerator
from rnnkit.training import TrainConfig

TOL = {"int8": 0.05, "bf16": 0.02}
PRECISIONS = list(TOL)
WORDS = ["the", "cat", "dog", "sat", "ran", "on", "in", "a", "mat", "hat", "big", "red"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A char-level 2×32 LSTM trained for three short epochs."""
    tmp = tmp_path_factory.mktemp("lowp")
    rng = random.Random(0)
    text = "".join(" ".join(rng.choice(WORDS) for _ in range(6)) + "\n" for _ in range(200))
    (tmp / "corpus.txt").write_text(text, encoding="utf-8")
    train_language_model(
        tmp / "corpus.txt",
        tmp / "run",
        LMConfig(hidden_size=32, num_layers=2, embedding_size=8),
        LMDataConfig(seq_length=16, batch_size=4),
        TrainConfig(epochs=3, progress=False, device="cpu", lr=0.01),
    )
    return tmp / "run"


@pytest.fixture(scope="module")
def lm(run):
    return TextGenerator.load(run).model


def teacher_forced(engines, tokens):
    """Log-probs (T, V) of each engine after each token of ``tokens`` (T,), batch 1."""
    out = []
    for engine in engines:
        state, rows = engine.initial_state(1), []
        for t in tokens:
            lp, state = engine.step(np.array([t]), state)
            rows.append(lp[0])
        out.append(np.array(rows))
    return out


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_trained_lstm_agrees_with_float32(lm, precision):
    exact, low = StepEngine.from_language_model(lm), engine_for(lm, precision)
    assert isinstance(low, LowPrecisionEngine) and low._fast  # the fused LSTM step
    lp, state = exact.prime(np.array([1, 2, 3]))
    chain = collect(greedy(exact, state, lp, 300))[0]  # what float32 writes
    ref, got = teacher_forced([exact, low], [1, 2, 3, *chain])
    assert np.abs(ref - got).max() < TOL[precision]
    same = (ref.argmax(1) == got.argmax(1)).mean()
    assert same >= 0.95
    assert np.allclose(np.exp(got).sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_weights_take_fewer_bytes(lm, precision):
    low = engine_for(lm, precision)
    exact_bytes = 4 * sum(p.numel() for p in lm.rnn.parameters())
    products = sum(L.fused.nbytes for L in low.layers)
    assert products < exact_bytes * (0.3 if precision == "int8" else 0.55)


CELLS = {
    "rnn": (RNNCell, {}),
    "gru": (GRUCell, {}),
    "gru_reset_after": (GRUCell, {"reset_after": True}),
    "lstm_relu": (LSTMCell, {"activation": "relu"}),  # not the fused step: the generic one
    "lstm": (LSTMCell, {}),
}


def random_model(kind, V=7, sizes=(6, 5), embedding=True, seed=0):
    torch.manual_seed(seed)
    cls, options = CELLS[kind]
    emb = torch.randn(V, 5) if embedding else None
    d, cells = (5 if embedding else V), []
    for N in sizes:
        cells.append(cls(d, N, **options))
        d = N
    return emb, cells, torch.randn(V, d), torch.randn(V)


TOKENS = np.array([[1, 3, 0, 6, 2, 2, 5, 4], [0, 0, 6, 1, 5, 3, 3, 2]])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize(
    "options",
    [{}, {"max_table_bytes": 0}, {"max_head_bytes": 0}, {"embedding": False}],
    ids=["table", "embedding_kept", "head_in_low_precision", "one_hot"],
)
def test_every_cell_and_layout_agrees_with_float32(kind, precision, options):
    options = dict(options)
    emb, cells, head_w, head_b = random_model(kind, embedding=options.pop("embedding", True))
    table = {k: v for k, v in options.items() if k == "max_table_bytes"}
    exact = StepEngine(emb, cells, head_w, head_b, **table)
    low = LowPrecisionEngine(emb, cells, head_w, head_b, precision, **options)
    assert low._fast == (kind == "lstm")
    lp_exact, state_exact = exact.prime(TOKENS)
    lp_low, state_low = low.prime(TOKENS)
    assert np.abs(lp_exact - lp_low).max() < TOL[precision]
    assert np.abs(state_exact - state_low).max() < TOL[precision]
    # Stepping on from there: still close, and the input state is left as it was.
    kept = state_low.copy()
    lp_exact, _ = exact.step(np.array([2, 5]), state_exact)
    lp_low, _ = low.step(np.array([2, 5]), state_low)
    assert np.array_equal(state_low, kept)
    assert np.abs(lp_exact - lp_low).max() < TOL[precision]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_prime_equals_stepping_and_rows_are_near_independent(precision):
    low = LowPrecisionEngine(*random_model("lstm"), precision=precision)
    lp, state = low.prime(TOKENS)
    s, steps = low.initial_state(2), None
    for t in range(TOKENS.shape[1]):
        steps, s = low.step(TOKENS[:, t], s)
    assert np.array_equal(lp, steps) and np.array_equal(state, s)
    # int8 quantizes a batch's input with one range: a row alone comes out close, not equal.
    alone, _ = low.prime(TOKENS[1])
    assert np.abs(alone[0] - lp[1]).max() < TOL[precision]
    picked = low.reorder(state, np.array([1, 1, 0]))
    assert np.array_equal(picked[0], state[1]) and np.array_equal(picked[2], state[0])


def test_beam_search_runs_on_the_int8_engine(lm):
    low, exact = engine_for(lm, "int8"), engine_for(lm, "fp32")
    found = []
    for engine in (exact, low):
        lp, state = engine.prime(np.array([1, 2, 3]))
        found.append(beam_search(engine, state, lp, 12, 4, n_best=2)[0])
    assert len(found[1]) == 2
    assert abs(found[0][0].log_prob - found[1][0].log_prob) < 12 * TOL["int8"]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_text_generator_on_a_low_precision_engine(run, precision):
    exact, low = TextGenerator.load(run), TextGenerator.load(run, engine=precision)
    assert isinstance(low.engine, LowPrecisionEngine)
    a = "".join(low.sample("the ", 40, temperature=0.8, seed=3))
    assert a == "".join(low.sample("the ", 40, temperature=0.8, seed=3)) and len(a) >= 40
    assert [t for t, _ in low.predict("the ca", 2)] == [t for t, _ in exact.predict("the ca", 2)]
    p_exact, p_low = exact.predict("the ca", 1)[0][1], low.predict("the ca", 1)[0][1]
    assert abs(p_exact - p_low) < 0.02


def test_a_bad_engine_name_is_an_error(run, lm):
    with pytest.raises(RnnkitError, match="engine must be one of"):
        TextGenerator.load(run, engine="int4")
    with pytest.raises(RnnkitError, match="engine must be one of"):
        engine_for(lm, "float16")
    with pytest.raises(RnnkitError, match="precision must be one of"):
        LowPrecisionEngine(*random_model("lstm"), precision="fp32")
    with pytest.raises(RnnkitError, match="precision must be one of"):
        LowPrecisionMatrix(np.ones((2, 3)), "int4")
    bad = SimpleNamespace(rnn=SimpleNamespace(bidirectional=True))
    with pytest.raises(RnnkitError, match="unidirectional"):
        engine_for(bad, "int8")


def test_engine_flag_of_sample_and_predict(run, capsys):
    assert main(["lm", "sample", str(run), "--length", "20", "--engine", "int8"]) == 0
    assert len(capsys.readouterr().out) >= 20
    assert main(["lm", "predict", str(run), "--prefix", "the", "--json", "--engine", "bf16"]) == 0
    assert '"probability"' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["lm", "predict", str(run), "--prefix", "a", "--engine", "int4"])
    assert exit_.value.code == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_bf16_without_onednn_falls_back_to_plain_linear(monkeypatch):
    model = random_model("lstm")
    fast = LowPrecisionEngine(*model, precision="bf16")
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    plain = LowPrecisionEngine(*model, precision="bf16")
    assert plain.layers[0].fused._op is None and fast.layers[0].fused._op is not None
    lp_fast, _ = fast.prime(TOKENS)
    lp_plain, _ = plain.prime(TOKENS)
    assert np.abs(lp_fast - lp_plain).max() < 1e-2  # both bf16 products, rounded alike or close


def test_a_torch_without_quantized_kernels_is_a_clear_error(monkeypatch):
    def no_engine(*args):
        raise RuntimeError("Didn't find engine for operation quantized::linear_prepack NoQEngine")

    monkeypatch.setattr(torch.ops.quantized, "linear_prepack", no_engine)
    with pytest.raises(RnnkitError, match="int8 engine needs torch's quantized kernels"):
        LowPrecisionEngine(*random_model("lstm"), precision="int8")
