"""Timing helpers shared by the scripts in bench/: threads, warm-up, interleaved medians.

The machine these benchmarks were written for has 2 cores shared with other jobs, so a
number on its own means little: every script compares contenders *within one run*,
interleaving them repeat by repeat (drift hits all of them alike) and reporting medians.
Throughput is also put against the fp32 sgemm rate measured in the same run.

Not a script: ``bench/layers.py`` and its siblings import it (``bench/`` is on sys.path
when they run).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Timing(NamedTuple):
    """Wall-clock samples of one contender, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def median_ms(self) -> float:
        return 1e3 * self.median


def set_threads(n: int) -> int:
    """Use ``n`` intra-op threads for torch; return the number torch reports back."""
    torch.set_num_threads(n)
    return torch.get_num_threads()


def interleaved(
    contenders: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    limits: dict[str, int] | None = None,
) -> dict[str, Timing]:
    """Time each contender ``repeats`` times, taking turns, after ``warmup`` untimed calls.

    Round r runs every contender once, starting from a different one each round, so slow
    phases of a shared machine land on all of them. ``limits`` caps the timed calls of
    a slow contender (it then takes part only in the first rounds).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    limits = limits or {}
    names = list(contenders)
    for name in names:
        for _ in range(min(warmup, limits.get(name, warmup))):
            contenders[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    # As timeit: no cyclic GC pass inside a timed call (autograd graphs are freed by
    # reference counting, so memory stays flat).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                if len(samples[name]) >= limits.get(name, repeats):
                    continue
                start = time.perf_counter()
                contenders[name]()
                samples[name].append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: Timing(s) for name, s in samples.items()}


def sgemm_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Median fp32 matmul throughput of torch.mm on (n, n) @ (n, n), in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    timing = interleaved({"mm": lambda: torch.mm(a, b, out=c)}, repeats, warmup=2)
    return 2 * n**3 / timing["mm"].median / 1e9


def cpu_model() -> str:
    """The CPU's model name as lscpu reports it (``platform.processor()`` if that fails)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    """What the numbers depend on: CPU, cores, threads, torch and Python versions."""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; cells are written with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict, path: Path | None = None) -> Path:
    """Write ``payload`` plus ``machine_info()`` as JSON to ``path`` (default
    ``bench/results/{name}.json``); return the path written."""
    path = Path(path) if path is not None else RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "machine": machine_info(), **payload}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
