"""Forecasting: metrics by hand, baselines against statsmodels, the models, the CLI."""

import json
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from recur.cli import main
from recur.data.timeseries import Scaler, make_series
from recur.models.forecaster import Forecaster, ForecasterConfig, pinball_loss
from recur.tasks import forecast_eval as fe
from recur.tasks.forecast import (
    FitSettings,
    ForecastModel,
    backtest,
    default_input_lengths,
    fit,
    tune_and_fit,
)

pd = pytest.importorskip("pandas")


pytestmark = pytest.mark.usefixtures("one_blas_thread")


# -- metrics ------------------------------------------------------------------------------------


def test_mase_equals_hand_computation():
    train = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
    # m = 2: |2-1| + |5-3| + |4-2| + |6-5| = 1 + 2 + 2 + 1 = 6 over 4 pairs -> scale 1.5
    y, pred = np.array([7.0, 8.0]), np.array([6.0, 10.0])
    assert fe.seasonal_scale(train, 2) == 1.5
    assert fe.mae(y, pred) == 1.5                      # (1 + 2) / 2
    assert fe.mase(y, pred, train, 2) == pytest.approx(1.0)
    # m = 1: |2|+|1|+|3|+|1|+|2| = 9 over 5 -> 1.8
    assert fe.mase(y, pred, train, 1) == pytest.approx(1.5 / 1.8)


def test_rmse_and_smape_by_hand():
    y, pred = np.array([100.0, 200.0, 0.0]), np.array([110.0, 180.0, 0.0])
    assert fe.rmse(y, pred) == pytest.approx(np.sqrt((100 + 400 + 0) / 3))
    # 200·10/210, 200·20/380, and 0/0 counted as 0
    assert fe.smape(y, pred) == pytest.approx((2000 / 210 + 4000 / 380 + 0) / 3)


def test_mase_of_seasonal_naive_in_sample_is_one():
    rng = np.random.default_rng(0)
    y = np.sin(np.arange(60) * 2 * np.pi / 12) * 10 + rng.normal(size=60)
    train = y[:48]
    # seasonal naive's one-step-per-season in-sample MAE is the scale itself
    in_sample = fe.mae(train[12:], train[:-12])
    assert in_sample / fe.seasonal_scale(train, 12) == pytest.approx(1.0)


def test_mase_undefined_on_exactly_periodic_training_part():
    train = np.tile([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="MASE is undefined"):
        fe.mase(np.ones(3), np.ones(3), train, 3)


def test_metric_shapes_must_match():
    with pytest.raises(ValueError, match="1-D of one non-zero length"):
        fe.mae(np.ones(3), np.ones(4))


# -- baselines against statsmodels --------------------------------------------------------------

sm = pytest.importorskip("statsmodels.api")


def seasonal_series(n=96, m=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.3 * t + 8 * np.sin(2 * np.pi * t / m) + rng.normal(scale=1.0, size=n)


def test_naive_equals_statsmodels_random_walk():
    y = seasonal_series()
    ours = fe.naive(y, 7)
    theirs = sm.tsa.arima.ARIMA(y, order=(0, 1, 0)).fit().forecast(7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_seasonal_naive_equals_statsmodels_seasonal_random_walk():
    y = seasonal_series()
    ours = fe.seasonal_naive(y, 18, 12)
    model = sm.tsa.SARIMAX(y, order=(0, 0, 0), seasonal_order=(0, 1, 0, 12))
    theirs = model.fit(disp=False).forecast(18)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_ets_baseline_is_statsmodels_own_forecast_of_the_chosen_model():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    y = seasonal_series(n=48)
    spec, fitted = fe.ets_select(y, 12, errors=("add",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter, silenced in ets_select too
        theirs = ETSModel(y, **spec).fit(disp=False, maxiter=200).forecast(12)
    np.testing.assert_allclose(fitted.forecast(12), theirs, rtol=1e-8)
    assert spec["seasonal"] in ("add", "mul")        # a seasonal series gets a season


def test_arima_baseline_is_statsmodels_sarimax_with_the_chosen_orders():
    pytest.importorskip("pmdarima")
    rng = np.random.default_rng(1)   # an AR(1): non-seasonal keeps the stepwise search fast
    y = np.zeros(60)
    for t in range(1, 60):
        y[t] = 2.0 + 0.7 * y[t - 1] + rng.normal()
    search = {"start_p": 1, "max_p": 2, "start_q": 0, "max_q": 1, "d": 0}
    chosen = fe.arima_order(y, 1, search)
    ours = fe.arima(y, 6, 1, search)
    np.testing.assert_allclose(ours, chosen.predict(6), rtol=1e-10)
    refit = sm.tsa.SARIMAX(y, order=chosen.order, seasonal_order=chosen.seasonal_order,
                           trend="c" if chosen.with_intercept else None)
    theirs = refit.filter(chosen.arima_res_.params).forecast(6)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_long_period_arima_integrates_the_seasonal_difference():
    pytest.importorskip("pmdarima")
    m = 60
    y = np.tile(np.linspace(0, 5, m), 4) + np.arange(4 * m) * 0.01
    pred = fe.arima(y, 10, m, {"start_p": 0, "max_p": 1, "start_q": 0, "max_q": 1})
    # seasonal difference is the constant 0.6 (= 60 · 0.01): forecast = last season + 0.6
    np.testing.assert_allclose(pred, y[-m:][:10] + 0.6, atol=1e-3)


# -- models -------------------------------------------------------------------------------------


def test_pinball_loss_by_hand():
    pred = torch.tensor([[[1.0, 2.0, 3.0]]])          # (1, 1, 3)
    target = torch.tensor([[2.5]])
    q = torch.tensor([0.1, 0.5, 0.9])
    # diffs 1.5, 0.5, -0.5 -> 0.1·1.5, 0.5·0.5, (0.9-1)·(-0.5)
    expected = (0.15 + 0.25 + 0.05) / 3
    assert float(pinball_loss(pred, target, q)) == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["direct", "seq2seq"])
def test_forecaster_shapes_and_sorted_quantiles(kind):
    config = ForecasterConfig(horizon=5, num_covariates=2, kind=kind, hidden_size=8, ensemble=2)
    model = Forecaster(config)
    out = model(torch.randn(3, 7, 3), torch.randn(3, 5, 2))
    assert out.shape == (3, 5, 3)
    assert torch.all(out[..., 1:] >= out[..., :-1])
    assert model.member_outputs(torch.randn(3, 7, 3), torch.randn(3, 5, 2)).shape == (2, 3, 5, 3)


def test_ensemble_output_is_the_mean_of_its_members():
    torch.manual_seed(0)
    config = ForecasterConfig(horizon=3, kind="direct", hidden_size=4, ensemble=3,
                              quantiles=(0.5,))
    model = Forecaster(config)
    x, f = torch.randn(2, 6, 1), torch.zeros(2, 3, 0)
    members = torch.stack([m(x, f) for m in model.members])
    torch.testing.assert_close(model(x, f), members.mean(0))


@pytest.mark.parametrize("kind", ["direct", "seq2seq"])
def test_ensemble_of_input_lengths_is_the_mean_of_members_reading_their_own_window(kind):
    """Members with input_lengths (3, 6) read the window's last 3 or 6 steps; the ensemble
    is the mean of the members, each run alone as a one-member model on its own slice."""
    torch.manual_seed(0)
    config = ForecasterConfig(horizon=4, num_covariates=2, kind=kind, hidden_size=4,
                              ensemble=3, input_lengths=(3, 6), quantiles=(0.5,))
    model = Forecaster(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)                          # the last layer starts at zero
    x, f = torch.randn(2, 10, 3), torch.randn(2, 4, 2)
    alone = []
    for i, member in enumerate(model.members):
        L = (3, 6, 3)[i]
        single = Forecaster(replace(config, ensemble=1, input_lengths=())).eval()
        single.members[0].load_state_dict(member.state_dict())
        alone.append(single(x[:, -L:], f))
    torch.testing.assert_close(model(x, f), torch.stack(alone).mean(0))
    # what lies before the longest member's steps is never read
    earlier = x.clone()
    earlier[:, :4] = 1e3
    torch.testing.assert_close(model(earlier, f), model(x, f))


def test_input_lengths_are_checked():
    with pytest.raises(ValueError, match="input_lengths must be positive ints"):
        ForecasterConfig(horizon=3, input_lengths=(4, 0))
    with pytest.raises(ValueError, match="input_lengths must hold at least one"):
        FitSettings(input_lengths=())
    model = Forecaster(ForecasterConfig(horizon=3, input_lengths=(5,)))
    with pytest.raises(ValueError, match="reads 5 steps, the window has 4"):
        model(torch.zeros(1, 4, 1), torch.zeros(1, 3, 0))


@pytest.mark.parametrize(("period", "train_length", "horizon", "expected"), [
    (12, 132, 12, (18, 36, 54)),        # airline
    (4, 203, 8, (8, 16, 24)),           # ausbeer: at least 8
    (336, 3984, 48, (48, 96)),          # Taylor: at most 96
    (10, 104, 10, (15, 30, 45)),        # lynx: half of what the windows leave is 47
    (12, 50, 12, (18, 19)),             # a short series: capped at (50 - 12) / 2
])
def test_default_input_lengths_ladder(period, train_length, horizon, expected):
    assert default_input_lengths(period, train_length, horizon) == expected


def test_seq2seq_feeds_its_own_median_forward():
    """Changing step 1's head output must change step 2 (the median is fed back)."""
    torch.manual_seed(0)
    config = ForecasterConfig(horizon=3, kind="seq2seq", hidden_size=4, quantiles=(0.5,))
    model = Forecaster(config).eval()
    x, f = torch.randn(1, 6, 1), torch.zeros(1, 3, 0)
    with torch.no_grad():
        model.members[0].head.weight.normal_()        # the last layer starts at zero
        before = model(x, f)
        model.members[0].head.bias += 1.0
        after = model(x, f)
    delta = (after - before).squeeze()
    assert delta[0] == pytest.approx(1.0, abs=1e-6)            # the bias itself
    assert abs(float(delta[1]) - 1.0) > 1e-4                   # plus the fed-back change


@pytest.mark.parametrize("anchor", ["last", "seasonal"])
def test_untrained_forecaster_predicts_its_baseline(tmp_path, anchor):
    """The last layer starts at zero, so before training the forecast is the baseline."""
    from recur.tasks.forecast import ForecastDataConfig, ForecastTask, SeriesInfo, series_covariates

    series = synthetic()
    train = series.values[:108]
    data = ForecastDataConfig(input_length=24, horizon=12, anchor=anchor, period=12)
    cov = series_covariates("calendar", 120, 12, series.dates, "MS")
    config = ForecasterConfig(horizon=12, num_covariates=cov.shape[1], hidden_size=8)
    task = ForecastTask(train, cov, data, config, SeriesInfo("s", False, None, None, None, "MS",
                                                              12, 108))
    model = ForecastModel(task.build_model(), task.scaler, data, task.series)
    pred = model.forecast(series, end=108).median
    expected = fe.seasonal_naive(train, 12, 12) if anchor == "seasonal" else fe.naive(train, 12)
    np.testing.assert_allclose(pred, expected, rtol=1e-5)


def test_quantiles_config_is_checked():
    with pytest.raises(ValueError, match="including 0.5"):
        ForecasterConfig(horizon=3, quantiles=(0.1, 0.9))
    with pytest.raises(ValueError, match="kind must be one of"):
        ForecasterConfig(horizon=3, kind="transformer")


# -- training, backtesting, checkpoints ---------------------------------------------------------


def synthetic(n=120, m=12):
    dates = pd.date_range("2000-01-01", periods=n, freq="MS").values
    return make_series("synthetic", seasonal_series(n, m), dates, freq="MS", period=m,
                       horizon=m)


@pytest.mark.parametrize("kind", ["direct", "seq2seq"])
def test_fit_learns_a_seasonal_series_and_reloads(tmp_path, kind):
    series = synthetic()
    settings = FitSettings(kind=kind, hidden_size=8, steps=60, anchor="seasonal")
    model = fit(series, len(series) - 12, settings, tmp_path / "run")
    metrics = model.evaluate(series)
    assert metrics["mase"] < 1.5 and metrics["train_length"] == 108
    again = ForecastModel.load(tmp_path / "run")
    np.testing.assert_allclose(again.forecast(series).median, model.forecast(series).median)
    assert again.scaler == Scaler.fit(series.values[:108])     # fitted on the train part only


def test_test_part_does_not_change_the_trained_model(tmp_path):
    """Scrambling the test part leaves the trained weights (and scaler) unchanged."""
    series = synthetic()
    settings = FitSettings(hidden_size=8, steps=20)
    a = fit(series, 108, settings, tmp_path / "a")
    values = series.values.copy()
    values[108:] = 1e6
    other = make_series("synthetic", values, series.dates, freq="MS", period=12, horizon=12)
    b = fit(other, 108, settings, tmp_path / "b")
    assert a.scaler == b.scaler
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_tuning_never_sees_the_test_part(tmp_path):
    """The whole panel pipeline — backtest of every anchor × transform, the choice, the
    final ensemble over input lengths — is unchanged when the test part is scrambled."""
    series = synthetic()
    values = series.values.copy()
    values[108:] = values[108:][::-1] * 3 + 1e4
    other = make_series("synthetic", values, series.dates, freq="MS", period=12, horizon=12)
    base = FitSettings(hidden_size=4, steps=5, ensemble=2,
                       input_lengths=default_input_lengths(12, 108, 12))
    runs = []
    for s, name in ((series, "a"), (other, "b")):
        runs.append(tune_and_fit(s, base, tmp_path / name, folds=2, final_ensemble=3,
                                 steps_grid=(5, 8)))
    (a, results_a), (b, results_b) = runs
    assert len(results_a) == 7               # {none, last, seasonal} × {none, log}, then 8 steps
    first = min(results_a[:6], key=lambda r: r.mase).settings
    assert results_a[6].settings == replace(first, steps=8)
    best = min(results_a, key=lambda r: r.mase).settings
    assert a.data.anchor == best.anchor and a.data.transform == best.transform
    assert [r.folds for r in results_a] == [r.folds for r in results_b]
    assert a.scaler == b.scaler and a.data == b.data
    assert a.model.config == b.model.config and a.model.config.ensemble == 3
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_backtest_folds_train_and_forecast_before_their_origin(tmp_path, monkeypatch):
    """Fold k trains on values[:N - k·h] and forecasts from that origin, never past N."""
    import recur.tasks.forecast as task

    calls, real_fit = [], task.fit

    def spy(series, train_length, settings, out, **kw):
        calls.append(train_length)
        return real_fit(series, train_length, settings, out, **kw)

    monkeypatch.setattr(task, "fit", spy)
    series = synthetic()
    backtest(series, 108, [FitSettings(hidden_size=4, steps=5)], folds=3)
    assert calls == [96, 84, 72]


def test_backtest_scores_every_candidate_inside_the_training_part(tmp_path):
    series = synthetic()
    base = FitSettings(hidden_size=8, steps=20)
    results = backtest(series, 108, [base], folds=2)
    assert len(results) == 1 and len(results[0].folds) == 2
    assert np.isfinite(results[0].mase)


# -- CLI ---------------------------------------------------------------------------------------


def write_series_csv(tmp_path, n=96):
    dates = pd.date_range("2001-01-01", periods=n, freq="MS")
    path = tmp_path / "sales.csv"
    frame = pd.DataFrame({"month": dates.strftime("%Y-%m-%d"), "units": seasonal_series(n)})
    frame.to_csv(path, index=False)
    return path


def test_cli_train_evaluate_forecast_plot(tmp_path, capsys):
    csv = write_series_csv(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "forecast", "--csv", str(csv), "--column", "units", "--horizon", "6",
                 "--steps", "30", "--hidden-size", "8", "--out", str(out)]) == 0
    assert "test MASE" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"mase", "smape", "mae", "rmse", "seasonal_naive_mase"} <= set(metrics)
    assert metrics["horizon"] == 6 and metrics["train_length"] == 90
    png = tmp_path / "fc.png"
    assert main(["forecast", str(out), "--plot", str(png), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["median"]) == 6 and result["dates"][0].startswith("2009-01-01")
    assert png.stat().st_size > 1000


def test_cli_summary_of_a_forecaster_lists_every_member(tmp_path, capsys):
    """`recur summary DIR` used to fail on forecasters (no example_inputs)."""
    csv = write_series_csv(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "forecast", "--csv", str(csv), "--column", "units", "--horizon", "6",
                 "--steps", "2", "--hidden-size", "8", "--ensemble", "1", "--tune",
                 "--folds", "1", "--tune-steps", "3", "--final-ensemble", "3",
                 "--input-lengths", "12,24", "--out", str(out)]) == 0
    assert "steps=3" in capsys.readouterr().out         # the steps stage ran
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    table = capsys.readouterr().out
    model = ForecastModel.load(out).model
    assert model.config.input_lengths == (12, 24)
    assert [m.input_length for m in model.members] == [12, 24, 12]
    for i in range(3):                                  # each member: (None, h, Q)
        assert f"members.{i} (_Member)" in table and "(None, 6, 3)" in table
    assert f"Total params: {sum(p.numel() for p in model.parameters()):,}" in table


def test_cli_bad_inputs_are_one_line_errors(tmp_path, capsys):
    csv = write_series_csv(tmp_path, n=40)
    code = main(["train", "forecast", "--csv", str(csv), "--column", "units", "--horizon", "20",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "horizon 20 is too long" in capsys.readouterr().err
    code = main(["train", "forecast", "--csv", str(csv), "--column", "nope",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "--column 'nope' is not a column" in capsys.readouterr().err
    flat = tmp_path / "flat.csv"
    flat.write_text("date,v\n" + "\n".join(f"2000-01-{d:02d},5" for d in range(1, 29)) + "\n")
    code = main(["train", "forecast", "--csv", str(flat), "--column", "v", "--horizon", "3",
                 "--out", str(tmp_path / "r")])
    assert code == 2 and "constant" in capsys.readouterr().err
    code = main(["train", "forecast", "--csv", str(csv), "--column", "units", "--horizon", "3",
                 "--input-lengths", "12,x", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--input-lengths (or 'ladder') must be comma-separated ints" in err
