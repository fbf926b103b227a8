"""``rnnkit forecast train|eval|predict|backtest``: flags map one to one onto the Python API."""

from __future__ import annotations

import argparse
import functools
import json
import sys
import warnings

from rnnkit.cli.args import add_dataclass_args, given_fields
from rnnkit.cli.run import add_train_command
from rnnkit.errors import RnnkitError

DATA_HELP = "a CSV file with a header line (one row per time step)"


def register(tasks: argparse._SubParsersAction) -> None:
    from rnnkit.tasks.forecast import FORECAST_TASK
    from rnnkit.tasks.forecast_data import ForecastDataConfig
    from rnnkit.training import TrainConfig

    fc = tasks.add_parser("forecast", help="time series: the next steps, against baselines")
    verbs = fc.add_subparsers(dest="verb", metavar="VERB", required=True)
    train = add_train_command(
        verbs,
        FORECAST_TASK,
        help="train a forecaster on a series (the last --test-size steps are held out)",
        add_data=lambda p: p.add_argument("data", metavar="DATA", help=DATA_HELP),
    )
    train.set_defaults(run=_with_notes(train.get_default("run")))

    p = verbs.add_parser(
        "eval",
        help="score the held-out span (or the rows of NEWER after the run's series) against "
        "the baselines",
        usage="rnnkit forecast eval RUN [NEWER] [--json] [--plot PNG] [--baselines LIST]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument("data", nargs="?", metavar="NEWER", help="a CSV continuing the run's series")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="PNG", help="actual vs forecast, with the interval")
    _baselines_flag(p)
    p.set_defaults(run=_with_notes(_eval))

    p = verbs.add_parser(
        "predict",
        help="forecast the horizon after the run's series (or after DATA)",
        usage="rnnkit forecast predict RUN [DATA] [--json]",
    )
    p.add_argument("model", metavar="RUN", help="run or checkpoint directory")
    p.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="a CSV continuing (or holding) the run's series; rows at its end with empty "
        "targets give the future covariates of the steps to forecast",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per step")
    p.set_defaults(run=_with_notes(_predict))

    p = verbs.add_parser(
        "backtest",
        help="rolling-origin backtest (expanding window): mean ± std per metric for the "
        "network and every baseline",
        usage="rnnkit forecast backtest DATA --out DIR [--folds K] [--retrain] [options]",
    )
    p.add_argument("data", metavar="DATA", help=DATA_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="runs and backtest.json go here")
    p.add_argument("--folds", type=int, default=5, help="K forecasts (default: 5)")
    p.add_argument("--step", type=int, default=0, help="steps between origins (0 = one horizon)")
    p.add_argument("--retrain", action="store_true", help="train a new run for every fold")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier backtest")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plot", metavar="PNG", help="the folds' forecasts and the metric bars")
    _baselines_flag(p)
    add_dataclass_args(p, ForecastDataConfig, title="data", exclude=("test_size",))
    add_dataclass_args(p, FORECAST_TASK.model_class.config_class, title="model")
    add_dataclass_args(p, TrainConfig, title="training", exclude=("betas", "init_from"))
    p.set_defaults(run=_with_notes(_backtest))


def _with_notes(verb):
    """``verb`` with the reader's warnings (rows sorted, gaps filled) shown as one line each,
    ``rnnkit: note: ...``, rather than as Python warnings with a source line."""

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"rnnkit: note: {message}", file=sys.stderr)

    @functools.wraps(verb)
    def run(args: argparse.Namespace) -> int:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return verb(args)

    return run


def _baselines_flag(p: argparse.ArgumentParser) -> None:
    from rnnkit.forecast_baselines import BASELINES

    p.add_argument(
        "--baselines",
        default="all",
        metavar="LIST",
        help=f"comma-separated, of {','.join(BASELINES)} (default: all; none: none)",
    )


def _baselines(text: str) -> list[str]:
    from rnnkit.forecast_baselines import BASELINES
    from rnnkit.tasks.forecast_data import columns

    if text == "all":
        return list(BASELINES)
    if text == "none":
        return []
    names = columns(text)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise RnnkitError(
            f"unknown baseline {unknown[0]!r}: expected some of {', '.join(BASELINES)}"
        )
    return names


def _report(res: dict, as_json: bool) -> None:
    from rnnkit.tasks.forecast_report import ranking_table, verdict

    if as_json:
        print(json.dumps(res))
        return
    print(ranking_table(res))
    print(verdict(res))


def _eval(args: argparse.Namespace) -> int:
    from rnnkit.tasks.forecast import SeriesForecaster
    from rnnkit.tasks.forecast_report import plot_forecast

    names = _baselines(args.baselines)
    fc = SeriesForecaster.load(args.model)
    res = fc.evaluate(args.data, names)
    if args.plot:
        frame, _ = fc.read(args.data)
        first = len(frame) - res["span"]["steps"]
        shown = slice(max(0, first - 3 * res["span"]["steps"]), first)
        plot_forecast(res, frame.times[shown], frame.targets[shown], frame.target_names, args.plot)
    if not args.json:
        span = res["span"]
        print(
            f"{span['steps']} steps from {span['start']} to {span['end']} "
            f"({span['forecasts']} forecast{'s' if span['forecasts'] > 1 else ''} of horizon "
            f"{span['horizon']}; MASE season {span['season']})"
        )
    _report(res, args.json)
    if args.plot and not args.json:
        print(f"plot: {args.plot}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from rnnkit.tasks.forecast import SeriesForecaster, time_value

    fc = SeriesForecaster.load(args.model)
    table = fc.predict(args.data)
    if args.json:
        for t, row in table.iterrows():
            print(json.dumps({"time": time_value(t), **{k: float(v) for k, v in row.items()}}))
        return 0
    print("time," + ",".join(table.columns))
    for t, row in table.iterrows():
        print(f"{time_value(t)}," + ",".join(f"{v:.6g}" for v in row))
    return 0


def _backtest(args: argparse.Namespace) -> int:
    import dataclasses

    from rnnkit.tasks.forecast import FORECAST_TASK
    from rnnkit.tasks.forecast_backtest import backtest_forecaster
    from rnnkit.tasks.forecast_data import ForecastDataConfig
    from rnnkit.tasks.forecast_report import plot_backtest
    from rnnkit.training import TrainConfig

    if args.folds < 1 or args.step < 0:
        raise RnnkitError(f"--folds must be >= 1 and --step >= 0, got {args.folds}, {args.step}")
    names = _baselines(args.baselines)
    model_cls = FORECAST_TASK.model_class.config_class
    model = model_cls(**given_fields(model_cls, args))
    data = ForecastDataConfig(**given_fields(ForecastDataConfig, args))
    train = dataclasses.replace(FORECAST_TASK.default_train, **given_fields(TrainConfig, args))
    res = backtest_forecaster(
        args.data,
        args.out,
        model,
        data,
        train,
        folds=args.folds,
        step=args.step,
        retrain=args.retrain,
        baselines=names,
        overwrite=args.overwrite,
    )
    if args.plot:
        frame = data.read(args.data)
        plot_backtest(res, frame.times, frame.targets, 0, args.plot)
    if args.json:
        print(json.dumps(res))
        return 0
    how = "retrained per fold" if res["retrain"] else "trained once"
    print(
        f"{len(res['folds'])} folds of horizon {res['horizon']}, origins {res['step']} apart, "
        f"network {how}; mean ± std over the folds:"
    )
    _report(res, False)
    print(f"runs and backtest.json in {args.out}" + (f"; plot: {args.plot}" if args.plot else ""))
    return 0
