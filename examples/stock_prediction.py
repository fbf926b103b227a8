"""The lecture notes' Google stock notebook as one command, with the baseline it leaves out.

    python examples/stock_prediction.py ../shared/data/google_stock [--epochs 100]

As in the notes: the opening price, min-max scaled; windows of 60 trading days in, the next day
out; four stacked LSTM layers of 50 units, each followed by dropout 0.2; Adam, mean squared
error, batch 32; then each day of January 2017 (Google_Stock_Price_Test.csv) predicted from
the 60 real days before it, and real and predicted prices plotted together. Beside them, the
naive forecast: tomorrow opens where today opened. Its line in the table and the plot is the
lesson: a one-day-ahead curve that "follows" the real one can be no better than copying
yesterday, and here the copy is usually as good or better.

The same run from the command line:

    rnnkit forecast train Google_Stock_Price_Train.csv --out runs/google --time-column Date \\
        --target Open --lookback 60 --horizon 1 --val-size 0 --scaler minmax --diff none \\
        --num-layers 4 --hidden-size 50 --dropout 0.2 --ensemble 1 --epochs 100 --max-steps 0
    rnnkit forecast eval runs/google Google_Stock_Price_Test.csv --baselines naive --plot jan.png
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from rnnkit.models.forecaster import ForecasterConfig  # noqa: E402
from rnnkit.tasks.forecast import SeriesForecaster, train_forecaster  # noqa: E402
from rnnkit.tasks.forecast_data import ForecastDataConfig  # noqa: E402
from rnnkit.tasks.forecast_report import plot_forecast, ranking_table, verdict  # noqa: E402
from rnnkit.training import TrainConfig  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", type=Path, help="the google_stock folder (Train and Test CSVs)")
parser.add_argument("--epochs", type=int, default=100, help="the notebook's 100")
parser.add_argument("--out", default="runs/google-stock")
parser.add_argument("--threads", type=int, default=1)
args = parser.parse_args()

data = ForecastDataConfig(
    time_column="Date",
    target="Open",
    lookback=60,
    horizon=1,
    val_size=0,  # the notebook trains on every row before January 2017
    scaler="minmax",
    diff="none",  # the notebook feeds prices, not their changes
    batch_size=32,
)
model = ForecasterConfig(
    cell="lstm", hidden_size=50, num_layers=4, dropout=0.2, strategy="direct", ensemble=1
)
train = TrainConfig(
    epochs=args.epochs, lr=1e-3, log_every=100, threads=args.threads, device="cpu", progress=False
)
start = time.perf_counter()
train_forecaster(
    args.data / "Google_Stock_Price_Train.csv", args.out, model, data, train, overwrite=True
)
print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.0f} s")

forecaster = SeriesForecaster.load(args.out)
test = args.data / "Google_Stock_Price_Test.csv"
result = forecaster.evaluate(test, baselines=["naive"])  # each day from the real days before it
print(f"January 2017, {result['span']['steps']} trading days, one day ahead:")
print(ranking_table(result))
print(verdict(result))

frame, first = forecaster.read(test)
shown = slice(first - 60, first)
plot = Path(args.out) / "stock_prediction.png"
plot_forecast(result, frame.times[shown], frame.targets[shown], ["Google opening price"], plot)
print(f"real, predicted and naive prices: {plot}")
