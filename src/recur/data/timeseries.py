"""Time series for forecasting: CSV reading, the bundled registry, scaling, calendar features
and windows.

A ``TimeSeries`` is one column of values with its dates (or none), its frequency, its
seasonal period ``m`` and a default horizon. It comes from a CSV file::

    series = read_csv_series("sales.csv", column="units", date_column="date")

or from the registry of real series shipped inside installed packages (the ``[forecast]``
extra: statsmodels and pmdarima; nothing is downloaded)::

    series = load_series("airline")          # 144 monthly totals, m = 12, horizon 12

The forecasting split is always the same: the last ``horizon`` values are the test part,
everything before is the training part. Scaling (``Scaler.fit``) and tuning only ever see
the training part; ``make_windows`` cuts (input, target) windows out of one array, so a
caller that passes the training part cannot leak a test value into a window (tested).

Data rules (documented in docs/forecasting.md): dates must parse and be unique and
sorted (an unsorted file is an error, not silently sorted); values must be numeric;
missing values are reported and filled by linear interpolation inside the series (leading
or trailing gaps are an error); a series must be longer than ``horizon + 2·m`` to have a
training part with a seasonal scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

FORECAST_EXTRA = "pip install 'recur[forecast]'"


@dataclass(frozen=True)
class TimeSeries:
    """One real-valued series.

    Attributes:
        name: a short name (registry key or CSV column).
        values: (N,) float64, no NaN (gaps were filled; ``missing`` says how many).
        dates: (N,) ``datetime64[s]`` or None when the series has only an order.
        freq: a pandas frequency alias (``"MS"``, ``"QS-OCT"``, ``"30min"``...) or None.
        period: the seasonal period m (1: no seasonality) used by seasonal naive and MASE.
        horizon: the default forecast horizon (the test part's length).
        missing: how many values were missing and filled by interpolation.
        source: where the values came from (for docs and reports).
    """

    name: str
    values: np.ndarray
    dates: np.ndarray | None = None
    freq: str | None = None
    period: int = 1
    horizon: int = 1
    missing: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"values must be 1-D, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"series {self.name!r}: values must be finite after filling gaps")
        object.__setattr__(self, "values", values)
        if self.dates is not None:
            dates = np.asarray(self.dates, dtype="datetime64[s]")
            if dates.shape != values.shape:
                raise ValueError(f"dates must match values: {dates.shape} vs {values.shape}")
            object.__setattr__(self, "dates", dates)
        for name in ("period", "horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")

    def __len__(self) -> int:
        return len(self.values)

    def split(self, horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(train, test): the test part is the last ``horizon`` values."""
        h = self.horizon if horizon is None else horizon
        check_horizon(self, h)
        return self.values[:-h], self.values[-h:]

    def future_dates(self, count: int, start: int | None = None) -> np.ndarray | None:
        """Dates of the ``count`` steps after position ``start`` (default: the end)."""
        if self.dates is None:
            return None
        import pandas as pd

        start = len(self) if start is None else start
        anchor = pd.Timestamp(self.dates[start - 1])
        # No regular frequency (e.g. trading days): business days stand in.
        index = pd.date_range(anchor, periods=count + 1, freq=self.freq or "B")[1:]
        return index.values.astype("datetime64[s]")


def check_horizon(series: TimeSeries, horizon: int) -> None:
    """The series must keep a training part of at least ``2·m + 2`` values after the test."""
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon must be a positive int, got {horizon!r}")
    need = horizon + 2 * series.period + 2
    if len(series) < need:
        raise ValueError(
            f"horizon {horizon} is too long for series {series.name!r} of {len(series)} values "
            f"with period {series.period}: it needs at least horizon + 2·period + 2 = {need}"
        )


# -- CSV ----------------------------------------------------------------------------------------


def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the forecast extra
        raise ImportError(f"time-series CSV reading needs pandas: {FORECAST_EXTRA}") from None
    return pd


def read_csv_series(
    path: str | Path,
    column: str | None = None,
    date_column: str | None = None,
    freq: str | None = None,
    period: int | None = None,
    horizon: int | None = None,
) -> TimeSeries:
    """Read one value column of a CSV file as a ``TimeSeries``.

    Args:
        path: the CSV file (header row required).
        column: the value column; default: the only numeric-looking column besides the date.
        date_column: the date column; default: ``date``/``ds``/``time``/``timestamp``/
            ``month``/``year`` if one exists, else none (the rows are taken in file order).
        freq: a pandas frequency alias; default: inferred from the dates (None if they are
            irregular, e.g. trading days; then the series is indexed by position only).
        period: the seasonal period m; default: from the frequency (12 for monthly, 4
            quarterly, 7 daily, 5 business days, 24 hourly, 48 half-hourly, 52 weekly, 1
            otherwise).
        horizon: the default horizon; default: the period (if > 1), else min(12, N // 10).

    Raises ValueError naming the problem: a missing column, non-numeric values, dates that
    do not parse, duplicate or unsorted dates, leading/trailing missing values.
    """
    pd = _pandas()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--csv {path} does not exist")
    frame = pd.read_csv(path)
    if frame.empty:
        raise ValueError(f"{path} has no rows")
    columns = [str(c) for c in frame.columns]
    if date_column is None:
        for candidate in ("date", "ds", "time", "timestamp", "datetime", "month", "year", "period"):
            match = [c for c in columns if c.lower() == candidate]
            if match:
                date_column = match[0]
                break
    elif date_column not in columns:
        raise ValueError(f"--date-column {date_column!r} is not a column of {path}; "
                         f"columns are {', '.join(columns)}")
    if column is None:
        rest = [c for c in columns if c != date_column]
        if len(rest) != 1:
            raise ValueError(f"{path} has value columns {', '.join(rest)}: choose one with --column")
        column = rest[0]
    elif column not in columns:
        raise ValueError(f"--column {column!r} is not a column of {path}; columns are "
                         f"{', '.join(columns)}")

    raw = frame[column]
    numeric = pd.to_numeric(raw, errors="coerce")
    bad = numeric.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"column {column!r} of {path} must be numeric, got {raw.iloc[row]!r} "
                         f"on data row {row + 1}")
    values = numeric.to_numpy(dtype=np.float64)

    dates = None
    if date_column is not None:
        raw_dates = frame[date_column]
        try:
            if pd.api.types.is_integer_dtype(raw_dates) and raw_dates.between(1, 9999).all():
                parsed = pd.to_datetime(raw_dates.astype(str), format="%Y")  # a year column
            else:
                parsed = pd.to_datetime(raw_dates, errors="raise")
        except (ValueError, TypeError) as error:
            raise ValueError(f"date column {date_column!r} of {path} does not parse as "
                             f"dates: {error}") from None
        index = pd.DatetimeIndex(parsed)
        if index.has_duplicates:
            dup = index[index.duplicated()][0]
            raise ValueError(f"date column {date_column!r} of {path} has duplicate dates, "
                             f"e.g. {dup.date()}: aggregate them first")
        if not index.is_monotonic_increasing:
            row = int(np.flatnonzero(np.diff(index.asi8) < 0)[0]) + 1
            raise ValueError(f"date column {date_column!r} of {path} is not sorted (row "
                             f"{row + 1}: {index[row]} after {index[row - 1]}): sort the file")
        dates = index.values.astype("datetime64[s]")
        if freq is None and len(index) >= 3:
            freq = infer_freq(index)
    return make_series(column, values, dates, freq=freq, period=period, horizon=horizon,
                       source=str(path))


def infer_freq(index) -> str | None:
    """pandas' inferred frequency alias of a DatetimeIndex, or None if it is irregular."""
    pd = _pandas()
    try:
        with pd.option_context("future.infer_freq_returns_offset", True):
            offset = pd.infer_freq(index)
    except (KeyError, pd.errors.OptionError):  # older pandas: a string already
        return pd.infer_freq(index)
    return None if offset is None else getattr(offset, "freqstr", str(offset))


PERIODS = {"MS": 12, "ME": 12, "M": 12, "QS": 4, "QE": 4, "Q": 4, "D": 7, "B": 5, "h": 24,
           "H": 24, "30min": 48, "30T": 48, "W": 52, "YS": 1, "YE": 1, "Y": 1, "A": 1, "AS": 1}


def period_for(freq: str | None) -> int:
    """The usual seasonal period of a pandas frequency alias (1 if unknown)."""
    if freq is None:
        return 1
    base = freq.split("-")[0]
    return PERIODS.get(base, 1)


def make_series(name: str, values: Any, dates: Any = None, *, freq: str | None = None,
                period: int | None = None, horizon: int | None = None,
                source: str = "") -> TimeSeries:
    """A ``TimeSeries`` from raw values with gaps (NaN) filled by linear interpolation.

    Leading or trailing gaps are an error (there is nothing to interpolate from).
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    count = int(missing.sum())
    if count:
        if missing.all():
            raise ValueError(f"series {name!r} has no values")
        if missing[0] or missing[-1]:
            where = "starts" if missing[0] else "ends"
            raise ValueError(f"series {name!r} {where} with missing values: trim them first")
        positions = np.arange(len(values))
        values = values.copy()
        values[missing] = np.interp(positions[missing], positions[~missing], values[~missing])
    period = period_for(freq) if period is None else period
    if horizon is None:
        horizon = max(period, 1) if period > 1 else max(1, min(12, len(values) // 10))
    return TimeSeries(name, values, dates, freq, period, horizon, count, source)


# -- the registry of bundled series -----------------------------------------------------------


@dataclass(frozen=True)
class RegisteredSeries:
    """How to load one bundled series and what its forecasting problem is."""

    name: str
    description: str
    package: str
    period: int
    horizon: int
    load: Callable[[], tuple[np.ndarray, np.ndarray | None, str | None]] = field(repr=False)


def _pmdarima(loader: str):
    try:
        import pmdarima.datasets as datasets
    except ImportError:
        raise ImportError(f"the bundled series need pmdarima: {FORECAST_EXTRA}") from None
    return getattr(datasets, loader)


def _statsmodels_datasets():
    try:
        import statsmodels.datasets as datasets
    except ImportError:
        raise ImportError(f"the bundled series need statsmodels: {FORECAST_EXTRA}") from None
    return datasets


def _dated(values, start: str, freq: str):
    import pandas as pd

    dates = pd.date_range(start, periods=len(values), freq=freq).values.astype("datetime64[s]")
    return np.asarray(values, dtype=np.float64), dates, freq


def _airline():
    return _dated(_pmdarima("load_airpassengers")(), "1949-01-01", "MS")


def _co2():
    frame = _statsmodels_datasets().co2.load_pandas().data       # weekly, with gaps
    monthly = frame["co2"].resample("MS").mean()                  # months with no week: NaN
    return (monthly.to_numpy(np.float64), monthly.index.values.astype("datetime64[s]"), "MS")


def _sunspots():
    frame = _statsmodels_datasets().sunspots.load_pandas().data  # 1700-2008, yearly
    return _dated(frame["SUNACTIVITY"].to_numpy(), "1700-01-01", "YS")


def _lynx():
    return _dated(_pmdarima("load_lynx")(), "1821-01-01", "YS")


def _taylor():
    # Half-hourly electricity demand in England and Wales, Monday 5 June to Sunday 27
    # August 2000 (Taylor 2003), as R's forecast::taylor.
    return _dated(_pmdarima("load_taylor")(), "2000-06-05", "30min")


def _wineind():
    return _dated(_pmdarima("load_wineind")(), "1980-01-01", "MS")


def _ausbeer():
    values = np.asarray(_pmdarima("load_ausbeer")(), dtype=np.float64)
    values = values[: np.flatnonzero(np.isfinite(values))[-1] + 1]  # the last quarter is NaN
    return _dated(values, "1956-01-01", "QS")


MSFT_DAYS = 1000


def _msft():
    frame = _pmdarima("load_msft")()
    frame = frame.iloc[-MSFT_DAYS:]
    dates = np.asarray(frame["Date"].to_numpy(), dtype="datetime64[s]")
    return frame["Close"].to_numpy(np.float64), dates, None  # trading days: no regular freq


REGISTRY: dict[str, RegisteredSeries] = {
    s.name: s for s in [
        RegisteredSeries("airline", "monthly international airline passengers (thousands), "
                         "1949-1960 (Box & Jenkins)", "pmdarima", 12, 12, _airline),
        RegisteredSeries("co2", "Mauna Loa CO2 (ppm), weekly 1958-2001 averaged to months",
                         "statsmodels", 12, 24, _co2),
        RegisteredSeries("sunspots", "yearly sunspot numbers 1700-2008 (~11-year cycle)",
                         "statsmodels", 11, 11, _sunspots),
        RegisteredSeries("lynx", "yearly Canadian lynx trappings 1821-1934 (~10-year cycle)",
                         "pmdarima", 10, 10, _lynx),
        RegisteredSeries("taylor", "half-hourly electricity demand (MW), England and Wales, "
                         "12 weeks of summer 2000 (weekly period 336)", "pmdarima", 336, 48,
                         _taylor),
        RegisteredSeries("wineind", "monthly Australian wine sales (litres), 1980-1994",
                         "pmdarima", 12, 12, _wineind),
        RegisteredSeries("ausbeer", "quarterly Australian beer production (megalitres), "
                         "1956-2008", "pmdarima", 4, 8, _ausbeer),
        RegisteredSeries("msft", f"Microsoft daily close (USD), the last {MSFT_DAYS} trading "
                         "days to 2017-11-10 (weekly period 5)", "pmdarima", 5, 20, _msft),
    ]
}
PANEL = tuple(REGISTRY)


def load_series(name: str) -> TimeSeries:
    """A bundled series by registry name (see ``REGISTRY``); nothing is downloaded."""
    if name not in REGISTRY:
        raise ValueError(f"--series must be one of {', '.join(REGISTRY)}, got {name!r}")
    entry = REGISTRY[name]
    values, dates, freq = entry.load()
    return make_series(name, values, dates, freq=freq, period=entry.period,
                       horizon=entry.horizon, source=f"{entry.package}: {entry.description}")


# -- scaling --------------------------------------------------------------------------------------


class Scaler(NamedTuple):
    """``z = (f(y) - mean) / std`` with f = identity or log, fitted on a training part.

    A constant training part has std 0: it is an error to fit on it (nothing to learn).
    """

    transform: str  # "none" | "log"
    mean: float
    std: float

    @classmethod
    def fit(cls, train: np.ndarray, transform: str = "none") -> Scaler:
        if transform not in ("none", "log"):
            raise ValueError(f"transform must be 'none' or 'log', got {transform!r}")
        if transform == "log" and np.min(train) <= 0:
            raise ValueError(f"transform 'log' needs positive values, got minimum "
                             f"{np.min(train):g}")
        f = np.log(train) if transform == "log" else np.asarray(train, dtype=np.float64)
        std = float(np.std(f))
        if not std > 1e-12 * max(1.0, abs(float(np.mean(f)))):
            raise ValueError(f"the training part is constant ({float(train[0]):g} throughout): "
                             "there is nothing to learn; its forecast is that constant")
        return cls(transform, float(np.mean(f)), std)

    def apply(self, y: np.ndarray) -> np.ndarray:
        f = np.log(y) if self.transform == "log" else np.asarray(y, dtype=np.float64)
        return (f - self.mean) / self.std

    def invert(self, z: np.ndarray) -> np.ndarray:
        f = np.asarray(z, dtype=np.float64) * self.std + self.mean
        return np.exp(f) if self.transform == "log" else f


# -- calendar / seasonal covariates -----------------------------------------------------------


def covariate_count(kind: str, series_freq: str | None, has_dates: bool) -> int:
    """How many covariate columns ``covariates`` returns for this kind and series."""
    return len(_covariate_parts(kind, series_freq, has_dates)) * 2


def _covariate_parts(kind: str, freq: str | None, has_dates: bool) -> list[str]:
    if kind == "none":
        return []
    if kind == "phase":
        return ["phase"]
    if kind != "calendar":
        raise ValueError(f"covariates must be one of none, phase, calendar, got {kind!r}")
    if not has_dates:
        return ["phase"]
    base = (freq or "B").split("-")[0]
    if base in ("MS", "ME", "M", "W"):
        return ["month"]
    if base in ("QS", "QE", "Q"):
        return ["quarter"]
    if base in ("D", "B"):
        return ["weekday"]
    if base.endswith(("min", "T", "h", "H")):
        return ["time_of_day", "weekday"]
    return ["phase"]  # yearly: no calendar, the seasonal phase stands in


def covariates(kind: str, positions: np.ndarray, period: int, dates: np.ndarray | None,
               freq: str | None) -> np.ndarray:
    """(len(positions), K) sin/cos features known in advance for every step.

    ``phase`` encodes ``position mod period``; ``calendar`` encodes the month / quarter /
    weekday / time of day of the dates (``phase`` where the series has no dates).
    """
    parts = _covariate_parts(kind, freq, dates is not None)
    columns = []
    for part in parts:
        if part == "phase":
            angle = 2 * math.pi * (np.asarray(positions) % period) / max(period, 1)
        else:
            import pandas as pd

            index = pd.DatetimeIndex(dates)
            if part == "month":
                angle = 2 * math.pi * (index.month.to_numpy() - 1) / 12
            elif part == "quarter":
                angle = 2 * math.pi * (index.quarter.to_numpy() - 1) / 4
            elif part == "weekday":
                angle = 2 * math.pi * index.day_of_week.to_numpy() / 7
            else:
                minutes = index.hour.to_numpy() * 60 + index.minute.to_numpy()
                angle = 2 * math.pi * minutes / 1440
        columns += [np.sin(angle), np.cos(angle)]
    if not columns:
        return np.zeros((len(positions), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)


# -- windows ----------------------------------------------------------------------------------


ANCHORS = ("none", "last", "seasonal", "seasonal_diff")


def first_origin(input_length: int, anchor: str, period: int) -> int:
    """The first position a window's targets can start at: its input needs
    ``input_length`` values, a seasonal baseline one period, seasonal-difference inputs
    ``input_length + period``."""
    if anchor == "seasonal_diff":
        return input_length + period
    return max(input_length, period if anchor == "seasonal" else 0)


class Windows(NamedTuple):
    """(input, target) windows cut from one scaled array.

    inputs: (N, L, 1 + K) — the scaled value (minus the last input value unless the anchor
        is ``none``; its seasonal difference with ``seasonal_diff``), then K covariates.
    future: (N, h, K) — the covariates of the target steps (known in advance).
    targets: (N, h) — the scaled targets minus ``baseline``.
    baseline: (N, h) float64 — what the model's output is added to: 0 (``none``), the last
        input value (``last``) or the seasonal naive forecast from the origin (``seasonal``,
        ``seasonal_diff``);
        kept in float64 so a zero correction inverts to the baseline forecast exactly.
    origins: (N,) — index of the first target step in the source array.
    """

    inputs: np.ndarray
    future: np.ndarray
    targets: np.ndarray
    baseline: np.ndarray
    origins: np.ndarray


def make_windows(z: np.ndarray, cov: np.ndarray, input_length: int, horizon: int,
                 origins: np.ndarray | None = None, anchor: str = "last",
                 period: int = 1) -> Windows:
    """Every window whose input, seasonal baseline and target lie inside ``z``.

    Args:
        z: (N,) scaled values — pass only the training part when training.
        cov: (N + extra, K) covariates aligned with z (may run past N: the future is known).
        input_length: L.
        horizon: h.
        origins: first target index of each window (default: every valid t up to N - h).
        anchor: ``last`` — inputs and targets relative to the last input value (level-free);
            ``seasonal`` — inputs as ``last``, targets relative to the seasonal naive forecast
            ``z[t - m + (k mod m)]`` (the model learns a correction to it);
            ``seasonal_diff`` — targets as ``seasonal``, inputs the seasonal differences
            ``z[s] - z[s - m]`` (what the correction to seasonal naive follows from, as in a
            seasonal AR on the seasonally differenced series); ``none``.
        period: m, for the seasonal anchors.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    N = len(z)
    first = first_origin(input_length, anchor, period)
    if origins is None:
        origins = np.arange(first, N - horizon + 1)
    origins = np.asarray(origins, dtype=np.int64)
    if len(origins) and (origins.min() < first or origins.max() + horizon > N):
        raise ValueError(f"window origins must lie in [{first}, {N - horizon}], got "
                         f"[{origins.min()}, {origins.max()}]")
    past = origins[:, None] + np.arange(-input_length, 0)[None, :]     # (N, L)
    ahead = origins[:, None] + np.arange(horizon)[None, :]              # (N, h)
    last = z[origins - 1] if anchor != "none" else np.zeros(len(origins))
    if anchor in ("seasonal", "seasonal_diff"):
        season = origins[:, None] - period + (np.arange(horizon) % period)[None, :]
        baseline = z[season]                                            # (N, h)
    else:
        baseline = np.repeat(last[:, None], horizon, axis=1)            # (N, h)
    if anchor == "seasonal_diff":
        x = z[past] - z[past - period]                                  # (N, L)
    else:
        x = z[past] - last[:, None]                                     # (N, L)
    inputs = np.concatenate([x[:, :, None], cov[past]], axis=2).astype(np.float32)
    return Windows(inputs, cov[ahead].astype(np.float32),
                   (z[ahead] - baseline).astype(np.float32), baseline.astype(np.float64),
                   origins)


def last_window(z: np.ndarray, cov: np.ndarray, input_length: int, horizon: int,
                anchor: str = "last", period: int = 1) -> Windows:
    """The one window whose input is the last ``input_length`` values of z (targets zero):
    what a forecast from the end of z reads. ``cov`` must cover len(z) + horizon steps."""
    N = len(z)
    need = first_origin(input_length, anchor, period)
    if N < need:
        raise ValueError(f"the series has {N} values before the forecast origin, the model "
                         f"needs {need}")
    if len(cov) < N + horizon:
        raise ValueError(f"covariates must cover {N + horizon} steps, got {len(cov)}")
    padded = np.concatenate([z, np.zeros(horizon)])
    return make_windows(padded, cov, input_length, horizon, origins=np.array([N]),
                        anchor=anchor, period=period)
