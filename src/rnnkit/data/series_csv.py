"""A CSV file (or DataFrame) of time series → :class:`SeriesFrame`: checked numpy arrays.

series = read_series("airline-passengers.csv", time_column="Month", targets=["Passengers"])
series.freq, series.targets.shape          # 'MS', (144, 1)

Reading rules (each decision a user can see):

* Cells are read as text, then converted: numbers may carry thousands separators
  (``"7,380,500"``, ``"1,008.64"``: only the strict 3-digit grouping, so a decimal comma such as
  ``"1,5"`` is an error, not 15); column names are stripped of spaces (``" Volume"`` is
  ``Volume``). A non-numeric or infinite cell is an error naming the column and the line.
* Dates are parsed by pandas with one format inferred from the first value. One more form is
  read: ``N-MM`` (``1-01`` … ``3-12`` in the shampoo data, "year 1, month 01" of a series
  with no calendar year): year N is placed at 2000 + N, with a warning; the months and the
  monthly frequency are real, the years are not.
* Rows out of time order are sorted (a warning); a duplicated timestamp is an error.
* The frequency is inferred (:func:`rnnkit.data.series_time.infer_frequency`: business-day
  data keeps its holidays out of the gaps) or given. Without a regular frequency the rows are
  taken as consecutive steps, with a warning. Without a time column the index is positions.
* Missing timestamps (gaps) and missing cells are errors listing the first few, unless
  ``fill`` repairs them: "ffill" (the last value; the first rows take the first value),
  "interpolate" (linear in time; the edges take the nearest value) or "zero".
* A constant target is an error: nothing to forecast, and scaled errors (MASE) are undefined.
* With ``ahead=True``, trailing rows whose target cells are all empty are *rows ahead*: the
  steps a forecast will cover, given for their future covariates (a planned promotion). They
  stay out of the frame's arrays (``ahead_times``, ``ahead_covariates`` hold them, NaN where
  a cell is empty) and must continue the time axis.

Line numbers count the header as line 1 and every line after it (blank lines included), so
they are the file's own unless a quoted cell spans lines. For a DataFrame they are row
positions. Every warning is also kept in ``SeriesFrame.notes`` (with facts worth a line in a
summary, such as the number of weekdays taken as market closures).
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from rnnkit.data import series_time
from rnnkit.data.series_time import import_pandas
from rnnkit.errors import RnnkitError

if TYPE_CHECKING:
    import pandas as pd

FILLS = ("ffill", "interpolate", "zero")
RELATIVE_YEAR_BASE = 2000  # "N-MM" (no calendar year) is read as year 2000 + N
SHOWN = 5  # problems listed in one message
_THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
_RELATIVE_MONTH = re.compile(r"(\d{1,2})-(0[1-9]|1[0-2])")


@dataclass
class SeriesFrame:
    """A multivariate series on one time axis: targets and covariates as float64 arrays.

    ``past_covariates`` (T, P) are known up to now only; ``future_covariates`` (T, F) are known
    ahead too (among them ``calendar_names``, derived from the timestamps, which can be
    computed for any future step). ``freq`` is a pandas alias ("MS", "B") or None (rows are
    consecutive steps by position).
    """

    times: pd.DatetimeIndex | pd.RangeIndex
    freq: str | None
    targets: np.ndarray  # (T, n_targets)
    target_names: list[str]
    past_covariates: np.ndarray  # (T, P)
    past_covariate_names: list[str]
    future_covariates: np.ndarray  # (T, F)
    future_covariate_names: list[str]
    source: str
    calendar_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ahead_times: pd.DatetimeIndex | pd.RangeIndex | None = None  # rows ahead (ahead=True)
    ahead_covariates: np.ndarray | None = None  # (k, F) their future covariates, NaN if empty

    @property
    def n_ahead(self) -> int:
        """Rows ahead of the data (read with ``ahead=True``), 0 when none."""
        return 0 if self.ahead_times is None else len(self.ahead_times)

    def __len__(self) -> int:
        return len(self.times)

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]

    @property
    def names(self) -> list[str]:
        """Column names of :meth:`values`: targets, past covariates, future covariates."""
        return self.target_names + self.past_covariate_names + self.future_covariate_names

    def values(self) -> np.ndarray:
        """All columns side by side, targets first: (T, n_targets + P + F) float64."""
        return np.concatenate([self.targets, self.past_covariates, self.future_covariates], 1)


def read_series(
    data: str | os.PathLike | pd.DataFrame,
    *,
    time_column: str | None = None,
    targets: Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    freq: str | None = None,
    fill: str | None = None,
    calendar_features: bool = False,
    ahead: bool = False,
) -> SeriesFrame:
    """Read, check and repair a series (rules in the module docstring).

    ``targets`` defaults to every column that is not the time column or a covariate.
    ``calendar_features`` appends sin/cos calendar features (chosen from the frequency) to the
    future covariates. A DataFrame with a DatetimeIndex and no ``time_column`` uses its index.
    ``ahead`` splits off the trailing rows with empty targets as rows ahead (module docstring).
    """
    pd = import_pandas()
    if fill is not None and fill not in FILLS:
        raise RnnkitError(f"fill={fill!r}: expected one of {', '.join(FILLS)} or None")
    df, source, where = _load(data)
    notes: list[str] = []

    def warn(message: str) -> None:
        notes.append(message)
        warnings.warn(f"{source}: {message}", stacklevel=_caller_level())

    target_names, past, future = _pick_columns(
        df, source, time_column, targets, past_covariates, future_covariates
    )
    rows_ahead = _split_ahead(df, target_names) if ahead else df.iloc[:0]
    df = df.iloc[: len(df) - len(rows_ahead)]
    if len(df) == 0:
        raise RnnkitError(
            f"{source} has no row with a target value: rows ahead (empty targets) must follow "
            "the series they continue"
        )
    columns = target_names + past + future
    values = pd.DataFrame({c: _to_numeric(df[c], c, source, where) for c in columns})
    values["__line"] = np.arange(len(df))  # the row each value came from, for messages
    if time_column is not None:
        values.index = _parse_times(df[time_column], time_column, source, where, warn)
    elif isinstance(df.index, pd.DatetimeIndex):
        values.index = df.index
    else:
        values.index = pd.RangeIndex(len(df))
    what = repr(time_column) if time_column is not None else "the index"
    if isinstance(values.index, pd.DatetimeIndex):
        values = _order_in_time(values, what, source, where, warn)
        axis = series_time.infer_frequency(values.index, freq)
        if axis.freq is None:
            warn(f"{'; '.join(axis.notes)}: rows are taken as consecutive steps")
        if axis.closed is not None and len(axis.closed):
            notes.append(f"{len(axis.closed)} absent weekdays taken as market closures, not gaps")
        if axis.missing is not None and len(axis.missing):
            values = _insert_gaps(values, axis, fill, source, where, warn)
        freq = axis.freq
    elif freq is not None:
        raise RnnkitError(f"freq={freq!r} needs a time column (time_column=...)")
    _repair_missing(values, columns, fill, source, where, warn)
    values = values.drop(columns="__line")
    for name in target_names:
        column = values[name].to_numpy()
        if column.min() == column.max():
            raise RnnkitError(
                f"{source}: target column {name!r} is constant (= {column[0]:g}) in all "
                f"{len(column)} rows: there is nothing to forecast"
            )
    frame = SeriesFrame(
        times=values.index,
        freq=freq,
        targets=values[target_names].to_numpy(np.float64).reshape(len(values), -1),
        target_names=target_names,
        past_covariates=values[past].to_numpy(np.float64).reshape(len(values), -1),
        past_covariate_names=past,
        future_covariates=values[future].to_numpy(np.float64).reshape(len(values), -1),
        future_covariate_names=future,
        source=source,
        notes=notes,
    )
    if ahead:
        _read_ahead(frame, rows_ahead, time_column, len(df), where)
    if calendar_features:
        _add_calendar(frame, warn)
    return frame


def check_future_covariates(frame: SeriesFrame, start: int, horizon: int) -> None:
    """RnnkitError unless the future covariates are known for rows ``start … start+horizon-1``.

    Calendar features are exempt (they can be computed for any step:
    :func:`rnnkit.data.series_time.calendar_features` of :func:`~.series_time.future_times`).
    Rows from ``len(frame)`` on are the rows ahead (``read_series(..., ahead=True)``).
    """
    if not 0 <= start <= len(frame):
        raise RnnkitError(f"forecast start {start} is outside {frame.source} (0 … {len(frame)})")
    needed = [
        i for i, n in enumerate(frame.future_covariate_names) if n not in frame.calendar_names
    ]
    if not needed:
        return
    names = ", ".join(repr(frame.future_covariate_names[i]) for i in needed)
    end = start + horizon
    known = frame.future_covariates
    if frame.n_ahead:
        known = np.concatenate([known, frame.ahead_covariates])
    if end > len(known):
        raise RnnkitError(
            f"forecasting {horizon} steps from row {start} needs the future covariates {names} "
            f"up to row {end - 1}, but {frame.source} ends at row {len(known) - 1}: add rows "
            "that give their future values (with the targets left empty)"
        )
    block = known[start:end, needed]
    if np.isnan(block).any():
        row, col = np.argwhere(np.isnan(block))[0]
        raise RnnkitError(
            f"{frame.source}: future covariate {frame.future_covariate_names[needed[col]]!r} "
            f"is missing at row {start + row}, inside the forecast window {start} … {end - 1}"
        )


# ---- reading and checking --------------------------------------------------------------------


def _caller_level() -> int:
    """The ``stacklevel`` of the first frame outside this module: the user's call."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def _load(data) -> tuple[pd.DataFrame, str, Callable[[int], str]]:
    """The table (text cells for a file), its name, and row position → "line N" / "row N"."""
    pd = import_pandas()
    if isinstance(data, pd.DataFrame):
        df = data.copy()
        df.columns = [str(c).strip() for c in df.columns]
        return df, "DataFrame", lambda i: f"row {i}"
    path = os.fspath(data)
    try:
        df = pd.read_csv(
            path, dtype=str, skipinitialspace=True, skip_blank_lines=False, encoding="utf-8-sig"
        )
    except FileNotFoundError:
        raise RnnkitError(f"data file {path} not found") from None
    except IsADirectoryError:
        raise RnnkitError(f"data {path} is a directory: give a CSV file") from None
    except UnicodeDecodeError as e:
        raise RnnkitError(f"{path} is not UTF-8 text (byte {e.start}): save it as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise RnnkitError(f"{path} is empty: expected a CSV file with a header line") from None
    except pd.errors.ParserError as e:
        raise RnnkitError(f"{path} is not a well-formed CSV file: {e}".strip()) from None
    df.columns = [str(c).strip() for c in df.columns]
    blank = df.isna().all(axis=1).to_numpy()
    if blank.all():
        raise RnnkitError(f"{path} has a header but no rows")
    df = df.iloc[: len(df) - np.argmin(blank[::-1])]  # trailing blank lines are no rows
    return df, path, lambda i: f"line {i + 2}"


def _pick_columns(df, source, time_column, targets, past, future):
    have = list(df.columns)

    def check(name: str, role: str) -> str:
        if name not in have:
            raise RnnkitError(
                f"{source} has no {role} column {name!r}; its columns are: {', '.join(have)}"
            )
        return name

    if time_column is not None:
        check(time_column, "time")
    past = [check(c, "past covariate") for c in past]
    future = [check(c, "future covariate") for c in future]
    if targets is None:
        taken = {time_column, *past, *future}
        targets = [c for c in have if c not in taken]
        if not targets:
            raise RnnkitError(f"{source} has no column left for a target: give targets=[...]")
    targets = [check(c, "target") for c in targets]
    if not targets:
        raise RnnkitError("targets is empty: name at least one target column")
    roles = [time_column, *targets, *past, *future]
    doubled = sorted({c for c in roles if c is not None and roles.count(c) > 1})
    if doubled:
        raise RnnkitError(f"column(s) {', '.join(map(repr, doubled))} given in two roles")
    return targets, past, future


def _to_numeric(column: pd.Series, name: str, source: str, where) -> np.ndarray:
    """Float64 values of a column; NaN where empty; RnnkitError at a non-numeric cell."""
    pd = import_pandas()
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        out = column.to_numpy(np.float64, na_value=np.nan)
        text = None
    else:
        text = column.astype("string").str.strip().replace("", pd.NA)
        grouped = text.str.fullmatch(_THOUSANDS).fillna(False).astype(bool)
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
        out = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = np.flatnonzero(np.isnan(out) & text.notna().to_numpy())
        if len(bad):
            i = bad[0]
            raise RnnkitError(
                f"{source}: non-numeric value {column.iloc[i]!r} in column {name!r} at "
                f"{where(i)} ({len(bad)} such cells); expected a number"
            )
    inf = np.flatnonzero(np.isinf(out))
    if len(inf):
        raise RnnkitError(
            f"{source}: infinite value in column {name!r} at {where(inf[0])}; expected a number"
        )
    return out


def _parse_times(column: pd.Series, name: str, source: str, where, warn) -> pd.DatetimeIndex:
    pd = import_pandas()
    if pd.api.types.is_datetime64_any_dtype(column):
        times = pd.DatetimeIndex(column)
        text = column.astype("string")
    else:
        text = column.astype("string").str.strip().replace("", pd.NA)
        empty = np.flatnonzero(text.isna().to_numpy())
        if len(empty):
            raise RnnkitError(f"{source}: no time in column {name!r} at {where(empty[0])}")
        relative = text.str.fullmatch(_RELATIVE_MONTH).all()
        if relative:
            parts = text.str.extract(_RELATIVE_MONTH)
            text_years = (parts[0].astype(int) + RELATIVE_YEAR_BASE).astype(str) + "-" + parts[1]
            warn(
                f"column {name!r} holds 'N-MM' dates with no calendar year (e.g. "
                f"{text.iloc[0]!r}): year N is read as {RELATIVE_YEAR_BASE} + N"
            )
            times = pd.DatetimeIndex(pd.to_datetime(text_years, format="%Y-%m"))
        else:
            with warnings.catch_warnings():
                # pandas warns when it cannot infer one format; the NaT check below says more
                warnings.simplefilter("ignore", UserWarning)
                try:
                    parsed = pd.to_datetime(text, errors="coerce")
                except (ValueError, TypeError) as e:
                    raise RnnkitError(
                        f"{source}: cannot read column {name!r} as dates: {e}"
                    ) from None
            if not pd.api.types.is_datetime64_any_dtype(parsed):
                raise RnnkitError(
                    f"{source}: column {name!r} mixes time zones; give one offset for all rows"
                )
            times = pd.DatetimeIndex(parsed)
    bad = np.flatnonzero(times.isna())
    if len(bad):
        ok = np.flatnonzero(~times.isna())
        hint = (
            f"; line up with {text.iloc[ok[0]]!r} at {where(ok[0])}"
            if len(ok)
            else "; expected dates such as '1949-01' or '2012-01-03'"
        )
        raise RnnkitError(
            f"{source}: cannot read {text.iloc[bad[0]]!r} in column {name!r} at "
            f"{where(bad[0])} as a date ({len(bad)} such cells){hint}"
        )
    return times


def _order_in_time(values: pd.DataFrame, what: str, source: str, where, warn) -> pd.DataFrame:
    times = values.index
    doubled = np.flatnonzero(times.duplicated(keep=False))
    if len(doubled):
        lines = values["__line"].to_numpy()
        firsts = list(dict.fromkeys(times[doubled]))[:SHOWN]
        shown = "; ".join(
            f"{t} at {', '.join(where(lines[i]) for i in np.flatnonzero(times == t))}"
            for t in firsts
        )
        raise RnnkitError(f"{source}: duplicated timestamps in {what}: {shown}")
    if not times.is_monotonic_increasing:
        warn(f"rows are not in time order: sorted by {what}")
        values = values.iloc[np.argsort(times.to_numpy(), kind="stable")]
    return values


def _insert_gaps(values, axis, fill, source, where, warn) -> pd.DataFrame:
    """The table with a NaN row at each missing timestamp (or RnnkitError without ``fill``)."""
    missing = axis.missing
    if fill is None:
        lines = values["__line"].to_numpy()
        after = values.index.searchsorted(missing[:SHOWN])
        shown = "; ".join(
            f"{t} (between {where(lines[a - 1])} and {where(lines[a])})"
            for t, a in zip(missing[:SHOWN], after, strict=True)
        )
        raise RnnkitError(
            f"{source}: {len(missing)} timestamps missing for frequency {axis.freq!r}: {shown}"
            f"{' …' if len(missing) > SHOWN else ''}; pass fill='ffill', 'interpolate' or "
            "'zero' to insert and fill them"
        )
    warn(f"{len(missing)} missing timestamps for frequency {axis.freq!r} inserted ({fill})")
    grid = values.index.union(missing)
    out = values.reindex(grid)
    out["__line"] = out["__line"].fillna(-1).astype(int)
    return out


def _repair_missing(values, columns, fill, source, where, warn) -> None:
    """Fill the NaN cells in place (gap rows included), or RnnkitError listing the first few."""
    lines = values["__line"].to_numpy()
    block = values[columns].to_numpy()
    holes = np.argwhere(np.isnan(block) & (lines >= 0)[:, None])
    if fill is None:
        if len(holes):
            shown = ", ".join(f"{columns[c]!r} at {where(lines[r])}" for r, c in holes[:SHOWN])
            raise RnnkitError(
                f"{source}: {len(holes)} missing values: {shown}"
                f"{' …' if len(holes) > SHOWN else ''}; pass fill='ffill', 'interpolate' or "
                "'zero' to fill them"
            )
        return
    empty = [c for c in columns if values[c].isna().all()]
    if empty:
        raise RnnkitError(f"{source}: column {empty[0]!r} has no values at all")
    if len(holes):
        warn(f"{len(holes)} missing values filled ({fill})")
    part = values[columns]
    if fill == "ffill":
        part = part.ffill().bfill()
    elif fill == "zero":
        part = part.fillna(0.0)
    else:
        timed = isinstance(part.index, import_pandas().DatetimeIndex)
        part = part.interpolate(method="time" if timed else "linear", limit_direction="both")
    values[columns] = part


def _split_ahead(df: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """The trailing rows of ``df`` whose target cells are all empty."""
    pd = import_pandas()

    def blank(column: pd.Series) -> np.ndarray:
        if pd.api.types.is_numeric_dtype(column):
            return column.isna().to_numpy()
        return column.astype("string").str.strip().replace("", pd.NA).isna().to_numpy()

    empty = np.logical_and.reduce([blank(df[t]) for t in targets])
    trailing = len(df) if empty.all() else int(np.argmin(empty[::-1]))
    return df.iloc[len(df) - trailing :]


def _read_ahead(frame: SeriesFrame, rows: pd.DataFrame, time_column, offset: int, where) -> None:
    """Parse the rows ahead: their times (which must continue the axis) and covariates."""
    at = lambda i: where(offset + i)  # noqa: E731
    expected = series_time.future_times(frame.times, frame.freq, len(rows)) if len(rows) else None
    if time_column is not None and len(rows):
        times = _parse_times(rows[time_column], time_column, frame.source, at, lambda m: None)
        wrong = np.flatnonzero(times != expected)
        if len(wrong):
            raise RnnkitError(
                f"{frame.source}: the row ahead at {at(wrong[0])} is for {times[wrong[0]]}, but "
                f"the next step after the data is {expected[wrong[0]]} (frequency {frame.freq})"
            )
    values = [_to_numeric(rows[c], c, frame.source, at) for c in frame.future_covariate_names]
    frame.ahead_times = expected if expected is not None else frame.times[:0]
    frame.ahead_covariates = np.stack(values, 1) if values else np.zeros((len(rows), 0))


def _add_calendar(frame: SeriesFrame, warn) -> None:
    pd = import_pandas()
    if not isinstance(frame.times, pd.DatetimeIndex):
        raise RnnkitError("calendar features need a time column (time_column=...)")
    features, names = series_time.calendar_features(frame.times, frame.freq)
    if not names:
        warn(f"no calendar feature applies to frequency {frame.freq!r}: none added")
    frame.future_covariates = np.concatenate([frame.future_covariates, features], axis=1)
    frame.future_covariate_names = frame.future_covariate_names + names
    frame.calendar_names = names
    if frame.ahead_times is not None:
        ahead, _ = series_time.calendar_features(frame.ahead_times, frame.freq)
        frame.ahead_covariates = np.concatenate([frame.ahead_covariates, ahead], axis=1)
