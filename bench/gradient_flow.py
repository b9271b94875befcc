"""Gradient flow through time on the adding problem: initialisations, activations, cells, clipping.

The notes' vanishing / exploding gradient analysis, measured with
``recur.diagnostics.gradient_flow`` (‖∂L/∂h_t‖ for every t, and the per-step Jacobian
norms ‖∂h_t/∂h_{t-1}‖) and drawn with ``plot_gradient_flow``. The loss is the adding
problem's MSE (``recur.tasks.lab``) on 64 sequences of length T, read from the last state,
so ‖∂L/∂h_t‖ says how much the loss still hears of step t. Four comparisons, each one
fresh model per line (seed 0), everything else equal:

* ``gradient-flow-inits.png``: the tanh Elman RNN with torch's uniform init
  U(-1/√H, 1/√H), Glorot input + orthogonal recurrent weights, and identity recurrent
  weights; plus the IRNN (identity + ReLU, Le, Jaitly & Hinton 2015);
* ``gradient-flow-activations.png``: the Elman RNN (orthogonal W) with tanh, relu, sigmoid;
* ``gradient-flow-cells.png``: elman, gru, lstm (forget bias 1, as in the lab) and mingru,
  orthogonal W;
* ``gradient-flow-clipping.png`` and ``gradient-flow-clipping-training.png``: the IRNN,
  which explodes, trained ``--steps`` steps of plain SGD with and without clipping the
  global gradient norm to 1 (same seed, same batches): the pre-clip gradient norm and the
  loss per step, and ‖∂L/∂h_t‖ of the two models at the end.

Run from the repository root (about a minute on one thread):

    .venv/bin/python bench/gradient_flow.py --out docs/images

It prints ‖∂L/∂h_t‖ at a few t as markdown tables (docs/long-dependencies.md) and writes
the PNGs into ``--out`` and the numbers to ``--json`` (bench/results/gradient_flow.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recur.diagnostics import GradientFlow, gradient_flow, plot_gradient_flow
from recur.tasks.lab import LabModel, LabModelConfig, adding_problem

RESULTS = Path(__file__).resolve().parent / "results" / "gradient_flow.json"

# label -> (cell, cell options); "glorot" is Glorot-uniform input + orthogonal W
INITS = {
    "uniform (torch default), tanh": ("elman", {"init": "uniform"}),
    "orthogonal, tanh": ("elman", {"init": "glorot"}),
    "identity, tanh": ("elman", {"init": "identity"}),
    "identity, relu (IRNN)": ("elman", {"init": "identity", "activation": "relu"}),
}
ACTIVATIONS = {name: ("elman", {"init": "glorot", "activation": name})
               for name in ("tanh", "relu", "sigmoid")}
CELLS = {"elman": ("elman", {"init": "glorot"}), "gru": ("gru", {"init": "glorot"}),
         "lstm": ("lstm", {"init": "glorot", "forget_bias": 1.0}),
         "mingru": ("mingru", {"init": "glorot"})}
CLIPPED = ("elman", {"init": "identity", "activation": "relu"})


def build(cell: str, options: dict[str, Any], hidden_size: int, seed: int = 0) -> LabModel:
    """The lab's adding-problem model: Recurrent(2 → H) and a linear readout of h_T."""
    torch.manual_seed(seed)
    return LabModel(LabModelConfig(cell, 2, hidden_size, 1, 1, dict(options)))


def adding_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.mse_loss(model(x)[:, 0, 0], y)


def flows_of(models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor) -> dict[str, GradientFlow]:
    return {label: gradient_flow(model.eval(), x, lambda out: nn.functional.mse_loss(out[:, 0, 0], y))
            for label, model in models.items()}


def train(model: nn.Module, steps: int, lr: float, clip: float | None, length: int,
          batch_size: int, seed: int = 0) -> dict[str, list[float]]:
    """Plain SGD on fresh adding batches: forward → loss → backward → clip → step.

    Returns the pre-clip global gradient norm and the loss of every step (a step whose
    loss is not finite ends the run)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"grad_norm": [], "loss": []}
    for _ in range(steps):
        data = adding_problem(batch_size, length, generator)
        loss = adding_loss(model, data.x, data.y)
        optimizer.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), clip if clip is not None else math.inf)
        optimizer.step()
        history["grad_norm"].append(float(norm))
        history["loss"].append(float(loss.detach()))
        if not math.isfinite(history["loss"][-1]):
            break
    return history


def plot_training(histories: dict[str, dict[str, list[float]]], path: Path, title: str) -> Path:
    """Pre-clip gradient norm (log) and loss per training step, one line per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    norm_ax, loss_ax = fig.subplots(1, 2)
    for label, history in histories.items():
        steps = range(1, len(history["loss"]) + 1)
        norm_ax.plot(steps, history["grad_norm"], label=label, linewidth=1)
        loss_ax.plot(steps, history["loss"], label=label, linewidth=1)
    norm_ax.set_yscale("log")
    norm_ax.set_title("global gradient norm before clipping", fontsize=10)
    loss_ax.set_title("training loss (MSE)", fontsize=10)
    loss_ax.axhline(2 / 12, color="gray", linestyle="--", linewidth=1, label="predict 1 (0.167)")
    loss_ax.set_ylim(0, 0.5)
    for ax in (norm_ax, loss_ax):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def table(name: str, flows: dict[str, GradientFlow], length: int) -> str:
    """Markdown: ‖∂L/∂h_t‖ at a few t, and the median per-step Jacobian norm."""
    ts = sorted({t for t in (1, length // 4, length // 2, 3 * length // 4, length - 9, length)
                 if 1 <= t <= length})
    lines = [f"| {name} | " + " | ".join(f"t={t}" for t in ts) + " | median ‖∂h_t/∂h_t−1‖ |",
             "|---" * (len(ts) + 2) + "|"]
    for label, flow in flows.items():
        cells = ["0 (underflow)" if flow.grad_norms[t - 1] == 0 else f"{float(flow.grad_norms[t - 1]):.2g}"
                 for t in ts]
        jac = "-" if flow.jacobian_norms is None else f"{float(flow.jacobian_norms.median()):.3g}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {jac} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--length", type=int, default=100, help="T of the adding problem")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300, help="SGD steps of the clipping runs")
    parser.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (clipping runs)")
    parser.add_argument("--clip", type=float, default=1.0, help="the clipped run's max norm")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/images", help="folder for the PNGs")
    parser.add_argument("--json", default=str(RESULTS), help="numbers written here")
    args = parser.parse_args(argv)
    for name in ("length", "hidden_size", "batch_size", "steps", "threads"):
        if getattr(args, name) < (2 if name == "length" else 1):
            parser.error(f"--{name.replace('_', '-')} must be a positive int, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    T, H = args.length, args.hidden_size
    data = adding_problem(args.batch_size, T, torch.Generator().manual_seed(1234))
    x, y = data.x, data.y

    results: dict[str, Any] = {"length": T, "hidden_size": H, "batch_size": args.batch_size}
    comparisons = {"inits": (INITS, "Elman RNN: initialisation of W"),
                   "activations": (ACTIVATIONS, "Elman RNN (orthogonal W): activation f"),
                   "cells": (CELLS, "cells (orthogonal W; LSTM forget bias 1)")}
    for name, (specs, what) in comparisons.items():
        flows = flows_of({label: build(cell, options, H) for label, (cell, options) in specs.items()},
                         x, y)
        path = plot_gradient_flow(flows, out / f"gradient-flow-{name}.png",
                                  title=f"adding problem, T={T}, H={H}, at initialisation: {what}")
        print(f"wrote {path}\n\n{table(name, flows, T)}\n")
        results[name] = {label: {"grad_norms": f.grad_norms.tolist(),
                                 "jacobian_norms": f.jacobian_norms.tolist()}
                         for label, f in flows.items()}

    clip_label = f"clip {args.clip:g}"
    models = {label: build(*CLIPPED, H) for label in ("no clipping", clip_label)}
    histories = {label: train(model, args.steps, args.lr, args.clip if label == clip_label else None,
                              T, args.batch_size)
                 for label, model in models.items()}
    what = f"IRNN (identity W, relu), SGD lr {args.lr:g}, T={T}"
    training_png = plot_training(histories, out / "gradient-flow-clipping-training.png",
                                 f"{what}: with and without clipping")
    flows = flows_of(models, x, y)
    path = plot_gradient_flow(flows, out / "gradient-flow-clipping.png",
                              title=f"{what}: after {args.steps} steps")
    print(f"wrote {training_png}\nwrote {path}\n\n{table('clipping', flows, T)}\n")
    for label, history in histories.items():
        finite = [n for n in history["grad_norm"] if math.isfinite(n)]
        print(f"{label}: {len(history['loss'])} steps, pre-clip gradient norm max {max(finite):.3g}, "
              f"median {sorted(finite)[len(finite) // 2]:.3g}; final loss {history['loss'][-1]:.4g}, "
              f"best {min(history['loss']):.4g}")
    results["clipping"] = {"lr": args.lr, "clip": args.clip, "steps": args.steps,
                           "runs": histories,
                           "after": {label: f.grad_norms.tolist() for label, f in flows.items()}}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
