"""Scalers (train-only statistics, JSON round trip, constant columns) and log/diff inverses."""

import json

import numpy as np
import pytest

from rnnkit.data.series_scaling import (
    MinMaxScaler,
    StandardScaler,
    difference,
    inverse_log,
    log_transform,
    scaler_from_dict,
    undifference,
)
from rnnkit.errors import RnnkitError


@pytest.fixture
def values():
    rng = np.random.default_rng(0)
    return np.stack([rng.normal(50, 5, 40), rng.uniform(-3, 9, 40)], axis=1)


def test_standard_scaler_uses_training_rows_only(values):
    scaler = StandardScaler(["a", "b"]).fit(values[:30])
    z = scaler.transform(values)
    np.testing.assert_allclose(z[:30].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z[:30].std(0), 1)
    assert abs(z[30:].mean()) > 1e-6  # the later rows are not standardised by their own stats
    np.testing.assert_allclose(scaler.inverse_transform(z), values)


def test_minmax_scaler_and_target_columns(values):
    scaler = MinMaxScaler().fit(values[:30])
    z = scaler.transform(values[:30])
    np.testing.assert_allclose(z.min(0), 0)
    np.testing.assert_allclose(z.max(0), 1)
    windows = scaler.transform(values)[None, :, :1].repeat(3, 0)  # (N, H, 1): targets only
    back = scaler.inverse_transform(windows, columns=slice(0, 1))
    np.testing.assert_allclose(back[1, :, 0], values[:, 0])


@pytest.mark.parametrize("kind", [StandardScaler, MinMaxScaler])
def test_json_round_trip(values, kind):
    scaler = kind(["a", "b"]).fit(values)
    text = json.dumps(scaler.to_dict())
    again = scaler_from_dict(json.loads(text))
    assert type(again) is kind and again.names == ["a", "b"]
    np.testing.assert_array_equal(again.transform(values), scaler.transform(values))


def test_constant_training_column_gets_scale_one_with_warning(values):
    values[:30, 1] = 4.0
    with pytest.warns(UserWarning, match="column 'flag' is constant \\(= 4\\)"):
        scaler = StandardScaler(["y", "flag"]).fit(values[:30])
    np.testing.assert_array_equal(scaler.transform(values)[:30, 1], 0.0)
    np.testing.assert_allclose(scaler.inverse_transform(scaler.transform(values)), values)


def test_scaler_errors(values):
    with pytest.raises(RnnkitError, match="not fitted"):
        StandardScaler().transform(values)
    with pytest.raises(RnnkitError, match="expects 2 columns"):
        StandardScaler().fit(values).transform(values[:, :1].repeat(3, 1))
    bad = values.copy()
    bad[3, 0] = np.nan
    with pytest.raises(RnnkitError, match="NaN"):
        MinMaxScaler().fit(bad)
    with pytest.raises(RnnkitError, match="unknown scaler kind 'robust'"):
        scaler_from_dict({"kind": "robust"})
    with pytest.raises(RnnkitError, match="malformed"):
        scaler_from_dict({"kind": "minmax", "names": None})


def test_log_round_trip_and_non_positive(values):
    positive = values[:, :1] + 0.0
    np.testing.assert_allclose(inverse_log(log_transform(positive)), positive, rtol=1e-15)
    with pytest.raises(RnnkitError, match="'b' is -1 at row 2"):
        log_transform(np.array([[1.0, 1], [2, 3], [3, -1]]), names=["a", "b"])


@pytest.mark.parametrize("lag", [1, 3])
def test_undifference_inverts_difference(values, lag):
    d = difference(values, lag)
    assert d.shape == (40 - lag, 2)
    cut = 25  # the history is known up to row cut; the later differences are a "forecast"
    restored = undifference(d[cut - lag :], values[:cut], lag)
    np.testing.assert_allclose(restored, values[cut:], rtol=1e-12)
    with pytest.raises(RnnkitError, match="needs 3 levels, got 2"):
        undifference(d, values[:2], 3)
    with pytest.raises(RnnkitError, match="more than 3 rows"):
        difference(values[:3], 3)
