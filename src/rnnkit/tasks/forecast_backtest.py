"""Rolling-origin backtest of a forecaster and the baselines: expanding window, K folds.

.. code-block:: python

    from rnnkit.tasks.forecast_backtest import backtest_forecaster
    res = backtest_forecaster("airline.csv", "runs/air-bt", data_config=dc, folds=5, step=6)
    res["summary"]["model"]["mase"]          # {"mean": ..., "std": ...}

Fold k forecasts the ``horizon`` rows from origin o_k; the origins are ``step`` apart (one
horizon by default) and the last fold ends with the series
(:func:`rnnkit.metrics.backtest.rolling_origins`). Without ``retrain`` one run is trained on
the rows up to the end of fold 1's forecast (its held-out test span is that forecast) and then
forecasts every fold from the true history before it; with ``retrain`` each fold trains its
own run on the rows up to its forecast's end (``out/fold-k``). The baselines are refitted at
every origin. Each fold is scored as :func:`rnnkit.tasks.forecast.score_span` scores a span,
and the summary gives the mean and standard deviation of every metric over the folds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError
from rnnkit.jsonfile import write_json_atomic
from rnnkit.metrics.backtest import rolling_origins
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.tasks.forecast import FORECAST_TASK, SeriesForecaster, score_span, train_forecaster
from rnnkit.tasks.forecast_data import ForecastDataConfig, frame_head, make_plan
from rnnkit.training import TrainConfig

RESULT_FILE = "backtest.json"


def backtest_forecaster(
    data: Any,
    out: str | Path,
    model: ForecasterConfig | None = None,
    data_config: ForecastDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    folds: int = 5,
    step: int = 0,
    retrain: bool = False,
    baselines: list[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Backtest on ``data`` (module docstring); the runs and ``backtest.json`` go in ``out``.

    Returns {"folds": [...], "summary": {"model": {metric: {"mean", "std"}}, "baselines":
    {...}}, "ranking", "beaten_by", "retrain", "horizon", "step"}.
    """
    dc = data_config or ForecastDataConfig()
    H = dc.horizon
    if dc.test_size not in (0, H):
        raise RnnkitError(
            f"a backtest holds out its own folds of one horizon ({H}): test_size does not apply"
        )
    dc = dataclasses.replace(dc, test_size=H)
    train = train or FORECAST_TASK.default_train
    out = Path(out)
    if (out / RESULT_FILE).exists() and not overwrite:
        raise RnnkitError(f"{out} already holds a backtest: --overwrite replaces it")
    frame = dc.read(data)
    origins = rolling_origins(len(frame), H, folds, min_train=2, step=step or H)
    make_plan(frame_head(frame, origins[0] + H), dc)  # too short a first fold fails here
    results = []
    forecaster = None
    for k, origin in enumerate(origins):
        if retrain or forecaster is None:
            run_dir = out / (f"fold-{k + 1:02d}" if retrain else "model")
            fit = train_forecaster(
                frame_head(frame, origin + H), run_dir, model, dc, train, overwrite=True
            )
            forecaster = SeriesForecaster.load(run_dir)
            seconds = round(fit.elapsed, 1)
        scored = score_span(forecaster, frame, origin, origin + H, baselines)
        results.append(
            {
                "fold": k + 1,
                "origin": origin,
                "start": scored["span"]["start"],
                "model": scored["model"],
                "baselines": scored["baselines"],
                "forecasts": scored["forecasts"],
                "train_seconds": seconds if retrain or k == 0 else 0.0,
            }
        )
    names = ["model", *results[0]["baselines"]]
    summary = {name: _mean_std([_metrics(r, name) for r in results]) for name in names}
    rank_by = "mase" if all(np.isfinite(s["mase"]["mean"]) for s in summary.values()) else "smape"
    ranking = sorted(summary, key=lambda name: summary[name][rank_by]["mean"])
    result = {
        "folds": results,
        "summary": {"model": summary.pop("model"), "baselines": summary},
        "ranking": ranking,
        "ranked_by": rank_by,
        "beaten_by": ranking[: ranking.index("model")],
        "retrain": retrain,
        "horizon": H,
        "step": step or H,
        "season": forecaster.plan.season,
    }
    write_json_atomic(out / RESULT_FILE, result)
    return result


def _metrics(fold: dict[str, Any], name: str) -> dict[str, float]:
    return fold["model"] if name == "model" else fold["baselines"][name]


def _mean_std(folds: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for metric in folds[0]:
        if metric == "interval":
            continue
        values = np.array([f[metric] for f in folds], dtype=np.float64)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[metric] = {"mean": float(values.mean()), "std": std}
    return out
