"""Naive and seasonal naive scored on the same rolling-origin backtest folds as recur.

bench/forecast.py picks recur's settings by their mean MASE on F folds inside each
training part; this prints the two simple baselines' mean MASE on those same folds, so the
chosen model's backtest score can be compared with what seasonal naive gets there (no test
value is read). Seconds to run:

    .venv/bin/python bench/forecast_baseline_backtest.py --folds 4
"""

from __future__ import annotations

import argparse

import numpy as np

from recur.data.timeseries import PANEL, load_series
from recur.tasks.forecast_eval import all_metrics, naive, seasonal_naive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=4)
    args = parser.parse_args()
    print("| series | naive | seasonal naive |")
    print("|---|---|---|")
    for name in PANEL:
        series = load_series(name)
        h, m = series.horizon, series.period
        train_length = len(series) - h
        scores = {}
        for label, baseline in (("naive", naive), ("seasonal_naive", seasonal_naive)):
            folds = []
            for k in range(1, args.folds + 1):
                origin = train_length - k * h
                past, truth = series.values[:origin], series.values[origin : origin + h]
                folds.append(all_metrics(truth, baseline(past, h, m), past, m)["mase"])
            scores[label] = float(np.mean(folds))
        print(f"| {name} | {scores['naive']:.3f} | {scores['seasonal_naive']:.3f} |")


if __name__ == "__main__":
    main()
