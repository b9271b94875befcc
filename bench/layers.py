"""Layer benchmark: recur.Recurrent against torch.nn.LSTM / GRU / RNN on CPU, float32.

For each config (B, T, D, H, L) and cell it times, interleaved round by round:

* **recur fused** — ``Recurrent.from_torch(module)``: recur's dispatch to torch's fused
  kernel (``torch._VF.lstm`` / ``gru`` / ``rnn_tanh``) with recur's own parameters;
* **torch.nn** — the ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` module itself (batch_first);
* **recur readable** — the same weights with ``fused=False``: one input GEMM, then a Python
  loop over time with the cell's equations;

in two modes: ``train`` (zero grads, forward, ``outputs.sum().backward()``) and ``infer``
(eval mode, forward under ``torch.no_grad()``). It reports median milliseconds, the median
over rounds of torch/recur (≥ 0.95 means recur is at most 5% slower), tokens/s
(B·T per second) and the matmul rate: 2·B·T·G·H·(D_in + H) FLOPs per layer-direction
forward (×3 for a training step), against the fp32 sgemm rate (torch.mm, 2048²) of the same
run. The machine is shared: rounds disturbed by other processes are dropped and run again
(``common.interleaved``); rows that never got enough quiet rounds are marked †.

A second table trains minGRU / minLSTM (readable sequential scan) against nn.GRU at
B16 T100 D256 H256; ``--minimal-long`` adds a third, against nn.LSTM of the same width at
B16 T4096 D256 H256 (issue 11's bar: a minGRU training step ≥ 5× faster than nn.LSTM there;
``--minimal-long-inputs 64`` for D = 64).

Run from the repository root:

    .venv/bin/python bench/layers.py --repeats 7 --readable-repeats 5   # docs (~5 min, quiet)
    .venv/bin/python bench/layers.py --quick              # config a, 3 repeats (seconds)
    .venv/bin/python bench/layers.py --configs c,d --cells lstm --repeats 7
    .venv/bin/python bench/layers.py --skip-readable-above 256   # no Python loop at H = 512
    .venv/bin/python bench/layers.py --no-layers --no-minimal --minimal-long --threads 1

It prints markdown tables (as pasted into docs/benchmarks.md) and writes
bench/results/layers.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from common import (
    Timing,
    interleaved,
    markdown_table,
    set_threads,
    sgemm_gflops,
    wait_for_quiet,
    write_results,
)
from torch import nn

from recur import Recurrent


class Config(NamedTuple):
    batch: int   # B
    steps: int   # T
    inputs: int  # D
    hidden: int  # H
    layers: int  # L

    def __str__(self) -> str:
        return f"B{self.batch} T{self.steps} D{self.inputs} H{self.hidden} L{self.layers}"


CONFIGS = {
    "a": Config(32, 100, 128, 64, 1),
    "b": Config(64, 100, 256, 256, 1),
    "c": Config(32, 200, 512, 512, 2),
    "d": Config(64, 128, 64, 512, 2),
}
MINIMAL_CONFIG = Config(16, 100, 256, 256, 1)
MINIMAL_LONG_CONFIG = Config(16, 4096, 256, 256, 1)
TORCH_MODULES = {"lstm": nn.LSTM, "gru": nn.GRU, "elman": nn.RNN}
MODES = ("train", "infer")

# Keys of one row of the layer table (``run_layers``); tests check them.
ROW_KEYS = ("config", "shape", "cell", "mode", "recur_ms", "torch_ms", "torch_over_recur",
            "readable_ms", "readable_over_recur", "tokens_per_s", "gflop_per_s",
            "percent_of_sgemm", "sgemm_gflop_per_s", "flops", "contended_rounds", "clean",
            "samples_ms")
MINIMAL_ROW_KEYS = ("model", "ms", "tokens_per_s", "speed_vs_nn_gru", "contended_rounds",
                    "clean", "samples_ms")
MINIMAL_LONG_ROW_KEYS = ("model", "ms", "tokens_per_s", "speed_vs_nn_lstm", "contended_rounds",
                         "clean", "samples_ms")


def matmul_flops(layer: Recurrent, config: Config, mode: str) -> int:
    """FLOPs of the matmuls: 2·B·T·G·H·(D_in + H) per cell (layer-direction), ×3 to train."""
    forward = sum(2 * config.batch * config.steps * cell.num_gates * cell.hidden_size
                  * (cell.input_size + cell.hidden_size) for cell in layer.cells)
    return forward * (3 if mode == "train" else 1)


def step_fn(model: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """One training step (forward + backward of the summed outputs) or one inference call.

    Both torch.nn modules and ``Recurrent`` return ``(outputs, state)``; outputs come first.
    """
    if mode == "train":
        def train_step() -> None:
            model.zero_grad(set_to_none=True)
            model(x)[0].sum().backward()
        return train_step

    def infer_step() -> None:
        with torch.no_grad():
            model(x)
    return infer_step


def build(cell: str, config: Config) -> dict[str, nn.Module]:
    """torch.nn module and its two recur twins (fused dispatch, readable path), same weights."""
    module = TORCH_MODULES[cell](config.inputs, config.hidden, config.layers, batch_first=True)
    fused = Recurrent.from_torch(module)
    readable = Recurrent.from_torch(module, fused=False)
    if not fused.use_fused:
        raise RuntimeError(f"expected the fused path for {cell}, got {fused!r}")
    return {"recur": fused, "torch": module, "readable": readable}


def check_same_outputs(models: dict[str, nn.Module], x: torch.Tensor) -> None:
    """Guard against timing different functions: all contenders agree on x."""
    with torch.no_grad():
        reference = models["torch"](x)[0]                              # (B, T, H)
        for name, model in models.items():
            error = (model(x)[0] - reference).abs().max().item()
            if error > 1e-4:
                raise RuntimeError(f"{name} differs from torch.nn by {error:.2e} on the same x")


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
    """Median over rounds of numerator/denominator (same-round pairs cancel drift)."""
    return statistics.median(n / d for n, d in zip(numerator.samples, denominator.samples,
                                                   strict=False))


def run_layers(
    configs: dict[str, Config],
    cells: Sequence[str],
    *,
    repeats: int,
    warmup: int,
    modes: Sequence[str] = MODES,
    readable_repeats: int | None = None,
    skip_readable_above: int | None = None,
    sgemm_size: int = 2048,
    max_wait: float = 120.0,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Time recur fused / torch.nn / recur readable for every config × cell × mode.

    sgemm is measured again before each config (``sgemm_gflop_per_s`` in its rows), so a
    slow phase of the shared machine shows up next to the numbers it slowed down.
    """
    rows = []
    for name, config in configs.items():
        sgemm = sgemm_gflops(sgemm_size, repeats=max(repeats, 5))
        log(f"{name} {config}: sgemm {sgemm:.0f} GFLOP/s")
        x = torch.randn(config.batch, config.steps, config.inputs)     # (B, T, D)
        for cell in cells:
            models = build(cell, config)
            with_readable = skip_readable_above is None or config.hidden <= skip_readable_above
            if not with_readable:
                del models["readable"]
            check_same_outputs(models, x)
            wait_for_quiet(max_wait, log=log)
            for mode in modes:
                for model in models.values():
                    model.train(mode == "train")
                started = time.perf_counter()
                timings = interleaved(
                    {key: step_fn(model, x, mode) for key, model in models.items()},
                    repeats, warmup, limits={"readable": readable_repeats or repeats})
                recur, torch_nn = timings["recur"], timings["torch"]
                readable = timings.get("readable")
                flops = matmul_flops(models["recur"], config, mode)
                rows.append({
                    "config": name,
                    "shape": str(config),
                    "cell": cell,
                    "mode": mode,
                    "recur_ms": recur.median_ms,
                    "torch_ms": torch_nn.median_ms,
                    "torch_over_recur": paired_ratio(torch_nn, recur),
                    "readable_ms": readable.median_ms if readable else None,
                    "readable_over_recur": paired_ratio(readable, recur) if readable else None,
                    "tokens_per_s": config.batch * config.steps / recur.median,
                    "gflop_per_s": flops / recur.median / 1e9,
                    "percent_of_sgemm": None,  # set by ``benchmark`` from the run's sgemm peak
                    "sgemm_gflop_per_s": sgemm,
                    "flops": flops,
                    "contended_rounds": recur.contended,
                    "clean": all(t.clean for t in timings.values()),
                    "samples_ms": {k: [1e3 * s for s in t.samples] for k, t in timings.items()},
                })
                log(f"{name} {cell:5} {mode:5} recur {recur.median_ms:8.2f} ms  torch "
                    f"{torch_nn.median_ms:8.2f} ms  ratio {rows[-1]['torch_over_recur']:.3f}  "
                    f"({time.perf_counter() - started:.0f} s, {recur.contended} rounds dropped)")
    return rows


def run_minimal(config: Config, *, repeats: int, warmup: int, max_wait: float = 120.0,
                log: Callable[[str], None] = print) -> list[dict]:
    """Train minGRU / minLSTM (sequential scan) against nn.GRU and recur's fused GRU."""
    module = nn.GRU(config.inputs, config.hidden, config.layers, batch_first=True)
    models = {
        "nn.GRU": module,
        "recur gru (fused)": Recurrent.from_torch(module),
        "recur mingru (sequential scan)": Recurrent("mingru", config.inputs, config.hidden,
                                                    config.layers, scan="sequential"),
        "recur minlstm (sequential scan)": Recurrent("minlstm", config.inputs, config.hidden,
                                                     config.layers, scan="sequential"),
    }
    return train_rows(models, config, "nn.GRU", "minimal", repeats, warmup, max_wait, log)


def train_rows(models, config, baseline: str, label: str, repeats, warmup, max_wait, log):
    """Training steps of ``models`` interleaved on one random batch of ``config``; one row
    per model with its speed relative to ``baseline`` (key ``speed_vs_<baseline>``)."""
    x = torch.randn(config.batch, config.steps, config.inputs)         # (B, T, D)
    wait_for_quiet(max_wait, log=log)
    timings = interleaved({k: step_fn(m, x, "train") for k, m in models.items()},
                          repeats, warmup)
    ratio_key = "speed_vs_" + baseline.replace(".", "_").lower()
    rows = []
    for key, timing in timings.items():
        rows.append({
            "model": key,
            "ms": timing.median_ms,
            "tokens_per_s": config.batch * config.steps / timing.median,
            ratio_key: paired_ratio(timings[baseline], timing),
            "contended_rounds": timing.contended,
            "clean": timing.clean,
            "samples_ms": [1e3 * s for s in timing.samples],
        })
        log(f"{label} {key:32} {timing.median_ms:8.2f} ms")
    return rows


def run_minimal_long(config: Config, *, repeats: int, warmup: int, max_wait: float = 120.0,
                     parallel: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Train minGRU / minLSTM against nn.LSTM of the same width on long sequences.

    Contenders, interleaved: nn.LSTM (oneDNN); minGRU and minLSTM on recur's compiled CPU
    loop (the CPU default: gates, candidate and scan in one C++ pass, hand-written backward;
    ``recur.kernels.minimal``); the same layers with ``fused=False``, the readable path
    (σ and the coefficients as whole-sequence tensor ops, then ``scan_loop`` under autograd:
    the CPU default before the compiled loop, within noise of the ``SequentialScan`` it
    replaced); and minGRU with the parallel (Hillis-Steele) scan.
    """
    def minimal(cell: str, **options) -> Recurrent:
        return Recurrent(cell, config.inputs, config.hidden, config.layers, **options)

    models = {
        "nn.LSTM": nn.LSTM(config.inputs, config.hidden, config.layers, batch_first=True),
        "recur mingru (compiled scan)": minimal("mingru"),
        "recur minlstm (compiled scan)": minimal("minlstm"),
    }
    for name in ("mingru", "minlstm"):
        models[f"recur {name} (readable scan)"] = minimal(name, fused=False)
        models[f"recur {name} (readable scan)"].load_state_dict(
            models[f"recur {name} (compiled scan)"].state_dict())
    if parallel:  # ≈ 8× the sequential scan's time at T = 4096 on 2 cores: optional
        models["recur mingru (parallel scan)"] = minimal("mingru", scan="parallel")
    x = torch.randn(2, 64, config.inputs)
    for name in ("mingru", "minlstm"):        # guard: the compiled loop computes the same
        with torch.no_grad():
            error = (models[f"recur {name} (compiled scan)"](x)[0]
                     - models[f"recur {name} (readable scan)"](x)[0]).abs().max().item()
        if error > 1e-5:
            raise RuntimeError(f"{name}: compiled and readable scans differ by {error:.2e}")
    return train_rows(models, config, "nn.LSTM", "minimal-long", repeats, warmup, max_wait, log)


def layer_table(rows: Sequence[dict], mode: str) -> str:
    header = ["cfg", "shape", "cell", "recur fused (ms)", "torch.nn (ms)", "torch/recur",
              "recur readable (ms)", "readable/fused", "recur tok/s", "recur GFLOP/s",
              "% of sgemm"]
    body = [[r["config"] + ("" if r["clean"] else " †"), r["shape"], r["cell"],
             f"{r['recur_ms']:.2f}", f"{r['torch_ms']:.2f}",
             f"{r['torch_over_recur']:.3f}",
             "—" if r["readable_ms"] is None else f"{r['readable_ms']:.2f}",
             "—" if r["readable_over_recur"] is None else f"{r['readable_over_recur']:.2f}×",
             f"{r['tokens_per_s']:,.0f}", f"{r['gflop_per_s']:.1f}",
             f"{r['percent_of_sgemm']:.0f}%"]
            for r in rows if r["mode"] == mode]
    return markdown_table(header, body)


def minimal_table(rows: Sequence[dict]) -> str:
    header = ["model", "train step (ms)", "tok/s", "speed vs nn.GRU"]
    body = [[r["model"] + ("" if r["clean"] else " †"), f"{r['ms']:.2f}",
             f"{r['tokens_per_s']:,.0f}",
             f"{r['speed_vs_nn_gru']:.2f}×"] for r in rows]
    return markdown_table(header, body)


def minimal_long_table(rows: Sequence[dict]) -> str:
    header = ["model", "train step (ms)", "tok/s", "speed vs nn.LSTM"]
    body = [[r["model"] + ("" if r["clean"] else " †"), f"{r['ms']:.1f}",
             f"{r['tokens_per_s']:,.0f}", f"{r['speed_vs_nn_lstm']:.2f}×"] for r in rows]
    return markdown_table(header, body)


def compact_table(rows: Sequence[dict]) -> str:
    """Training times and both modes' torch/recur ratios on one line per config and cell."""
    infer = {(r["config"], r["cell"]): r for r in rows if r["mode"] == "infer"}
    header = ["cfg", "shape", "cell", "train: recur (ms)", "torch.nn (ms)", "torch/recur",
              "infer: torch/recur"]
    body = []
    for r in rows:
        if r["mode"] != "train":
            continue
        other = infer.get((r["config"], r["cell"]))
        body.append([r["config"] + ("" if r["clean"] else " †"), r["shape"], r["cell"],
                     f"{r['recur_ms']:.2f}", f"{r['torch_ms']:.2f}",
                     f"{r['torch_over_recur']:.2f}",
                     "—" if other is None else f"{other['torch_over_recur']:.2f}"])
    return markdown_table(header, body)


VIEWS = ("train", "infer", "compact", "minimal", "minimal-long", "sgemm")


def markdown(document: dict, view: str | None = None) -> str:
    """Tables of a layers.json document (``recur bench --write-docs``).

    view: None (every table with its heading), or one of ``VIEWS``: ``train`` / ``infer``
    (the layer table of that mode), ``compact`` (train times and both ratios),
    ``minimal`` (vs nn.GRU), ``minimal-long`` (vs nn.LSTM at T = 4096), ``sgemm``.
    """
    if view is not None and view not in VIEWS:
        raise ValueError(f"layers has no view {view!r}; expected one of {', '.join(VIEWS)}")
    rows, threads = document["rows"], document["settings"]["threads"]
    sgemm = document["sgemm"]
    rates = ", ".join(f"{rate:.0f}" for rate in sgemm["samples_gflop_per_s"])
    sgemm_line = (f"sgemm (torch.mm {sgemm['size']}², fp32) over the run: {rates} GFLOP/s; "
                  f"% of sgemm divides by the highest, {sgemm['peak_gflop_per_s']:.0f}.")
    minimal_long = document.get("minimal_long") or []
    every = rows + document.get("minimal", []) + minimal_long
    dagger = ("" if all(r["clean"] for r in every) else
              "\n\n† other processes used the CPU in every round: contended samples kept.")
    if view in ("train", "infer"):
        return layer_table(rows, view) + dagger
    if view == "compact":
        return compact_table(rows) + dagger
    if view == "minimal":
        return minimal_table(document["minimal"]) + dagger
    if view == "minimal-long":
        return minimal_long_table(minimal_long) + dagger
    if view == "sgemm":
        return sgemm_line
    parts = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        title = "Training step (forward + backward)" if mode == "train" else "Inference"
        parts.append(f"### {title}, float32, {threads} threads\n\n{layer_table(rows, mode)}")
    if document.get("minimal"):
        parts.append(f"### minGRU / minLSTM vs nn.GRU, training step, "
                     f"{document['minimal_config']}\n\n{minimal_table(document['minimal'])}")
    if minimal_long:
        parts.append(f"### minGRU / minLSTM vs nn.LSTM, training step, "
                     f"{document['minimal_long_config']}\n\n{minimal_long_table(minimal_long)}")
    return "\n\n".join(parts) + dagger + "\n\n" + sgemm_line


def parse_list(text: str, choices: Sequence[str], what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if not items or unknown:
        raise argparse.ArgumentTypeError(
            f"{what} must be a comma-separated list of {', '.join(choices)}, got {text!r}")
    return items


def benchmark(
    configs: dict[str, Config],
    cells: Sequence[str],
    *,
    repeats: int = 5,
    warmup: int = 2,
    modes: Sequence[str] = MODES,
    readable_repeats: int | None = None,
    skip_readable_above: int | None = None,
    minimal: Config | None = MINIMAL_CONFIG,
    minimal_long: Config | None = None,
    parallel_scan: bool = True,
    sgemm_size: int = 2048,
    max_wait: float = 120.0,
    log: Callable[[str], None] = print,
) -> dict:
    """Both tables plus the sgemm reference, as the JSON document's body.

    "% of sgemm" divides by the *highest* sgemm rate seen in the run (start, before each
    config, end): a slow phase that lowered one sgemm sample must not inflate the ratio.
    """
    sgemm_start = sgemm_gflops(sgemm_size, repeats=max(repeats, 5))
    rows = run_layers(configs, cells, repeats=repeats, warmup=warmup, modes=modes,
                      readable_repeats=readable_repeats,
                      skip_readable_above=skip_readable_above, sgemm_size=sgemm_size,
                      max_wait=max_wait, log=log)
    minimal_rows = (run_minimal(minimal, repeats=repeats, warmup=warmup, max_wait=max_wait,
                                log=log)
                    if minimal is not None else [])
    minimal_long_rows = (run_minimal_long(minimal_long, repeats=repeats, warmup=warmup,
                                          max_wait=max_wait, parallel=parallel_scan, log=log)
                         if minimal_long is not None else [])
    sgemm_end = sgemm_gflops(sgemm_size, repeats=max(repeats, 5))
    per_config = {row["config"]: row["sgemm_gflop_per_s"] for row in rows}
    samples = [sgemm_start, *per_config.values(), sgemm_end]
    peak = max(samples)
    for row in rows:
        row["percent_of_sgemm"] = 100 * row["gflop_per_s"] / peak
    return {
        "sgemm": {"size": sgemm_size, "peak_gflop_per_s": peak, "start": sgemm_start,
                  "end": sgemm_end, "samples_gflop_per_s": samples},
        "rows": rows,
        "minimal_config": str(minimal) if minimal is not None else None,
        "minimal": minimal_rows,
        "minimal_long_config": str(minimal_long) if minimal_long is not None else None,
        "minimal_long": minimal_long_rows,
    }


def print_tables(results: dict, threads: int) -> None:
    print()
    print(markdown({**results, "settings": {"threads": threads}}))


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=lambda s: parse_list(s, list(CONFIGS), "--configs"),
                        help="comma-separated subset of a,b,c,d (default: all; a with --quick)")
    parser.add_argument("--cells", default="lstm,gru,elman",
                        type=lambda s: parse_list(s, list(TORCH_MODULES), "--cells"))
    parser.add_argument("--modes", default="train,infer",
                        type=lambda s: parse_list(s, MODES, "--modes"))
    parser.add_argument("--repeats", type=int, help="timed rounds per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument("--readable-repeats", type=int, metavar="N",
                        help="time the readable path in the first N rounds only")
    parser.add_argument("--skip-readable-above", type=int, metavar="H",
                        help="do not time the readable path when hidden size > H")
    parser.add_argument("--minimal", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the minGRU/minLSTM vs nn.GRU table (default on)")
    parser.add_argument("--minimal-long", action=argparse.BooleanOptionalAction, default=False,
                        help="also train minGRU/minLSTM against nn.LSTM at "
                             f"{MINIMAL_LONG_CONFIG} (default off: ~1 min per round)")
    parser.add_argument("--minimal-long-inputs", type=int, default=MINIMAL_LONG_CONFIG.inputs,
                        metavar="D", help="input width D of the --minimal-long table (default "
                        f"{MINIMAL_LONG_CONFIG.inputs}; 64 is the foundation benchmark's "
                        "config d)")
    parser.add_argument("--parallel-scan", action=argparse.BooleanOptionalAction, default=True,
                        help="race minGRU's parallel scan in the --minimal-long table too "
                             "(default on; the slowest contender there)")
    parser.add_argument("--layers", action=argparse.BooleanOptionalAction, default=True,
                        help="run the layer tables (default on; --no-layers for the minimal "
                             "tables alone)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sgemm-size", type=int, default=2048, metavar="N",
                        help="reference matmul is (N, N) @ (N, N) (default 2048)")
    parser.add_argument("--max-wait", type=float, default=120.0, metavar="S",
                        help="before each cell, wait up to S seconds for other processes to "
                             "leave the CPU (default 120; 0 to never wait)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: config a unless --configs, 3 repeats unless --repeats")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/layers.json)")
    args = parser.parse_args(argv)
    configs = args.configs or (["a"] if args.quick else list(CONFIGS))
    if not args.layers:
        configs = []
    repeats = args.repeats or (3 if args.quick else 5)
    if args.minimal_long_inputs < 1:
        parser.error(f"--minimal-long-inputs must be a positive int, got {args.minimal_long_inputs}")
    if repeats < 1 or args.warmup < 0:
        parser.error(f"--repeats must be >= 1 and --warmup >= 0, got {repeats}, {args.warmup}")

    threads = set_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    log(f"threads {threads}, torch {torch.__version__}")
    results = benchmark({c: CONFIGS[c] for c in configs}, args.cells, repeats=repeats,
                        warmup=args.warmup, modes=args.modes,
                        readable_repeats=args.readable_repeats,
                        skip_readable_above=args.skip_readable_above,
                        minimal=MINIMAL_CONFIG if args.minimal else None,
                        minimal_long=(MINIMAL_LONG_CONFIG._replace(inputs=args.minimal_long_inputs)
                                      if args.minimal_long else None),
                        parallel_scan=args.parallel_scan,
                        sgemm_size=args.sgemm_size, max_wait=args.max_wait, log=log)
    print_tables(results, threads)
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = {"command": " ".join(["python bench/layers.py", *argv]), "configs": configs,
                "cells": args.cells, "modes": args.modes, "repeats": repeats,
                "warmup": args.warmup, "readable_repeats": args.readable_repeats or repeats,
                "skip_readable_above": args.skip_readable_above, "threads": threads,
                "sgemm_size": args.sgemm_size, "max_wait": args.max_wait,
                "minimal": args.minimal, "minimal_long": args.minimal_long,
                "minimal_long_inputs": args.minimal_long_inputs}
    path = write_results("layers", {"settings": settings, **results}, args.out)
    log(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
