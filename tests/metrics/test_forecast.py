"""Forecast metrics on hand-computed cases and against utilsforecast's implementations."""

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.metrics.forecast import (
    coverage,
    forecast_metrics,
    mae,
    mape,
    mase,
    naive_scale,
    rmse,
    smape,
)

Y = np.array([100.0, 200.0, 300.0])
P = np.array([110.0, 180.0, 300.0])  # errors 10, 20, 0


def test_hand_computed():
    assert mae(Y, P) == pytest.approx(10.0)
    assert rmse(Y, P) == pytest.approx(np.sqrt(500 / 3))
    assert mape(Y, P) == pytest.approx(100 * (0.1 + 0.1) / 3)
    assert smape(Y, P) == pytest.approx(200 / 3 * (10 / 210 + 20 / 380))
    train = np.array([1.0, 3.0, 2.0, 5.0])
    assert naive_scale(train, 1) == pytest.approx(2.0)  # |2|, |-1|, |3|
    assert mase(Y, P, train, 1) == pytest.approx(5.0)
    assert mase(Y, P, train, 2) == pytest.approx(10 / 1.5)  # |2-1|, |5-3|


def test_batched_forecasts_average_over_all_elements():
    y = np.stack([Y, Y + 10])
    p = np.stack([P, Y + 10])
    assert mae(y, p) == pytest.approx(5.0)
    metrics = forecast_metrics(y, p, np.array([1.0, 3.0, 2.0, 5.0]))
    assert set(metrics) == {"mae", "rmse", "mape", "smape", "mase"}
    assert metrics["mase"] == pytest.approx(2.5)


def test_undefined_cases():
    assert np.isnan(mape([0.0, 1.0], [1.0, 1.0]))
    assert smape([0.0, 2.0], [0.0, 2.0]) == 0.0  # 0/0 terms count 0
    assert smape([1.0], [-1.0]) == pytest.approx(200.0)
    assert np.isnan(mase(Y, P, np.array([1.0, 2.0, 1.0, 2.0]), season=2))  # no lag-2 change


def test_coverage():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert coverage(y, [0, 2, 3.5, 5], [1, 3, 4, 6]) == 0.5  # bounds included
    with pytest.raises(RnnkitError, match="lower bound above its upper bound at \\(1,\\)"):
        coverage(y, [0, 5, 0, 0], [9, 4, 9, 9])


def test_bad_input():
    with pytest.raises(RnnkitError, match="must have one shape"):
        mae(Y, P[:2])
    with pytest.raises(RnnkitError, match="NaN or infinite"):
        rmse(Y, [1.0, np.nan, 2.0])
    with pytest.raises(RnnkitError, match="longer than the season 12"):
        mase(Y, P, np.arange(12.0), season=12)


def test_against_utilsforecast():
    pd = pytest.importorskip("pandas")
    losses = pytest.importorskip("utilsforecast.losses")
    rng = np.random.default_rng(1)
    train = 50 + np.cumsum(rng.normal(0, 3, 48))
    y = 60 + rng.normal(0, 5, 12)
    p = y + rng.normal(0, 4, 12)
    df = pd.DataFrame({"unique_id": "s", "ds": np.arange(48, 60), "y": y, "m": p})
    train_df = pd.DataFrame({"unique_id": "s", "ds": np.arange(48), "y": train})
    theirs = {
        "mae": losses.mae(df, ["m"])["m"].item(),
        "rmse": losses.rmse(df, ["m"])["m"].item(),
        "mape": 100 * losses.mape(df, ["m"])["m"].item(),
        "smape": 200 * losses.smape(df, ["m"])["m"].item(),
        "mase": losses.mase(df, ["m"], seasonality=4, train_df=train_df)["m"].item(),
    }
    ours = forecast_metrics(y, p, train, season=4)
    assert ours == pytest.approx(theirs, rel=1e-12)
