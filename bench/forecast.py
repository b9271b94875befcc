"""The forecasting panel: recur vs naive, seasonal naive, ETS and ARIMA on 8 real series.

For each bundled series (recur.data.timeseries.PANEL) the last ``horizon`` values are the
test part. Every method sees only the training part:

* baselines (recur/tasks/forecast_eval.py): naive, seasonal naive, statsmodels ETSModel
  (lowest AIC), pmdarima auto_arima (statsmodels SARIMAX);
* recur: rolling-origin backtesting inside the training part (``--folds`` folds of one
  horizon each) picks the anchor (none / last value / seasonal naive) and the transform
  (none / log) with ``--backtest-ensemble`` members per model, then whether the winner
  trains for ``--steps`` or for each of ``--tune-steps``; the chosen settings are trained on
  the whole training part as an ensemble of ``--ensemble`` members (seeds × the input
  lengths ½, 1 and 1½ × the default, ``--lengths ladder``) and forecast the test part once;
* recur ``--global`` (recur/tasks/forecast_global.py): one forecaster trained on the
  windows of every series' training part (each scaled on its own), backtested on the same
  folds inside all training parts at once to pick the anchor (``--anchors``) and the
  series one-hot (``--series-id``), then per series whether the RNN's forecast is used
  alone or averaged with seasonal naive or ETS; the winner forecasts every test part.

It prints a markdown table of test MASE per series (and how many series recur beats
seasonal naive on) and writes bench/results/forecast.json. Run from the repository root
(~48 min on one thread of a heavily loaded 2-core machine, about 3× the work of the
previous defaults; `--folds 3 --tune-steps ""` halves the backtest work (not timed);
use /work/shared/bin/longrun):

    .venv/bin/python bench/forecast.py                        # the whole panel
    .venv/bin/python bench/forecast.py --series airline,lynx --no-baselines --steps 100
    .venv/bin/python bench/forecast.py --reuse-baselines bench/results/forecast_v1.json
    .venv/bin/python bench/forecast.py --global --reuse-baselines bench/results/forecast.json \
        --reuse-methods naive,seasonal_naive,ets,arima --out bench/results/forecast_global.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from recur.data.timeseries import PANEL, TimeSeries, load_series
from recur.tasks.forecast import FitSettings, default_input_lengths, tune_and_fit
from recur.tasks.forecast_eval import BASELINES, all_metrics
from recur.tasks.forecast_global import GlobalCandidate, tune_and_fit_global

RESULTS = Path(__file__).resolve().parent / "results" / "forecast.json"
METHODS = ("recur", *BASELINES)


def reusable(args: argparse.Namespace) -> dict[str, dict]:
    """Baseline rows of an earlier results file to reuse (they are deterministic)."""
    if not args.reuse_baselines:
        return {}
    rows = json.loads(Path(args.reuse_baselines).read_text())["rows"]
    return {r["series"]: r for r in rows}


def baseline_row(series: TimeSeries, args: argparse.Namespace, earlier: dict) -> dict:
    """The row of one series with every baseline's test MASE and sMAPE (unless
    ``--no-baselines``)."""
    name = series.name
    train, test = series.split()
    h, m = series.horizon, series.period
    row: dict = {"series": name, "length": len(series), "missing": series.missing, "period": m,
                 "horizon": h, "mase": {}, "smape": {}, "seconds": {}}
    if args.baselines:
        for method, baseline in BASELINES.items():
            old = earlier.get(name)
            if old and method in args.reuse_methods.split(",") and method in old["mase"] \
                    and (old["length"], old["horizon"], old["period"]) == (len(series), h, m):
                row["mase"][method], row["smape"][method] = old["mase"][method], old["smape"][method]
                row["seconds"][method] = old["seconds"][method]
                print(f"  {name} {method}: MASE {row['mase'][method]:.3f} (reused)", flush=True)
                continue
            start = time.perf_counter()
            pred = baseline(train, h, m)
            row["seconds"][method] = time.perf_counter() - start
            metrics = all_metrics(test, pred, train, m)
            row["mase"][method], row["smape"][method] = metrics["mase"], metrics["smape"]
            print(f"  {name} {method}: MASE {metrics['mase']:.3f}", flush=True)
    return row


def run_series(name: str, args: argparse.Namespace, runs: Path, earlier: dict) -> dict:
    series = load_series(name)
    train = series.values[: len(series) - series.horizon]
    h, m = series.horizon, series.period
    row = baseline_row(series, args, earlier)
    lengths = (default_input_lengths(m, len(train), h) if args.lengths == "ladder" else None)
    base = FitSettings(kind=args.kind, cell=args.cell, hidden_size=args.hidden_size,
                       steps=args.steps, seed=args.seed, input_lengths=lengths,
                       ensemble=args.backtest_ensemble)
    start = time.perf_counter()
    model, results = tune_and_fit(series, base, runs / name, folds=args.folds, tune=True,
                                  overwrite=True, final_ensemble=args.ensemble,
                                  steps_grid=tuple(int(n) for n in args.tune_steps.split(",")
                                                   if n),
                                  say=lambda line: print(f"  {name}{line}", flush=True))
    row["seconds"]["recur"] = time.perf_counter() - start
    metrics = model.evaluate(series)
    row["mase"]["recur"], row["smape"]["recur"] = metrics["mase"], metrics["smape"]
    row["coverage"] = metrics["coverage"]
    chosen = min(results, key=lambda r: r.mase)
    row["chosen"] = {"anchor": chosen.settings.anchor, "transform": chosen.settings.transform,
                     "steps": chosen.settings.steps,
                     "input_length": chosen.settings.window_length(m),
                     "input_lengths": list(chosen.settings.input_lengths or ()),
                     "backtest_mase": chosen.mase}
    row["backtest"] = [{"anchor": r.settings.anchor, "transform": r.settings.transform,
                        "steps": r.settings.steps, "mase": r.mase, "folds": r.folds}
                       for r in results]
    print(f"  {name} recur: MASE {metrics['mase']:.3f} ({row['seconds']['recur']:.0f} s)",
          flush=True)
    return row


def run_global(names: list[str], args: argparse.Namespace, runs: Path,
               earlier: dict) -> list[dict]:
    """One global forecaster for the whole panel (recur/tasks/forecast_global.py): the
    backtest inside the training parts picks the anchor, the series id and each series'
    partner; the winner forecasts every test part."""
    panel = [load_series(name) for name in names]
    rows = []
    for series in panel:
        print(f"{series.name}:", flush=True)
        rows.append(baseline_row(series, args, earlier))
    base = FitSettings(kind=args.kind, cell=args.cell, hidden_size=args.hidden_size,
                       steps=args.steps, seed=args.seed, covariates="phase",
                       transform=args.transform, ensemble=args.backtest_ensemble,
                       input_lengths=tuple(int(n) for n in args.global_lengths.split(",")))
    candidates = [GlobalCandidate(replace(base, anchor=anchor), series_id=ident == "yes")
                  for anchor in args.anchors.split(",") for ident in args.series_id.split(",")]
    print("global model:", flush=True)
    start = time.perf_counter()
    model, choice = tune_and_fit_global(panel, candidates, runs / "global", folds=args.folds,
                                        final_ensemble=args.ensemble, overwrite=True,
                                        choose_partners=args.partners,
                                        say=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - start
    best = min(choice.backtests, key=lambda r: r.mase) if choice.backtests else None

    def backtest_mase(name: str, partner: str) -> float | None:
        """The chosen forecast's mean backtest MASE (None when nothing was backtested)."""
        if choice.partner_scores:
            return choice.partner_scores[name][partner]
        return float(np.mean(best.series[name])) if best else None

    for series, partner, row in zip(panel, choice.partners, rows, strict=True):
        metrics, alone = model.evaluate(series), model.evaluate(series, partner="none")
        row["mase"]["recur"], row["smape"]["recur"] = metrics["mase"], metrics["smape"]
        row["mase_rnn_alone"], row["coverage"] = alone["mase"], metrics["coverage"]
        row["seconds"]["recur"] = seconds / len(panel)     # the one model's time, shared
        settings = choice.candidate.settings
        row["chosen"] = {"anchor": settings.anchor, "transform": settings.transform,
                         "series_id": choice.candidate.series_id, "steps": settings.steps,
                         "input_lengths": list(settings.input_lengths or ()),
                         "partner": partner, "backtest_mase": backtest_mase(series.name, partner)}
        row["partner_backtest"] = choice.partner_scores.get(series.name, {})
        row["backtest"] = [{"anchor": r.candidate.settings.anchor,
                            "series_id": r.candidate.series_id,
                            "mase": float(np.mean(r.series[series.name])),
                            "folds": r.series[series.name]} for r in choice.backtests]
        print(f"  {series.name} recur (global, partner {partner}): MASE {metrics['mase']:.3f} "
              f"(RNN alone {alone['mase']:.3f})", flush=True)
    print(f"global model: {seconds:.0f} s for tuning and the final fit", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    methods = [m for m in METHODS if any(m in r["mase"] for r in rows)]
    lines = ["| series | m | h | " + " | ".join(methods) + " | recur < snaive |",
             "|---|---|---|" + "---|" * len(methods) + "---|"]
    wins = 0
    for r in rows:
        cells = []
        best = min(r["mase"].values())
        for m in methods:
            v = r["mase"].get(m)
            cells.append("" if v is None else (f"**{v:.3f}**" if v == best else f"{v:.3f}"))
        win = "seasonal_naive" in r["mase"] and r["mase"]["recur"] < r["mase"]["seasonal_naive"]
        wins += win
        lines.append(f"| {r['series']} | {r['period']} | {r['horizon']} | " + " | ".join(cells)
                     + f" | {'yes' if win else 'no'} |")
    lines.append(f"\nrecur beats seasonal naive on {wins} of {len(rows)} series (test MASE).")
    return "\n".join(lines)


def markdown(document: dict, view: str | None = None) -> str:
    """The MASE table of a forecast.json document (``recur bench --write-docs``); no views."""
    if view is not None:
        raise ValueError(f"forecast has no view {view!r}; it renders one table")
    return table(document["rows"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", default=",".join(PANEL), help="comma-separated names")
    parser.add_argument("--no-baselines", dest="baselines", action="store_false")
    parser.add_argument("--kind", default="direct", choices=["direct", "seq2seq"])
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--global", dest="global_model", action="store_true",
                        help="one forecaster trained on all the series' training parts")
    parser.add_argument("--anchors", default="seasonal,seasonal_diff",
                        help="with --global: the anchors the backtest chooses from")
    parser.add_argument("--series-id", default="yes,no",
                        help="with --global: with (yes) and/or without (no) a series one-hot")
    parser.add_argument("--global-lengths", default="12,24,36",
                        help="with --global: the members' input lengths")
    parser.add_argument("--transform", default="log", choices=["none", "log"],
                        help="with --global: log of every series whose training part is > 0")
    parser.add_argument("--no-partners", dest="partners", action="store_false",
                        help="with --global: the RNN alone for every series (no backtest "
                        "choice of averaging it with seasonal naive or ETS)")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: 200; 1000 with "
                        "--global)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--tune-steps", default="600",
                        help="step counts also backtested for the winning anchor × transform")
    parser.add_argument("--ensemble", type=int, default=9,
                        help="members of the final model (seeds × input lengths)")
    parser.add_argument("--backtest-ensemble", type=int, default=3,
                        help="members of each backtest model")
    parser.add_argument("--lengths", default="ladder", choices=["ladder", "single"],
                        help="members read ½, 1, 1½ × the default input length, or all one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", default="runs/forecast-panel", help="run folders")
    parser.add_argument("--reuse-baselines", metavar="JSON",
                        help="take baseline results from an earlier results file (same series)")
    parser.add_argument("--reuse-methods", default="naive,seasonal_naive,arima",
                        help="which baselines --reuse-baselines reuses")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n for n in args.series.split(",") if n]
    rows, start, earlier = [], time.perf_counter(), reusable(args)
    if args.steps is None:
        args.steps = 1000 if args.global_model else 200
    if args.global_model:
        rows = run_global(names, args, Path(args.runs), earlier)
    else:
        for name in names:
            print(f"{name}:", flush=True)
            rows.append(run_series(name, args, Path(args.runs), earlier))
    print()
    print(table(rows))
    out = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
           "command": " ".join(["bench/forecast.py", *(argv if argv is not None else sys.argv[1:])]),
           "settings": {k: v for k, v in vars(args).items() if k not in ("out",)},
           "torch_threads": torch.get_num_threads(), "seconds": time.perf_counter() - start,
           "numpy": np.__version__, "rows": rows, "benchmark": "forecast"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
