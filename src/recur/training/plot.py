"""Training curves from a run's metrics.jsonl, as PNG files.

``plot_run("runs/imdb")`` writes into ``runs/imdb/plots/``:

    loss.png           training loss per log step and validation loss, by step
    valid_metrics.png  every other validation metric that changes (accuracy, F1 per class,
                       perplexity...), one small panel each, by step
    lr.png             the learning rate
    grad_norm.png      the pre-clip global gradient norm (mean and max per log interval),
                       with clip_norm as a dashed line

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global
backend change), so it works on servers and inside notebooks alike. matplotlib is
imported on first use: it costs ~0.7 s, which ``import recur.training`` should not pay.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

Series = tuple[str, list[float], list[float]]  # label, steps, values


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of ``run_dir``/metrics.jsonl (a line torn by a crash is skipped)."""
    file = Path(run_dir) / "metrics.jsonl"
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist; is {run_dir} a recur run folder?")
    records = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _series(label: str, records: list[dict[str, Any]], key: str) -> Series:
    points = [(r["step"], r[key]) for r in records if _is_number(r.get(key))]
    return label, [step for step, _ in points], [value for _, value in points]


def _clip_norm(run_dir: Path) -> float | None:
    """The run's TrainConfig.clip_norm, from its last/ or best/ config.json, if any."""
    for folder in ("last", "best"):
        try:
            config = json.loads((run_dir / folder / "config.json").read_text(encoding="utf-8"))
            return (config.get("training") or {}).get("clip_norm")
        except (OSError, ValueError, AttributeError):
            continue
    return None


def _figure(panels: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(panels, 4)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(6 if panels == 1 else 3.2 * columns, 4 if panels == 1 else 2.6 * rows))
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(rows, columns, i + 1) for i in range(panels)]


def _draw(ax, title: str, lines: list[Series], log_y: bool = False) -> None:
    for label, steps, values in lines:
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=label)
    if log_y and all(v > 0 for _, _, values in lines for v in values):
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if len(lines) > 1:
        ax.legend()


def _save(fig, run_dir: Path, name: str) -> Path:
    fig.tight_layout()
    path = run_dir / "plots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def plot_run(run_dir: str | os.PathLike) -> list[Path]:
    """Write the run's curves as PNGs into ``run_dir``/plots/; return their paths."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    train = [r for r in records if r.get("kind") == "train"]
    valid = [r for r in records if r.get("kind") == "valid"]
    written = []
    single = {
        "loss": ("loss", [_series("train", train, "loss"), _series("valid", valid, "valid_loss")]),
        "lr": ("learning rate", [_series("lr", train, "lr")]),
        "grad_norm": (
            "global gradient norm (pre-clip)",
            [_series("mean", train, "grad_norm"), _series("max", train, "grad_norm_max")],
        ),
    }
    for name, (title, lines) in single.items():
        lines = [line for line in lines if line[1]]
        if lines:
            fig, (ax,) = _figure(1)
            _draw(ax, title, lines, log_y=name == "grad_norm")
            clip_norm = _clip_norm(run_dir)
            if name == "grad_norm" and clip_norm:
                ax.axhline(clip_norm, color="gray", linestyle="--", label="clip_norm")
                ax.legend()
            written.append(_save(fig, run_dir, name))

    keys = sorted({k for r in valid for k in r if k.startswith("valid_") and k != "valid_loss"})
    panels = [_series(k.removeprefix("valid_"), valid, k) for k in keys]
    panels = [p for p in panels if p[1] and (len(set(p[2])) > 1 or len(p[2]) == 1)]  # no flat
    if panels:
        fig, axes = _figure(len(panels))
        for ax, (name, steps, values) in zip(axes, panels, strict=True):
            _draw(ax, name, [("valid", steps, values)])
        written.append(_save(fig, run_dir, "valid_metrics"))
    return written
