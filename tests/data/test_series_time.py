"""Frequency inference (gaps, business days), seasons, calendar features, future timestamps."""

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from rnnkit.data.series_time import (  # noqa: E402
    MAX_CLOSED_DAYS,
    calendar_features,
    check_freq,
    future_times,
    infer_frequency,
    season_of,
)
from rnnkit.errors import RnnkitError  # noqa: E402


@pytest.mark.parametrize("freq", ["MS", "ME", "QS-OCT", "W-SUN", "D", "h", "15min", "YS-JAN"])
def test_regular_index_is_recognised(freq):
    times = pd.date_range("2001-01-01", periods=40, freq=freq)
    axis = infer_frequency(times)
    assert axis.freq == pd.tseries.frequencies.to_offset(freq).freqstr
    assert len(axis.missing) == 0


@pytest.mark.parametrize("freq", ["MS", "QS-OCT", "D", "h"])
def test_gaps_are_found_under_the_modal_frequency(freq):
    full = pd.date_range("2001-01-01", periods=40, freq=freq)
    axis = infer_frequency(full.delete([5, 6, 20]))
    assert axis.freq == full.freqstr
    assert list(axis.missing) == list(full[[5, 6, 20]])


def test_business_days_closures_and_gaps():
    days = pd.bdate_range("2020-01-01", periods=100)
    short = days[30 : 30 + MAX_CLOSED_DAYS]
    long = days[60 : 61 + MAX_CLOSED_DAYS]
    axis = infer_frequency(days.difference(short.union(long)).delete(0))
    assert axis.freq == "B"
    assert list(axis.closed) == list(short) and list(axis.missing) == list(long)


def test_weekday_data_shorter_than_a_week_stays_daily():
    assert infer_frequency(pd.date_range("2020-01-06", periods=4, freq="D")).freq == "D"


def test_irregular_and_short_indexes_have_no_frequency():
    times = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-05", "2020-01-15", "2020-03-01"])
    assert infer_frequency(times).freq is None
    assert infer_frequency(times[:2]).freq is None


def test_check_freq():
    assert check_freq("MS") == "MS" and check_freq("W") == "W-SUN"
    with pytest.raises(RnnkitError, match="unknown frequency"):
        check_freq("monthly")


@pytest.mark.parametrize(
    ("freq", "season"),
    [("MS", 12), ("ME", 12), ("2MS", 6), ("QS", 4), ("W-SUN", 52), ("D", 7), ("B", 5),
     ("h", 24), ("5h", 1), ("YS", 1), ("min", 1), (None, 1)],
)  # fmt: skip
def test_season_of(freq, season):
    assert season_of(freq) == season


def test_calendar_features_daily_and_yearly():
    times = pd.date_range("2024-01-01", periods=14, freq="D")  # a Monday
    values, names = calendar_features(times, "D")
    assert names == ["dayofweek_sin", "dayofweek_cos", "dayofyear_sin", "dayofyear_cos"]
    np.testing.assert_allclose(values[:, 0], np.sin(2 * np.pi * (np.arange(14) % 7) / 7))
    np.testing.assert_allclose(values[0, 1], 1.0)
    np.testing.assert_allclose(values[7, :2], values[0, :2])  # a week later: same weekday
    assert not np.allclose(values[7, 2:], values[0, 2:])  # but not the same day of the year
    values, names = calendar_features(pd.date_range("2000", periods=5, freq="YS"), "YS")
    assert values.shape == (5, 0) and names == []
    with pytest.raises(RnnkitError, match="need a regular frequency"):
        calendar_features(times, None)


def test_future_times():
    times = pd.date_range("2020-01-01", periods=3, freq="MS")
    assert list(future_times(times, "MS", 2)) == list(pd.to_datetime(["2020-04-01", "2020-05-01"]))
    friday = pd.bdate_range("2024-01-01", "2024-01-05")
    assert future_times(friday, "B", 1)[0] == pd.Timestamp("2024-01-08")
    assert list(future_times(pd.RangeIndex(5), None, 2)) == [5, 6]


def test_missing_pandas_is_a_clear_error(monkeypatch):
    import sys

    from rnnkit.data.series_time import import_pandas

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(
        RnnkitError, match="needs the pandas package: pip install 'rnnkit\\[forecast"
    ):
        import_pandas()
