"""rnnkit.tasks.forecast (the file is named apart from tests/metrics/test_forecast.py): the split
and its defaults, transforms fitted on the training part and inverted exactly, a run's lifecycle
(files, exact resume), evaluation against baselines on the held-out span or newer rows,
prediction with future covariates, intervals, the backtest."""

import dataclasses
import json

import numpy as np
import pytest
from safetensors.torch import load_file

pd = pytest.importorskip("pandas")

from rnnkit.data.series_csv import read_series  # noqa: E402
from rnnkit.errors import RnnkitError  # noqa: E402
from rnnkit.models.forecaster import ForecasterConfig  # noqa: E402
from rnnkit.tasks.forecast import SeriesForecaster, extend, train_forecaster  # noqa: E402
from rnnkit.tasks.forecast_backtest import backtest_forecaster  # noqa: E402
from rnnkit.tasks.forecast_data import (  # noqa: E402
    ForecastDataConfig,
    SeriesTransform,
    frame_head,
    make_plan,
)
from rnnkit.training import TrainConfig  # noqa: E402

CHEAP = ["naive", "seasonal_naive", "drift", "mean"]  # no statsforecast fitting: fast tests
TINY = ForecasterConfig(hidden_size=8, ensemble=1)
FAST = TrainConfig(
    max_steps=20,
    progress=False,
    device="cpu",
    threads=1,
    eval_every=10,
    eval_at_epoch_end=False,
    monitor="val_mae",
    log_every=10,
)


def monthly(n=96, seed=0, promo=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    sales = 100 + t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    df = pd.DataFrame({"month": pd.date_range("2000-01", periods=n, freq="MS"), "sales": sales})
    if promo:
        df["promo"] = (t % 3 == 0).astype(float)
        df["sales"] += 5 * df["promo"]
    return df


def dc(**kw) -> ForecastDataConfig:
    return ForecastDataConfig(**{"time_column": "month", "target": "sales", "horizon": 6, **kw})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fc") / "run"
    train_forecaster(monthly(), out, TINY, dc(lookback=12), FAST)
    return out


# ---- the plan and the transforms ------------------------------------------------------------


def test_plan_defaults_and_sizes():
    frame = dc().read(monthly(96))
    plan = make_plan(frame, dc())
    assert plan.test_size == 6 and plan.season == 12 and plan.diff == 12  # seasonal: lag 12
    assert plan.val_size == 0  # 90 rows cannot spare a validation span for 4·(L + H) rows
    long = dc().read(monthly(600))
    plan = make_plan(long, dc(val_size=-1))
    assert plan.val_size == round(0.1 * 594) and plan.lookback == 24
    assert plan.train_end == 600 - 6 - plan.val_size
    with pytest.raises(RnnkitError, match="fewer than lookback 41 \\+ horizon 6"):
        make_plan(frame, dc(lookback=41, diff="none", test_size=50))


def test_transform_fits_on_training_rows_and_inverts_exactly():
    frame = dc().read(monthly(60))
    t = SeriesTransform.fit(frame, 40, log=True, diff=12, scaler="standard")
    logs = np.log(frame.targets[:40, 0])
    diffs = logs[12:] - logs[:-12]
    np.testing.assert_allclose(t.scaler.offset, [diffs.mean()])  # training rows only
    z = t.apply(frame.values())
    assert z.shape == (48, 1)
    back = t.invert(z[40:48][None], frame.targets[:52])[0]  # rows 52 … 59 from their model rows
    np.testing.assert_allclose(back[:, 0], frame.targets[52:60, 0], rtol=1e-5)
    again = SeriesTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_allclose(again.apply(frame.values()), z)


# ---- a run ----------------------------------------------------------------------------------


def test_run_saves_plan_transform_and_series(run_dir):
    saved = json.loads((run_dir / "last" / "forecast.json").read_text())
    assert saved["plan"]["lookback"] == 12 and saved["plan"]["diff"] == 12
    assert saved["transform"]["scaler"]["kind"] == "standard"
    series = json.loads((run_dir / "last" / "series.json").read_text())
    assert len(series["values"]) == 96


def test_evaluate_scores_the_held_out_span_against_baselines(run_dir):
    fc = SeriesForecaster.load(run_dir)
    res = fc.evaluate(baselines=CHEAP)
    assert set(res["baselines"]) == set(CHEAP)
    assert res["span"]["steps"] == 6 and res["span"]["start"].startswith("2007-07")
    assert set(res["model"]) == {"mae", "rmse", "mape", "smape", "mase"}
    assert sorted(res["ranking"]) == sorted(["model", *CHEAP])
    assert res["beaten_by"] == res["ranking"][: res["ranking"].index("model")]
    naive = res["forecasts"]["naive"]
    assert naive == [[monthly().sales.iloc[89]]] * 6  # fitted on the rows before the span


def test_evaluate_newer_rows_and_predict(run_dir, tmp_path):
    fc = SeriesForecaster.load(run_dir)
    newer = monthly(108).iloc[96:]  # twelve months after the run's series
    res = fc.evaluate(newer, baselines=["naive"])
    assert res["span"]["steps"] == 12 and res["span"]["forecasts"] == 2
    table = fc.predict()
    assert list(table.index.strftime("%Y-%m")) == [f"2008-{m:02d}" for m in range(1, 7)]
    assert list(table.columns) == ["sales"]
    with pytest.raises(RnnkitError, match="starts at 2008-03-01.*next step is 2008-01-01"):
        fc.evaluate(monthly(108).iloc[98:], baselines=["naive"])


def test_extend_joins_continuing_or_overlapping_rows():
    full = dc().read(monthly(60))
    joined, start = extend(frame_head(full, 40), dc().read(monthly(60).iloc[30:]))
    assert start == 40 and len(joined) == 60
    np.testing.assert_array_equal(joined.targets, full.targets)


def test_resume_is_exact(tmp_path):
    data = monthly()
    whole = dataclasses.replace(FAST, max_steps=20)
    train_forecaster(data, tmp_path / "a", TINY, dc(lookback=12), whole)
    train_forecaster(
        data, tmp_path / "b", TINY, dc(lookback=12), dataclasses.replace(whole, max_steps=10)
    )
    train_forecaster(data, tmp_path / "b", train=whole, resume=True)
    a, b = (load_file(tmp_path / r / "last" / "model.safetensors") for r in ("a", "b"))
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    with pytest.raises(RnnkitError, match="not the series"):
        train_forecaster(monthly(seed=1), tmp_path / "b", train=whole, resume=True)


def test_future_covariates_and_intervals(tmp_path):
    data = monthly(promo=True)
    model = dataclasses.replace(TINY, strategy="seq2seq", loss="quantile")
    config = dc(lookback=12, future_covariates="promo", calendar=True)
    train_forecaster(data, tmp_path / "run", model, config, FAST)
    fc = SeriesForecaster.load(tmp_path / "run")
    res = fc.evaluate(baselines=["naive"])
    assert 0.0 <= res["model"]["coverage"] <= 1.0 and res["model"]["interval"] == 0.8
    ahead = pd.concat(
        [
            data,
            pd.DataFrame(
                {
                    "month": pd.date_range("2008-01", periods=6, freq="MS"),
                    "promo": [1.0, 0, 0, 1, 0, 0],
                }
            ),
        ]
    )
    table = fc.predict(ahead)
    assert list(table.columns) == ["sales", "sales_lower", "sales_upper"]
    assert (table.sales_lower <= table.sales_upper).all()
    with pytest.raises(RnnkitError, match="future covariates 'promo'"):
        fc.predict()  # the series alone does not say the promotions to come


def test_gaussian_recursive_run_and_backtest(tmp_path):
    model = dataclasses.replace(TINY, strategy="recursive", loss="gaussian")
    res = backtest_forecaster(
        monthly(), tmp_path / "bt", model, dc(lookback=12), FAST, folds=2, baselines=["naive"]
    )
    assert len(res["folds"]) == 2 and res["folds"][1]["origin"] == 90
    assert set(res["summary"]["model"]["mase"]) == {"mean", "std"}
    assert "coverage" in res["summary"]["model"]
    assert (tmp_path / "bt" / "backtest.json").exists() and (tmp_path / "bt" / "model").is_dir()
    with pytest.raises(RnnkitError, match="already holds a backtest"):
        backtest_forecaster(monthly(), tmp_path / "bt", model, dc(), FAST, folds=2)


def test_dataframe_with_two_targets(tmp_path):
    df = monthly()
    df["returns"] = df["sales"] * 0.5 + np.sin(np.arange(96))
    config = dc(target="sales,returns", lookback=12, diff="none", scaler="minmax")
    train_forecaster(df, tmp_path / "run", TINY, config, FAST)
    res = SeriesForecaster.load(tmp_path / "run").evaluate(baselines=["naive"])
    assert set(res["targets"]) == {"sales", "returns"}
    mean = np.mean([res["targets"][t]["model"]["mae"] for t in ("sales", "returns")])
    assert res["model"]["mae"] == pytest.approx(mean)


def test_read_series_errors_reach_the_user(tmp_path):
    with pytest.raises(RnnkitError, match="no target column 'units'"):
        train_forecaster(monthly(), tmp_path / "x", TINY, dc(target="units"), FAST)
    assert not (tmp_path / "x").exists()
    frame = read_series(monthly(), time_column="month")
    assert frame.target_names == ["sales"]
