"""What a forecasting run does to its series: the data config, the split, the transforms, windows.

.. code-block:: text

    frame rows   0 ……………………………… train_end ……… val_end ……… n
                 │ training windows' targets │ validation │ test span │   (never shuffled across)

    targets ─► log (optional) ─► difference at lag d (optional) ─┐
    covariates ──────────────────────────────────────────────────┴─► scaler (training rows) ─► model

Every statistic (scaler, season, differencing decision) comes from the rows before
``train_end`` only, and is saved in the checkpoint (``forecast.json``, plain JSON), so a loaded
run transforms new data exactly as it did its training data and inverts its forecasts back to
the original units. The series itself is saved too (``series.json``): ``forecast eval RUN``
scores the held-out span without the CSV.

Defaults chosen once for every data set (see benchmarks/forecast_quality.py):

* ``diff="auto"``: the seasonal difference (lag m) when a season is detected
  (:func:`rnnkit.forecast_baselines.detect_season`), else the first difference when KPSS
  finds a unit root (statsforecast's ``ndiffs``), else none; decided on the first target.
  One difference at most: differencing twice made 36-step forecasts drift.
* ``lookback=0``: the largest of two seasons, two horizons and 24 steps, but at most a third
  of the training rows left after one horizon (and at least one season).
* ``val_size=-1``: one horizon or a tenth of the rows before the test span, whichever is
  larger, when the training part then still holds 4 × (lookback + horizon) rows; otherwise no
  validation (short series: every row is needed to train, and the last checkpoint is kept).
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from rnnkit.data.series_csv import FILLS, SeriesFrame, read_series
from rnnkit.data.series_scaling import (
    SCALERS,
    inverse_log,
    log_transform,
    scaler_from_dict,
    undifference,
)
from rnnkit.data.series_time import import_pandas
from rnnkit.errors import RnnkitError
from rnnkit.forecast_baselines import detect_season

SCALER_CHOICES = [*SCALERS, "none"]


@dataclass
class ForecastDataConfig:
    """How a CSV (or DataFrame) becomes windows. Every field is also a flag of
    ``rnnkit forecast``; column lists are comma-separated."""

    time_column: str = field(default="", metadata={"help": "the time column ('' = row order)"})
    target: str = field(
        default="", metadata={"help": "target column(s), comma-separated ('' = all the others)"}
    )
    past_covariates: str = field(
        default="", metadata={"help": "columns known only up to now, comma-separated"}
    )
    future_covariates: str = field(
        default="", metadata={"help": "columns known ahead (calendar, plans), comma-separated"}
    )
    calendar: bool = field(
        default=False, metadata={"help": "add sin/cos calendar features as future covariates"}
    )
    freq: str = field(default="", metadata={"help": "pandas frequency ('' = inferred)"})
    fill: str = field(
        default="none",
        metadata={"help": "repair gaps and missing values", "choices": ["none", *FILLS]},
    )
    lookback: int = field(default=0, metadata={"help": "L, steps read (0 = auto)"})
    horizon: int = field(default=1, metadata={"help": "H, steps forecast"})
    test_size: int = field(
        default=0, metadata={"help": "steps held out at the end (0 = one horizon)"}
    )
    val_size: int = field(
        default=-1, metadata={"help": "validation steps before the test span (-1 = auto, 0 = none)"}
    )
    scaler: str = field(
        default="standard",
        metadata={"help": "scaling, fitted on the training part", "choices": SCALER_CHOICES},
    )
    log: bool = field(default=False, metadata={"help": "log-transform the targets (positive)"})
    diff: str = field(
        default="auto",
        metadata={"help": "difference the targets: auto, none, or a lag (1, 12, ...)"},
    )
    season: int = field(
        default=0, metadata={"help": "season length m for MASE and the baselines (0 = detected)"}
    )
    batch_size: int = field(default=32, metadata={"help": "windows per batch"})

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise RnnkitError(f"horizon must be >= 1, got {self.horizon}")
        for name in ("lookback", "test_size", "season"):
            if getattr(self, name) < 0:
                raise RnnkitError(f"{name} must be >= 0 (0 = auto), got {getattr(self, name)}")
        if self.val_size < -1:
            raise RnnkitError(f"val_size must be >= 0, or -1 for auto, got {self.val_size}")
        if self.batch_size < 1:
            raise RnnkitError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.scaler not in SCALER_CHOICES:
            raise RnnkitError(f"scaler must be one of {SCALER_CHOICES}, got {self.scaler!r}")
        if self.fill not in ("none", *FILLS):
            raise RnnkitError(f"fill must be one of none, {', '.join(FILLS)}; got {self.fill!r}")
        if self.diff not in ("auto", "none") and not (self.diff.isdigit() and int(self.diff) > 0):
            raise RnnkitError(f"diff must be auto, none or a lag >= 1, got {self.diff!r}")

    def read(self, data: Any, *, ahead: bool = False) -> SeriesFrame:
        """The series at ``data`` (a CSV path or a DataFrame; a SeriesFrame passes through)."""
        if isinstance(data, SeriesFrame):
            return data
        return read_series(
            data,
            time_column=self.time_column or None,
            targets=columns(self.target) or None,
            past_covariates=columns(self.past_covariates),
            future_covariates=columns(self.future_covariates),
            freq=self.freq or None,
            fill=None if self.fill == "none" else self.fill,
            calendar_features=self.calendar,
            ahead=ahead,
        )


def columns(text: str) -> list[str]:
    """'a, b' → ['a', 'b']; '' → []."""
    return [c.strip() for c in text.split(",") if c.strip()]


# ---- the plan: split, season, differencing, lookback ---------------------------------------------


@dataclass
class Plan:
    """The decisions a run makes from its data config and training rows (saved in the run)."""

    lookback: int
    horizon: int
    test_size: int
    val_size: int
    train_end: int  # frame rows before it train the model
    season: int
    diff: int  # lag, 0 = none
    notes: list[str] = field(default_factory=list)


def make_plan(frame: SeriesFrame, dc: ForecastDataConfig) -> Plan:
    """Split sizes, season, differencing and lookback for ``frame`` (module docstring rules)."""
    n, H = len(frame), dc.horizon
    test = dc.test_size or H
    rest = n - test
    if rest < 2:
        raise RnnkitError(
            f"{frame.source} holds {n} rows: too few to hold out a test span of {test} and train"
        )
    y = frame.targets[:rest, 0]
    season = dc.season or detect_season(y, frame.freq)
    notes = []
    if dc.diff == "auto":
        diff = season if season > 1 else _unit_root_lag(y)
        notes.append(f"diff auto: {'lag ' + str(diff) if diff else 'none'}")
    else:
        diff = 0 if dc.diff == "none" else int(dc.diff)
    lookback = dc.lookback or _auto_lookback(rest - diff, H, season)
    val = dc.val_size
    if val == -1:
        val = max(H, round(0.1 * rest))
        if rest - val - diff < 4 * (lookback + H):
            val = 0
            notes.append("no validation span: the series is too short to spare one")
    train_end = rest - val
    have = train_end - diff
    if have < lookback + H:
        parts = [f"test span {test}"] + ([f"validation {val}"] if val else [])
        parts += [f"differencing at lag {diff}"] if diff else []
        raise RnnkitError(
            f"{frame.source}: {n} rows leave {have} to train on (after the {', '.join(parts)}), "
            f"fewer than lookback {lookback} + horizon {H} = {lookback + H}: give a longer "
            "series or a smaller --lookback, --horizon or --test-size"
        )
    if val and val < H:
        raise RnnkitError(f"val_size {val} is shorter than the horizon {H}: no window fits in it")
    return Plan(lookback, H, test, val, train_end, season, diff, notes)


def _unit_root_lag(y: np.ndarray) -> int:
    """1 when KPSS (statsforecast's ``ndiffs``) says ``y`` needs a difference, else 0."""
    try:
        from statsforecast.arima import ndiffs
    except ImportError:
        raise RnnkitError(
            "diff='auto' needs the statsforecast package: pip install 'rnnkit[forecast]' (or "
            "give --diff none or a lag)"
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 1 if ndiffs(np.asarray(y, dtype=np.float64)) > 0 else 0


def _auto_lookback(rows: int, horizon: int, season: int) -> int:
    wanted = max(2 * season, 2 * horizon, 24)
    return max(1, min(wanted, max(season, (rows - horizon) // 3)))


# ---- transforms ----------------------------------------------------------------------------------


class SeriesTransform:
    """log → difference → scale, fitted on training rows; and back (module docstring).

    Model rows: row i of :meth:`apply` is frame row i + diff (the first ``diff`` rows have no
    difference). Columns: targets, past covariates, future covariates, as in the frame.
    """

    def __init__(self, target_names: list[str], log: bool, diff: int, scaler=None) -> None:
        self.target_names, self.log, self.diff, self.scaler = list(target_names), log, diff, scaler
        self.n_targets = len(self.target_names)

    @classmethod
    def fit(
        cls, frame: SeriesFrame, train_end: int, log: bool, diff: int, scaler: str
    ) -> SeriesTransform:
        """Fitted on frame rows ``[0, train_end)``."""
        t = cls(frame.target_names, log, diff)
        if scaler != "none":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a constant covariate: scale 1, said in notes
                t.scaler = SCALERS[scaler](frame.names).fit(t.unscaled(frame.values()[:train_end]))
        return t

    def levels(self, targets: np.ndarray) -> np.ndarray:
        """Targets (N, T) on the scale differences are taken on (their log with ``log``)."""
        return log_transform(targets, self.target_names) if self.log else np.asarray(targets, float)

    def unscaled(self, values: np.ndarray) -> np.ndarray:
        """Frame values (N, C) → log/differenced, not yet scaled: (N - diff, C)."""
        T, d = self.n_targets, self.diff
        y = self.levels(values[:, :T])
        if d:
            if len(y) <= d:
                raise RnnkitError(f"differencing at lag {d} needs more than {d} rows, got {len(y)}")
            y = y[d:] - y[:-d]
        return np.concatenate([y, values[d:, T:]], axis=1)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Frame values (N, C) → model values (N - diff, C), float32."""
        z = self.unscaled(values)
        if self.scaler is not None:
            z = self.scaler.transform(z)
        return z.astype(np.float32)

    def scale_future(self, future: np.ndarray, first: int) -> np.ndarray:
        """Future covariates (H, F) → model units; ``first`` is their first column's index."""
        if self.scaler is None or future.shape[-1] == 0:
            return future.astype(np.float32)
        cols = slice(first, first + future.shape[-1])
        return self.scaler.transform(future, columns=cols).astype(np.float32)

    def invert(self, z: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Model-space targets (..., H, T) → original units, continuing ``history`` (t, T), the
        frame's targets before the forecast. Bounds are inverted like paths (with differencing
        that adds them up step by step: a conservative interval)."""
        z = np.asarray(z, dtype=np.float64)
        if self.scaler is not None:
            z = self.scaler.inverse_transform(z, columns=slice(0, self.n_targets))
        if self.diff:
            lead = z.shape[:-2]
            flat = z.reshape(-1, *z.shape[-2:])  # (S, H, T)
            past = self.levels(history[-self.diff :])
            out = [undifference(path, past, self.diff) for path in flat]
            z = np.stack(out).reshape(*lead, *z.shape[-2:])
        return inverse_log(z) if self.log else z

    def to_dict(self) -> dict[str, Any]:
        return {
            "target_names": self.target_names,
            "log": self.log,
            "diff": self.diff,
            "scaler": self.scaler.to_dict() if self.scaler is not None else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesTransform:
        scaler = scaler_from_dict(d["scaler"]) if d.get("scaler") else None
        return cls(d["target_names"], bool(d["log"]), int(d["diff"]), scaler)


# ---- the series, saved and restored --------------------------------------------------------------


def frame_to_dict(frame: SeriesFrame) -> dict[str, Any]:
    """Plain JSON of a frame (its rows ahead are not kept)."""
    pd = import_pandas()
    timed = isinstance(frame.times, pd.DatetimeIndex)
    return {
        "source": frame.source,
        "freq": frame.freq,
        "times": [t.isoformat() for t in frame.times] if timed else None,
        "start": None if timed else int(frame.times[0]),
        "names": [frame.target_names, frame.past_covariate_names, frame.future_covariate_names],
        "calendar_names": frame.calendar_names,
        "values": frame.values().tolist(),
    }


def frame_from_dict(d: dict[str, Any]) -> SeriesFrame:
    pd = import_pandas()
    values = np.asarray(d["values"], dtype=np.float64)
    targets, past, future = d["names"]
    T, P = len(targets), len(past)
    if d["times"] is not None:
        times = pd.DatetimeIndex(pd.to_datetime(d["times"]))
    else:
        times = pd.RangeIndex(d["start"], d["start"] + len(values))
    return SeriesFrame(
        times=times,
        freq=d["freq"],
        targets=values[:, :T],
        target_names=list(targets),
        past_covariates=values[:, T : T + P],
        past_covariate_names=list(past),
        future_covariates=values[:, T + P :],
        future_covariate_names=list(future),
        source=d["source"],
        calendar_names=list(d["calendar_names"]),
    )


def frame_head(frame: SeriesFrame, n: int) -> SeriesFrame:
    """The first ``n`` rows of ``frame`` (a backtest fold's data)."""
    return replace(
        frame,
        times=frame.times[:n],
        targets=frame.targets[:n],
        past_covariates=frame.past_covariates[:n],
        future_covariates=frame.future_covariates[:n],
        notes=list(frame.notes),
        ahead_times=None,
        ahead_covariates=None,
    )


def frame_digest(frame: SeriesFrame) -> str:
    """A hash of the values, times and column names: resume refuses other data."""
    h = hashlib.sha256(np.ascontiguousarray(frame.values()).tobytes())
    h.update(repr((list(frame.times.astype(str)), frame.names)).encode("utf-8"))
    return h.hexdigest()


# ---- windows -------------------------------------------------------------------------------------


class WindowBatches:
    """Batches of windows ``values[s : s + length]`` (B, length, C) for the starts ``starts``:
    ``{"window": float32 tensor}``; the order is drawn from (seed, epoch), so resume is exact."""

    stateful = False

    def __init__(
        self,
        values: np.ndarray,
        starts: np.ndarray,
        length: int,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
    ) -> None:
        if len(starts) == 0:
            raise RnnkitError("no window fits: the series is shorter than lookback + horizon")
        self.values = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
        self.starts = np.asarray(starts, dtype=np.int64)
        self.length, self.batch_size = length, batch_size
        self.seed, self.shuffle = seed, shuffle

    def __len__(self) -> int:
        return len(self.starts)

    def num_batches(self) -> int:
        return -(-len(self.starts) // self.batch_size)

    def batch(self, epoch: int, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.num_batches():
            raise RnnkitError(f"batch index {index} out of range 0..{self.num_batches() - 1}")
        order = (
            np.random.default_rng([self.seed, epoch]).permutation(len(self.starts))
            if self.shuffle
            else np.arange(len(self.starts))
        )
        rows = self.starts[order[index * self.batch_size : (index + 1) * self.batch_size]]
        offsets = torch.from_numpy(rows[:, None] + np.arange(self.length)[None, :])
        return {"window": self.values[offsets]}
