"""Forecast accuracy metrics and the baselines recur is compared with.

Metrics (y the test values, ŷ the forecast, both (h,); ``train`` the training part; m the
seasonal period)::

    MAE   = mean |y − ŷ|
    RMSE  = sqrt(mean (y − ŷ)²)
    sMAPE = mean 200·|y − ŷ| / (|y| + |ŷ|)            percent, 0..200 (M4's definition)
    MASE  = MAE / mean_{t>m} |train_t − train_{t−m}|   the in-sample seasonal-naive MAE
                                                       (Hyndman & Koehler 2006)

Baselines, each fitted on the training part only and forecasting its next h values:

* ``naive``: the last training value, repeated.
* ``seasonal_naive``: the value one period m earlier (y_{T+k} = y_{T+k−m·ceil(k/m)}).
* ``ets``: statsmodels ``ETSModel``, the lowest-AIC of additive/multiplicative error,
  none/additive damped trend, none/additive/multiplicative season (multiplicative only for
  positive series; season only when the training part holds two periods; for m > 52 the
  initial states come from statsmodels' heuristic rather than being estimated).
* ``arima``: pmdarima's ``auto_arima`` (stepwise AIC search over statsmodels SARIMAX);
  seasonal with period m when m ≤ 52; for longer periods (Taylor's 336 half-hours) it is
  fitted to the seasonally differenced series and integrated back, i.e. a
  SARIMA(p,d,q)(0,1,0)_m.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from recur.data.timeseries import FORECAST_EXTRA


def _pair(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if y.shape != pred.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y and pred must be 1-D of one non-zero length, got {y.shape} and "
                         f"{pred.shape}")
    return y, pred


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = _pair(y, pred)
    return float(np.mean(np.abs(y - pred)))


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    y, pred = _pair(y, pred)
    return float(np.sqrt(np.mean((y - pred) ** 2)))


def smape(y: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric MAPE in percent; a step where y and ŷ are both 0 counts as 0 error."""
    y, pred = _pair(y, pred)
    denominator = np.abs(y) + np.abs(pred)
    terms = np.divide(200.0 * np.abs(y - pred), denominator, out=np.zeros_like(y),
                      where=denominator > 0)
    return float(np.mean(terms))


def seasonal_scale(train: np.ndarray, period: int) -> float:
    """The in-sample MAE of the seasonal naive forecast: mean |y_t − y_{t−m}|."""
    train = np.asarray(train, dtype=np.float64)
    if len(train) <= period:
        raise ValueError(f"MASE needs a training part longer than the period {period}, got "
                         f"{len(train)} values")
    return float(np.mean(np.abs(train[period:] - train[:-period])))


def mase(y: np.ndarray, pred: np.ndarray, train: np.ndarray, period: int) -> float:
    scale = seasonal_scale(train, period)
    if scale == 0:
        raise ValueError("MASE is undefined: the training part repeats itself exactly every "
                         f"{period} steps (its seasonal-naive error is 0)")
    return mae(y, pred) / scale


def all_metrics(y: np.ndarray, pred: np.ndarray, train: np.ndarray, period: int) -> dict:
    return {"mae": mae(y, pred), "rmse": rmse(y, pred), "smape": smape(y, pred),
            "mase": mase(y, pred, train, period)}


# -- baselines ---------------------------------------------------------------------------------


def naive(train: np.ndarray, horizon: int, period: int = 1) -> np.ndarray:
    return np.full(horizon, float(train[-1]))


def seasonal_naive(train: np.ndarray, horizon: int, period: int) -> np.ndarray:
    train = np.asarray(train, dtype=np.float64)
    if len(train) < period:
        raise ValueError(f"seasonal naive needs at least one period ({period}) of data, got "
                         f"{len(train)}")
    last_season = train[-period:]
    return np.array([last_season[k % period] for k in range(horizon)])


def ets_select(train: np.ndarray, period: int,
               errors: tuple[str, ...] = ("add", "mul")) -> tuple[dict, Any]:
    """The lowest-AIC ETSModel for ``train``: (its keyword arguments, the fitted results)."""
    try:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    except ImportError:
        raise ImportError(f"the ETS baseline needs statsmodels: {FORECAST_EXTRA}") from None
    train = np.asarray(train, dtype=np.float64)
    positive = bool(np.min(train) > 0)
    seasonal_ok = period > 1 and len(train) >= 2 * period + 2
    # A long season (Taylor's 336 half-hours) would make its initial states hundreds of
    # free parameters: start them from statsmodels' heuristic instead of estimating them.
    init = {"initialization_method": "heuristic"} if period > 52 else {}
    best, best_aic = None, math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for error in errors if positive else ("add",):
            for trend in (None, "add"):
                for seasonal in ((None, "add", "mul") if positive else (None, "add")):
                    if seasonal is not None and not seasonal_ok:
                        continue
                    spec = {"error": error, "trend": trend, "damped_trend": trend is not None,
                            "seasonal": seasonal, "seasonal_periods": period if seasonal else None,
                            **init}
                    try:
                        fitted = ETSModel(train, **spec).fit(disp=False, maxiter=200)
                    except (ValueError, np.linalg.LinAlgError):
                        continue
                    if math.isfinite(fitted.aic) and fitted.aic < best_aic \
                            and np.all(np.isfinite(fitted.forecast(1))):
                        best, best_aic = (spec, fitted), fitted.aic
    if best is None:
        raise RuntimeError("no ETS model could be fitted")
    return best


def ets(train: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """The lowest-AIC statsmodels ETSModel forecast (see the module docstring)."""
    _, fitted = ets_select(train, period)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fitted.forecast(horizon), dtype=np.float64)


def arima_order(train: np.ndarray, period: int, search: dict | None = None):
    """The auto_arima model chosen for ``train`` (see the module docstring); ``search``
    overrides auto_arima's search limits (``max_p``, ``max_q``, ``d``...)."""
    try:
        import pmdarima
    except ImportError:
        raise ImportError(f"the ARIMA baseline needs pmdarima: {FORECAST_EXTRA}") from None
    seasonal = 1 < period <= 52 and len(train) >= 2 * period + 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pmdarima.auto_arima(np.asarray(train, dtype=np.float64), seasonal=seasonal,
                                   m=period if seasonal else 1, stepwise=True,
                                   suppress_warnings=True, error_action="ignore",
                                   information_criterion="aic", **(search or {}))


def arima(train: np.ndarray, horizon: int, period: int, search: dict | None = None) -> np.ndarray:
    train = np.asarray(train, dtype=np.float64)
    if period > 52:
        differenced = train[period:] - train[:-period]
        steps = arima_order(differenced, 1, search).predict(horizon)
        out = list(train[-period:])
        for k in range(horizon):
            out.append(out[k] + float(steps[k]))  # y_{T+k} = y_{T+k-m} + Δ_m y_{T+k}
        return np.array(out[period:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(arima_order(train, period, search).predict(horizon), dtype=np.float64)


BASELINES: dict[str, Callable[[np.ndarray, int, int], np.ndarray]] = {
    "naive": naive, "seasonal_naive": seasonal_naive, "ets": ets, "arima": arima,
}
