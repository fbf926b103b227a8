"""read_series: parsing, frequency and gaps, repairs, calendar features, bad input, real files."""

import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from rnnkit.data.series_csv import SeriesFrame, check_future_covariates, read_series  # noqa: E402
from rnnkit.errors import RnnkitError  # noqa: E402


def write(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def monthly(n: int = 6, start: str = "2020-01", value=lambda i: 10 + i) -> str:
    months = pd.date_range(start, periods=n, freq="MS").strftime("%Y-%m")
    return "Month,Sales\n" + "".join(f"{m},{value(i)}\n" for i, m in enumerate(months))


# ---- reading --------------------------------------------------------------------------------


def test_monthly_csv_becomes_frame(tmp_path):
    frame = read_series(write(tmp_path, monthly()), time_column="Month", targets=["Sales"])
    assert isinstance(frame, SeriesFrame) and len(frame) == 6
    assert frame.freq == "MS" and frame.times[0] == pd.Timestamp("2020-01-01")
    assert frame.targets.shape == (6, 1) and frame.targets.dtype == np.float64
    np.testing.assert_array_equal(frame.targets[:, 0], np.arange(10, 16))
    assert frame.past_covariates.shape == (6, 0) and frame.future_covariates.shape == (6, 0)
    assert frame.target_names == ["Sales"] and frame.source.endswith("data.csv")
    assert frame.notes == []


def test_targets_default_to_other_columns_and_roles_are_kept(tmp_path):
    text = "t,a,b,p,f\n" + "".join(f"2021-01-0{i + 1},{i},{i * i},{-i},{i % 2}\n" for i in range(5))
    frame = read_series(
        write(tmp_path, text), time_column="t", past_covariates=["p"], future_covariates=["f"]
    )
    assert frame.target_names == ["a", "b"] and frame.freq == "D"
    np.testing.assert_array_equal(frame.past_covariates[:, 0], -np.arange(5))
    np.testing.assert_array_equal(frame.future_covariates[:, 0], np.arange(5) % 2)
    assert frame.names == ["a", "b", "p", "f"]
    assert frame.values().shape == (5, 4)


def test_thousands_separators_quoted_and_column_names_stripped(tmp_path):
    text = 'Date,Close, Volume\n1/3/2012,"1,008.64","7,380,500"\n1/4/2012,999.5,"5,749,400"\n'
    with pytest.warns(UserWarning, match="fewer than 3 timestamps"):
        frame = read_series(write(tmp_path, text), time_column="Date", targets=["Close", "Volume"])
    np.testing.assert_array_equal(frame.targets, [[1008.64, 7380500], [999.5, 5749400]])
    assert frame.times[1] == pd.Timestamp("2012-01-04")


def test_decimal_comma_is_not_a_thousands_separator(tmp_path):
    text = 'Month,Sales\n2020-01,"1,5"\n2020-02,3\n2020-03,4\n'
    with pytest.raises(RnnkitError, match=r"non-numeric value '1,5' in column 'Sales' at line 2"):
        read_series(write(tmp_path, text), time_column="Month")


def test_dataframe_input_with_datetime_index():
    times = pd.date_range("2020-01-06", periods=10, freq="D")
    df = pd.DataFrame({"y": np.arange(10.0), "x": ["1,000"] * 10}, index=times)
    frame = read_series(df, targets=["y"], past_covariates=["x"])
    assert frame.freq == "D" and frame.source == "DataFrame"
    np.testing.assert_array_equal(frame.past_covariates[:, 0], 1000.0)


def test_no_time_column_indexes_by_position(tmp_path):
    frame = read_series(write(tmp_path, "y\n1\n2\n5\n"))
    assert isinstance(frame.times, pd.RangeIndex) and frame.freq is None
    assert list(frame.times) == [0, 1, 2]


def test_relative_years_of_shampoo_form(tmp_path):
    text = "Month,Sales\n" + "".join(f"{y}-{m:02d},{y * m}\n" for y in (1, 2) for m in range(1, 13))
    with pytest.warns(UserWarning, match="year N is read as 2000 \\+ N"):
        frame = read_series(write(tmp_path, text), time_column="Month")
    assert frame.freq == "MS" and frame.times[0] == pd.Timestamp("2001-01-01")
    assert frame.times[-1] == pd.Timestamp("2002-12-01") and len(frame.notes) == 1


def test_unsorted_rows_are_sorted_with_a_warning(tmp_path):
    text = "Month,Sales\n2020-03,3\n2020-01,1\n2020-02,2\n"
    with pytest.warns(UserWarning, match="not in time order"):
        frame = read_series(write(tmp_path, text), time_column="Month")
    np.testing.assert_array_equal(frame.targets[:, 0], [1, 2, 3])
    assert frame.freq == "MS"


# ---- frequency, gaps, repairs ----------------------------------------------------------------


def test_gap_is_an_error_naming_the_timestamp_and_lines(tmp_path):
    text = "Month,Sales\n2020-01,1\n2020-02,2\n2020-04,4\n2020-05,5\n2020-06,6\n"
    with pytest.raises(RnnkitError) as e:
        read_series(write(tmp_path, text), time_column="Month")
    message = str(e.value)
    assert "1 timestamps missing for frequency 'MS'" in message
    assert "2020-03-01 00:00:00 (between line 3 and line 4)" in message
    assert "fill=" in message


@pytest.mark.parametrize(
    ("fill", "expected"), [("ffill", 2.0), ("interpolate", 3.0), ("zero", 0.0)]
)
def test_gap_filled_on_request(tmp_path, fill, expected):
    text = "Month,Sales\n2020-01,1\n2020-02,2\n2020-04,4\n2020-05,5\n2020-06,6\n"
    with pytest.warns(UserWarning, match="1 missing timestamps"):
        frame = read_series(write(tmp_path, text), time_column="Month", fill=fill)
    assert len(frame) == 6 and frame.times[2] == pd.Timestamp("2020-03-01")
    assert frame.targets[2, 0] == pytest.approx(expected, rel=0.02)  # 'time' weights by days


def test_missing_cells_error_then_fill(tmp_path):
    text = "Month,Sales,Price\n2020-01,,1\n2020-02,2,\n2020-03,3,3\n2020-04,,4\n"
    path = write(tmp_path, text)
    with pytest.raises(RnnkitError, match="3 missing values: 'Sales' at line 2, 'Price' at line 3"):
        read_series(path, time_column="Month")
    with pytest.warns(UserWarning, match="3 missing values filled"):
        frame = read_series(path, time_column="Month", fill="ffill")
    np.testing.assert_array_equal(frame.targets, [[2, 1], [2, 1], [3, 3], [3, 4]])
    with pytest.warns(UserWarning, match="3 missing values filled"):
        frame = read_series(path, time_column="Month", fill="interpolate")
    np.testing.assert_allclose(frame.targets[:, 1], [1, 2, 3, 4], rtol=0.02)


def test_business_days_keep_holidays_out_of_the_gaps():
    days = pd.bdate_range("2021-01-04", periods=60)
    holidays = days[[10, 30, 31]]  # a lone closure and a two-day one
    times = days.difference(holidays)
    df = pd.DataFrame({"Date": times.strftime("%m/%d/%Y"), "Close": np.arange(len(times)) + 1.0})
    frame = read_series(df, time_column="Date")
    assert frame.freq == "B" and len(frame) == 57
    assert any("3 absent weekdays taken as market closures" in n for n in frame.notes)


def test_business_days_with_a_long_absence_is_a_gap():
    days = pd.bdate_range("2021-01-04", periods=60)
    times = days.delete(slice(20, 27))  # seven trading days absent: more than a week
    df = pd.DataFrame({"Date": times, "Close": np.arange(len(times)) + 1.0})
    with pytest.raises(RnnkitError, match="7 timestamps missing for frequency 'B'"):
        read_series(df, time_column="Date")


def test_irregular_times_are_taken_as_steps_with_a_warning():
    times = pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-10", "2020-02-11", "2020-02-12"])
    df = pd.DataFrame({"t": times, "y": [1.0, 2, 3, 4, 5]})
    with pytest.warns(UserWarning, match="rows are taken as consecutive steps"):
        frame = read_series(df, time_column="t")
    assert frame.freq is None and len(frame) == 5


def test_given_freq_is_checked(tmp_path):
    path = write(tmp_path, monthly())
    assert read_series(path, time_column="Month", freq="MS").freq == "MS"
    with pytest.raises(RnnkitError, match="not on the grid of frequency 'ME'"):
        read_series(path, time_column="Month", freq="ME")
    with pytest.raises(RnnkitError, match="unknown frequency 'fortnightly'"):
        read_series(path, time_column="Month", freq="fortnightly")


def test_calendar_features_monthly(tmp_path):
    frame = read_series(write(tmp_path, monthly(12)), time_column="Month", calendar_features=True)
    assert frame.future_covariate_names == ["month_sin", "month_cos"]
    assert frame.calendar_names == ["month_sin", "month_cos"]
    angle = 2 * np.pi * np.arange(12) / 12
    np.testing.assert_allclose(frame.future_covariates, np.stack([np.sin(angle), np.cos(angle)], 1))


# ---- bad input -------------------------------------------------------------------------------


def test_missing_columns_list_those_there_are(tmp_path):
    path = write(tmp_path, monthly())
    with pytest.raises(RnnkitError, match="no time column 'Date'; its columns are: Month, Sales"):
        read_series(path, time_column="Date")
    with pytest.raises(RnnkitError, match="no target column 'Passengers'; its columns are: Month"):
        read_series(path, time_column="Month", targets=["Passengers"])
    with pytest.raises(RnnkitError, match="no future covariate column 'hol'"):
        read_series(path, time_column="Month", future_covariates=["hol"])


def test_unparseable_date_shows_value_and_line(tmp_path):
    text = "Month,Sales\n2020-01,1\n2020-02,2\n2020-0x,3\n"
    with pytest.raises(RnnkitError, match=r"cannot read '2020-0x' in column 'Month' at line 4"):
        read_series(write(tmp_path, text), time_column="Month")


def test_duplicated_timestamps_are_shown(tmp_path):
    text = "Month,Sales\n2020-01,1\n2020-02,2\n2020-02,3\n2020-03,4\n"
    with pytest.raises(RnnkitError, match="duplicated timestamps.*2020-02-01.* line 3, line 4"):
        read_series(write(tmp_path, text), time_column="Month")


def test_non_numeric_target_shows_value_and_line(tmp_path):
    text = "Month,Sales\n2020-01,1\n2020-02,n/a?\n2020-03,4\n"
    with pytest.raises(RnnkitError, match=r"non-numeric value 'n/a\?' in column 'Sales' at line 3"):
        read_series(write(tmp_path, text), time_column="Month")


def test_constant_target_is_rejected(tmp_path):
    with pytest.raises(RnnkitError, match="'Sales' is constant \\(= 7\\) in all 6 rows"):
        read_series(write(tmp_path, monthly(value=lambda i: 7)), time_column="Month")


def test_missing_file_empty_file_and_bad_fill(tmp_path):
    with pytest.raises(RnnkitError, match="not found"):
        read_series(tmp_path / "nope.csv")
    with pytest.raises(RnnkitError, match="is empty"):
        read_series(write(tmp_path, ""))
    with pytest.raises(RnnkitError, match="fill='mean'"):
        read_series(write(tmp_path, monthly()), fill="mean")
    (tmp_path / "latin1.csv").write_bytes(b"Month,Caf\xe9\n2020-01,1\n")
    with pytest.raises(RnnkitError, match="not UTF-8"):
        read_series(tmp_path / "latin1.csv")


def test_check_future_covariates(tmp_path):
    text = "Month,Sales,promo\n" + "".join(f"2020-{m:02d},{m},{m % 2}\n" for m in range(1, 13))
    frame = read_series(
        write(tmp_path, text),
        time_column="Month",
        future_covariates=["promo"],
        calendar_features=True,
    )
    check_future_covariates(frame, start=6, horizon=6)  # inside the data: fine
    with pytest.raises(RnnkitError, match="needs the future covariates 'promo' up to row 14"):
        check_future_covariates(frame, start=12, horizon=3)
    plain = read_series(write(tmp_path, monthly(12)), time_column="Month", calendar_features=True)
    check_future_covariates(plain, start=12, horizon=3)  # calendar features extend themselves


# ---- the real files --------------------------------------------------------------------------


def quiet_read(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return read_series(path, **kwargs)


def test_airline_passengers(shared_data):
    frame = read_series(
        shared_data / "timeseries/airline-passengers.csv",
        time_column="Month",
        targets=["Passengers"],
    )
    assert len(frame) == 144 and frame.freq in ("MS", "M", "ME")
    assert frame.times[0] == pd.Timestamp("1949-01-01") and frame.targets[-1, 0] == 432


def test_monthly_sunspots(shared_data):
    frame = read_series(shared_data / "timeseries/monthly-sunspots.csv", time_column="Month")
    assert len(frame) == 2820 and frame.freq == "MS" and frame.target_names == ["Sunspots"]
    assert frame.times[-1] == pd.Timestamp("1983-12-01")


def test_shampoo(shared_data):
    frame = quiet_read(shared_data / "timeseries/shampoo.csv", time_column="Month")
    assert len(frame) == 36 and frame.freq == "MS" and frame.targets[0, 0] == 266.0
    assert "no calendar year" in frame.notes[0]


def test_google_stock(shared_data):
    folder = shared_data / "google_stock"
    train = read_series(folder / "Google_Stock_Price_Train.csv", time_column="Date")
    test = read_series(folder / "Google_Stock_Price_Test.csv", time_column="Date")
    assert (len(train), len(test)) == (1258, 20) and train.freq == test.freq == "B"
    assert train.target_names == ["Open", "High", "Low", "Close", "Volume"]
    np.testing.assert_array_equal(train.targets[0], [325.25, 332.83, 324.97, 663.59, 7380500])
    assert train.targets[:, 3].max() > 1000  # the quoted "1,008.64" closes
    assert train.times[-1] == pd.Timestamp("2016-12-30") < test.times[0]


def test_rows_ahead_give_future_covariates(tmp_path):
    text = "Month,Sales,promo\n" + "".join(f"2020-{m:02d},{m},{m % 2}\n" for m in range(1, 13))
    path = write(tmp_path, text + "2021-01,,1\n2021-02, ,0\n2021-03,,\n")
    frame = read_series(path, time_column="Month", future_covariates=["promo"], ahead=True)
    assert len(frame) == 12 and frame.n_ahead == 3
    assert list(frame.ahead_times.strftime("%Y-%m")) == ["2021-01", "2021-02", "2021-03"]
    np.testing.assert_array_equal(frame.ahead_covariates[:2, 0], [1, 0])
    check_future_covariates(frame, start=12, horizon=2)
    with pytest.raises(RnnkitError, match="'promo' is missing at row 14"):
        check_future_covariates(frame, start=12, horizon=3)
    with pytest.raises(RnnkitError, match="missing values"):  # without ahead: empty targets
        read_series(path, time_column="Month", future_covariates=["promo"])


def test_rows_ahead_must_continue_the_series(tmp_path):
    text = "Month,Sales,promo\n" + "".join(f"2020-{m:02d},{m},{m % 2}\n" for m in range(1, 13))
    path = write(tmp_path, text + "2021-02,,1\n")
    with pytest.raises(RnnkitError, match="row ahead at line 14 is for 2021-02-01"):
        read_series(path, time_column="Month", future_covariates=["promo"], ahead=True)
