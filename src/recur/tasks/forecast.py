"""Time-series forecasting: windows → Forecaster → h future steps, with quantile intervals.

    recur train forecast --series airline --out runs/airline [--tune]
    recur train forecast --csv FILE --column C [--date-column D] --horizon H --out DIR
    recur forecast DIR [--csv FILE] [--plot out.png] [--json]
    recur evaluate DIR [--data FILE] [--json]

The protocol (docs/forecasting.md): the last ``horizon`` values of a series are the test
part and are never seen by training, scaling or tuning. The scaler is fitted on the
training part. ``--tune`` picks the anchor (none / last value / seasonal naive) and the
transform (none / log) by rolling-origin backtesting inside the training part: for fold
k = 1..F the model is trained on ``train[:N − k·h]`` (scaler refitted on that) and scored
by MASE on the next h values; ``--tune-steps`` then backtests the winner with other
training lengths; the candidate with the lowest mean MASE is trained on the whole
training part (``--final-ensemble`` members, which may read different input lengths).

Training draws ``batches_per_epoch`` random windows per epoch (with replacement), so an
epoch costs the same on a 100-value series and on a 4,000-value one; it runs a fixed
number of optimizer steps (no early stopping on the test part — there is no validation
inside a run; the backtest is the validation).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recur.cells import CELLS
from recur.cells.base import check_choice, check_positive_int
from recur.data.timeseries import (
    ANCHORS,
    REGISTRY,
    Scaler,
    TimeSeries,
    check_horizon,
    covariate_count,
    covariates,
    first_origin,
    last_window,
    load_series,
    make_windows,
    read_csv_series,
)
from recur.models.forecaster import KINDS, Forecaster, ForecasterConfig
from recur.tasks.forecast_eval import all_metrics, naive, seasonal_naive
from recur.training import Task, TrainConfig, Trainer, register_task
from recur.training.checkpoint import load_checkpoint
from recur.training.task import StepOutput

TRANSFORMS = ("none", "log")
EVALUATE_NEEDS_DATA = False  # `recur evaluate DIR` re-reads the series the model was trained on
COVARIATES = ("none", "phase", "calendar")


@dataclass(frozen=True)
class ForecastDataConfig:
    """How a series becomes windows (saved in the checkpoint's config.json)."""

    input_length: int
    horizon: int
    transform: str = "none"          # none | log (fitted on the training part like the scaler)
    covariates: str = "calendar"     # none | phase | calendar
    anchor: str = "last"             # none | last | seasonal (see make_windows)
    period: int = 1                  # m, for the seasonal anchor
    batch_size: int = 64
    batches_per_epoch: int = 100

    def __post_init__(self) -> None:
        for name in ("input_length", "horizon", "batch_size", "batches_per_epoch"):
            check_positive_int(name, getattr(self, name))
        check_choice("transform", self.transform, TRANSFORMS)
        check_choice("covariates", self.covariates, COVARIATES)
        check_choice("anchor", self.anchor, ANCHORS)
        check_positive_int("period", self.period)

    @classmethod
    def from_dict(cls, data: dict) -> ForecastDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass(frozen=True)
class SeriesInfo:
    """Where the series came from, so evaluate / forecast can read it again."""

    name: str
    registry: bool
    path: str | None
    column: str | None
    date_column: str | None
    freq: str | None
    period: int
    train_length: int                # values the model was trained on (before the test part)

    def load(self, path: str | None = None) -> TimeSeries:
        if self.registry and path is None:
            return load_series(self.name)
        csv = path or self.path
        if csv is None:
            raise ValueError("this model was trained on a CSV file: give it with --csv/--data")
        return read_csv_series(csv, column=self.column, date_column=self.date_column,
                               freq=self.freq, period=self.period)


def series_covariates(kind: str, length: int, period: int, dates: np.ndarray | None,
                      freq: str | None) -> np.ndarray:
    """(length, K) covariates for positions 0..length-1 of a series whose known dates are
    ``dates`` (extended into the future with ``freq``, or business days if it has none)."""
    all_dates = None
    if dates is not None and kind == "calendar":
        import pandas as pd

        all_dates = dates[:length]
        if len(all_dates) < length:
            step = freq or "B"
            extra = pd.date_range(pd.Timestamp(dates[-1]), periods=length - len(dates) + 1,
                                  freq=step)[1:]
            all_dates = np.concatenate([all_dates, extra.values.astype("datetime64[s]")])
    return covariates(kind, np.arange(length), period, all_dates, freq)


class ForecastBatch(NamedTuple):
    inputs: torch.Tensor    # (B, L, 1+K)
    future: torch.Tensor    # (B, h, K)
    targets: torch.Tensor   # (B, h)


class ForecastTask(Task):
    """Windows of one scaled training part for the Trainer.

    Args:
        train: the training part (raw values); nothing after it is ever seen.
        cov: covariates covering at least len(train) steps.
        data: windowing config; model: the forecaster config; seed: the window sampling.
    """

    name = "forecast"

    def __init__(self, train: np.ndarray, cov: np.ndarray, data: ForecastDataConfig,
                 model: ForecasterConfig, series: SeriesInfo, seed: int = 0) -> None:
        self.data, self.model_config, self.series, self.seed = data, model, series, seed
        self.scaler = Scaler.fit(train, data.transform)
        z = self.scaler.apply(train)
        first = first_origin(data.input_length, data.anchor, data.period)
        if len(z) < first + data.horizon:
            raise ValueError(f"input_length {data.input_length} (or the period, with a seasonal "
                             f"anchor) + horizon {data.horizon} is longer than the training "
                             f"part ({len(z)} values)")
        self.windows = make_windows(z, cov[: len(z)], data.input_length, data.horizon,
                                    anchor=data.anchor, period=data.period)

    def build_model(self) -> nn.Module:
        return Forecaster(self.model_config)

    def train_batches(self, epoch: int):
        rng = np.random.default_rng(self.seed * 100_003 + epoch)
        w = self.windows
        for _ in range(self.data.batches_per_epoch):
            idx = rng.integers(0, len(w.origins), size=self.data.batch_size)
            yield ForecastBatch(torch.from_numpy(w.inputs[idx]), torch.from_numpy(w.future[idx]),
                                torch.from_numpy(w.targets[idx]))

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        net = getattr(model, "module", model)
        return StepOutput(net.loss(batch.inputs, batch.future, batch.targets),
                          len(batch.targets))

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data),
                "scaler": self.scaler._asdict(), "series": asdict(self.series)}


register_task("forecast", lambda configs, folder: Forecaster(
    ForecasterConfig.from_dict(configs["model"])))


# -- a trained forecaster ----------------------------------------------------------------------


class Forecast(NamedTuple):
    """A forecast in the series' own units.

    median: (h,) the point forecast. quantiles: (h, Q) at ``levels``. dates: (h,) or None.
    """

    median: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    dates: np.ndarray | None


class ForecastModel:
    """A trained forecaster with its scaler: ``ForecastModel.load(DIR).forecast(series)``."""

    def __init__(self, model: Forecaster, scaler: Scaler, data: ForecastDataConfig,
                 series: SeriesInfo) -> None:
        self.model, self.scaler, self.data, self.series = model.eval(), scaler, data, series

    @classmethod
    def load(cls, path: str | Path) -> ForecastModel:
        checkpoint = load_checkpoint(path, task="forecast")
        configs = checkpoint.config["configs"]
        return cls(checkpoint.model, Scaler(**configs["scaler"]),
                   ForecastDataConfig.from_dict(configs["data"]), SeriesInfo(**configs["series"]))

    @property
    def horizon(self) -> int:
        return self.data.horizon

    @torch.no_grad()
    def forecast(self, series: TimeSeries, end: int | None = None) -> Forecast:
        """Forecast the ``horizon`` steps after position ``end`` (default: the series' end),
        reading only values before ``end``."""
        end = len(series) if end is None else end
        if end < self.data.input_length:
            raise ValueError(f"the model reads {self.data.input_length} values, the series "
                             f"has {end} before the forecast origin")
        h = self.data.horizon
        z = self.scaler.apply(series.values[:end])
        cov = series_covariates(self.data.covariates, end + h, series.period, series.dates,
                                series.freq)
        window = last_window(z, cov, self.data.input_length, h, anchor=self.data.anchor,
                             period=self.data.period)
        out = self.model(torch.from_numpy(window.inputs), torch.from_numpy(window.future))
        scaled = out[0].double().numpy() + window.baseline[0][:, None]    # (h, Q)
        quantiles = self.scaler.invert(scaled)
        levels = self.model.config.quantiles
        dates = series.future_dates(h, start=end)
        return Forecast(quantiles[:, levels.index(0.5)], quantiles, levels, dates)

    def evaluate(self, series: TimeSeries) -> dict[str, Any]:
        """Test metrics: forecast the last ``horizon`` values from the values before them,
        with naive and seasonal-naive MASE on the same split for reference."""
        h = self.data.horizon
        check_horizon(series, h)
        return holdout_metrics(series, self.forecast(series, end=len(series) - h))


def holdout_metrics(series: TimeSeries, prediction: Forecast) -> dict[str, Any]:
    """Metrics of ``prediction``, a forecast of the last h = len(prediction.median) values of
    ``series`` made from the values before them; naive and seasonal-naive MASE on the same
    split for reference; the interval's coverage."""
    h = len(prediction.median)
    train, test = series.values[:-h], series.values[-h:]
    metrics = all_metrics(test, prediction.median, train, series.period)
    lo, hi = prediction.quantiles[:, 0], prediction.quantiles[:, -1]
    metrics["coverage"] = float(np.mean((test >= lo) & (test <= hi)))
    metrics["interval"] = [prediction.levels[0], prediction.levels[-1]]
    for name, baseline in (("naive", naive), ("seasonal_naive", seasonal_naive)):
        metrics[f"{name}_mase"] = all_metrics(test, baseline(train, h, series.period), train,
                                              series.period)["mase"]
    metrics.update(series=series.name, horizon=h, period=series.period,
                   train_length=len(train), missing=series.missing)
    return metrics


# -- training and tuning -----------------------------------------------------------------------


@dataclass(frozen=True)
class FitSettings:
    """The knobs of one forecaster fit (model + windows + optimisation)."""

    kind: str = "direct"
    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    input_length: int | None = None       # None: default_input_length(period)
    input_lengths: tuple[int, ...] | None = None   # per-member lengths (window: the longest)
    transform: str = "none"
    covariates: str = "calendar"
    anchor: str = "last"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    ensemble: int = 1
    steps: int = 200
    lr: float = 3e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS)
        check_choice("cell", self.cell, tuple(CELLS))
        check_positive_int("steps", self.steps)
        if self.input_length is not None:
            check_positive_int("input_length", self.input_length)
        if self.input_lengths is not None:
            if not self.input_lengths:
                raise ValueError("input_lengths must hold at least one length, got ()")
            for n in self.input_lengths:
                check_positive_int("input_lengths", n)
            object.__setattr__(self, "input_lengths", tuple(self.input_lengths))

    def window_length(self, period: int) -> int:
        """L, the window every member reads the end of."""
        if self.input_lengths:
            return max(self.input_lengths)
        return self.input_length or default_input_length(period)


def default_input_length(period: int) -> int:
    """3 periods, at least 16 and at most 96 steps (Taylor: 2 days of half-hours)."""
    return int(min(max(3 * period, 16), 96))


def default_input_lengths(period: int, train_length: int, horizon: int) -> tuple[int, ...]:
    """The ladder of member input lengths: ½, 1 and 1½ × ``default_input_length``, at least
    8, at most 96 steps and at most half of what the training part leaves for windows
    (``(train_length − horizon) / 2``), so even the shortest series keeps dozens of windows.

    airline (m 12): 18, 36, 54; ausbeer (m 4): 8, 16, 24; Taylor (m 336): 48, 96.
    """
    L = default_input_length(period)
    cap = max(8, min(96, (train_length - horizon) // 2))
    return tuple(sorted({min(max(n, 8), cap) for n in (L // 2, L, (3 * L) // 2)}))


def fit(series: TimeSeries, train_length: int, settings: FitSettings, out: str | Path,
        *, info: SeriesInfo | None = None, overwrite: bool = False,
        time_budget_min: float | None = None, quiet: bool = True) -> ForecastModel:
    """Train a forecaster on ``series.values[:train_length]`` only; return the trained model.

    The horizon is ``series.horizon``.
    """
    h = series.horizon
    train = series.values[:train_length]
    L = settings.window_length(series.period)
    data = ForecastDataConfig(input_length=L, horizon=h, transform=settings.transform,
                              covariates=settings.covariates, anchor=settings.anchor,
                              period=series.period, batch_size=settings.batch_size)
    K = covariate_count(settings.covariates, series.freq, series.dates is not None)
    model = ForecasterConfig(horizon=h, num_covariates=K, kind=settings.kind, cell=settings.cell,
                             hidden_size=settings.hidden_size, num_layers=settings.num_layers,
                             quantiles=settings.quantiles, ensemble=settings.ensemble,
                             input_lengths=settings.input_lengths or (L,))
    info = info or SeriesInfo(series.name, series.name in REGISTRY, None, None, None,
                              series.freq, series.period, train_length)
    info = replace(info, train_length=train_length, freq=series.freq, period=series.period)
    cov = series_covariates(settings.covariates, train_length, series.period, series.dates,
                            series.freq)
    task = ForecastTask(train, cov, data, model, info, seed=settings.seed)
    train_task(task, settings, out, overwrite=overwrite, time_budget_min=time_budget_min,
               quiet=quiet)
    return ForecastModel.load(out)


def train_task(task: Task, settings: FitSettings, out: str | Path, *, overwrite: bool = False,
               time_budget_min: float | None = None, quiet: bool = True) -> None:
    """Run the shared Trainer on a forecasting task: ``settings.steps`` Adam steps with a
    cosine schedule and clip-norm 1.0, on the CPU; the run folder is ``out``."""
    epochs = max(1, math.ceil(settings.steps / task.data.batches_per_epoch))
    config = TrainConfig(epochs=epochs, max_steps=settings.steps, optimizer="adam",
                         lr=settings.lr, schedule="cosine", clip_norm=1.0,
                         batch_size=settings.batch_size, seed=settings.seed, device="cpu",
                         time_budget_min=time_budget_min, log_every=100, quiet=quiet)
    Trainer(task, config, out, overwrite=overwrite).fit()


class BacktestResult(NamedTuple):
    settings: FitSettings
    mase: float                      # mean over folds
    folds: list[float]


def candidate_settings(series: TimeSeries, base: FitSettings, train_length: int) -> list[FitSettings]:
    """The tuning grid: anchor ∈ {none, last, seasonal (if m > 1)} × transform ∈ {none, log
    (positive series only)}, at the base input length (default: 3 periods in [16, 96])."""
    L = base.window_length(series.period)
    anchors = ["none", "last", "seasonal"] if series.period > 1 else ["none", "last"]
    transforms = ["none", "log"] if np.min(series.values[:train_length]) > 0 else ["none"]
    return [replace(base, input_length=L, anchor=a, transform=t)
            for a in anchors for t in transforms]


def backtest(series: TimeSeries, train_length: int, candidates: list[FitSettings], folds: int = 3,
             say=None) -> list[BacktestResult]:
    """Rolling-origin MASE of each candidate inside ``series.values[:train_length]``."""
    check_positive_int("folds", folds)
    h, m = series.horizon, series.period
    results = []
    for settings in candidates:
        scores = []
        for k in range(1, folds + 1):
            origin = train_length - k * h
            with tempfile.TemporaryDirectory(prefix="recur-backtest-") as tmp:
                model = fit(series, origin, settings, Path(tmp) / "run")
                pred = model.forecast(series, end=origin).median
            truth = series.values[origin : origin + h]
            scores.append(all_metrics(truth, pred, series.values[:origin], m)["mase"])
        results.append(BacktestResult(settings, float(np.mean(scores)), scores))
        if say:
            say(f"  backtest anchor={settings.anchor} transform={settings.transform} "
                f"steps={settings.steps}"
                f": MASE {results[-1].mase:.3f} (folds {', '.join(f'{s:.3f}' for s in scores)})")
    return results


def tune_and_fit(series: TimeSeries, base: FitSettings, out: str | Path, *, folds: int = 3,
                 tune: bool = True, info: SeriesInfo | None = None, overwrite: bool = False,
                 time_budget_min: float | None = None, say=None,
                 final_ensemble: int | None = None,
                 steps_grid: tuple[int, ...] = ()) -> tuple[ForecastModel, list[BacktestResult]]:
    """Backtest the grid inside the training part (if ``tune``), then fit the best settings
    on the whole training part (the series minus its last horizon).

    ``steps_grid``: a second stage that backtests the winning anchor × transform again with
    each of these training lengths (steps); the lowest mean MASE over both stages wins —
    early stopping, chosen on the backtest folds, never on the test part.
    """
    check_horizon(series, series.horizon)
    train_length = len(series) - series.horizon
    results: list[BacktestResult] = []
    chosen = base
    if tune:
        results = backtest(series, train_length, candidate_settings(series, base, train_length),
                           folds=folds, say=say)
        best = min(results, key=lambda r: r.mase).settings
        longer = [replace(best, steps=n) for n in steps_grid if n != best.steps]
        results += backtest(series, train_length, longer, folds=folds, say=say)
        chosen = min(results, key=lambda r: r.mase).settings
    if final_ensemble is not None:
        chosen = replace(chosen, ensemble=final_ensemble)
    model = fit(series, train_length, chosen, out, info=info, overwrite=overwrite,
                time_budget_min=time_budget_min)
    return model, results


# -- CLI ---------------------------------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--series", choices=sorted(REGISTRY), help="a bundled real series")
    source.add_argument("--csv", help="a CSV file with a header row")
    parser.add_argument("--column", help="the value column of --csv")
    parser.add_argument("--date-column", help="the date column of --csv (default: guessed)")
    parser.add_argument("--freq", help="pandas frequency of --csv (default: inferred)")
    parser.add_argument("--period", type=int, help="seasonal period m (default: from freq)")
    parser.add_argument("--horizon", type=int, help="forecast horizon h = test part length "
                        "(default: the series' own)")
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--kind", choices=KINDS, default="direct",
                        help="direct multi-step head or autoregressive seq2seq")
    parser.add_argument("--cell", choices=sorted(CELLS), default="lstm")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=1)
    parser.add_argument("--input-length", type=int,
                        help="window length L (default: 3 periods, clipped to [16, 96])")
    parser.add_argument("--input-lengths", help="comma-separated member input lengths, or "
                        "'ladder' (½, 1, 1½ × the default); members cycle through them")
    parser.add_argument("--transform", choices=TRANSFORMS, default="none")
    parser.add_argument("--anchor", choices=ANCHORS, default="last",
                        help="predict relative to the last value or to seasonal naive")
    parser.add_argument("--covariates", choices=COVARIATES, default="calendar")
    parser.add_argument("--quantiles", default="0.1,0.5,0.9",
                        help="comma-separated quantile levels including 0.5")
    parser.add_argument("--ensemble", type=int, default=1, help="members averaged (seeds)")
    parser.add_argument("--final-ensemble", type=int, help="members of the model trained "
                        "after tuning (default: --ensemble, which backtest models use)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--tune", action="store_true", help="choose the anchor and the "
                        "transform by rolling-origin backtesting inside the training part")
    parser.add_argument("--folds", type=int, default=3, help="backtest folds (with --tune)")
    parser.add_argument("--tune-steps", help="comma-separated step counts the backtest also "
                        "tries for the winning anchor × transform (with --tune)")
    parser.add_argument("--time-budget", type=float, metavar="MIN")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run")


def series_from_args(args: argparse.Namespace, path: str | None = None) -> tuple[TimeSeries,
                                                                                 SeriesInfo]:
    if getattr(args, "series", None):
        series = load_series(args.series)
        if args.horizon is not None:
            series = replace(series, horizon=args.horizon)
        info = SeriesInfo(series.name, True, None, None, None, series.freq, series.period, 0)
    else:
        if args.column is None:
            raise ValueError("--csv needs --column (the value column)")
        csv = str(Path(args.csv).resolve())
        series = read_csv_series(csv, column=args.column, date_column=args.date_column,
                                 freq=args.freq, period=args.period, horizon=args.horizon)
        info = SeriesInfo(series.name, False, csv, args.column, args.date_column, series.freq,
                          series.period, 0)
    check_horizon(series, series.horizon)
    return series, info


def parse_quantiles(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(q) for q in text.split(","))
    except ValueError:
        raise ValueError(f"--quantiles must be comma-separated numbers, got {text!r}") from None


def parse_ints(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in text.split(","))
    except ValueError:
        raise ValueError(f"{option} must be comma-separated ints, got {text!r}") from None


def parse_input_lengths(text: str | None, series: TimeSeries) -> tuple[int, ...] | None:
    if text is None:
        return None
    if text == "ladder":
        return default_input_lengths(series.period, len(series) - series.horizon,
                                     series.horizon)
    return parse_ints("--input-lengths (or 'ladder')", text)


def train_command(args: argparse.Namespace) -> int:
    series, info = series_from_args(args)
    settings = FitSettings(kind=args.kind, cell=args.cell, hidden_size=args.hidden_size,
                           num_layers=args.num_layers, input_length=args.input_length,
                           input_lengths=parse_input_lengths(args.input_lengths, series),
                           transform=args.transform, covariates=args.covariates,
                           anchor=args.anchor,
                           quantiles=parse_quantiles(args.quantiles), ensemble=args.ensemble,
                           steps=args.steps, lr=args.lr, seed=args.seed)
    ForecasterConfig(horizon=series.horizon, quantiles=settings.quantiles)  # check early
    print(f"series {series.name}: {len(series)} values ({series.missing} missing, filled), "
          f"period {series.period}, horizon {series.horizon}; the last {series.horizon} are "
          "held out as the test part")
    steps_grid = parse_ints("--tune-steps", args.tune_steps) if args.tune_steps else ()
    model, results = tune_and_fit(series, settings, args.out, folds=args.folds, tune=args.tune,
                                  info=info, overwrite=args.overwrite, steps_grid=steps_grid,
                                  final_ensemble=args.final_ensemble,
                                  time_budget_min=args.time_budget, say=print)
    metrics = model.evaluate(series)
    print(f"saved to {args.out}; test MASE {metrics['mase']:.3f} (seasonal naive "
          f"{metrics['seasonal_naive_mase']:.3f}), sMAPE {metrics['smape']:.2f}%")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    model = ForecastModel.load(args.model)
    metrics = model.evaluate(model.series.load(getattr(args, "data", None)))
    if args.json:
        print(json.dumps(metrics))
        return 0
    print(f"{metrics['series']}: horizon {metrics['horizon']}, period {metrics['period']}, "
          f"trained on {metrics['train_length']} values")
    print(f"  MASE {metrics['mase']:.3f}  (naive {metrics['naive_mase']:.3f}, seasonal naive "
          f"{metrics['seasonal_naive_mase']:.3f})")
    print(f"  MAE {metrics['mae']:.4g}  RMSE {metrics['rmse']:.4g}  sMAPE {metrics['smape']:.2f}%"
          f"  {metrics['interval'][0]:g}-{metrics['interval'][1]:g} interval coverage "
          f"{metrics['coverage']:.2f}")
    return 0


def add_forecast_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a forecast run or checkpoint folder")
    parser.add_argument("--csv", help="the series to continue (default: the one it was "
                        "trained on, read again)")
    parser.add_argument("--plot", help="write a PNG with the history, forecast and interval")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def forecast_command(args: argparse.Namespace) -> int:
    model = ForecastModel.load(args.model)
    series = model.series.load(args.csv)
    result = model.forecast(series)
    labels = ([str(d)[:19] for d in result.dates] if result.dates is not None
              else [f"t+{k + 1}" for k in range(len(result.median))])
    if args.json:
        print(json.dumps({"series": series.name, "dates": labels,
                          "median": result.median.tolist(), "levels": list(result.levels),
                          "quantiles": result.quantiles.tolist()}))
    else:
        lo, hi = result.levels[0], result.levels[-1]
        print(f"{'step':>19}  {'median':>12}  {f'q{lo:g}':>12}  {f'q{hi:g}':>12}")
        for label, row, med in zip(labels, result.quantiles, result.median, strict=True):
            print(f"{label:>19}  {med:>12.4g}  {row[0]:>12.4g}  {row[-1]:>12.4g}")
    if args.plot:
        plot_forecast(series, result, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 0


def plot_forecast(series: TimeSeries, result: Forecast, path: str | Path,
                  history: int | None = None) -> Path:
    """PNG: the last part of the history, the median forecast and the outer interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = len(result.median)
    history = history or min(len(series), max(4 * h, 3 * series.period, 48))
    if series.dates is not None and result.dates is not None:
        x_hist, x_fut = series.dates[-history:], result.dates
    else:
        x_hist = np.arange(len(series) - history, len(series))
        x_fut = np.arange(len(series), len(series) + h)
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(x_hist, series.values[-history:], color="black", lw=1.2, label="history")
    ax.plot(x_fut, result.median, color="tab:blue", lw=1.6, label="forecast (median)")
    lo, hi = result.levels[0], result.levels[-1]
    ax.fill_between(x_fut, result.quantiles[:, 0], result.quantiles[:, -1], color="tab:blue",
                    alpha=0.25, label=f"{lo:g}–{hi:g} quantiles")
    ax.set_title(f"{series.name}: {h}-step forecast")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def predict_command(args: argparse.Namespace) -> int:
    raise ValueError(f"{args.model} is a forecaster: use `recur forecast {args.model} "
                     "[--csv FILE] [--plot out.png]`")
