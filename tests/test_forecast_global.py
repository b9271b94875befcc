"""The global forecaster: one model over several series, never reading a test value."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from recur.data.timeseries import Scaler, make_series
from recur.models.forecaster import ForecasterConfig, pinball_loss
from recur.tasks import forecast_eval as fe
from recur.tasks.forecast import FitSettings
from recur.tasks.forecast_global import (
    GlobalCandidate,
    GlobalDataConfig,
    GlobalForecastModel,
    GlobalForecastTask,
    backtest_global,
    fit_global,
    training_lengths,
    tune_and_fit_global,
)

pd = pytest.importorskip("pandas")


pytestmark = pytest.mark.usefixtures("one_blas_thread")


def seasonal(n, m, seed, level=50.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.3 * t + 8 * np.sin(2 * np.pi * t / m) + rng.normal(scale=1.0, size=n)


def panel(scramble_tests=False):
    """Two series with different periods, horizons and lengths (one with zeros: no log)."""
    monthly = seasonal(120, 12, 0)
    quarterly = seasonal(80, 4, 1, level=0.0)
    quarterly[5] = 0.0
    if scramble_tests:
        monthly[-12:] = monthly[-12:][::-1] * 7 + 1e4
        quarterly[-8:] = -1e5
    dates = pd.date_range("2000-01-01", periods=120, freq="MS").values
    return [make_series("monthly", monthly, dates, freq="MS", period=12, horizon=12),
            make_series("quarterly", quarterly, None, period=4, horizon=8)]


def candidate(**changes):
    settings = FitSettings(covariates="phase", transform="log", anchor="seasonal", hidden_size=8,
                           steps=30, ensemble=2, input_lengths=(6, 12))
    return GlobalCandidate(replace(settings, **changes))


def data_config(series, **changes):
    return GlobalDataConfig(names=[s.name for s in series], periods=[s.period for s in series],
                            horizons=[s.horizon for s in series], input_length=12, **changes)


def test_masked_pinball_loss_ignores_padded_steps():
    pred, target = torch.randn(3, 5, 3), torch.randn(3, 5)
    q = torch.tensor([0.1, 0.5, 0.9])
    mask = torch.zeros(3, 5)
    mask[:, :2] = 1
    expected = pinball_loss(pred[:, :2], target[:, :2], q)
    scrambled = target.clone()
    scrambled[:, 2:] = 1e6
    assert float(pinball_loss(pred, scrambled, q, mask)) == pytest.approx(float(expected))


def test_global_windows_and_scalers_never_see_test_values():
    """Scrambling every test part leaves the windows and the scalers unchanged; each series
    is scaled on its own training part (log only where that part is positive)."""
    clean, scrambled = panel(), panel(scramble_tests=True)
    data = data_config(clean)
    model = ForecasterConfig(horizon=12, num_covariates=data.num_covariates)
    a = GlobalForecastTask(clean, training_lengths(clean), data, model)
    b = GlobalForecastTask(scrambled, training_lengths(scrambled), data, model)
    for name in ("inputs", "future", "targets", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.scalers == b.scalers
    assert a.scalers[0] == Scaler.fit(clean[0].values[:108], "log")
    assert a.scalers[1] == Scaler.fit(clean[1].values[:72], "none")   # has a zero
    # the quarterly series' windows have 8 target steps; the other 4 are masked padding
    quarterly = slice(a.offsets[1], None)
    assert np.all(a.mask[quarterly, :8] == 1) and np.all(a.mask[quarterly, 8:] == 0)
    assert np.all(a.targets[quarterly, 8:] == 0)
    assert a.counts.tolist() == [108 - 12 - 12 + 1, 72 - 12 - 8 + 1]


def test_backtest_folds_stop_at_their_origins(monkeypatch):
    """Fold k of the global backtest trains on values[:N_i − h_i − k·h_i] of every series."""
    import recur.tasks.forecast_global as task

    calls, real_fit = [], task.fit_global

    def spy(series, train_lengths, cand, out, **kw):
        calls.append(list(train_lengths))
        return real_fit(series, train_lengths, cand, out, **kw)

    monkeypatch.setattr(task, "fit_global", spy)
    results = backtest_global(panel(), [candidate(steps=5)], folds=2)
    assert calls == [[96, 64], [84, 56]]
    assert [len(v) for v in results[0].series.values()] == [2, 2]


def test_untrained_global_model_predicts_each_series_seasonal_naive():
    """The last layer starts at zero: before training every series gets its own seasonal
    naive forecast, at its own horizon (padding and covariates line up)."""
    series = panel()
    data = data_config(series)
    config = ForecasterConfig(horizon=12, num_covariates=data.num_covariates, hidden_size=8)
    task = GlobalForecastTask(series, training_lengths(series), data, config)
    model = GlobalForecastModel(task.build_model(), task.scalers, data)
    for s in series:
        end = len(s) - s.horizon
        np.testing.assert_allclose(model.forecast(s, end=end).median,
                                   fe.seasonal_naive(s.values[:end], s.horizon, s.period),
                                   rtol=1e-5)
    with pytest.raises(ValueError, match="not 'other'"):
        model.forecast(make_series("other", seasonal(60, 4, 2), period=4, horizon=4))


def test_global_fit_is_deterministic_with_a_seed_and_reloads(tmp_path):
    series = panel()
    a = fit_global(series, training_lengths(series), candidate(), tmp_path / "a")
    b = fit_global(series, training_lengths(series), candidate(), tmp_path / "b")
    c = fit_global(series, training_lengths(series), candidate(seed=1), tmp_path / "c")
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(a.model.parameters(),
                                                    c.model.parameters(), strict=True))
    again = GlobalForecastModel.load(tmp_path / "a")
    for s in series:
        np.testing.assert_allclose(again.forecast(s).median, a.forecast(s).median)


@pytest.mark.parametrize("series_id", [True, False])
def test_global_smoke_fit_beats_naive_on_seasonal_series(tmp_path, series_id):
    series = panel()
    cand = candidate(steps=150)._replace(series_id=series_id)
    model = fit_global(series, training_lengths(series), cand, tmp_path / "run")
    for s in series:
        metrics = model.evaluate(s)
        assert metrics["horizon"] == s.horizon and metrics["train_length"] == len(s) - s.horizon
        assert metrics["mase"] < metrics["naive_mase"]


def test_partner_averages_the_rnn_with_its_baseline(tmp_path):
    series = panel()
    model = fit_global(series, training_lengths(series), candidate(), tmp_path / "run",
                       partners=("seasonal_naive", "none"))
    s = series[0]
    alone = model.forecast(s, partner="none").median
    expected = (alone + fe.seasonal_naive(s.values, 12, 12)) / 2
    np.testing.assert_allclose(model.forecast(s).median, expected)
    np.testing.assert_allclose(model.forecast(series[1]).median,
                               model.forecast(series[1], partner="none").median)


def test_global_tuning_never_sees_the_test_part(tmp_path):
    """Backtest scores, the chosen candidate, the partners and the final weights are the
    same when every test part is scrambled."""
    cands = [candidate(steps=10, anchor="seasonal"), candidate(steps=10, anchor="last")]
    runs = [tune_and_fit_global(p, cands, tmp_path / name, folds=2, final_ensemble=3)
            for p, name in ((panel(), "a"), (panel(scramble_tests=True), "b"))]
    (a, choice_a), (b, choice_b) = runs
    assert [r.series for r in choice_a.backtests] == [r.series for r in choice_b.backtests]
    assert choice_a.candidate == choice_b.candidate and choice_a.partners == choice_b.partners
    assert choice_a.candidate.settings.ensemble == 3 and a.model.config.ensemble == 3
    assert a.data == b.data and a.scalers == b.scalers
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_global_config_is_checked():
    series = panel()
    with pytest.raises(ValueError, match="covariates must be one of"):
        data_config(series, covariates="calendar")
    with pytest.raises(ValueError, match="partners must name one per series"):
        data_config(series, partners=("ets",))
    data = data_config(series)
    model = ForecasterConfig(horizon=12, num_covariates=data.num_covariates)
    with pytest.raises(ValueError, match="must follow data.names"):
        GlobalForecastTask(series[::-1], training_lengths(series), data, model)
    with pytest.raises(ValueError, match="holds no window"):
        GlobalForecastTask(series, [20, 20], data, model)


def test_bench_forecast_global_smoke(tmp_path, monkeypatch, capsys):
    """bench/forecast.py --global on two bundled series, tiny settings: a row per series
    with the chosen partner and the RNN-alone score."""
    import importlib
    import json
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "bench"))
    bench = importlib.import_module("forecast")
    out = tmp_path / "forecast.json"
    assert bench.main(["--global", "--series", "airline,lynx", "--no-baselines", "--steps", "5",
                       "--folds", "1", "--ensemble", "1", "--backtest-ensemble", "1",
                       "--anchors", "seasonal_diff", "--series-id", "yes",
                       "--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["series"] for r in rows] == ["airline", "lynx"]
    for r in rows:
        assert r["chosen"]["anchor"] == "seasonal_diff" and "mase_rnn_alone" in r
        assert set(r["partner_backtest"]) == {"none", "seasonal_naive", "ets"}
    assert "recur (global" in capsys.readouterr().out
    sys.modules.pop("forecast", None)
