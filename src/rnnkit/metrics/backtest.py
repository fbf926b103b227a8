"""Rolling-origin evaluation (expanding window) of any forecast function.

results = backtest(y, horizon=12, folds=3, min_train=60,
                   forecast_fn=lambda history, h: fit_baselines(history, h, season=12))
summarize(results)["ets"]["mase"]          # the mean over folds

Fold k trains on ``series[:origin_k]`` and is scored on the next ``horizon`` steps; the last
fold ends at the end of the series and the origins are ``step`` apart (``horizon`` by
default: test windows that touch without overlapping). Nothing after an origin reaches the
forecast function, so a model that needs covariates can close over them and take
``len(history)`` as its origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.metrics.forecast import forecast_metrics

ForecastFn = Callable[[np.ndarray, int], "np.ndarray | Mapping[str, np.ndarray]"]


def rolling_origins(
    n: int, horizon: int, folds: int, min_train: int, step: int | None = None
) -> list[int]:
    """The training sizes (origins) of ``folds`` folds over a series of ``n`` steps."""
    step = horizon if step is None else step
    if horizon < 1 or folds < 1 or step < 1 or min_train < 1:
        raise RnnkitError(
            f"horizon ({horizon}), folds ({folds}), step ({step}) and min_train ({min_train}) "
            "must be ≥ 1"
        )
    origins = [n - horizon - step * (folds - 1 - k) for k in range(folds)]
    if origins[0] < min_train:
        raise RnnkitError(
            f"a series of {n} steps is too short for {folds} folds of horizon {horizon} "
            f"{step} apart after min_train {min_train}: it needs "
            f"{min_train + horizon + step * (folds - 1)} steps"
        )
    return origins


def backtest(
    series: np.ndarray,
    horizon: int,
    folds: int,
    min_train: int,
    forecast_fn: ForecastFn,
    *,
    season: int = 1,
    step: int | None = None,
) -> list[dict[str, Any]]:
    """Per-fold forecasts and :func:`forecast_metrics` of ``forecast_fn`` on ``series`` (T,).

    ``forecast_fn(history (t,), horizon)`` returns a forecast (H,), or a dict of them by model
    name (as :func:`rnnkit.forecast_baselines.fit_baselines` does); a lone array is named
    "model". ``season`` is MASE's. Each fold: {"fold", "origin", "forecasts": {name: (H,)},
    "metrics": {name: {metric: value}}}.
    """
    y = np.asarray(series, dtype=np.float64)
    if y.ndim != 1:
        raise RnnkitError(f"backtest needs one series of shape (T,), got {y.shape}")
    results = []
    for k, origin in enumerate(rolling_origins(len(y), horizon, folds, min_train, step)):
        history, actual = y[:origin], y[origin : origin + horizon]
        out = forecast_fn(history.copy(), horizon)
        forecasts = dict(out) if isinstance(out, Mapping) else {"model": out}
        metrics = {}
        for name, forecast in forecasts.items():
            forecast = np.asarray(forecast, dtype=np.float64)
            if forecast.shape != (horizon,):
                raise RnnkitError(
                    f"fold {k}: forecast {name!r} has shape {forecast.shape}, expected ({horizon},)"
                )
            forecasts[name] = forecast
            metrics[name] = forecast_metrics(actual, forecast, history, season)
        results.append({"fold": k, "origin": origin, "forecasts": forecasts, "metrics": metrics})
    return results


def summarize(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The mean of each metric over the folds of :func:`backtest`, by model."""
    names = results[0]["metrics"] if results else {}
    return {
        name: {
            metric: float(np.mean([r["metrics"][name][metric] for r in results]))
            for metric in names[name]
        }
        for name in names
    }
