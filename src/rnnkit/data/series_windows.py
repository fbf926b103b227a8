"""Time-ordered splits and (lookback → horizon) windows of a series, as numpy arrays.

train, val, test = split_by_time(len(series), test_size=36, val_size=12)   # never shuffled
X, Y = make_windows(values[train], lookback=24, horizon=12, n_targets=1)

A window of the validation or test part needs the ``lookback`` rows before it: take them from
the part before (``values[val.start - lookback : val.stop]``); only the forecast rows must be
inside the part, so no target of one part is predicted by a model fitted on it.
"""

from __future__ import annotations

import numpy as np

from rnnkit.errors import RnnkitError


def _size(size: int | float, n: int, name: str) -> int:
    """An int is a number of rows; a float in (0, 1) a fraction of ``n`` (rounded)."""
    if isinstance(size, float) and not size.is_integer():
        if not 0 < size < 1:
            raise RnnkitError(f"{name}={size}: a fraction must be in (0, 1)")
        return int(round(size * n))
    if size < 0:
        raise RnnkitError(f"{name}={size}: expected a number of rows ≥ 0 or a fraction")
    return int(size)


def split_by_time(
    n: int, test_size: int | float, val_size: int | float = 0
) -> tuple[slice, slice, slice]:
    """Row slices (train, val, test) of a series of ``n`` rows, in that time order.

    Sizes are row counts or fractions of ``n``; train is what remains and must not be empty.
    """
    test = _size(test_size, n, "test_size")
    val = _size(val_size, n, "val_size")
    train = n - val - test
    if train < 1:
        raise RnnkitError(
            f"a series of {n} rows leaves no training rows after val_size {val} and "
            f"test_size {test}"
        )
    return slice(0, train), slice(train, train + val), slice(train + val, n)


def make_windows(
    values: np.ndarray,
    lookback: int,
    horizon: int,
    n_targets: int | None = None,
    what: str = "series",
) -> tuple[np.ndarray, np.ndarray]:
    """Every window of ``values`` (T, C): X (N, lookback, C) and Y (N, horizon, n_targets).

    X[i] = values[i : i + lookback]; Y[i] = the next ``horizon`` rows of the first ``n_targets``
    columns (all by default; :meth:`SeriesFrame.values` puts the targets first).
    N = T - lookback - horizon + 1. Copies, in float64; ``what`` names the series in errors.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise RnnkitError(f"{what}: expected values of shape (T, C), got {values.shape}")
    if lookback < 1 or horizon < 1:
        raise RnnkitError(f"lookback ({lookback}) and horizon ({horizon}) must be ≥ 1")
    n_targets = values.shape[1] if n_targets is None else n_targets
    if not 1 <= n_targets <= values.shape[1]:
        raise RnnkitError(f"n_targets={n_targets} with {values.shape[1]} columns")
    length = len(values)
    if length < lookback + horizon:
        raise RnnkitError(
            f"{what} of {length} steps is shorter than lookback {lookback} + horizon {horizon} "
            f"= {lookback + horizon}: shorten them or give a longer series"
        )
    # (N, C, L + H) view, no copy until the slices below
    view = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon, axis=0)
    x = np.ascontiguousarray(view[:, :, :lookback].transpose(0, 2, 1))
    y = np.ascontiguousarray(view[:, :n_targets, lookback:].transpose(0, 2, 1))
    return x, y
