"""Scaling a series for a model and back: per-column scalers saved as JSON, log and differencing.

scaler = StandardScaler(names).fit(values[train])    # statistics of the training rows only
z = scaler.transform(values)                          # (..., C)
y = scaler.inverse_transform(z_pred, columns=slice(0, n_targets))   # the targets' columns
StandardScaler.from_dict(json.loads(text))            # to_dict() is plain JSON

A column that is constant over the training rows cannot be scaled by its spread (zero): it gets
scale 1 (it is only shifted) and a warning naming it. Such a covariate carries no information
in training; a constant *target* series is rejected earlier, by ``read_series``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.errors import RnnkitError

Columns = slice | Sequence[int] | None


class _ColumnScaler:
    """y = (x - offset) / scale per column (the last axis), fitted on training rows."""

    kind = ""

    def __init__(self, names: Sequence[str] | None = None) -> None:
        self.names = list(names) if names is not None else None
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def _stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, x: np.ndarray) -> _ColumnScaler:
        """Statistics of ``x`` (T, C) or (T,), the training rows only; returns self."""
        x = np.asarray(x, dtype=np.float64)
        x2 = x.reshape(len(x), -1)
        if len(x2) == 0:
            raise RnnkitError("cannot fit a scaler on zero training rows")
        if self.names is not None and len(self.names) != x2.shape[1]:
            raise RnnkitError(f"scaler has {len(self.names)} names for {x2.shape[1]} columns")
        if not np.isfinite(x2).all():
            raise RnnkitError("cannot fit a scaler on NaN or infinite values: fill them first")
        offset, scale = self._stats(x2)
        flat = scale == 0
        for c in np.flatnonzero(flat):
            warnings.warn(
                f"column {self._name(c)} is constant (= {x2[0, c]:g}) over the training rows: "
                "scale 1 (shifted only)",
                stacklevel=2,
            )
        self.offset, self.scale = offset, np.where(flat, 1.0, scale)
        return self

    def _name(self, c: int) -> str:
        return repr(self.names[c]) if self.names is not None else str(c)

    def _params(self, x: np.ndarray, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        if self.offset is None:
            raise RnnkitError(f"{type(self).__name__} is not fitted: call fit(train) first")
        offset, scale = self.offset, self.scale
        if columns is not None:
            offset, scale = offset[columns], scale[columns]
        if x.shape[-1:] != offset.shape and not (x.ndim == 1 and offset.size == 1):
            raise RnnkitError(
                f"scaler expects {offset.size} columns (last axis), got array of shape {x.shape}"
            )
        return offset, scale

    def transform(self, x: np.ndarray, columns: Columns = None) -> np.ndarray:
        """Scaled copy of ``x`` (..., C); ``columns`` picks the fitted columns x holds."""
        x = np.asarray(x, dtype=np.float64)
        offset, scale = self._params(x, columns)
        return (x - offset) / scale

    def inverse_transform(self, y: np.ndarray, columns: Columns = None) -> np.ndarray:
        """Original units of scaled ``y`` (..., C), e.g. columns=slice(0, n_targets)."""
        y = np.asarray(y, dtype=np.float64)
        offset, scale = self._params(y, columns)
        return y * scale + offset

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: kind, names, offset and scale per column."""
        if self.offset is None:
            raise RnnkitError(f"{type(self).__name__} is not fitted: nothing to save")
        return {
            "kind": self.kind,
            "names": self.names,
            "offset": self.offset.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _ColumnScaler:
        """The scaler :meth:`to_dict` saved (RnnkitError for another kind or missing keys)."""
        if not isinstance(d, dict) or d.get("kind") != cls.kind:
            raise RnnkitError(f"not a saved {cls.kind} scaler: kind is {d.get('kind')!r}")
        try:
            scaler = cls(d["names"])
            scaler.offset = np.asarray(d["offset"], dtype=np.float64)
            scaler.scale = np.asarray(d["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise RnnkitError(f"saved {cls.kind} scaler is malformed: {e!r}") from None
        if scaler.offset.shape != scaler.scale.shape or scaler.offset.ndim != 1:
            raise RnnkitError(f"saved {cls.kind} scaler: offset and scale must be equal lists")
        return scaler


class StandardScaler(_ColumnScaler):
    """Zero mean, unit standard deviation (population, ddof=0) per column."""

    kind = "standard"

    def _stats(self, x):
        return x.mean(axis=0), x.std(axis=0)


class MinMaxScaler(_ColumnScaler):
    """The training minimum → 0, the training maximum → 1, per column (later values may leave
    [0, 1]: a series that grows past its training range is not clipped)."""

    kind = "minmax"

    def _stats(self, x):
        lo = x.min(axis=0)
        return lo, x.max(axis=0) - lo


SCALERS = {c.kind: c for c in (StandardScaler, MinMaxScaler)}


def scaler_from_dict(d: dict[str, Any]) -> _ColumnScaler:
    """Whichever scaler ``d`` (from ``to_dict``) describes."""
    kind = d.get("kind") if isinstance(d, dict) else None
    if kind not in SCALERS:
        raise RnnkitError(f"unknown scaler kind {kind!r}: expected one of {', '.join(SCALERS)}")
    return SCALERS[kind].from_dict(d)


# ---- transforms with exact inverses ----------------------------------------------------------


def log_transform(x: np.ndarray, names: Sequence[str] | None = None) -> np.ndarray:
    """Natural log of ``x`` (T, ...) for positive data; RnnkitError at the first value ≤ 0."""
    x = np.asarray(x, dtype=np.float64)
    bad = np.argwhere(~(x > 0))
    if len(bad):
        row, *rest = bad[0]
        col = rest[0] if rest else 0
        name = repr(names[col]) if names is not None else f"column {col}"
        raise RnnkitError(
            f"log transform needs positive values: {name} is {x[tuple(bad[0])]:g} at row {row}"
        )
    return np.log(x)


def inverse_log(y: np.ndarray) -> np.ndarray:
    """exp(y): the inverse of :func:`log_transform`."""
    return np.exp(np.asarray(y, dtype=np.float64))


def difference(x: np.ndarray, lag: int = 1) -> np.ndarray:
    """``x[t] - x[t - lag]`` along axis 0: (T, ...) → (T - lag, ...). lag = the season for
    seasonal differencing."""
    x = np.asarray(x, dtype=np.float64)
    if lag < 1:
        raise RnnkitError(f"difference lag must be ≥ 1, got {lag}")
    if len(x) <= lag:
        raise RnnkitError(f"differencing at lag {lag} needs more than {lag} rows, got {len(x)}")
    return x[lag:] - x[:-lag]


def undifference(d: np.ndarray, history: np.ndarray, lag: int = 1) -> np.ndarray:
    """Levels after ``history`` whose lag-differences are ``d``: the inverse of
    :func:`difference`. ``d`` (H, ...) is e.g. a forecast of differences; ``history`` (≥ lag,
    ...) the levels just before it. Returns (H, ...): out[t] = d[t] + level[t - lag]."""
    d = np.asarray(d, dtype=np.float64)
    history = np.asarray(history, dtype=np.float64)
    if len(history) < lag:
        raise RnnkitError(f"undoing lag-{lag} differences needs {lag} levels, got {len(history)}")
    levels = np.concatenate([history[len(history) - lag :], np.empty_like(d)])
    for t in range(len(d)):
        levels[lag + t] = d[t] + levels[t]
    return levels[lag:]
