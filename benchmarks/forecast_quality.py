"""Forecast quality with rnnkit's defaults against every baseline, one data set per command.

    python benchmarks/forecast_quality.py airline|sunspots|shampoo|stock [--skip-backtest]

Each command trains a forecaster with the defaults (only the data's own columns, horizon and
test span are given: no per-set tuning), scores it and every baseline on the same held-out
span (the baselines fitted on the same history), then runs a 5-fold rolling-origin backtest
(expanding window, trained once). It prints both tables, the training time and the peak
resident memory (``ru_maxrss``, the whole process: torch, pandas, statsforecast).

=========  ======================================================  =======================
set        test span (the forecaster's horizon)                      backtest: horizon, step
=========  ======================================================  =======================
airline    1958-1960, 36 months, one 36-month forecast             12, 12 (the years 1956-60)
sunspots   1981-1983, 36 months, one 36-month forecast             36, 36
shampoo    year 3, 12 months, one 12-month forecast                3, 3
stock      January 2017 (the Test CSV), 20 one-day forecasts,       1, 20
           each from the real days before it (the notebook's
           protocol; 60-day lookback as in the notes)
=========  ======================================================  =======================

Targets from Darts' published notebooks: airline MAPE <= 5% and a better MASE than seasonal
naive and ARIMA; sunspots better than exponential smoothing (holt_winters and ets). Timings
are from a shared 2-core machine with one torch thread: figures to compare, not to quote.
"""

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from rnnkit.tasks.forecast import FORECAST_TASK, SeriesForecaster, train_forecaster  # noqa: E402
from rnnkit.tasks.forecast_backtest import backtest_forecaster  # noqa: E402
from rnnkit.tasks.forecast_data import ForecastDataConfig  # noqa: E402
from rnnkit.tasks.forecast_report import ranking_table, verdict  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data"


@dataclass
class Case:
    file: str
    data: ForecastDataConfig
    backtest: tuple[int, int]  # horizon, step
    newer: str = ""  # scored instead of the held-out span


CASES = {
    "airline": Case(
        "timeseries/airline-passengers.csv",
        ForecastDataConfig(time_column="Month", target="Passengers", horizon=36),
        (12, 12),
    ),
    "sunspots": Case(
        "timeseries/monthly-sunspots.csv",
        ForecastDataConfig(time_column="Month", target="Sunspots", horizon=36),
        (36, 36),
    ),
    "shampoo": Case(
        "timeseries/shampoo.csv",
        ForecastDataConfig(time_column="Month", target="Sales", horizon=12),
        (3, 3),
    ),
    "stock": Case(
        "google_stock/Google_Stock_Price_Train.csv",
        ForecastDataConfig(time_column="Date", target="Open", horizon=1, lookback=60),
        (1, 20),
        newer="google_stock/Google_Stock_Price_Test.csv",
    ),
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=sorted(CASES))
    parser.add_argument("--skip-backtest", action="store_true")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"shared datasets not found at {DATA}")
    warnings.simplefilter("ignore")  # read_series' notes (e.g. shampoo's 'N-MM' years)
    case = CASES[args.set]
    train = FORECAST_TASK.default_train.replace(
        seed=args.seed, threads=1, device="cpu", progress=False
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit = train_forecaster(
            DATA / case.file, Path(tmp) / "run", data_config=case.data, train=train
        )
        seconds = time.perf_counter() - start
        fc = SeriesForecaster.load(Path(tmp) / "run")
        res = fc.evaluate(DATA / case.newer if case.newer else None)
        plan = fc.plan
        print(
            f"{args.set}: {len(fc.series)} rows; lookback {plan.lookback}, horizon {plan.horizon}, "
            f"diff lag {plan.diff or 'none'}, season {plan.season}, validation {plan.val_size}; "
            f"{fc.config.ensemble} x {fc.config.cell.upper()}({fc.config.hidden_size}) "
            f"{fc.config.strategy}, {fit.steps} steps"
        )
        span = res["span"]
        print(
            f"test span {span['start'][:10]} … {span['end'][:10]}: {span['steps']} steps, "
            f"{span['forecasts']} forecast(s)"
        )
        print(ranking_table(res))
        print(verdict(res))
        print(
            f"training {seconds:.0f} s (1 thread, shared machine); peak RSS {peak_rss_mb():.0f} MB"
        )
        sys.stdout.flush()
        if args.skip_backtest:
            return
        horizon, step = case.backtest
        data = replace(case.data, horizon=horizon, test_size=0)
        start = time.perf_counter()
        bt = backtest_forecaster(
            DATA / case.file,
            Path(tmp) / "bt",
            data_config=data,
            train=train,
            folds=args.folds,
            step=step,
        )
        print(
            f"\nbacktest: {args.folds} folds of horizon {horizon}, origins {step} apart from "
            f"{bt['folds'][0]['start'][:10]} (trained once); mean ± std over the folds"
        )
        print(ranking_table(bt))
        print(verdict(bt))
        print(f"backtest {time.perf_counter() - start:.0f} s; peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
