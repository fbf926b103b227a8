"""Forecasting end to end: train on a series, score the held-out span against baselines, predict.

.. code-block:: python

    from rnnkit.tasks.forecast import ForecastDataConfig, SeriesForecaster, train_forecaster
    dc = ForecastDataConfig(time_column="Month", target="Passengers", horizon=36)
    train_forecaster("airline-passengers.csv", "runs/air", data_config=dc)   # or a DataFrame
    fc = SeriesForecaster.load("runs/air")
    fc.evaluate()["model"]["mape"]           # the held-out 36 months, with every baseline
    fc.predict()                             # DataFrame: the 36 months after the data

The split, transforms and defaults are :mod:`rnnkit.tasks.forecast_data`'s; the run lifecycle
(resume, init_from, overwrite) is every task's (:mod:`rnnkit.tasks.run`). A checkpoint also
holds ``forecast.json`` (the plan and the fitted transforms), ``series.json`` (the series) and
``dataset.json`` (its digest: resume refuses other data).

Scoring a span: forecasts start at the span's first row and every ``horizon`` rows after it,
each from the true history before it (the last one cut at the span's end); the baselines are
fitted on the same histories (:func:`rnnkit.forecast_baselines.fit_baselines`), so every model
forecasts the same values from the same information. MASE is scaled by the seasonal-naive
error on the rows before the span (season m of the run), and the table ranks by it.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnkit.checkpoint import load_model
from rnnkit.data.series_csv import SeriesFrame, check_future_covariates
from rnnkit.data.series_time import (
    MAX_CLOSED_DAYS,
    calendar_features,
    future_times,
    import_pandas,
)
from rnnkit.errors import RnnkitError
from rnnkit.forecast_baselines import BASELINES, fit_baselines
from rnnkit.metrics.forecast import coverage, forecast_metrics
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.tasks import run
from rnnkit.tasks.forecast_data import (
    ForecastDataConfig,
    Plan,
    SeriesTransform,
    WindowBatches,
    frame_digest,
    frame_from_dict,
    frame_to_dict,
    make_plan,
)
from rnnkit.training import TrainConfig, TrainResult

log = logging.getLogger("rnnkit")
SAMPLES = 200  # paths drawn for a Gaussian model's intervals


class ForecastTask:
    """The forecaster as the run lifecycle (:mod:`rnnkit.tasks.run`) sees it."""

    name = "forecast"
    what = "a forecaster"
    model_class = Forecaster
    data_config_class = ForecastDataConfig
    default_train = TrainConfig(
        epochs=100000,
        max_steps=1000,
        lr=1e-3,
        eval_every=50,
        eval_at_epoch_end=False,
        monitor="val_mae",
        log_every=50,
    )

    def prepare(self, data, out, model: ForecasterConfig, dc: ForecastDataConfig, train, saved):
        frame = dc.read(data)
        if saved is not None:
            info = saved.extras["forecast.json"]
            plan, transform = Plan(**info["plan"]), SeriesTransform.from_dict(info["transform"])
            if saved.resume and saved.extras["dataset.json"]["digest"] != frame_digest(frame):
                raise RnnkitError(
                    f"{frame.source} is not the series the run in {out} was trained on; resume "
                    "needs the same data"
                )
            if not saved.resume:  # init_from: the saved transforms, this data's split
                plan = dataclasses.replace(make_plan(frame, dc), diff=plan.diff)
                plan.lookback, plan.horizon = saved.model.lookback, saved.model.horizon
        else:
            plan = make_plan(frame, dc)
            transform = SeriesTransform.fit(frame, plan.train_end, dc.log, plan.diff, dc.scaler)
        for note in plan.notes:
            log.info(f"{frame.source}: {note}")
        if transform.target_names != frame.target_names:
            raise RnnkitError(
                f"{frame.source} has targets {frame.target_names}, the checkpoint "
                f"{transform.target_names}"
            )
        model = dataclasses.replace(
            model,
            lookback=plan.lookback,
            horizon=plan.horizon,
            n_targets=frame.n_targets,
            n_past=frame.past_covariates.shape[1],
            n_future=frame.future_covariates.shape[1],
        )
        z = transform.apply(frame.values())
        L, H, d = plan.lookback, plan.horizon, plan.diff
        # a window starting at model row s forecasts frame rows s + d + L … s + d + L + H - 1
        last_train = plan.train_end - d - L - H
        train_src = WindowBatches(
            z, np.arange(last_train + 1), L + H, dc.batch_size, seed=train.seed
        )
        val_src = None
        if plan.val_size:
            starts = np.arange(last_train + 1, last_train + plan.val_size - H + 2)
            val_src = WindowBatches(z, starts, L + H, dc.batch_size, shuffle=False)
        extras = {
            "forecast.json": {"plan": dataclasses.asdict(plan), "transform": transform.to_dict()},
            "series.json": frame_to_dict(frame),
            "dataset.json": {
                "digest": frame_digest(frame),
                "rows": len(frame),
                "train_windows": len(train_src),
                "val_windows": len(val_src) if val_src is not None else 0,
            },
        }
        return run.Prepared(model, train_src, val_src, extras)


FORECAST_TASK = ForecastTask()


def train_forecaster(
    data: Any,
    out: str | Path,
    model: ForecasterConfig | None = None,
    data_config: ForecastDataConfig | None = None,
    train: TrainConfig | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """Train a forecaster on ``data`` (a CSV path, a DataFrame or a SeriesFrame) into ``out``.

    ``train`` defaults to :attr:`ForecastTask.default_train` (1,000 Adam steps at 1e-3; with a
    validation span, ``best/`` by the validation MAE of the multi-step forecasts).
    """
    if train is None and not resume:
        train = FORECAST_TASK.default_train
    return run.train(
        FORECAST_TASK, data, out, model, data_config, train, resume=resume, overwrite=overwrite
    )


# ---- using a trained forecaster ----------------------------------------------------------------


class SeriesForecaster:
    """A trained forecaster with its transforms and series, for forecasts in original units."""

    def __init__(self, model: Forecaster, saved: run.Saved) -> None:
        self.model = model.eval()
        self.saved = saved
        self.data_config: ForecastDataConfig = saved.data
        info = saved.extras["forecast.json"]
        self.plan = Plan(**info["plan"])
        self.transform = SeriesTransform.from_dict(info["transform"])
        self.series = frame_from_dict(saved.extras["series.json"])

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> SeriesForecaster:
        """From a run directory (``best/``, else ``last/``) or a checkpoint directory."""
        saved = run.load_saved(FORECAST_TASK, path)
        return cls(load_model(saved.path, map_location=device), saved)  # type: ignore[arg-type]

    @property
    def config(self) -> ForecasterConfig:
        return self.model.config

    @property
    def test_start(self) -> int:
        """The first row of the run's held-out test span in its series."""
        return len(self.series) - self.plan.test_size

    def read(self, data: Any = None, *, ahead: bool = False) -> tuple[SeriesFrame, int]:
        """The run's series, continued by ``data`` when given: (frame, first new row).

        ``data`` may continue the run's series (its first row is the step after the series'
        last) or hold it and more (rows after the series' last are new).
        """
        if data is None:
            return self.series, len(self.series)
        newer = self.data_config.read(data, ahead=ahead)
        return extend(self.series, newer)

    def forecast_at(
        self, frame: SeriesFrame, origins: list[int], samples: int = SAMPLES
    ) -> dict[str, np.ndarray | None]:
        """Forecasts from each origin row (the first forecast row) of ``frame``, in original
        units: {"point", "lower", "upper"} (k, H, T) (bounds None for mse/mae models)."""
        c, plan, t = self.config, self.plan, self.transform
        L, d = c.lookback, plan.diff
        values = frame.values()
        first = min(origins)
        if first < L + d:
            raise RnnkitError(
                f"forecasting from row {first} of {frame.source} needs the {L + d} rows before "
                f"it (lookback {L}{f' + lag {d}' if d else ''})"
            )
        history = np.stack([t.apply(values[o - L - d : o]) for o in origins])
        future = np.stack([self._future(frame, o) for o in origins])
        x = torch.from_numpy(history).to(self._device)
        f = torch.from_numpy(future).to(self._device)
        draw = samples if c.loss == "gaussian" else 0
        gen = torch.Generator().manual_seed(0)
        out = self.model.forecast(x, f, samples=draw, generator=gen)
        point = np.stack(
            [t.invert(out.point[i].cpu().numpy(), frame.targets[:o]) for i, o in enumerate(origins)]
        )
        if out.lower is None:
            return {"point": point, "lower": None, "upper": None}
        if out.samples is not None:
            qs = [c.quantiles[0], c.quantiles[2]]
            paths = [
                t.invert(out.samples[:, i].cpu().numpy(), frame.targets[:o])
                for i, o in enumerate(origins)
            ]
            lower, upper = np.stack([np.quantile(p, qs, axis=0) for p in paths], axis=1)
        else:
            lower, upper = (
                np.stack(
                    [t.invert(b[i].cpu().numpy(), frame.targets[:o]) for i, o in enumerate(origins)]
                )
                for b in (out.lower, out.upper)
            )
        return {"point": point, "lower": lower, "upper": upper}

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _future(self, frame: SeriesFrame, origin: int) -> np.ndarray:
        """The future covariates (H, F) of rows ``origin`` … ``origin + H - 1``, model units."""
        H, F = self.config.horizon, self.config.n_future
        first = self.config.n_targets + self.config.n_past
        if F == 0:
            return np.zeros((H, 0), dtype=np.float32)
        check_future_covariates(frame, origin, H)
        known = frame.future_covariates
        if frame.n_ahead:
            known = np.concatenate([known, frame.ahead_covariates])
        block = np.full((H, F), np.nan)
        inside = known[origin : origin + H]
        block[: len(inside)] = inside
        if len(inside) < H:  # beyond the rows given: calendar features only (checked above)
            times = future_times(frame.times, frame.freq, origin + H - len(frame))
            cal, names = calendar_features(times[len(inside) - H :], frame.freq)
            block[len(inside) :, F - len(names) :] = cal
        return self.transform.scale_future(block, first)

    def predict(self, data: Any = None, samples: int = SAMPLES):
        """The ``horizon`` steps after the run's series (or ``data``, which may end with rows
        ahead: empty targets, future covariates given) as a DataFrame indexed by time, with
        columns ``<target>`` and, for interval models, ``<target>_lower``, ``<target>_upper``."""
        pd = import_pandas()
        frame, _ = self.read(data, ahead=True)
        out = self.forecast_at(frame, [len(frame)], samples)
        times = future_times(frame.times, frame.freq, self.config.horizon)
        columns = {}
        for j, name in enumerate(frame.target_names):
            columns[name] = out["point"][0, :, j]
            if out["lower"] is not None:
                columns[f"{name}_lower"] = out["lower"][0, :, j]
                columns[f"{name}_upper"] = out["upper"][0, :, j]
        return pd.DataFrame(columns, index=times)

    def evaluate(self, data: Any = None, baselines: list[str] | None = None) -> dict[str, Any]:
        """Score the held-out test span (or the rows of ``data`` after the run's series):
        {"model": metrics, "baselines": {name: metrics}, "ranking", "beaten_by", "span",
        "forecasts"}; see the module docstring for the protocol."""
        if data is None:
            frame, start = self.series, self.test_start
        else:
            frame, start = self.read(data)
            if start >= len(frame):
                raise RnnkitError(
                    f"{frame.source} holds no rows after the run's series (which ends at "
                    f"{self.series.times[-1]}): nothing new to score"
                )
        return score_span(self, frame, start, len(frame), baselines)


def score_span(
    fc: SeriesForecaster,
    frame: SeriesFrame,
    start: int,
    end: int,
    baselines: list[str] | None = None,
) -> dict[str, Any]:
    """The model and the baselines on frame rows ``start`` … ``end - 1`` (module docstring)."""
    H, m = fc.config.horizon, fc.plan.season
    names = list(BASELINES if baselines is None else baselines)
    origins = list(range(start, end, H))
    out = fc.forecast_at(frame, origins)
    span = slice(start, end)
    n = end - start

    def joined(blocks: np.ndarray) -> np.ndarray:  # (k, H, T) → (n, T)
        return np.concatenate(list(blocks))[:n]

    preds = {"model": joined(out["point"])}
    for name in names:
        blocks = []
        for o in origins:
            per_target = [
                _baseline(name, frame.targets[:o, j], H, m) for j in range(frame.n_targets)
            ]
            blocks.append(np.stack(per_target, axis=1))
        preds[name] = joined(np.stack(blocks))
    actual = frame.targets[span]
    y_train = frame.targets[:start]
    per_target: dict[str, dict[str, dict[str, float]]] = {}
    for j, target in enumerate(frame.target_names):
        per_target[target] = {
            k: forecast_metrics(actual[:, j], p[:, j], y_train[:, j], m) for k, p in preds.items()
        }
        if out["lower"] is not None:
            lo, hi = joined(out["lower"])[:, j], joined(out["upper"])[:, j]
            per_target[target]["model"]["coverage"] = coverage(actual[:, j], lo, hi)
    result = {k: _mean_over_targets([per_target[t][k] for t in frame.target_names]) for k in preds}
    rank_by = "mase" if all(np.isfinite(r["mase"]) for r in result.values()) else "smape"
    ranking = sorted(result, key=lambda k: result[k][rank_by])
    model = result.pop("model")
    times = frame.times[span]
    report = {
        "model": model,
        "baselines": result,
        "ranking": ranking,
        "ranked_by": rank_by,
        "beaten_by": ranking[: ranking.index("model")],
        "span": {
            "start": time_value(times[0]),
            "end": time_value(times[-1]),
            "steps": n,
            "forecasts": len(origins),
            "horizon": H,
            "season": m,
        },
        "forecasts": {
            "times": [time_value(t) for t in times],
            "actual": actual.tolist(),
            **{k: p.tolist() for k, p in preds.items()},
        },
    }
    if out["lower"] is not None:
        report["model"]["interval"] = fc.config.interval
        report["forecasts"]["lower"] = joined(out["lower"]).tolist()
        report["forecasts"]["upper"] = joined(out["upper"]).tolist()
    if frame.n_targets > 1:
        report["targets"] = per_target
    return report


def time_value(t: Any) -> str | int:
    """A timestamp as ISO text, a row position as an int (JSON either way)."""
    return t.isoformat() if hasattr(t, "isoformat") else int(t)


def _baseline(name: str, history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsforecast's convergence chatter
        return fit_baselines(history, horizon, season, models=[name])[name]


def _mean_over_targets(metrics: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}


def extend(series: SeriesFrame, newer: SeriesFrame) -> tuple[SeriesFrame, int]:
    """``series`` continued by ``newer``: (the joined frame, its first row after ``series``).

    ``newer`` either starts right after ``series`` (the next step; for business days up to a
    week of closures may lie between) or starts inside it and then replaces its rows from there.
    """
    pd = import_pandas()
    if newer.names != series.names:
        raise RnnkitError(
            f"{newer.source} has columns {newer.names}, the run's series {series.names}"
        )
    if not isinstance(series.times, pd.DatetimeIndex):
        keep = len(series)
    else:
        first = newer.times[0]
        if first <= series.times[-1]:
            keep = int(series.times.searchsorted(first))
        else:
            allowed = MAX_CLOSED_DAYS + 1 if series.freq == "B" else 1
            nexts = future_times(series.times, series.freq, allowed)
            if first not in nexts:
                raise RnnkitError(
                    f"{newer.source} starts at {first}, but the run's series ends at "
                    f"{series.times[-1]}: the next step is {nexts[0]}"
                )
            keep = len(series)
    times = series.times[:keep].append(newer.times)
    if not isinstance(times, pd.RangeIndex) and isinstance(series.times, pd.RangeIndex):
        times = pd.RangeIndex(len(times))
    joined = dataclasses.replace(
        newer,
        times=times,
        targets=np.concatenate([series.targets[:keep], newer.targets]),
        past_covariates=np.concatenate([series.past_covariates[:keep], newer.past_covariates]),
        future_covariates=np.concatenate(
            [series.future_covariates[:keep], newer.future_covariates]
        ),
        freq=series.freq,
    )
    return joined, len(series)


def evaluate_forecaster(path: str | Path, data: Any = None, **kwargs) -> dict[str, Any]:
    """:meth:`SeriesForecaster.evaluate` of the run or checkpoint at ``path``."""
    return SeriesForecaster.load(path).evaluate(data, **kwargs)
