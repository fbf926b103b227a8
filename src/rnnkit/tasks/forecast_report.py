"""How forecasts are shown: the ranking table, the plain verdict, and the PNG plots.

The table ranks the network among the baselines by MASE (sMAPE when a MASE is undefined), and
the verdict says in words which baselines beat it, if any: a network that loses to the
last value is worth knowing about before anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

METRICS = ("mae", "rmse", "mape", "smape", "mase")
# baselines drawn beside the model: line style and colour
SHOWN_BASELINES = {
    "naive": ("--", "tab:orange"),
    "seasonal_naive": (":", "tab:green"),
    "arima": ("-.", "tab:red"),
}


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise RnnkitError("--plot needs matplotlib: pip install 'rnnkit[plot]'") from None
    return Figure(figsize=(width, height), layout="tight")


def _rows(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Name → metrics (an eval result) or name → {metric: {mean, std}} (a backtest)."""
    if "summary" in result:
        return {"model": result["summary"]["model"], **result["summary"]["baselines"]}
    return {"model": result["model"], **result["baselines"]}


def _cell(value: Any, width: int) -> str:
    if isinstance(value, dict):  # a backtest's mean ± std
        text = f"{value['mean']:.3f}±{value['std']:.3f}"
    elif value is None or not np.isfinite(value):
        text = "n/a"
    else:
        text = f"{value:.3f}"
    return f"{text:>{width}}"


def ranking_table(result: dict[str, Any]) -> str:
    """The models ranked (best first), one line each: MAE, RMSE, MAPE %, sMAPE %, MASE and the
    interval coverage of the network."""
    rows = _rows(result)
    width = 15 if "summary" in result else 10
    head = "".join(f"{m.upper() if m != 'smape' else 'sMAPE':>{width}}" for m in METRICS)
    if "coverage" in rows["model"]:
        head += f"{'coverage':>{width}}"
    lines = [f"{'rank':<5}{'model':<16}{head}"]
    for rank, name in enumerate(result["ranking"], 1):
        r = rows[name]
        cells = "".join(_cell(r.get(m), width) for m in METRICS)
        cov = _cell(r["coverage"], width) if "coverage" in r else ""
        shown = "rnnkit" if name == "model" else name
        lines.append(f"{rank:<5}{shown:<16}{cells}{cov}")
    return "\n".join(lines)


def verdict(result: dict[str, Any]) -> str:
    """One sentence: the network's rank, and the baselines that beat it."""
    by = result["ranked_by"]
    rows = _rows(result)

    def value(name: str) -> float:
        v = rows[name][by]
        return v["mean"] if isinstance(v, dict) else v

    beaten = result["beaten_by"]
    total = len(result["ranking"])
    label = "MASE" if by == "mase" else "sMAPE"
    if not beaten:
        second = result["ranking"][1] if total > 1 else None
        against = f" (next: {second} {value(second):.3f})" if second else ""
        return f"The network is best of {total} by {label}: {value('model'):.3f}{against}."
    names = ", ".join(f"{b} ({value(b):.3f})" for b in beaten)
    return (
        f"{len(beaten)} baseline{'s' if len(beaten) > 1 else ''} beat the network by {label} "
        f"({value('model'):.3f}): {names}. Prefer {beaten[0]} here, or change the network."
    )


def plot_forecast(
    result: dict[str, Any],
    history_times: Any,
    history: np.ndarray,
    target_names: list[str],
    path: str,
) -> None:
    """Actual values (the last stretch of history and the scored span), the network's forecast
    with its interval, and a few baselines; one panel per target."""
    f = result["forecasts"]
    times = _as_times(f["times"])
    fig = _figure(10, 3.2 * len(target_names))
    axes = np.atleast_1d(fig.subplots(len(target_names), 1, squeeze=False)[:, 0])
    for j, (ax, name) in enumerate(zip(axes, target_names, strict=True)):
        ax.plot(history_times, history[:, j], color="0.4", lw=1, label="history")
        ax.plot(times, np.asarray(f["actual"])[:, j], color="k", lw=1.5, label="actual")
        if "lower" in f:
            ax.fill_between(
                times,
                np.asarray(f["lower"])[:, j],
                np.asarray(f["upper"])[:, j],
                color="tab:blue",
                alpha=0.2,
                label=f"{100 * result['model'].get('interval', 0):.0f}% interval",
            )
        ax.plot(times, np.asarray(f["model"])[:, j], color="tab:blue", lw=1.5, label="rnnkit")
        for base, (style, color) in SHOWN_BASELINES.items():
            if base in f:
                ax.plot(times, np.asarray(f[base])[:, j], ls=style, color=color, lw=1, label=base)
        ax.set_title(name)
        ax.legend(fontsize=8, ncol=3)
    fig.savefig(path, dpi=100)


def plot_backtest(
    result: dict[str, Any], times: Any, actual: np.ndarray, target: int, path: str
) -> None:
    """The series with every fold's network and naive forecasts (top) and the mean ± std
    MASE (or sMAPE) of each model over the folds (bottom)."""
    fig = _figure(10, 6.5)
    top, bottom = fig.subplots(2, 1, height_ratios=(3, 2))
    top.plot(times, actual[:, target], color="k", lw=1, label="actual")
    for k, fold in enumerate(result["folds"]):
        ft = _as_times(fold["forecasts"]["times"])
        top.plot(
            ft,
            np.asarray(fold["forecasts"]["model"])[:, target],
            color="tab:blue",
            lw=1.5,
            label="rnnkit" if k == 0 else None,
        )
        if "naive" in fold["forecasts"]:
            top.plot(
                ft,
                np.asarray(fold["forecasts"]["naive"])[:, target],
                color="tab:orange",
                ls="--",
                lw=1,
                label="naive" if k == 0 else None,
            )
        top.axvline(ft[0], color="0.8", lw=0.8)
    top.legend(fontsize=8)
    top.set_title(f"backtest: {len(result['folds'])} folds, horizon {result['horizon']}")
    rows = _rows(result)
    by = result["ranked_by"]
    names = result["ranking"]
    means = [rows[n][by]["mean"] for n in names]
    stds = [rows[n][by]["std"] for n in names]
    colors = ["tab:blue" if n == "model" else "0.6" for n in names]
    bottom.bar(range(len(names)), means, yerr=stds, color=colors, capsize=3)
    bottom.set_xticks(
        range(len(names)), ["rnnkit" if n == "model" else n for n in names], rotation=20, ha="right"
    )
    bottom.set_ylabel(f"{'MASE' if by == 'mase' else 'sMAPE'} (mean ± std)")
    fig.savefig(path, dpi=100)


def _as_times(values: list[str | int]):
    """ISO timestamps → a DatetimeIndex; row positions stay numbers."""
    if values and isinstance(values[0], int):
        return np.asarray(values)
    from rnnkit.data.series_time import import_pandas

    return import_pandas().to_datetime(values)
