"""The language model: shapes, loss, state carrying, configuration checks, checkpoints."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from rnnkit.checkpoint import load_model, save_checkpoint
from rnnkit.errors import RnnkitError
from rnnkit.models.language_model import LanguageModel, LMConfig

V = 11


def make(cell="lstm", **kw) -> LanguageModel:
    base = dict(vocab_size=V, cell=cell, hidden_size=16, num_layers=2, embedding_size=8)
    return LanguageModel(LMConfig(**{**base, **kw})).eval()


def tokens(B=3, T=7, seed=0) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("embedding_size", [8, 0])
def test_forward_shapes(cell, embedding_size):
    model = make(cell, embedding_size=embedding_size)
    logits, state = model(tokens())
    assert logits.shape == (3, 7, V)
    hs = state if cell != "lstm" else state[0]
    assert hs.shape == (2, 3, 16)
    if cell == "lstm":
        assert state[1].shape == (2, 3, 16)
    assert (model.embedding is None) == (embedding_size == 0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_parameter_count_is_the_textbook_one(cell):
    E, N, G = 8, 16, {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    model = make(cell, num_layers=1)
    expected = V * E + G * (N * E + N * N + N) + (N * V + V)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_loss_is_mean_cross_entropy_over_all_tokens():
    model = make()
    x, y = tokens(seed=1), tokens(seed=2)
    out = model.compute_loss((x, y))
    logits, _ = model(x)
    expected = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    torch.testing.assert_close(out.loss, expected)
    assert out.num_tokens == 21
    assert out.loss.requires_grad


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_carried_state_continues_the_sequence(cell):
    # Truncated BPTT relies on it: two halves with the state carried = the whole sequence.
    model = make(cell)
    x = tokens(T=10)
    whole, _ = model(x)
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_next_log_probs_is_the_last_step_normalised():
    model = make()
    x = tokens()
    lp, state = model.next_log_probs(x)
    logits, _ = model(x)
    assert lp.shape == (3, V)
    torch.testing.assert_close(lp, torch.log_softmax(logits[:, -1], -1))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3))
    assert not lp.requires_grad


def test_dropout_is_active_in_training_mode_only():
    model = make(dropout=0.5)
    x = tokens()
    model.train()
    a, _ = model(x)
    b, _ = model(x)
    assert not torch.equal(a, b)
    model.eval()
    c, _ = model(x)
    d, _ = model(x)
    assert torch.equal(c, d)


def test_tied_weights_share_one_matrix_and_survive_a_checkpoint(tmp_path):
    model = make(embedding_size=16, tie_weights=True)
    assert model.head.weight is model.embedding.weight
    untied = make(embedding_size=16)
    n_tied = sum(p.numel() for p in model.parameters())
    assert n_tied == sum(p.numel() for p in untied.parameters()) - V * 16
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_model(tmp_path / "ckpt")
    assert loaded.head.weight is loaded.embedding.weight
    torch.testing.assert_close(loaded(tokens())[0], model(tokens())[0], rtol=0, atol=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_checkpoint_round_trip_rebuilds_the_same_model(tmp_path, cell):
    model = make(cell, embedding_size=0, dropout=0.25)
    save_checkpoint(tmp_path / "ckpt", model)
    loaded = load_model(tmp_path / "ckpt")
    assert isinstance(loaded, LanguageModel)
    assert loaded.config == model.config
    assert not loaded.training
    x = tokens()
    assert torch.equal(loaded(x)[0], model(x)[0])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"hidden_size": 0}, "hidden_size must be >= 1"),
        ({"num_layers": 0}, "num_layers must be >= 1"),
        ({"embedding_size": -1}, "embedding_size must be >= 0"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"tie_weights": True, "embedding_size": 8}, "tie_weights needs embedding_size"),
        ({"tie_weights": True, "embedding_size": 0}, "tie_weights needs embedding_size"),
    ],
)
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(RnnkitError, match=message):
        LMConfig(**{"vocab_size": V, **changes})


def test_model_needs_a_vocabulary():
    with pytest.raises(RnnkitError, match="vocab_size must be >= 1"):
        LanguageModel(LMConfig())


def test_tokens_must_be_a_batch_of_sequences():
    with pytest.raises(RnnkitError, match=r"tokens must have shape \(B, T\), got \(7,\)"):
        make()(torch.zeros(7, dtype=torch.long))


def test_every_config_field_but_vocab_size_has_help_for_the_cli():
    for f in dataclasses.fields(LMConfig):
        assert f.metadata.get("cli") is False or f.metadata.get("help"), f.name


def test_an_untrained_model_predicts_about_uniformly():
    # The initial loss of a language model is ~ln V: a quick guard against a broken head.
    loss = make().compute_loss((tokens(B=8, T=20), tokens(B=8, T=20, seed=3))).loss.item()
    assert abs(loss - math.log(V)) < 0.3


def test_gru_reset_after_runs_on_the_fused_kernel_and_matches_scan():
    cfg = LMConfig(vocab_size=7, cell="gru", hidden_size=8, num_layers=2, embedding_size=4)
    textbook = LanguageModel(cfg)
    assert textbook.rnn.native_blocker() is not None  # textbook GRU: scan engine
    cuDNN = LanguageModel(dataclasses.replace(cfg, reset_after=True))
    assert cuDNN.rnn.native_blocker() is None
    tokens = torch.randint(0, 7, (3, 5))
    logits, _ = cuDNN(tokens)
    cuDNN.rnn.engine = "scan"
    scanned, _ = cuDNN(tokens)
    torch.testing.assert_close(logits, scanned, atol=1e-5, rtol=1e-5)
