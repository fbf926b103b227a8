"""Point-forecast errors: MAE, RMSE, MAPE, sMAPE, MASE, and prediction-interval coverage.

Each takes ``y_true`` and ``y_pred`` of one shape, (H,) for one forecast or (N, H) for N
forecasts (windows, folds), and averages over every element. Definitions (Hyndman &
Koehler 2006; the M4 competition for sMAPE):

* MAPE  = 100 · mean |y − ŷ| / |y|: undefined when an actual is 0 → NaN.
* sMAPE = 200 · mean |y − ŷ| / (|y| + |ŷ|), in [0, 200]; a term with y = ŷ = 0 counts 0.
* MASE  = MAE / (in-sample MAE of the seasonal-naive forecast ŷ_t = y_{t−m} on ``y_train``);
  m = 1 is the naive forecast. A training series with no lag-m change (scale 0) → NaN.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import RnnkitError


def _pair(y_true, y_pred, what: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (1, 2) or a.size == 0:
        raise RnnkitError(
            f"y_true {a.shape} and {what} {b.shape} must have one shape, (H,) or (N, H)"
        )
    for name, x in (("y_true", a), (what, b)):
        if not np.isfinite(x).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
            raise RnnkitError(f"{name} holds NaN or infinite values, first at index {where}")
    return a, b


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in %; NaN when an actual is 0."""
    a, b = _pair(y_true, y_pred)
    if (a == 0).any():
        return float("nan")
    return float(100 * np.mean(np.abs(a - b) / np.abs(a)))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE, in % (0 … 200)."""
    a, b = _pair(y_true, y_pred)
    denominator = np.abs(a) + np.abs(b)
    terms = np.abs(a - b) / np.where(denominator == 0, 1.0, denominator)
    return float(200 * np.mean(terms))


def naive_scale(y_train, season: int = 1) -> float:
    """In-sample MAE of the seasonal-naive forecast on ``y_train`` (T,): MASE's denominator."""
    y = np.asarray(y_train, dtype=np.float64)
    if season < 1:
        raise RnnkitError(f"season must be ≥ 1, got {season}")
    if y.ndim != 1 or len(y) <= season:
        raise RnnkitError(
            f"MASE needs a training series (T,) longer than the season {season}, got shape "
            f"{y.shape}"
        )
    if not np.isfinite(y).all():
        raise RnnkitError("y_train holds NaN or infinite values")
    return float(np.mean(np.abs(y[season:] - y[:-season])))


def mase(y_true, y_pred, y_train, season: int = 1) -> float:
    """Mean absolute scaled error; NaN when ``y_train`` has no lag-``season`` change."""
    scale = naive_scale(y_train, season)
    error = mae(y_true, y_pred)
    return error / scale if scale > 0 else float("nan")


def coverage(y_true, lower, upper) -> float:
    """Fraction (0 … 1) of actuals inside their interval [lower, upper], bounds included."""
    a, lo = _pair(y_true, lower, "lower")
    _, hi = _pair(y_true, upper, "upper")
    if (lo > hi).any():
        i = tuple(int(k) for k in np.argwhere(lo > hi)[0])
        raise RnnkitError(f"interval lower bound above its upper bound at {i}")
    return float(np.mean((a >= lo) & (a <= hi)))


def forecast_metrics(y_true, y_pred, y_train, season: int = 1) -> dict[str, float]:
    """{"mae", "rmse", "mape", "smape", "mase"} of one forecast (H,) or of N forecasts (N, H)."""
    return {
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "mape": mape(y_true, y_pred),
        "smape": smape(y_true, y_pred),
        "mase": mase(y_true, y_pred, y_train, season),
    }
