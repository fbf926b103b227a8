"""Baselines: the simple ones exactly and against statsforecast, the fitted ones on a known
seasonal series, season detection, bad input, and the airline passengers hold-out."""

import warnings

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.forecast_baselines import (
    BASELINES,
    autocorrelation,
    detect_season,
    drift,
    fit_baselines,
    mean,
    naive,
    seasonal_naive,
)
from rnnkit.metrics.forecast import mape

pytest.importorskip("pandas")


def seasonal_series(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    noise = np.random.default_rng(seed).normal(0, 0.5, n)
    return 100 + 0.5 * t + 10 * np.sin(2 * np.pi * t / 12) + noise


def test_simple_baselines_exactly():
    y = np.arange(1.0, 9.0)
    np.testing.assert_array_equal(naive(y, 3), [8, 8, 8])
    np.testing.assert_array_equal(seasonal_naive(y, 5, 3), [6, 7, 8, 6, 7])
    np.testing.assert_array_equal(drift(np.array([1.0, 3, 5]), 2), [7, 9])
    np.testing.assert_array_equal(mean(y, 2), [4.5, 4.5])


def test_simple_baselines_match_statsforecast():
    models = pytest.importorskip("statsforecast.models")
    y = seasonal_series(50)
    ours = fit_baselines(y, 15, season=12, models=["naive", "seasonal_naive", "drift", "mean"])
    theirs = {
        "naive": models.Naive(),
        "seasonal_naive": models.SeasonalNaive(season_length=12),
        "drift": models.RandomWalkWithDrift(),
        "mean": models.HistoricAverage(),
    }
    for name, model in theirs.items():
        np.testing.assert_allclose(ours[name], model.forecast(y=y, h=15)["mean"], err_msg=name)


def test_fitted_baselines_follow_a_seasonal_trend():
    pytest.importorskip("statsforecast")
    y = seasonal_series(108)
    forecasts = fit_baselines(y[:96], 12, season=12)
    assert list(forecasts) == list(BASELINES)
    assert all(f.shape == (12,) for f in forecasts.values())
    for name in ("holt_winters", "ets", "arima", "seasonal_naive"):
        assert mape(y[96:], forecasts[name]) < 5, name
    assert mape(y[96:], forecasts["mean"]) > 10  # the test can tell a bad forecast


def test_short_history_drops_the_season_with_a_warning():
    pytest.importorskip("statsforecast")
    y = seasonal_series(20)
    with pytest.warns(UserWarning, match="less than two seasons of 12"):
        forecasts = fit_baselines(y, 6, season=12, models=["holt_winters", "seasonal_naive"])
    assert forecasts["holt_winters"].shape == (6,)


def test_bad_input():
    y = seasonal_series(30)
    with pytest.raises(RnnkitError, match="unknown baseline 'prophet'"):
        fit_baselines(y, 3, models=["prophet"])
    with pytest.raises(RnnkitError, match="NaN"):
        fit_baselines(np.array([1.0, np.nan, 2.0]), 3, models=["naive"])
    with pytest.raises(RnnkitError, match="seasonal_naive needs one season \\(12 steps\\)"):
        fit_baselines(y[:5], 3, season=12, models=["seasonal_naive"])
    pytest.importorskip("statsforecast")
    with pytest.raises(RnnkitError, match="baseline ets cannot be fitted on a history of 4"):
        fit_baselines(y[:4], 3, models=["ets"])


def test_autocorrelation_matches_statsmodels():
    stattools = pytest.importorskip("statsmodels.tsa.stattools")
    y = seasonal_series(80)
    np.testing.assert_allclose(autocorrelation(y, 15), stattools.acf(y, nlags=15), rtol=1e-10)


def test_detect_season():
    y = seasonal_series(96)
    assert detect_season(y, "MS") == 12
    assert detect_season(y, None) == 1  # no frequency, no candidate
    assert detect_season(y[:20], "MS") == 1  # under two seasons: cannot tell
    walk = np.cumsum(np.random.default_rng(3).normal(size=200))
    assert detect_season(walk, "MS") == 1
    assert detect_season(walk, "D") == 1


def test_airline_hold_out(shared_data):
    pytest.importorskip("statsforecast")
    from rnnkit.data.series_csv import read_series

    frame = read_series(
        shared_data / "timeseries/airline-passengers.csv",
        time_column="Month",
        targets=["Passengers"],
    )
    y = frame.targets[:, 0]
    assert detect_season(y[:-36], frame.freq) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forecasts = fit_baselines(y[:-36], 36, season=12)
    errors = {name: mape(y[-36:], f) for name, f in forecasts.items()}
    assert errors["holt_winters"] < 8 and errors["arima"] < 8
    assert errors["seasonal_naive"] < errors["naive"] < errors["mean"]


def test_missing_statsforecast_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "statsforecast", None)
    with pytest.raises(RnnkitError, match="need the statsforecast package: pip install"):
        fit_baselines(seasonal_series(30), 3, models=["naive", "ets"])
    assert fit_baselines(seasonal_series(30), 3, models=["naive"])["naive"].shape == (3,)
