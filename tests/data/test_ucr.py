"""UCR/UEA .ts and .tsv files: the header as a contract, shapes, missing values, errors."""

import logging

import numpy as np
import pytest

from rnnkit.data.ucr import parse_ts, parse_ucr_tsv
from rnnkit.errors import RnnkitError

HEAD = """# a comment
@problemName Toy
@timeStamps false
@missing {missing}
@univariate {univariate}
{dims}@equalLength {equal}
@seriesLength 3
@classLabel true 1 2 x
@data
"""


def ts(rows: str, missing="false", univariate="true", dims="", equal="true") -> str:
    head = HEAD.format(missing=missing, univariate=univariate, dims=dims, equal=equal)
    return head + rows


def test_univariate_rows_become_t_by_1_float32():
    series, labels, where = parse_ts(ts("1,2,3:1\n\n-1e-3,0.5,7:x\n"), "f.ts")
    assert labels == ["1", "x"] and where == ["f.ts:10", "f.ts:12"]
    assert [s.shape for s in series] == [(3, 1), (3, 1)]
    assert series[1].dtype == np.float32
    np.testing.assert_allclose(series[1][:, 0], [-1e-3, 0.5, 7])


def test_multivariate_is_time_by_channel_and_tags_case_insensitive():
    text = ts("1,2,3:4,5,6:2\n", univariate="false", dims="@DIMENSIONS 2\n")
    (x,), labels, _ = parse_ts(text.replace("@equalLength", "@equallength"), "f.ts")
    np.testing.assert_array_equal(x, [[1, 4], [2, 5], [3, 6]])
    (y,), _, _ = parse_ts(ts("1:2:1\n", univariate="false", equal="false"), "g.ts")
    assert y.shape == (1, 2)  # @dimensions absent: the first row's count


def test_unequal_lengths_when_allowed():
    series, _, _ = parse_ts(ts("1,2,3:1\n1,2:2\n4,5,6,7,8:1\n", equal="false"), "f.ts")
    assert [len(s) for s in series] == [3, 2, 5]


@pytest.mark.parametrize(
    "text, message",
    [
        (ts("1,2,3:3\n"), r"f\.ts:10: class label '3' is not one of @classLabel 1 2 x"),
        (ts("1,2,3:4,5,6:1\n"), r"f\.ts:10: 2 dimensions, the header says 1"),
        (ts("1,2:1\n"), r"f\.ts:10: series of length 2, the header says @equalLength true"),
        (ts("1,?,3:1\n"), r"f\.ts:10: value 2 of dimension 1 is missing .*@missing true"),
        (ts("1,NaN,3:1\n"), r"f\.ts:10: value 2 of dimension 1 is missing"),
        (ts("1,abc,3:1\n"), r"f\.ts:10: value 2 of dimension 1 is 'abc', expected a number"),
        (ts("1,,3:1\n"), r"value 2 of dimension 1 is an empty value"),
        (ts("1,inf,3:1\n"), r"value 2 of dimension 1 is infinite"),
        (ts("1,2,1e39:1\n"), r"too large for float32"),
        (ts("1,2,3\n"), r"f\.ts:10: expected values separated by ','"),
        (
            ts("1,2,3:4,5:1\n", univariate="false", dims="@dimensions 2\n", equal="false"),
            r"dimension 2 has 2 values, dimension 1 has 3",
        ),
        (ts("1,2,3:1\n").replace("@data\n", ""), r"f\.ts:9: expected a @tag or '#' comment"),
        ("@problemName T\n@classLabel true a b\n", r"f\.ts: the header has no @data line"),
        ("@classLabel false\n@data\n1,2:a\n", r"f\.ts:2: @data comes without class labels"),
        ("@classLabel true\n@data\n", r"f\.ts:1: @classLabel true lists no labels"),
        ("@timeStamps true\n", r"f\.ts:1: @timeStamps true is not supported"),
        ("@targetLabel true\n", r"f\.ts:1: @targetLabel is a regression file"),
        ("@univariate maybe\n", r"f\.ts:1: @univariate 'maybe': expected true or false"),
        ("@seriesLength -3\n", r"f\.ts:1: @seriesLength '-3': expected a positive integer"),
        (ts("1,2,3:1\n", dims="@dimensions 2\n"), r"@univariate true and @dimensions 2"),
    ],
)
def test_ts_errors_name_file_and_line(text, message):
    with pytest.raises(RnnkitError, match=message):
        parse_ts(text, "f.ts")


def test_missing_values_when_declared(caplog):
    rows = "1,?,3:1\n?,2,?:2\n1,2,?:1\n?,?,?:1\n"
    with caplog.at_level(logging.WARNING, logger="rnnkit.data.ucr"):
        with pytest.raises(RnnkitError, match=r"f\.ts:13: the series has no values"):
            parse_ts(ts(rows, missing="true"), "f.ts")
        series, _, _ = parse_ts(ts(rows[:-8], missing="true"), "f.ts")
    np.testing.assert_array_equal(series[0][:, 0], [1, 2, 3])  # interpolated inside
    np.testing.assert_array_equal(series[1][:, 0], [2, 2])  # padding dropped, start filled
    np.testing.assert_array_equal(series[2][:, 0], [1, 2])  # trailing '?' is padding
    assert "f.ts: filled 2 missing values by linear interpolation" in caplog.text
    multi = ts("1,?,3:?,?,?:1\n", missing="true", univariate="false", dims="@dimensions 2\n")
    with pytest.raises(RnnkitError, match=r"dimension 2 has no observed value"):
        parse_ts(multi, "f.ts")


def test_tsv_rows_padding_and_delimiters():
    series, labels, where = parse_ucr_tsv("1\t0.5\t1\tNaN\tNaN\n\n-1\t2\t3\t4\n", "f.tsv")
    assert labels == ["1", "-1"] and where == ["f.tsv:1", "f.tsv:3"]
    assert [s.shape for s in series] == [(2, 1), (3, 1)]
    series, labels, _ = parse_ucr_tsv("  1.0e+00  -0.5  0.25\n2,3,4\n", "f.txt")
    assert labels == ["1.0e+00", "2"] and series[1][:, 0].tolist() == [3, 4]
    _, labels, _ = parse_ucr_tsv("a;1;2\n", "f.txt", delimiter=";")
    assert labels == ["a"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1\t0.5\tNaN\t2\n", r"f\.tsv:1: value 2 of dimension 1 is missing .*only a trailing run"),
        ("1\t0.5\tx\n", r"f\.tsv:1: value 2 of dimension 1 is 'x', expected a number"),
        ("1\t1\n2\n", r"f\.tsv:2: expected the label, then the series' values"),
        ("1\tNaN\tNaN\n", r"f\.tsv:1: the series has no values"),
    ],
)
def test_tsv_errors(text, message):
    with pytest.raises(RnnkitError, match=message):
        parse_ucr_tsv(text, "f.tsv")
