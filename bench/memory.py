"""Training-step memory of config c, with and without gradient checkpointing over time.

Config c of the layer benchmark (bench/layers.py): ``Recurrent("lstm", 512, 512, 2)`` on
B32 T200 D512 float32 inputs; a training step is zero_grad, forward, ``outputs.sum()
.backward()``. Cases: torch.nn.LSTM, recur's fused (oneDNN) path and its readable path,
each without and with ``checkpoint_chunk=K``.

**What is measured.** Each case runs in a fresh Python process (this file with
``--case``), so no case inherits another's heap. The process first runs one training
step of the same case at a tiny shape (so lazy imports, thread pools and kernel caches are
not counted), then builds the layer and the input, runs the garbage collector, resets
the kernel's resident-set high-water mark (``echo 5 > /proc/self/clear_refs``), reads its
resident set size (VmRSS, the *baseline*) and runs two training steps, reading the
high-water mark (VmHWM) after each. Reported:
peak RSS during step 1 and during step 2, minus the baseline — the memory the operating
system had to give the process for the step: saved activations, gradients, workspaces,
and whatever the allocators (glibc malloc, oneDNN) kept. It is not the sum of tensor
sizes; it is what the machine pays. Linux only (``/proc/self``).

**Time.** In one more process every case's training step is timed, interleaved round by
round (``common.interleaved``), so the checkpointing cost is a same-run ratio.

Run from the repository root (one thread, through the slot runner on a shared machine):

    /work/shared/bin/longrun .venv/bin/python bench/memory.py            # ~5 min
    .venv/bin/python bench/memory.py --quick                             # tiny shape, seconds

It prints a markdown table and writes bench/results/memory.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from common import interleaved, markdown_table, set_threads, write_results
from torch import nn

from recur import Recurrent

# (B, T, D, H, L): config c of bench/layers.py, and a tiny shape for --quick
SHAPES = {"c": (32, 200, 512, 512, 2), "tiny": (4, 16, 8, 8, 2)}
CASES = {  # name: (contender, checkpoint_chunk)
    "torch.nn.LSTM": ("torch", None),
    "recur fused": ("fused", None),
    "recur fused, checkpoint_chunk=50": ("fused", 50),
    "recur fused, checkpoint_chunk=20": ("fused", 20),
    "recur fused, checkpoint_chunk=10": ("fused", 10),
    "recur readable": ("readable", None),
    "recur readable, checkpoint_chunk=20": ("readable", 20),
}
QUICK_CASES = ("torch.nn.LSTM", "recur fused", "recur fused, checkpoint_chunk=10")


def status_kb(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} field")


def build(case: str, shape: tuple[int, ...]) -> tuple[nn.Module, torch.Tensor]:
    B, T, D, H, L = shape
    contender, chunk = CASES[case]
    module = nn.LSTM(D, H, L, batch_first=True)
    if contender == "torch":
        model: nn.Module = module
    else:
        model = Recurrent.from_torch(module, fused=contender == "fused", checkpoint_chunk=chunk)
    return model, torch.randn(B, T, D)                                 # (B, T, D)


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    model(x)[0].sum().backward()


def measure_case(case: str, shape: tuple[int, ...]) -> dict:
    """In this (fresh) process: peak RSS of two training steps above the RSS before them."""
    tiny_model, tiny_x = build(case, SHAPES["tiny"])
    train_step(tiny_model, tiny_x)     # lazy imports, thread pools, kernel caches: not the step's
    del tiny_model, tiny_x
    model, x = build(case, shape)
    gc.collect()
    clear_refs = Path("/proc/self/clear_refs")
    clear_refs.write_text("5")                        # reset VmHWM to the current RSS
    baseline = status_kb("VmRSS")
    peaks = []
    for _ in range(2):
        clear_refs.write_text("5")
        train_step(model, x)
        peaks.append(status_kb("VmHWM"))
    return {"case": case, "baseline_mb": baseline / 1024,
            "step1_mb": (peaks[0] - baseline) / 1024, "step2_mb": (peaks[1] - baseline) / 1024}


def time_cases(cases: Sequence[str], shape: tuple[int, ...], repeats: int) -> dict[str, dict]:
    """Median training-step time of every case, interleaved; ratio to recur fused."""
    built = {case: build(case, shape) for case in cases}
    timings = interleaved({case: (lambda m=m, x=x: train_step(m, x))
                           for case, (m, x) in built.items()}, repeats, warmup=1)
    base = timings["recur fused"]
    return {case: {"ms": t.median_ms, "clean": t.clean, "contended_rounds": t.contended,
                   "vs_recur_fused": statistics.median(
                       a / b for a, b in zip(t.samples, base.samples, strict=False)),
                   "samples_ms": [1e3 * s for s in t.samples]}
            for case, t in timings.items()}


def run_child(args: list[str]) -> dict:
    """This file in a fresh interpreter; its last stdout line is a JSON object."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench/memory.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(document: dict, view: str | None = None) -> str:
    """The results table of a memory.json document (``recur bench --write-docs``)."""
    if view not in (None, "table"):
        raise ValueError(f"memory has no view {view!r}; expected none or 'table'")
    header = ["case", "peak above baseline, step 1 (MB)", "step 2 (MB)", "train step (ms)",
              "time vs recur fused"]
    body = []
    timings = document.get("timing") or {}
    for row in document["rows"]:
        timing = timings.get(row["case"])
        if timing is None:
            body.append([row["case"], f"{row['step1_mb']:.0f}", f"{row['step2_mb']:.0f}",
                         "—", "—"])
            continue
        body.append([row["case"] + ("" if timing["clean"] else " †"),
                     f"{row['step1_mb']:.0f}", f"{row['step2_mb']:.0f}",
                     f"{timing['ms']:.0f}", f"{timing['vs_recur_fused']:.2f}×"])
    shape = "B{} T{} D{} H{} L{}".format(*document["shape"])
    settings = document["settings"]
    timed = (f"time: median of {settings['repeats']} interleaved rounds." if timings else
             f"time: not measured ({settings.get('note', 'run with --no-timing')}).")
    note = (f"\n\n{shape}, {settings['threads']} thread(s); memory: median of "
            f"{settings['memory_repeats']} fresh processes per case (baseline RSS "
            f"{statistics.median(r['baseline_mb'] for r in document['rows']):.0f} MB); {timed}")
    return markdown_table(header, body) + note


def main(argv: Sequence[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--memory-repeats", type=int, default=3,
                        help="fresh processes per case for the memory peak (default 3)")
    parser.add_argument("--quick", action="store_true", help="tiny shape, three cases")
    parser.add_argument("--timing", action=argparse.BooleanOptionalAction, default=True,
                        help="also time every case's step, interleaved (default on)")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/memory.json)")
    parser.add_argument("--case", help=argparse.SUPPRESS)      # child: measure one case
    parser.add_argument("--time", action="store_true", help=argparse.SUPPRESS)  # child: timing
    parser.add_argument("--shape", default="c", choices=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    shape = SHAPES["tiny" if args.quick else args.shape]
    cases = list(QUICK_CASES if args.quick else CASES)
    if args.case is not None:
        print(json.dumps(measure_case(args.case, shape)))
        return None
    if args.time:
        print(json.dumps(time_cases(cases, shape, args.repeats)))
        return None

    common = ["--threads", str(threads), "--shape", "tiny" if args.quick else args.shape]
    rows = []
    for case in cases:
        runs = [run_child([*common, "--case", case]) for _ in range(args.memory_repeats)]
        row = {key: statistics.median(run[key] for run in runs)
               for key in ("baseline_mb", "step1_mb", "step2_mb")}
        rows.append({"case": case, **row, "runs": runs})
        print(f"{case}: step 1 +{row['step1_mb']:.0f} MB, step 2 +{row['step2_mb']:.0f} MB "
              f"(baseline {row['baseline_mb']:.0f} MB)", file=sys.stderr, flush=True)
    timing = run_child([*common, "--time", "--repeats", str(args.repeats)]) if args.timing else None
    argv = sys.argv[1:] if argv is None else list(argv)
    document = {"settings": {"command": " ".join(["python bench/memory.py", *argv]),
                             "threads": threads, "repeats": args.repeats,
                             "memory_repeats": args.memory_repeats, "quick": args.quick},
                "shape": list(shape), "rows": rows, "timing": timing}
    print(markdown(document))
    path = write_results("memory", document, args.out)
    print(f"wrote {path}", file=sys.stderr)
    return document


if __name__ == "__main__":
    main()
