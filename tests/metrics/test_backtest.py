"""Rolling-origin backtests: origins, no peeking, per-fold metrics, errors."""

import numpy as np
import pytest

from rnnkit.errors import RnnkitError
from rnnkit.metrics.backtest import backtest, rolling_origins, summarize


def test_rolling_origins():
    assert rolling_origins(30, 5, 3, min_train=10) == [15, 20, 25]
    assert rolling_origins(30, 5, 3, min_train=10, step=1) == [23, 24, 25]
    with pytest.raises(RnnkitError, match="too short for 3 folds.*needs 35 steps"):
        rolling_origins(30, 5, 3, min_train=20)


def test_backtest_sees_only_the_history_and_scores_each_fold():
    series = 2.0 * np.arange(30) + 1
    seen = []

    def forecast_fn(history, horizon):
        seen.append(len(history))
        last, slope = history[-1], history[-1] - history[-2]
        return {"line": last + slope * np.arange(1, horizon + 1), "flat": np.full(horizon, last)}

    results = backtest(series, horizon=5, folds=3, min_train=10, forecast_fn=forecast_fn)
    assert seen == [15, 20, 25] and [r["origin"] for r in results] == seen
    assert all(r["metrics"]["line"]["mae"] == 0 for r in results)
    assert results[0]["metrics"]["flat"]["mae"] == pytest.approx(2 * np.mean(np.arange(1, 6)))
    assert results[0]["metrics"]["flat"]["mase"] == pytest.approx(3.0)  # naive scale 2
    summary = summarize(results)
    assert summary["flat"]["mae"] == pytest.approx(6.0) and summary["line"]["rmse"] == 0


def test_lone_array_is_named_model_and_shape_is_checked():
    series = np.sin(np.arange(40.0))
    results = backtest(series, 4, 2, 20, lambda h, n: np.zeros(n))
    assert list(results[1]["metrics"]) == ["model"]
    with pytest.raises(RnnkitError, match="fold 0: forecast 'model' has shape \\(3,\\)"):
        backtest(series, 4, 2, 20, lambda h, n: np.zeros(3))
