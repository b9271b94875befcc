"""Timing helpers shared by the scripts in bench/: threads, warm-up, interleaved medians.

The machine these benchmarks were written for has 2 cores shared with other jobs, so a
number on its own means little: every script compares contenders *within one run*,
interleaving them round by round (drift hits all of them alike) and reporting medians.
Throughput is also put against the fp32 sgemm rate measured in the same run.

A second job on the cores does more than share them: torch's 2 OpenMP threads then wait
at every barrier for a descheduled partner, and a recurrent kernel (a few barriers per
time step) runs 10-40× slower. So on Linux ``interleaved`` also watches the CPU time that
*other* processes use (/proc/stat minus this process's own time): it waits for a quiet
machine before starting, and a round in which others used more than a tenth of a core is
dropped and run again (up to ``max_rounds``); ``Timing.contended`` counts the drops.

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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor
from pathlib import Path
from typing import NamedTuple

import torch

from recur.training import reuse_freed_memory

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BUSY_CORES = 0.1  # others' CPU use (in cores) above which a round counts as contended


class Timing(NamedTuple):
    """Wall-clock samples of one contender, in seconds, from the rounds that were kept."""

    samples: list[float]
    contended: int = 0  # rounds dropped because other processes were using the CPU
    clean: bool = True  # False: too few quiet rounds, so contended ones were kept too

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


class CpuWatch:
    """CPU seconds used by *other* processes since the last ``lap()`` (Linux only).

    /proc/stat counts busy time of the whole machine in clock ticks (10 ms); subtracting
    this process's own CPU time leaves what everybody else used. ``available`` is False
    where /proc/stat does not exist; ``lap()`` then returns 0.
    """

    TICK = 1 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01

    def __init__(self) -> None:
        self.available = Path("/proc/stat").exists()
        self._last = self._now()

    def _now(self) -> tuple[float, float, float]:
        busy = 0.0
        if self.available:
            with open("/proc/stat") as stat:
                fields = [int(v) for v in stat.readline().split()[1:9]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = fields
            busy = (user + nice + system + irq + softirq + steal) * self.TICK
        return time.perf_counter(), busy, time.process_time()

    def lap(self) -> tuple[float, float]:
        """(wall seconds, others' CPU seconds) since the previous lap."""
        now = self._now()
        wall, busy, own = (a - b for a, b in zip(now, self._last, strict=True))
        self._last = now
        return wall, max(0.0, busy - own)

    def quiet(self, wall: float, others: float) -> bool:
        """Did others use less than BUSY_CORES on average (with slack for tick rounding)?"""
        slack = 2 * (os.cpu_count() or 1) * self.TICK
        return others <= BUSY_CORES * wall + slack


def wait_for_quiet(max_wait: float = 120.0, log: Callable[[str], None] | None = None) -> float:
    """Sleep in 1 s steps until other processes leave the CPU idle (or ``max_wait`` passes).

    Returns the seconds waited.
    """
    watch = CpuWatch()
    started = time.perf_counter()
    while watch.available and time.perf_counter() - started < max_wait:
        time.sleep(1.0)
        if watch.quiet(*watch.lap()):
            break
    waited = time.perf_counter() - started
    if log is not None and waited > 1.5:
        log(f"waited {waited:.0f} s for other processes to leave the CPU")
    return waited


def interleaved(
    contenders: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    limits: dict[str, int] | None = None,
    max_rounds: int | None = None,
) -> dict[str, Timing]:
    """Time each contender ``repeats`` times, taking turns, after ``warmup`` untimed calls.

    Round r runs every contender once, in the order rotated by r and reversed on odd
    rounds, so slow phases of a shared machine land on all of them and no contender
    always follows the same one (a memory-hungry contender can leave cold caches and freed
    pages to whoever runs next). A round during which other processes
    used the CPU is dropped whole (pairs stay pairs) and run again, until ``repeats``
    clean rounds or ``max_rounds`` rounds (default 3 × repeats); if fewer than ``repeats``
    were clean by then, the contended rounds are kept too. ``limits`` caps the timed calls
    of a slow contender (it then takes part only in the first kept rounds).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    limits = limits or {}
    max_rounds = max_rounds or 3 * repeats
    names = list(contenders)
    for name in names:
        for _ in range(min(warmup, limits.get(name, warmup))):
            contenders[name]()
    clean: dict[str, list[float]] = {name: [] for name in names}
    contended: dict[str, list[float]] = {name: [] for name in names}
    dropped = 0
    watch = CpuWatch()
    # As timeit: no cyclic GC pass inside a timed call (autograd graphs are freed by
    # reference counting, so memory stays flat).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for r in range(max_rounds):
            if all(len(clean[name]) >= limits.get(name, repeats) for name in names):
                break
            shift = r % len(names)
            order = names[shift:] + names[:shift]
            if r % 2:  # reversed on odd rounds: no contender always runs right after another
                order.reverse()
            round_samples = {}
            watch.lap()
            for name in order:
                if len(clean[name]) >= limits.get(name, repeats):
                    continue
                start = time.perf_counter()
                contenders[name]()
                round_samples[name] = time.perf_counter() - start
            target = clean if watch.quiet(*watch.lap()) else contended
            dropped += target is contended
            for name, sample in round_samples.items():
                target[name].append(sample)
    finally:
        if gc_was_enabled:
            gc.enable()
    timings = {}
    for name in names:
        enough = len(clean[name]) >= min(repeats, limits.get(name, repeats))
        samples = clean[name] if enough else clean[name] + contended[name]
        timings[name] = Timing(samples, dropped, enough)
    return timings


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


# Every bench process keeps freed memory for reuse, as recur's CLI and Trainer do
# (recur.training.reuse_freed_memory: large tensors are not page-faulted in anew each step);
# both sides of a comparison run in the same process, so they share the setting.
REUSE_MEMORY = os.environ.get("RECUR_REUSE_MEMORY", "1") != "0" and reuse_freed_memory()


def machine_info() -> dict[str, object]:
    """What the numbers depend on: CPU, cores, threads, torch and Python versions."""
    return {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "python": platform.python_version(),
        "reuse_freed_memory": REUSE_MEMORY,
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


def autograd_node_names(output: Tensor, limit: int = 10_000) -> set[str]:
    """Type names of the autograd nodes behind ``output`` (a breadth-first walk)."""
    names, seen, frontier = set(), set(), [output.grad_fn]
    while frontier and len(seen) < limit:
        node = frontier.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        frontier.extend(next_node for next_node, _ in node.next_functions)
    return names
