"""The time axis of a series: its frequency, its gaps, calendar features and future timestamps.

Frequency rule (:func:`infer_frequency`): ``pd.infer_freq`` on the whole index when it is
regular; otherwise the frequency most windows of three consecutive timestamps agree on, and
the timestamps must all lie on that frequency's grid, the grid points absent being *gaps*.
When no frequency fits (timestamps off every grid, e.g. irregular events), the frequency is
``None``: the rows are then taken as consecutive steps, by position (the caller warns).

Business days: a series whose timestamps are all weekdays and step by one day (stock prices)
has frequency ``"B"``, and a run of at most :data:`MAX_CLOSED_DAYS` absent weekdays is a
market closure (holidays, Hurricane Sandy's two days in 2012, a week of Chinese New Year), not
a gap: the rows stay consecutive steps (one step = one trading day). A longer run is a gap.

Pandas is imported by the functions, not at import time (it is in the ``forecast`` extra).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rnnkit.errors import RnnkitError

if TYPE_CHECKING:
    import pandas as pd

MAX_CLOSED_DAYS = 5  # a run of absent weekdays up to one week is a market closure, not a gap
_WINDOWS = 200  # windows of three timestamps sampled to find the modal frequency


def import_pandas():
    """The pandas module, or RnnkitError saying how to install it."""
    try:
        import pandas
    except ImportError:
        raise RnnkitError(
            "reading time series needs the pandas package: pip install 'rnnkit[forecast]'"
        ) from None
    return pandas


@dataclass
class TimeAxis:
    """What :func:`infer_frequency` found: the frequency and the grid points that are absent.

    ``missing`` are gaps (to report or fill); ``closed`` are absent weekdays of a business-day
    series taken as market closures (neither reported nor filled).
    """

    freq: str | None
    missing: pd.DatetimeIndex | None = None
    closed: pd.DatetimeIndex | None = None
    notes: list[str] = field(default_factory=list)


def check_freq(freq: str) -> str:
    """``freq`` as pandas spells it (e.g. "MS"); RnnkitError for an unknown alias."""
    pd = import_pandas()
    try:
        return pd.tseries.frequencies.to_offset(freq).freqstr
    except (ValueError, TypeError):
        raise RnnkitError(
            f"unknown frequency {freq!r}: give a pandas alias such as 'D', 'B', 'W', 'MS', "
            "'ME', 'QS', 'YS', 'h'"
        ) from None


def _modal_freq(times: pd.DatetimeIndex) -> str | None:
    pd = import_pandas()
    n = len(times)
    starts = np.unique(np.linspace(0, n - 3, min(_WINDOWS, n - 2)).astype(int))
    votes = Counter(pd.infer_freq(times[i : i + 3]) for i in starts)
    votes.pop(None, None)
    return votes.most_common(1)[0][0] if votes else None


def _runs(positions: np.ndarray) -> list[np.ndarray]:
    """Runs of consecutive integers in sorted ``positions``."""
    if len(positions) == 0:
        return []
    return np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1)


def infer_frequency(times: pd.DatetimeIndex, freq: str | None = None) -> TimeAxis:
    """The frequency of sorted, unique ``times`` (or check the given ``freq``) and its gaps.

    See the module docstring for the rule. With a given ``freq``, timestamps off its grid
    raise RnnkitError (the frequency is wrong for this data).
    """
    pd = import_pandas()
    given = freq is not None
    if given:
        freq = check_freq(freq)
    elif len(times) < 3:
        return TimeAxis(None, notes=["fewer than 3 timestamps: no frequency can be inferred"])
    else:
        freq = pd.infer_freq(times) or _modal_freq(times)
        if freq is None:
            return TimeAxis(None, notes=["no regular frequency fits the timestamps"])
    offset = pd.tseries.frequencies.to_offset(freq)
    weekdays_only = bool((times.dayofweek < 5).all())
    if not given and freq in ("D", "B") and weekdays_only and (times[-1] - times[0]).days >= 7:
        freq, offset = "B", pd.offsets.BDay()
    grid = pd.date_range(times[0], times[-1], freq=offset)
    off_grid = times.difference(grid)
    if len(off_grid):
        first = ", ".join(str(t) for t in off_grid[:3])
        if given:
            raise RnnkitError(
                f"{len(off_grid)} timestamps are not on the grid of frequency {freq!r} "
                f"starting {times[0]} (first: {first}): give the right freq or none"
            )
        return TimeAxis(None, notes=[f"timestamps off the grid of {freq!r} (first: {first})"])
    missing = grid.difference(times)
    closed = missing[:0]
    if freq == "B" and len(missing):
        runs = _runs(grid.get_indexer(missing))
        short = [r for r in runs if len(r) <= MAX_CLOSED_DAYS]
        closed = grid[np.concatenate(short)] if short else closed
        missing = missing.difference(closed)
    return TimeAxis(freq, missing, closed)


# ---- seasons, calendar features, future timestamps -------------------------------------------

# (pandas offset class name → (season length in steps of one unit, calendar features))
_PERIODS = {
    "Hour": (24, ("hour", "dayofweek")),
    "Day": (7, ("dayofweek", "dayofyear")),
    "BusinessDay": (5, ("dayofweek", "dayofyear")),
    "Week": (52, ("dayofyear",)),
    "MonthBegin": (12, ("month",)),
    "MonthEnd": (12, ("month",)),
    "QuarterBegin": (4, ("quarter",)),
    "QuarterEnd": (4, ("quarter",)),
}
# (feature → (how to read it from a DatetimeIndex, its period))
_CYCLES = {
    "minute": (lambda t: t.minute, 60.0),
    "hour": (lambda t: t.hour + t.minute / 60.0, 24.0),
    "dayofweek": (lambda t: t.dayofweek, 7.0),
    "dayofyear": (lambda t: t.dayofyear - 1, 365.25),
    "month": (lambda t: t.month - 1, 12.0),
    "quarter": (lambda t: t.quarter - 1, 4.0),
}


def season_of(freq: str | None) -> int:
    """The usual season length of ``freq`` in steps: 24 hourly, 7 daily, 5 business-day,
    52 weekly, 12 monthly, 4 quarterly; a multiple divides it when it can ("2MS" → 6, "5h" →
    1); 1 for other frequencies (yearly, minutes, None)."""
    if freq is None:
        return 1
    offset = import_pandas().tseries.frequencies.to_offset(freq)
    base = _PERIODS.get(type(offset).__name__, (1, ()))[0]
    return base // offset.n if base % offset.n == 0 else 1


def calendar_names(freq: str | None) -> list[str]:
    """The calendar features :func:`calendar_features` derives for ``freq``."""
    if freq is None:
        raise RnnkitError(
            "calendar features need a regular frequency, and none was found: pass freq="
        )
    offset = import_pandas().tseries.frequencies.to_offset(freq)
    kind = type(offset).__name__
    if kind == "Minute":
        cycles = ("minute", "hour") if offset.n < 60 else ("hour", "dayofweek")
    else:
        cycles = _PERIODS.get(kind, (1, ()))[1]
    return [f"{c}_{fn}" for c in cycles for fn in ("sin", "cos")]


def calendar_features(times: pd.DatetimeIndex, freq: str | None) -> tuple[np.ndarray, list[str]]:
    """Cyclic features of ``times`` chosen from ``freq``, as sin/cos pairs: (T, F) and names.

    Hourly: hour of day, day of week; daily and business-day: day of week, day of year;
    weekly: day of year; monthly: month; quarterly: quarter; yearly: none (F = 0). Being
    functions of the timestamp, they are known for any future step (:func:`future_times`).
    """
    names = calendar_names(freq)
    cols = []
    for name in names[::2]:
        read, period = _CYCLES[name.rsplit("_", 1)[0]]
        angle = 2 * np.pi * np.asarray(read(times), dtype=np.float64) / period
        cols += [np.sin(angle), np.cos(angle)]
    values = np.stack(cols, axis=1) if cols else np.zeros((len(times), 0))
    return values, names


def future_times(
    times: pd.DatetimeIndex | pd.RangeIndex, freq: str | None, horizon: int
) -> pd.DatetimeIndex | pd.RangeIndex:
    """The ``horizon`` timestamps after the last of ``times`` (positions for a RangeIndex).

    Business days continue on weekdays: the holidays to come are not known, so they are in.
    """
    pd = import_pandas()
    if isinstance(times, pd.RangeIndex):
        step = times.step
        return pd.RangeIndex(times[-1] + step, times[-1] + step * (horizon + 1), step)
    if freq is None:
        raise RnnkitError("future timestamps need a regular frequency, and none was found")
    return pd.date_range(times[-1], periods=horizon + 1, freq=freq)[1:]
