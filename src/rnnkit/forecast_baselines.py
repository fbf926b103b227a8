"""Statistical baselines a forecasting model must beat, fitted on a training history.

forecasts = fit_baselines(history, horizon=36, season=12)   # {name: (36,)}

* naive: the last value; seasonal_naive: the value one season back (= naive for season 1);
  drift: the line through the first and last values; mean: the history's mean.
* holt_winters: additive Holt-Winters, i.e. ETS(A,A,A) (Holt's linear trend, ETS(A,A,N),
  without a season); ets: the ETS model of least AICc (statsforecast's AutoETS);
  arima: statsforecast's AutoARIMA (Hyndman-Khandakar stepwise search).

The three fitted models use the season only when the history holds two full seasons; with
less, they are fitted without it (a warning). They need the ``statsforecast`` package
(``pip install 'rnnkit[forecast]'``).

Season (:func:`detect_season`): the usual season of the frequency (12 monthly, 4 quarterly, 7
daily, 5 business-day, 24 hourly, 52 weekly; ``series_time.season_of``), kept only when the
autocorrelation of the first differences at that lag is a local maximum and significant at
level ``alpha`` (Bartlett's band), else 1: Darts' ``check_seasonality`` test, on differences
because a trend tilts the raw autocorrelation (a peak at 12 shows at 11). So a monthly series
without a yearly cycle (sunspots: an 11-year cycle) gets 1.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from rnnkit.errors import RnnkitError

BASELINES = ("naive", "seasonal_naive", "drift", "mean", "holt_winters", "ets", "arima")
_FITTED = ("holt_winters", "ets", "arima")


def autocorrelation(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation r_0 … r_max_lag of ``x`` (T,) (the biased estimator: sums over
    T − k pairs, divided by the full T·variance, as in Box-Jenkins and statsmodels' acf)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    denominator = np.dot(x, x)
    if denominator == 0:
        return np.concatenate([[1.0], np.zeros(max_lag)])
    return np.array([np.dot(x[: len(x) - k], x[k:]) / denominator for k in range(max_lag + 1)])


def detect_season(values: np.ndarray, freq: str | None = None, alpha: float = 0.05) -> int:
    """The season length of ``values`` (T,) at frequency ``freq``, or 1 (module docstring).

    A history shorter than two seasons is too short to tell: 1.
    """
    from rnnkit.data.series_time import season_of

    m = season_of(freq)
    x = np.asarray(values, dtype=np.float64)
    if m < 2 or len(x) < 2 * m:
        return 1
    x = np.diff(x)  # a trend tilts the raw autocorrelation, moving its peak off lag m
    r = autocorrelation(x, m + 1)
    band = NormalDist().inv_cdf(1 - alpha / 2) * np.sqrt((1 + 2 * np.sum(r[1:m] ** 2)) / len(x))
    peak = r[m] > r[m - 1] and r[m] > r[m + 1]
    return m if peak and r[m] > band else 1


# ---- the simple baselines (exact, no fitting) ------------------------------------------------


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last value, repeated: (H,)."""
    return np.full(horizon, float(history[-1]))


def seasonal_naive(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The value one season before each step: ŷ_{T+h} = y_{T+h−m·k}, k = ⌈h/m⌉: (H,)."""
    last = np.asarray(history[len(history) - season :], dtype=np.float64)
    return last[np.arange(horizon) % season]


def drift(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last value plus h times the mean step (y_T − y_1) / (T − 1): (H,)."""
    slope = (history[-1] - history[0]) / (len(history) - 1)
    return history[-1] + slope * np.arange(1, horizon + 1)


def mean(history: np.ndarray, horizon: int) -> np.ndarray:
    """The mean of the history, repeated: (H,)."""
    return np.full(horizon, float(np.mean(history)))


# ---- fitted models (statsforecast) -----------------------------------------------------------


def _statsforecast_models():
    try:
        from statsforecast import models
    except ImportError:
        raise RnnkitError(
            "the holt_winters, ets and arima baselines need the statsforecast package: "
            "pip install 'rnnkit[forecast]'"
        ) from None
    return models


def _fitted(name: str, history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    models = _statsforecast_models()
    if name == "holt_winters":
        model = (
            models.HoltWinters(season_length=season, error_type="A")
            if season > 1
            else models.AutoETS(model="AAN")
        )
    elif name == "ets":
        model = models.AutoETS(season_length=season)
    else:
        model = models.AutoARIMA(season_length=season)
    try:
        forecast = model.forecast(y=history, h=horizon)["mean"]
    except (ValueError, NotImplementedError, np.linalg.LinAlgError) as e:
        raise RnnkitError(
            f"baseline {name} cannot be fitted on a history of {len(history)} steps "
            f"(statsforecast: {e}); leave it out with models=[...]"
        ) from None
    return np.asarray(forecast, dtype=np.float64)


def fit_baselines(
    history: np.ndarray,
    horizon: int,
    season: int = 1,
    models: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Forecasts (H,) of each baseline in ``models`` (all of :data:`BASELINES` by default),
    fitted on ``history`` (T,) alone."""
    y = np.asarray(history, dtype=np.float64)
    names = list(BASELINES if models is None else models)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise RnnkitError(
            f"unknown baseline {unknown[0]!r}: expected some of {', '.join(BASELINES)}"
        )
    if y.ndim != 1 or len(y) < 2:
        raise RnnkitError(f"baselines need a history of shape (T,) with T ≥ 2, got {y.shape}")
    if not np.isfinite(y).all():
        raise RnnkitError("the history holds NaN or infinite values: fill them first")
    if horizon < 1 or season < 1:
        raise RnnkitError(f"horizon ({horizon}) and season ({season}) must be ≥ 1")
    if "seasonal_naive" in names and len(y) < season:
        raise RnnkitError(f"seasonal_naive needs one season ({season} steps), got {len(y)}")
    fitted_season = season
    if season > 1 and len(y) < 2 * season and any(n in _FITTED for n in names):
        warnings.warn(
            f"a history of {len(y)} steps holds less than two seasons of {season}: "
            "holt_winters, ets and arima are fitted without the season",
            stacklevel=2,
        )
        fitted_season = 1
    simple = {
        "naive": lambda: naive(y, horizon),
        "seasonal_naive": lambda: seasonal_naive(y, horizon, season),
        "drift": lambda: drift(y, horizon),
        "mean": lambda: mean(y, horizon),
    }
    return {n: simple[n]() if n in simple else _fitted(n, y, horizon, fitted_season) for n in names}
