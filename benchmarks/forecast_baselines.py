"""The statistical baselines on the classic monthly series: hold out the last ``--test`` months.

For airline passengers (1949-1960) and Zürich sunspots (1749-1983) from ../shared/data: the
season is detected (``detect_season``) and also forced to 12; each baseline is fitted on the
history before the test months and scored on them (MAPE %, sMAPE %, MASE with the season
used). Reference for airline with the last 36 months held out: Darts' quick-start notebook
reports 5.11% MAPE for its ExponentialSmoothing (statsmodels' additive Holt-Winters).

    python benchmarks/forecast_baselines.py [--test 36] [--series airline sunspots]
"""

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from rnnkit.data.series_csv import read_series  # noqa: E402
from rnnkit.data.series_windows import split_by_time  # noqa: E402
from rnnkit.forecast_baselines import detect_season, fit_baselines  # noqa: E402
from rnnkit.metrics.forecast import forecast_metrics  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/timeseries"
SERIES = {
    "airline": ("airline-passengers.csv", "Passengers"),
    "sunspots": ("monthly-sunspots.csv", "Sunspots"),
}


def report(name: str, test: int) -> None:
    file, target = SERIES[name]
    frame = read_series(DATA / file, time_column="Month", targets=[target])
    y = frame.targets[:, 0]
    train, _, held = split_by_time(len(y), test_size=test)
    detected = detect_season(y[train], frame.freq)
    print(
        f"\n{name}: {len(y)} rows, freq {frame.freq}, train {train.stop}, test {test}, "
        f"detected season {detected}"
    )
    for season in dict.fromkeys([detected, 12]):
        print(f"  season {season}")
        print(f"  {'model':<15}{'MAPE %':>9}{'sMAPE %':>9}{'MASE':>8}{'fit s':>8}")
        for model in ("naive", "seasonal_naive", "drift", "mean", "holt_winters", "ets", "arima"):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                forecast = fit_baselines(y[train], test, season, models=[model])[model]
            seconds = time.perf_counter() - start
            m = forecast_metrics(y[held], forecast, y[train], season)
            print(
                f"  {model:<15}{m['mape']:>9.2f}{m['smape']:>9.2f}{m['mase']:>8.3f}{seconds:>8.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test", type=int, default=36, help="months held out (default 36)")
    parser.add_argument("--series", nargs="+", choices=sorted(SERIES), default=sorted(SERIES))
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"shared datasets not found at {DATA}")
    for name in args.series:
        report(name, args.test)


if __name__ == "__main__":
    main()
