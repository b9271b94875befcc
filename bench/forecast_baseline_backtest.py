"""Baselines scored on the same rolling-origin backtest folds as recur.

bench/forecast.py picks recur's settings by their mean MASE on F folds inside each
training part; this prints the baselines' mean MASE on those same folds (naive and seasonal
naive by default; ``--methods`` adds ets or arima), so the chosen model's backtest score
can be compared with what they get there (no test value is read). Seconds to run (ETS:
about a minute):

    .venv/bin/python bench/forecast_baseline_backtest.py --folds 4
    .venv/bin/python bench/forecast_baseline_backtest.py --folds 4 --methods seasonal_naive,ets
"""

from __future__ import annotations

import argparse

import numpy as np

from recur.data.timeseries import PANEL, load_series
from recur.tasks.forecast_eval import BASELINES, all_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--methods", default="naive,seasonal_naive",
                        help=f"comma-separated, of {', '.join(BASELINES)}")
    args = parser.parse_args()
    methods = args.methods.split(",")
    for method in methods:
        if method not in BASELINES:
            parser.error(f"--methods must name {', '.join(BASELINES)}, got {method!r}")
    print("| series | " + " | ".join(method.replace("_", " ") for method in methods) + " |")
    print("|---|" + "---|" * len(methods))
    for name in PANEL:
        series = load_series(name)
        h, m = series.horizon, series.period
        train_length = len(series) - h
        scores = {}
        for label in methods:
            baseline = BASELINES[label]
            folds = []
            for k in range(1, args.folds + 1):
                origin = train_length - k * h
                past, truth = series.values[:origin], series.values[origin : origin + h]
                folds.append(all_metrics(truth, baseline(past, h, m), past, m)["mase"])
            scores[label] = float(np.mean(folds))
        print(f"| {name} | " + " | ".join(f"{scores[method]:.3f}" for method in methods) + " |")


if __name__ == "__main__":
    main()
