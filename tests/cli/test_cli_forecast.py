"""``rnnkit forecast train|eval|predict|backtest`` as a user runs it, and one-line errors (exit
status 2, nothing written) for every bad series the issue lists."""

import json

import numpy as np
import pytest

pytest.importorskip("pandas")

from test_cli_lm import argv_of, assert_one_line_error  # noqa: E402  (same folder)

from rnnkit.cli.main import main  # noqa: E402

SMALL = (
    "--time-column month --target sales --horizon 6 --lookback 12 --hidden-size 8 "
    "--ensemble 1 --max-steps 20 --no-progress --device cpu --threads 1"
)
CHEAP = "--baselines naive,seasonal_naive,drift,mean"


def csv_text(n=96, promo=True, value=None) -> str:
    rng = np.random.default_rng(0)
    lines = ["month,sales,promo"]
    for i in range(n):
        sales = 100 + i + 10 * np.sin(2 * np.pi * i / 12) + rng.normal() if value is None else value
        lines.append(f'{2000 + i // 12}-{i % 12 + 1:02d},"{sales * 10:,.1f}",{i % 3 == 0:d}')
    return "\n".join(lines) + "\n"


def rnnkit(capsys, *parts):
    capsys.readouterr()
    try:
        rc = main(argv_of(*parts))
    except SystemExit as e:
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fc")
    data = tmp / "sales.csv"
    data.write_text(csv_text(), encoding="utf-8")  # thousands separators: "1,000.0"
    out = tmp / "run"
    rc = main(argv_of("forecast train", data, "--out", out, SMALL, "--future-covariates promo"))
    assert rc == 0
    return data, out


def test_train_eval_predict(run, capsys, tmp_path):
    data, out = run
    rc, text, err = rnnkit(capsys, "forecast eval", out, CHEAP, "--plot", tmp_path / "p.png")
    assert rc == 0, err
    assert "rnnkit" in text and "seasonal_naive" in text and "MASE" in text
    assert ("beat the network" in text) != ("The network is best" in text)
    assert (tmp_path / "p.png").stat().st_size > 1000
    rc, text, _ = rnnkit(capsys, "forecast eval", out, CHEAP, "--json")
    res = json.loads(text)
    assert set(res["baselines"]) == {"naive", "seasonal_naive", "drift", "mean"}
    assert {"mae", "rmse", "mape", "smape", "mase"} <= set(res["model"])
    ahead = tmp_path / "ahead.csv"  # the series, then the six months to forecast
    ahead.write_text(csv_text() + "".join(f"2008-{m:02d},,1\n" for m in range(1, 7)))
    rc, text, err = rnnkit(capsys, "forecast predict", out, ahead, "--json")
    assert rc == 0, err
    rows = [json.loads(line) for line in text.splitlines()]
    assert [r["time"][:7] for r in rows] == [f"2008-{m:02d}" for m in range(1, 7)]
    assert all(np.isfinite(r["sales"]) for r in rows)


def test_backtest(capsys, tmp_path):
    data = tmp_path / "s.csv"
    data.write_text(csv_text(), encoding="utf-8")
    out = tmp_path / "bt"
    rc, text, err = rnnkit(
        capsys, "forecast backtest", data, "--out", out, SMALL, "--folds 2 --json", CHEAP
    )
    assert rc == 0, err
    res = json.loads(text)
    assert len(res["folds"]) == 2 and "std" in res["summary"]["baselines"]["naive"]["mae"]
    rc, _, err = rnnkit(capsys, "forecast backtest", data, "--out", out, SMALL, "--folds 2")
    assert_one_line_error(rc, err, "already holds a backtest")


def test_predict_needs_the_future_covariates(run, capsys, tmp_path):
    data, out = run
    rc, _, err = rnnkit(capsys, "forecast predict", out)
    assert_one_line_error(rc, err, "needs the future covariates 'promo'")
    ahead = tmp_path / "ahead.csv"
    rows = [f"2008-{m:02d},,{'' if m == 2 else 1}\n" for m in range(1, 7)]
    ahead.write_text(csv_text() + "".join(rows))
    rc, _, err = rnnkit(capsys, "forecast predict", out, ahead)
    assert_one_line_error(rc, err, "'promo' is missing at row 97")
    ahead.write_text("month,sales,promo\n2008-01,,1\n")
    rc, _, err = rnnkit(capsys, "forecast predict", out, ahead)
    assert_one_line_error(rc, err, "rows ahead (empty targets) must follow the series")


BAD = {
    "missing time column": (csv_text(), "--time-column date", "no time column 'date'"),
    "missing target": (csv_text(), "--target units", "no target column 'units'"),
    "unparseable date": (
        csv_text().replace("2001-05,", "2001-13,"),
        "",
        "cannot read '2001-13' in column 'month' at line 18",
    ),
    "duplicated timestamps": (
        csv_text().replace("2001-05,", "2001-04,"),
        "",
        "duplicated timestamps",
    ),
    "too short": (csv_text(20), "", "fewer than lookback 12 + horizon 6"),
    "constant": (csv_text(value=5), "", "'sales' is constant"),
    "non-numeric": (
        csv_text().replace("2001-05,", "2001-05,lots,").replace(',lots,"', ',"lots'),
        "",
        "non-numeric value",
    ),
}


def test_nan_without_fill_names_the_line(capsys, tmp_path):
    text = csv_text().splitlines()
    text[17] = "2001-05,,1"
    data = tmp_path / "gap.csv"
    data.write_text("\n".join(text) + "\n")
    rc, _, err = rnnkit(capsys, "forecast train", data, "--out", tmp_path / "run", SMALL)
    assert_one_line_error(rc, err, "'sales' at line 18")
    assert not (tmp_path / "run").exists()
    rc, _, err = rnnkit(
        capsys, "forecast train", data, "--out", tmp_path / "run", SMALL, "--fill interpolate"
    )
    assert rc == 0, err
    assert "rnnkit: note: " in err and "1 missing values filled (interpolate)" in err


@pytest.mark.parametrize(
    "case",
    [
        "missing time column",
        "missing target",
        "unparseable date",
        "duplicated timestamps",
        "too short",
        "constant",
        "non-numeric",
    ],
)
def test_bad_series_is_one_line_and_writes_nothing(case, capsys, tmp_path):
    text, flags, message = BAD[case]
    data = tmp_path / "data.csv"
    data.write_text(text, encoding="utf-8")
    out = tmp_path / "run"
    rc, _, err = rnnkit(capsys, "forecast train", data, "--out", out, SMALL, flags)
    assert_one_line_error(rc, err, message)
    assert not out.exists()
