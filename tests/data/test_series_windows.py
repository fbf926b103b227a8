"""Time-ordered splits and lookback/horizon windows."""

import numpy as np
import pytest

from rnnkit.data.series_windows import make_windows, split_by_time
from rnnkit.errors import RnnkitError


def test_split_by_time_counts_and_fractions():
    assert split_by_time(144, 36) == (slice(0, 108), slice(108, 108), slice(108, 144))
    assert split_by_time(100, 0.2, 0.1) == (slice(0, 70), slice(70, 80), slice(80, 100))
    with pytest.raises(RnnkitError, match="10 rows leaves no training rows"):
        split_by_time(10, 6, 4)
    with pytest.raises(RnnkitError, match="fraction must be in"):
        split_by_time(10, 1.5)


def test_windows_shapes_and_contents():
    t = np.arange(10.0)
    values = np.stack([t, 100 + t, 200 + t], axis=1)  # (10, 3): target, then covariates
    x, y = make_windows(values, lookback=4, horizon=2, n_targets=1)
    assert x.shape == (5, 4, 3) and y.shape == (5, 2, 1)
    np.testing.assert_array_equal(x[2, :, 1], [102, 103, 104, 105])
    np.testing.assert_array_equal(y[2, :, 0], [6, 7])
    np.testing.assert_array_equal(y[-1, :, 0], [8, 9])  # the last window ends with the series
    x[0, 0, 0] = -1  # copies: the series is untouched
    assert values[0, 0] == 0


def test_windows_of_a_1d_series_and_exact_length():
    x, y = make_windows(np.arange(6.0), lookback=4, horizon=2)
    assert x.shape == (1, 4, 1) and y.shape == (1, 2, 1)


def test_series_shorter_than_lookback_plus_horizon():
    with pytest.raises(RnnkitError, match="20 steps is shorter than lookback 24 \\+ horizon 12"):
        make_windows(np.zeros((20, 1)), lookback=24, horizon=12)
    with pytest.raises(RnnkitError, match="n_targets=3 with 2 columns"):
        make_windows(np.zeros((20, 2)), lookback=2, horizon=2, n_targets=3)
