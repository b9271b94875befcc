"""Time-series data: CSV rules, the bundled registry, scaling and leak-free windows."""

import numpy as np
import pytest

from recur.data.timeseries import (
    Scaler,
    check_horizon,
    covariate_count,
    covariates,
    last_window,
    make_series,
    make_windows,
    read_csv_series,
)

pd = pytest.importorskip("pandas")


def write_csv(tmp_path, rows, header="date,value"):
    path = tmp_path / "series.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def monthly_rows(values, start="2000-01-01"):
    dates = pd.date_range(start, periods=len(values), freq="MS")
    return [f"{d.date()},{v}" for d, v in zip(dates, values, strict=True)]


def test_csv_infers_monthly_frequency_and_period(tmp_path):
    path = write_csv(tmp_path, monthly_rows(np.arange(40.0) + 1))
    series = read_csv_series(path, column="value")
    assert series.freq == "MS" and series.period == 12 and series.horizon == 12
    assert series.dates[0] == np.datetime64("2000-01-01T00:00:00")
    assert series.values[-1] == 40.0
    assert str(series.future_dates(2)[0])[:10] == "2003-05-01"


def test_csv_given_frequency_and_period_win_over_inference(tmp_path):
    path = write_csv(tmp_path, monthly_rows(np.arange(40.0) + 1))
    series = read_csv_series(path, column="value", freq="MS", period=4, horizon=3)
    assert (series.period, series.horizon) == (4, 3)


def test_csv_missing_values_are_counted_and_interpolated(tmp_path):
    rows = monthly_rows([1.0, 2.0, "", "", 5.0] + list(range(6, 40)))
    series = read_csv_series(write_csv(tmp_path, rows), column="value")
    assert series.missing == 2
    np.testing.assert_allclose(series.values[:5], [1, 2, 3, 4, 5])


def test_csv_leading_gap_is_an_error(tmp_path):
    rows = monthly_rows(["", 2.0, 3.0] + list(range(4, 40)))
    with pytest.raises(ValueError, match="starts with missing values"):
        read_csv_series(write_csv(tmp_path, rows), column="value")


def test_csv_non_numeric_value_names_column_and_row(tmp_path):
    rows = monthly_rows([1.0, 2.0, "n/a?", 4.0] + list(range(5, 40)))
    with pytest.raises(ValueError, match=r"'value' .* must be numeric, got 'n/a\?' on data row 3"):
        read_csv_series(write_csv(tmp_path, rows), column="value")


def test_csv_unsorted_dates_are_an_error_not_silently_sorted(tmp_path):
    rows = monthly_rows(list(range(1, 40)))
    rows[5], rows[6] = rows[6], rows[5]
    with pytest.raises(ValueError, match="is not sorted"):
        read_csv_series(write_csv(tmp_path, rows), column="value")


def test_csv_duplicate_dates_are_an_error(tmp_path):
    rows = monthly_rows(list(range(1, 40)))
    rows[6] = rows[5].split(",")[0] + ",7"
    with pytest.raises(ValueError, match="duplicate dates"):
        read_csv_series(write_csv(tmp_path, rows), column="value")


def test_csv_unknown_column_lists_the_columns(tmp_path):
    path = write_csv(tmp_path, monthly_rows(list(range(1, 40))))
    with pytest.raises(ValueError, match="--column 'sales' is not a column .* date, value"):
        read_csv_series(path, column="sales")


def test_csv_year_column_parses_as_years(tmp_path):
    rows = [f"{1900 + i},{i}" for i in range(30)]
    series = read_csv_series(write_csv(tmp_path, rows, header="year,count"), column="count")
    assert str(series.dates[0])[:4] == "1900" and series.freq.startswith("YS")


def test_horizon_too_long_for_the_series():
    series = make_series("s", np.arange(30.0), period=12, horizon=12)
    check_horizon(series, 4)
    with pytest.raises(ValueError, match="horizon 12 is too long .* at least .* = 38"):
        check_horizon(series, 12)


def test_constant_training_part_is_a_clear_error():
    with pytest.raises(ValueError, match="training part is constant"):
        Scaler.fit(np.full(50, 3.0))


def test_scaler_round_trip_and_log():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    for transform in ("none", "log"):
        s = Scaler.fit(y, transform)
        np.testing.assert_allclose(s.invert(s.apply(y)), y)
    with pytest.raises(ValueError, match="needs positive values"):
        Scaler.fit(np.array([1.0, -1.0, 2.0]), "log")


def test_scaler_fitted_on_training_part_only():
    y = np.concatenate([np.arange(100.0), np.full(10, 1e6)])  # a huge test part
    train = y[:100]
    s = Scaler.fit(train)
    assert s.mean == pytest.approx(np.mean(train)) and s.std == pytest.approx(np.std(train))


def test_windows_never_reach_past_the_array_they_are_cut_from():
    z = np.arange(50.0)
    cov = np.zeros((60, 0), dtype=np.float32)
    w = make_windows(z, cov, input_length=8, horizon=5, anchor="none")
    assert len(w.origins) == 50 - 8 - 5 + 1
    assert w.targets.max() == 49.0 and w.inputs[..., 0].max() <= 49.0 - 5
    # every window: input is the 8 values right before the origin, target the 5 after
    i = 7
    o = w.origins[i]
    np.testing.assert_array_equal(w.inputs[i, :, 0], z[o - 8 : o])
    np.testing.assert_array_equal(w.targets[i], z[o : o + 5])
    with pytest.raises(ValueError, match="window origins must lie in"):
        make_windows(z, cov, 8, 5, origins=np.array([46]))


def test_training_windows_hold_no_test_value():
    """Values 1000+ exist only in the test part: no training window may contain one."""
    y = np.concatenate([np.sin(np.arange(120) / 3.0), 1000 + np.arange(12.0)])
    train = y[:-12]
    z = Scaler.fit(train).apply(train)
    w = make_windows(z, np.zeros((len(z), 0), np.float32), 24, 12, anchor="none")
    assert np.abs(w.inputs).max() < 10 and np.abs(w.targets).max() < 10


def test_anchor_subtracts_last_input_value():
    z = np.arange(20.0) * 2
    w = make_windows(z, np.zeros((20, 0), np.float32), 4, 2)
    np.testing.assert_array_equal(w.inputs[0, :, 0], [-6, -4, -2, 0])
    np.testing.assert_array_equal(w.targets[0], [2, 4])
    assert w.baseline[0, 0] == 6


def test_last_window_reads_the_end():
    z = np.arange(10.0)
    cov = np.zeros((13, 0), np.float32)
    w = last_window(z, cov, 4, 3, anchor="none")
    np.testing.assert_array_equal(w.inputs[0, :, 0], [6, 7, 8, 9])
    with pytest.raises(ValueError, match="covariates must cover 13"):
        last_window(z, cov[:12], 4, 3)


def test_calendar_covariates_encode_month_and_weekday():
    dates = pd.date_range("2001-01-01", periods=24, freq="MS").values
    c = covariates("calendar", np.arange(24), 12, dates, "MS")
    assert c.shape == (24, 2) == (24, covariate_count("calendar", "MS", True))
    np.testing.assert_allclose(c[0], c[12])              # January both years
    assert not np.allclose(c[0], c[6])
    half_hours = pd.date_range("2000-06-05", periods=48 * 8, freq="30min").values
    c = covariates("calendar", np.arange(len(half_hours)), 336, half_hours, "30min")
    assert c.shape[1] == 4
    np.testing.assert_allclose(c[0], c[48 * 7])            # same Monday 00:00 a week later
    phase = covariates("phase", np.arange(22), 11, None, None)
    np.testing.assert_allclose(phase[0], phase[11])


def test_seasonal_anchor_targets_are_corrections_to_seasonal_naive():
    z = np.arange(30.0)
    w = make_windows(z, np.zeros((30, 0), np.float32), 3, 5, anchor="seasonal", period=4)
    assert w.origins[0] == 4                                   # needs a full period behind it
    o = w.origins[2]
    expected = [z[o - 4], z[o - 3], z[o - 2], z[o - 1], z[o - 4]]  # y_{t+k-m·ceil((k+1)/m)}
    np.testing.assert_array_equal(w.baseline[2], expected)
    np.testing.assert_array_equal(w.targets[2] + w.baseline[2], z[o : o + 5])
    np.testing.assert_array_equal(w.inputs[2, :, 0], z[o - 3 : o] - z[o - 1])


def test_seasonal_diff_inputs_are_seasonal_differences():
    """``seasonal_diff``: targets as ``seasonal``, inputs z[s] - z[s - m], so a window needs
    L + m values behind its origin."""
    z = np.random.default_rng(0).normal(size=40)
    w = make_windows(z, np.zeros((40, 0), np.float32), 3, 5, anchor="seasonal_diff", period=4)
    seasonal = make_windows(z, np.zeros((40, 0), np.float32), 3, 5, anchor="seasonal", period=4,
                            origins=w.origins)
    assert w.origins[0] == 7
    o = w.origins[2]
    np.testing.assert_allclose(w.inputs[2, :, 0], z[o - 3 : o] - z[o - 7 : o - 4], rtol=1e-6)
    np.testing.assert_array_equal(w.baseline, seasonal.baseline)
    np.testing.assert_array_equal(w.targets, seasonal.targets)
    with pytest.raises(ValueError, match="needs 7"):
        last_window(z[:6], np.zeros((11, 0), np.float32), 3, 5, anchor="seasonal_diff", period=4)


@pytest.mark.parametrize("transform", ["none", "log"])
@pytest.mark.parametrize("anchor", ["none", "last", "seasonal", "seasonal_diff"])
def test_every_anchor_and_transform_inverts_exactly(anchor, transform):
    """The three target transforms — level, difference from the last value, difference
    from the value one season ago — invert back to the series: baseline + target, unscaled,
    is y; and a zero correction is exactly the level 0 / naive / seasonal naive forecast."""
    rng = np.random.default_rng(0)
    y = 100 + 10 * np.sin(np.arange(80) * 2 * np.pi / 12) + rng.normal(size=80).cumsum()
    scaler = Scaler.fit(y, transform)
    w = make_windows(scaler.apply(y), np.zeros((80, 0), np.float32), 24, 6, anchor=anchor,
                     period=12)
    ahead = w.origins[:, None] + np.arange(6)
    restored = scaler.invert(w.baseline + w.targets.astype(np.float64))
    np.testing.assert_allclose(restored, y[ahead], rtol=1e-6)     # targets are float32
    zero = scaler.invert(w.baseline)                             # a zero correction
    if anchor == "last":
        expected = np.repeat(y[w.origins - 1][:, None], 6, axis=1)
    elif anchor in ("seasonal", "seasonal_diff"):
        expected = y[w.origins[:, None] - 12 + np.arange(6)]
    else:
        expected = np.full((len(w.origins), 6), scaler.invert(np.zeros(1))[0])
    np.testing.assert_allclose(zero, expected, rtol=1e-12)
