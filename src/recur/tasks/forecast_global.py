"""A global forecaster: one RNN trained on the windows of several series at once.

    .venv/bin/python bench/forecast.py --global         # the panel of eight series, one model

Short series give a per-series RNN a few dozen windows; a global model (Salinas et al.
2020, DeepAR; Smyl 2020, the M4 winner) learns one set of weights from the windows of all
of them. The protocol of recur.tasks.forecast holds for every series of the panel:

* **Split**: series i's test part is its last h_i values; nothing at or after its training
  end is read by training, scaling or tuning.
* **Scaling**: each series on its own training part (``Scaler``): z = (f(y) − mean) / std,
  f = log where ``transform="log"`` and the training part is positive, else the identity.
* **Windows**: each series is cut with ``make_windows`` at the common input length L and
  its own horizon h_i and period m_i (so the ``seasonal`` anchor is each series' own
  seasonal naive); the targets are padded to H = max h_i and the padding is masked out of
  the loss. Each input and future step carries the phase covariates of its series
  (sin/cos of position mod m_i) and, with ``series_id``, a one-hot of the series.
* **Batches** draw a series uniformly, then one of its windows, so the 4,032 half-hours of
  Taylor do not drown the 114 years of lynx.

Tuning (``tune_and_fit_global``) is a rolling-origin backtest inside every training part at
once: fold k trains one global model on ``train_i[:N_i − k·h_i]`` of every series i (scalers
refitted) and scores each series by MASE on its next h_i values. The candidate (anchor ×
series id) with the lowest MASE averaged over series and folds wins. On the same folds each
series then picks its **partner**: the RNN's forecast alone, or averaged half-and-half with
seasonal naive or with ETS (a forecast combination; the RNN always contributes). The winner
is retrained on the whole training parts and forecasts every test part once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from recur.cells.base import check_choice, check_positive_int
from recur.data.timeseries import ANCHORS, Scaler, TimeSeries, covariates, last_window, make_windows
from recur.models.forecaster import Forecaster, ForecasterConfig
from recur.tasks.forecast import TRANSFORMS, FitSettings, Forecast, holdout_metrics, train_task
from recur.tasks.forecast_eval import all_metrics, ets, seasonal_naive
from recur.training import Task, register_task
from recur.training.checkpoint import load_checkpoint
from recur.training.task import StepOutput

GLOBAL_COVARIATES = ("none", "phase")   # calendar features differ in count between series
DEFAULT_INPUT_LENGTHS = (12, 24, 36)     # the members' input lengths (lynx's shortest fold: 64)
PARTNERS: dict[str, Callable[[np.ndarray, int, int], np.ndarray] | None] = {
    "none": None, "seasonal_naive": seasonal_naive, "ets": ets,
}


@dataclass(frozen=True)
class GlobalDataConfig:
    """How the panel becomes windows (saved in the checkpoint's config.json).

    names, periods, horizons: one entry per series, in the order of the one-hot id.
    partners: per series, what its RNN forecast is averaged with (``PARTNERS``; () = none).
    """

    names: tuple[str, ...]
    periods: tuple[int, ...]
    horizons: tuple[int, ...]
    input_length: int
    transform: str = "log"           # log: log of every series whose training part is > 0
    covariates: str = "phase"
    anchor: str = "seasonal"
    series_id: bool = True
    partners: tuple[str, ...] = ()
    batch_size: int = 64
    batches_per_epoch: int = 100

    def __post_init__(self) -> None:
        for name in ("names", "periods", "horizons", "partners"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.names or not len(self.names) == len(self.periods) == len(self.horizons):
            raise ValueError("names, periods and horizons must be non-empty and of one length, "
                             f"got {len(self.names)}, {len(self.periods)}, {len(self.horizons)}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"series names must be unique, got {self.names}")
        for n in (*self.periods, *self.horizons):
            check_positive_int("periods and horizons", n)
        for name in ("input_length", "batch_size", "batches_per_epoch"):
            check_positive_int(name, getattr(self, name))
        check_choice("transform", self.transform, TRANSFORMS)
        check_choice("covariates", self.covariates, GLOBAL_COVARIATES)
        check_choice("anchor", self.anchor, ANCHORS)
        if self.partners:
            if len(self.partners) != len(self.names):
                raise ValueError(f"partners must name one per series ({len(self.names)}), got "
                                 f"{len(self.partners)}")
            for partner in self.partners:
                check_choice("partners", partner, tuple(PARTNERS))

    @property
    def max_horizon(self) -> int:
        """H: every window's targets are padded to this many steps."""
        return max(self.horizons)

    @property
    def num_covariates(self) -> int:
        return (2 if self.covariates == "phase" else 0) + (len(self.names) if self.series_id else 0)

    def partner(self, i: int) -> str:
        return self.partners[i] if self.partners else "none"

    @classmethod
    def from_dict(cls, data: dict) -> GlobalDataConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def panel_covariates(data: GlobalDataConfig, i: int, length: int) -> np.ndarray:
    """(length, K) covariates of positions 0..length-1 of series i: its phase (sin/cos of
    position mod m_i) and, with ``series_id``, the one-hot of i."""
    phase = covariates(data.covariates, np.arange(length), data.periods[i], None, None)
    if not data.series_id:
        return phase
    onehot = np.zeros((length, len(data.names)), dtype=np.float32)
    onehot[:, i] = 1.0
    return np.concatenate([phase, onehot], axis=1)


def series_scaler(train: np.ndarray, transform: str) -> Scaler:
    """The scaler of one series, fitted on its training part: ``transform="log"`` takes the
    log only of a positive training part (sunspots has zeros)."""
    positive = bool(np.min(train) > 0)
    return Scaler.fit(train, transform if positive else "none")


class GlobalBatch(NamedTuple):
    inputs: torch.Tensor    # (B, L, 1+K)
    future: torch.Tensor    # (B, H, K)
    targets: torch.Tensor   # (B, H)
    mask: torch.Tensor      # (B, H) 1 for the h_i steps of the window's series, 0 for padding


class GlobalForecastTask(Task):
    """The windows of every series' training part, for the Trainer.

    Args:
        panel: the series, in the order of ``data.names``.
        train_lengths: how many leading values of each series are its training part;
            nothing after them is ever read.
        data: windowing config; model: the forecaster config (horizon H, K covariates).
        seed: the window sampling.
    """

    name = "forecast-global"

    def __init__(self, panel: Sequence[TimeSeries], train_lengths: Sequence[int],
                 data: GlobalDataConfig, model: ForecasterConfig, seed: int = 0) -> None:
        if [s.name for s in panel] != list(data.names) or len(train_lengths) != len(panel):
            raise ValueError("panel and train_lengths must follow data.names, got "
                             f"{[s.name for s in panel]} and {len(train_lengths)} lengths")
        self.data, self.model_config, self.seed = data, model, seed
        H = data.max_horizon
        self.scalers: list[Scaler] = []
        parts: list[tuple[np.ndarray, ...]] = []
        for i, (series, n) in enumerate(zip(panel, train_lengths, strict=True)):
            train = series.values[:n]
            scaler = series_scaler(train, data.transform)
            w = make_windows(scaler.apply(train), panel_covariates(data, i, n), data.input_length,
                             data.horizons[i], anchor=data.anchor, period=data.periods[i])
            if not len(w.origins):
                raise ValueError(f"series {series.name!r}: its training part ({n} values) holds "
                                 f"no window of input_length {data.input_length} (its period "
                                 f"more with seasonal_diff) + horizon {data.horizons[i]}")
            pad = ((0, 0), (0, H - data.horizons[i]))
            parts.append((w.inputs, np.pad(w.future, (*pad, (0, 0))), np.pad(w.targets, pad),
                          np.pad(np.ones_like(w.targets), pad)))
            self.scalers.append(scaler)
        self.inputs, self.future, self.targets, self.mask = (np.concatenate(a) for a in
                                                             zip(*parts, strict=True))
        self.counts = np.array([len(p[0]) for p in parts])
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]])

    def build_model(self) -> nn.Module:
        return Forecaster(self.model_config)

    def train_batches(self, epoch: int):
        rng = np.random.default_rng(self.seed * 100_003 + epoch)
        B = self.data.batch_size
        for _ in range(self.data.batches_per_epoch):
            series = rng.integers(0, len(self.counts), size=B)          # uniform over series
            idx = self.offsets[series] + (rng.random(B) * self.counts[series]).astype(np.int64)
            yield GlobalBatch(*(torch.from_numpy(a[idx]) for a in
                                (self.inputs, self.future, self.targets, self.mask)))

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        net = getattr(model, "module", model)
        return StepOutput(net.loss(batch.inputs, batch.future, batch.targets, batch.mask),
                          int(batch.mask.sum()))

    def configs(self) -> dict[str, Any]:
        return {"model": self.model_config.to_dict(), "data": asdict(self.data),
                "scalers": [s._asdict() for s in self.scalers]}


register_task("forecast-global", lambda configs, folder: Forecaster(
    ForecasterConfig.from_dict(configs["model"])))


class GlobalForecastModel:
    """A trained global forecaster: ``GlobalForecastModel.load(DIR).forecast(series)`` for
    any series of its panel (looked up by name)."""

    def __init__(self, model: Forecaster, scalers: Sequence[Scaler],
                 data: GlobalDataConfig) -> None:
        self.model, self.scalers, self.data = model.eval(), list(scalers), data

    @classmethod
    def load(cls, path: str | Path) -> GlobalForecastModel:
        checkpoint = load_checkpoint(path, task="forecast-global")
        configs = checkpoint.config["configs"]
        return cls(checkpoint.model, [Scaler(**s) for s in configs["scalers"]],
                   GlobalDataConfig.from_dict(configs["data"]))

    def index(self, series: TimeSeries) -> int:
        if series.name not in self.data.names:
            raise ValueError(f"this global model knows the series {', '.join(self.data.names)}, "
                             f"not {series.name!r}")
        return self.data.names.index(series.name)

    @torch.no_grad()
    def forecast(self, series: TimeSeries, end: int | None = None,
                 partner: str | None = None) -> Forecast:
        """Forecast the h_i steps after position ``end`` (default: the series' end) of a
        series of the panel, reading only values before ``end``. ``partner``: what the RNN's
        forecast is averaged with (default: the one saved for this series; "none": the RNN
        alone) — the quantiles are averaged with the partner's point forecast."""
        i = self.index(series)
        d = self.data
        h, m = d.horizons[i], d.periods[i]
        end = len(series) if end is None else end
        z = self.scalers[i].apply(series.values[:end])
        window = last_window(z, panel_covariates(d, i, end + h), d.input_length, h,
                             anchor=d.anchor, period=m)
        future = np.zeros((1, d.max_horizon, d.num_covariates), dtype=np.float32)
        future[:, :h] = window.future                                       # (1, H, K)
        out = self.model(torch.from_numpy(window.inputs), torch.from_numpy(future))
        scaled = out[0, :h].double().numpy() + window.baseline[0][:, None]  # (h, Q)
        quantiles = self.scalers[i].invert(scaled)
        baseline = PARTNERS[d.partner(i) if partner is None else partner]
        if baseline is not None:
            quantiles = (quantiles + baseline(series.values[:end], h, m)[:, None]) / 2
        levels = self.model.config.quantiles
        return Forecast(quantiles[:, levels.index(0.5)], quantiles, levels,
                        series.future_dates(h, start=end))

    def evaluate(self, series: TimeSeries, partner: str | None = None) -> dict[str, Any]:
        """Test metrics of one series of the panel (``ForecastModel.evaluate``'s)."""
        h = self.data.horizons[self.index(series)]
        return holdout_metrics(series, self.forecast(series, end=len(series) - h,
                                                     partner=partner))


# -- training and tuning -------------------------------------------------------------------------


class GlobalCandidate(NamedTuple):
    """One setting of the global model: the fit knobs (``settings.transform``,
    ``anchor``, ``covariates`` ∈ none | phase, ``input_lengths``...) and the series id."""

    settings: FitSettings
    series_id: bool = True

    def label(self) -> str:
        s = self.settings
        return (f"anchor={s.anchor} transform={s.transform} id={'yes' if self.series_id else 'no'}"
                f" steps={s.steps}")


def fit_global(panel: Sequence[TimeSeries], train_lengths: Sequence[int],
               candidate: GlobalCandidate, out: str | Path, *, partners: Sequence[str] = (),
               overwrite: bool = False, quiet: bool = True) -> GlobalForecastModel:
    """Train one forecaster on the windows of ``series.values[:n]`` for every series and
    its ``n`` in ``train_lengths``; each series' horizon is ``series.horizon``."""
    s = candidate.settings
    lengths = s.input_lengths or ((s.input_length,) if s.input_length else DEFAULT_INPUT_LENGTHS)
    data = GlobalDataConfig(names=tuple(x.name for x in panel),
                            periods=tuple(x.period for x in panel),
                            horizons=tuple(x.horizon for x in panel), input_length=max(lengths),
                            transform=s.transform, covariates=s.covariates, anchor=s.anchor,
                            series_id=candidate.series_id, partners=tuple(partners),
                            batch_size=s.batch_size)
    model = ForecasterConfig(horizon=data.max_horizon, num_covariates=data.num_covariates,
                             kind=s.kind, cell=s.cell, hidden_size=s.hidden_size,
                             num_layers=s.num_layers, quantiles=s.quantiles, ensemble=s.ensemble,
                             input_lengths=tuple(lengths))
    task = GlobalForecastTask(panel, train_lengths, data, model, seed=s.seed)
    train_task(task, s, out, overwrite=overwrite, quiet=quiet)
    return GlobalForecastModel.load(out)


def training_lengths(panel: Sequence[TimeSeries]) -> list[int]:
    """Each series' training part: all but its last ``horizon`` values."""
    return [len(s) - s.horizon for s in panel]


class GlobalBacktest(NamedTuple):
    candidate: GlobalCandidate
    mase: float                           # mean over series of their mean fold MASE
    series: dict[str, list[float]]        # per series: the MASE of each fold (k = 1..F)
    forecasts: dict[str, list[np.ndarray]]  # per series: the RNN's median of each fold


def backtest_global(panel: Sequence[TimeSeries], candidates: Sequence[GlobalCandidate],
                    folds: int = 4, say: Callable[[str], None] | None = None
                    ) -> list[GlobalBacktest]:
    """Rolling-origin MASE of each candidate inside every training part: fold k trains on
    ``values[:N_i − h_i − k·h_i]`` of every series i and forecasts the next h_i."""
    check_positive_int("folds", folds)
    train = training_lengths(panel)
    results = []
    for candidate in candidates:
        scores: dict[str, list[float]] = {s.name: [] for s in panel}
        forecasts: dict[str, list[np.ndarray]] = {s.name: [] for s in panel}
        for k in range(1, folds + 1):
            origins = [n - k * s.horizon for n, s in zip(train, panel, strict=True)]
            with tempfile.TemporaryDirectory(prefix="recur-backtest-") as tmp:
                model = fit_global(panel, origins, candidate, Path(tmp) / "run")
                for s, origin in zip(panel, origins, strict=True):
                    pred = model.forecast(s, end=origin, partner="none").median
                    truth = s.values[origin : origin + s.horizon]
                    scores[s.name].append(all_metrics(truth, pred, s.values[:origin],
                                                      s.period)["mase"])
                    forecasts[s.name].append(pred)
        mean = float(np.mean([np.mean(v) for v in scores.values()]))
        results.append(GlobalBacktest(candidate, mean, scores, forecasts))
        if say:
            say(f"  backtest {candidate.label()}: mean MASE {mean:.3f} ("
                + ", ".join(f"{name} {np.mean(v):.3f}" for name, v in scores.items()) + ")")
    return results


def partner_scores(panel: Sequence[TimeSeries], result: GlobalBacktest) -> dict[str, dict[str, float]]:
    """Per series, the mean backtest MASE of the RNN's fold forecasts averaged with each
    partner (``none``: the RNN alone), on the folds of ``result``."""
    train = training_lengths(panel)
    table = {}
    for s, n in zip(panel, train, strict=True):
        row = {}
        for partner, baseline in PARTNERS.items():
            folds = []
            for k, pred in enumerate(result.forecasts[s.name], start=1):
                origin = n - k * s.horizon
                past, truth = s.values[:origin], s.values[origin : origin + s.horizon]
                combined = pred if baseline is None else (pred + baseline(past, s.horizon,
                                                                          s.period)) / 2
                folds.append(all_metrics(truth, combined, past, s.period)["mase"])
            row[partner] = float(np.mean(folds))
        table[s.name] = row
    return table


class GlobalChoice(NamedTuple):
    candidate: GlobalCandidate
    partners: tuple[str, ...]                   # per series, in the panel's order
    backtests: list[GlobalBacktest]
    partner_scores: dict[str, dict[str, float]]


def tune_and_fit_global(panel: Sequence[TimeSeries], candidates: Sequence[GlobalCandidate],
                        out: str | Path, *, folds: int = 4, final_ensemble: int | None = None,
                        choose_partners: bool = True, overwrite: bool = False,
                        say: Callable[[str], None] | None = None
                        ) -> tuple[GlobalForecastModel, GlobalChoice]:
    """Backtest the candidates inside the training parts (if more than one, or to choose the
    partners), pick the candidate and each series' partner, and fit the winner on the
    whole training parts (``final_ensemble`` members if given)."""
    if not candidates:
        raise ValueError("candidates must hold at least one GlobalCandidate, got none")
    backtests: list[GlobalBacktest] = []
    chosen, partners, scores = candidates[0], ("none",) * len(panel), {}
    if len(candidates) > 1 or choose_partners:
        backtests = backtest_global(panel, candidates, folds=folds, say=say)
        best = min(backtests, key=lambda r: r.mase)
        chosen = best.candidate
        if choose_partners:
            scores = partner_scores(panel, best)
            partners = tuple(min(scores[s.name], key=scores[s.name].get) for s in panel)
            if say:
                say("  partners: " + ", ".join(f"{s.name} {p}" for s, p in
                                               zip(panel, partners, strict=True)))
    if final_ensemble is not None:
        chosen = chosen._replace(settings=replace(chosen.settings, ensemble=final_ensemble))
    model = fit_global(panel, training_lengths(panel), chosen, out, partners=partners,
                       overwrite=overwrite)
    return model, GlobalChoice(chosen, partners, backtests, scores)
