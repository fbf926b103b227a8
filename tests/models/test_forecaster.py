"""The forecaster: shapes of every strategy and loss, recursive feeding, level invariance, the
losses against their definitions, intervals, the ensemble, and config errors."""

import math

import pytest
import torch

from rnnkit.errors import RnnkitError
from rnnkit.models.forecaster import (
    Forecaster,
    ForecasterConfig,
    gaussian_nll,
    pinball_loss,
)

L, H = 6, 4


def make(strategy="direct", loss="mse", T=2, P=1, F=1, **kw) -> Forecaster:
    kw = {"hidden_size": 8, "ensemble": 1, **kw}
    config = ForecasterConfig(
        strategy=strategy, loss=loss, lookback=L, horizon=H, n_targets=T, n_past=P, n_future=F, **kw
    )
    return Forecaster(config)


@pytest.mark.parametrize("strategy", ["recursive", "direct", "seq2seq"])
@pytest.mark.parametrize("loss", ["mse", "mae", "quantile", "gaussian"])
def test_shapes_of_every_strategy_and_loss(strategy, loss):
    P = 0 if strategy == "recursive" else 1
    model = make(strategy, loss, P=P, cell="gru")
    window = torch.randn(3, L + H, 2 + P + 1)
    out = model.compute_loss({"window": window})
    assert out.loss.dim() == 0 and out.num_tokens == 3 and not out.metrics
    out.loss.backward()
    model.eval()
    scored = model.compute_loss({"window": window})
    assert scored.metrics["values"] == 3 * H * 2
    assert ("covered" in scored.metrics) == (loss in ("quantile", "gaussian"))
    f = model.forecast(window[:, :L], window[:, L:, 2 + P :])
    assert f.point.shape == (3, H, 2)
    if loss in ("quantile", "gaussian"):
        assert (f.lower <= f.point + 1e-6).all() and (f.point <= f.upper + 1e-6).all()
    else:
        assert f.lower is None and f.upper is None


def test_recursive_forecast_feeds_each_step_back():
    """The rollout equals the teacher-forced pass over the history followed by its own
    forecasts: step h+1 was computed from step h's forecast as input."""
    model = make("recursive", T=1, P=0, F=1).eval()
    history, future = torch.randn(2, L, 2), torch.randn(2, H, 1)
    path = model.forecast(history, future).point  # (2, H, 1)
    rows = torch.cat([history, torch.cat([path, future], -1)], 1)  # (2, L + H, 2)
    net = model.members[0]
    hidden, _ = net.rnn(rows[:, :-1])
    teacher = net.head(hidden)[:, L - 1 :]  # each step's output from the rows before it
    assert torch.allclose(teacher, path, atol=1e-5)


def test_direct_and_seq2seq_read_the_future_covariates():
    for strategy in ("direct", "seq2seq"):
        model = make(strategy, T=1, P=0, F=1).eval()
        history, future = torch.randn(1, L, 2), torch.randn(1, H, 1)
        a = model.forecast(history, future).point
        b = model.forecast(history, future + 1).point
        assert not torch.allclose(a, b)


def test_level_last_makes_forecasts_shift_with_the_series():
    model = make("direct", T=1, P=0, F=0, level="last").eval()
    history = torch.randn(2, L, 1)
    a = model.forecast(history).point
    b = model.forecast(history + 5.0).point
    assert torch.allclose(b, a + 5.0, atol=1e-5)


def test_pinball_loss_is_its_definition_and_finds_the_quantile():
    y = torch.tensor([1.0, 2.0, 3.0])
    pred = torch.tensor([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    # q=0.1: residuals -1, 0, 1 → 0.9·1, 0, 0.1·1 ; q=0.9: 0.1, 0, 0.9
    expected = (torch.tensor([0.9, 0.0, 0.1]).sum() + torch.tensor([0.1, 0.0, 0.9]).sum()) / 6
    assert torch.isclose(pinball_loss(pred, y, (0.1, 0.9)), expected)
    data = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(0.0, 2.5, 251)  # the loss of each constant forecast is least at q_0.9
    losses = torch.stack([pinball_loss(g.expand(1000, 1), data, (0.9,)) for g in grid])
    assert abs(grid[losses.argmin()].item() - torch.quantile(data, 0.9).item()) < 0.02


def test_gaussian_nll_matches_torch_distributions():
    mu, sigma, y = torch.randn(5), torch.rand(5) + 0.1, torch.randn(5)
    expected = -torch.distributions.Normal(mu, sigma).log_prob(y).mean()
    assert torch.isclose(gaussian_nll(mu, sigma, y), expected)


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_gaussian_samples_give_the_interval(strategy):
    model = make(strategy, "gaussian", T=1, P=0, F=0, interval=0.9).eval()
    history = torch.randn(2, L, 1)
    gen = torch.Generator().manual_seed(0)
    f = model.forecast(history, samples=64, generator=gen)
    assert f.samples.shape == (64, 2, H, 1)
    assert torch.allclose(f.lower, torch.quantile(f.samples, 0.05, dim=0))
    again = model.forecast(history, samples=64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.samples, f.samples)  # draws come from the generator


def test_ensemble_averages_networks_with_different_weights():
    model = make("direct", T=1, P=0, F=0, ensemble=3).eval()
    a, b = (m.head.weight for m in model.members[:2])
    assert not torch.equal(a, b)
    history = torch.randn(2, L, 1)
    mean = torch.stack(
        [m.forecast(history, history.new_zeros(2, H, 0)).point for m in model.members]
    )
    assert torch.allclose(model.forecast(history).point, mean.mean(0))


def test_summarize_metrics():
    totals = {"abs_error": 6.0, "squared_error": 18.0, "values": 3, "covered": 2.0}
    out = make().summarize_metrics(totals, 1)
    assert out == {"mae": 2.0, "rmse": math.sqrt(6.0), "coverage": 2 / 3}


def test_config_errors():
    with pytest.raises(RnnkitError, match="cannot forecast past covariates"):
        make("recursive", P=1)
    with pytest.raises(RnnkitError, match="bidirectional must be False"):
        make("recursive", P=0, bidirectional=True)
    with pytest.raises(RnnkitError, match="interval must be in"):
        make(interval=1.0)
    with pytest.raises(RnnkitError, match="strategy must be one of"):
        make("beam")
    model = make()
    with pytest.raises(RnnkitError, match="window must have shape"):
        model.compute_loss({"window": torch.randn(2, L, 4)})
    with pytest.raises(RnnkitError, match="pass future"):
        model.forecast(torch.randn(1, L, 4))
