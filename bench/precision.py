"""bf16 autocast vs fp32 training of recur's LSTM at H = 512: which kernels run, how fast.

One training step (zero_grad, forward under ``torch.autocast("cpu", torch.bfloat16)`` or
not, ``outputs.float().sum().backward()``) of ``recur.Recurrent("lstm", D, 512, 2)`` at the
foundation benchmark's configs c (B32 T200 D512 H512 L2) and d (B64 T128 D64 H512 L2).
Three contenders, interleaved round by round in one process (``common.interleaved``):

* ``fp32`` — torch's oneDNN LSTM (``aten::mkldnn_rnn_layer``), what recur runs in fp32;
* ``bf16 oneDNN`` — the same op under autocast (recur's kernels switched off, as with
  ``RECUR_CPU_KERNELS=0``);
* ``bf16 recur`` — recur's compiled LSTM loop (``recur/kernels/lstm_cpu.cpp``): every GEMM
  in bf16 (AMX), gate math and cell state in fp32 — what recur runs under bf16 autocast.

The path is read off the autograd graph (``MkldnnRnnLayerBackward0`` for oneDNN,
``_LSTMFunctionBackward`` for recur's loop). Ratios are the median over rounds of the
same-round ratio, so slow phases of a shared machine cancel.

Run from the repository root:

    .venv/bin/python bench/precision.py                        # c and d, 3 rounds
    .venv/bin/python bench/precision.py --quick                # tiny shapes, seconds

It prints a markdown table and writes bench/results/precision.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from common import autograd_node_names, interleaved, markdown_table, set_threads, write_results
from torch import Tensor

from recur import Recurrent

CONFIGS = {"c": (32, 200, 512, 512, 2), "d": (64, 128, 64, 512, 2)}   # B, T, D, H, L
QUICK_CONFIGS = {"c": (4, 12, 16, 32, 2), "d": (8, 10, 8, 32, 2)}
CONTENDERS = ("fp32", "bf16 oneDNN", "bf16 recur")
ROW_KEYS = ("config", "shape", "contender", "step_ms", "vs_fp32", "tokens_per_s", "path",
            "samples_ms", "contended_rounds")


@contextmanager
def recur_kernels(on: bool):
    """Switch recur's compiled CPU kernels on (``RECUR_CPU_KERNELS=always``: also with more
    than one thread, where recur itself would pick oneDNN) or off for a block."""
    before = os.environ.get("RECUR_CPU_KERNELS")
    os.environ["RECUR_CPU_KERNELS"] = "always" if on else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["RECUR_CPU_KERNELS"]
        else:
            os.environ["RECUR_CPU_KERNELS"] = before


def train_step(layer: Recurrent, x: Tensor, contender: str) -> Tensor:
    """One training step: zero_grad, forward (bf16 autocast or not), backward."""
    layer.zero_grad(set_to_none=True)
    with recur_kernels(contender == "bf16 recur"), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=contender != "fp32"):
        outputs, _ = layer(x)                                                    # (B, T, H)
    outputs.float().sum().backward()
    return outputs


def path_taken(layer: Recurrent, x: Tensor, contender: str) -> str:
    """Which LSTM implementation a contender runs, read off the autograd graph."""
    with recur_kernels(contender == "bf16 recur"), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=contender != "fp32"):
        outputs, _ = layer(x[:, :2])                                             # (B, 2, H)
    names = autograd_node_names(outputs)
    if any(n.startswith("MkldnnRnnLayer") for n in names):
        return f"oneDNN aten::mkldnn_rnn_layer, {outputs.dtype}"
    if any(n.startswith("_LSTMFunction") for n in names):
        return f"recur lstm_cpu.cpp, GEMMs {outputs.dtype}, gates fp32"
    return f"other ({', '.join(sorted(names))})"


def run(configs: dict[str, tuple[int, ...]], repeats: int,
        log: Callable[[str], None] = print) -> list[dict]:
    rows = []
    for name, (B, T, D, H, L) in configs.items():
        torch.manual_seed(0)
        layer = Recurrent("lstm", D, H, L)
        x = torch.randn(B, T, D)                                                 # (B, T, D)
        paths = {c: path_taken(layer, x, c) for c in CONTENDERS}
        timings = interleaved({c: (lambda c=c, layer=layer, x=x: train_step(layer, x, c))
                               for c in CONTENDERS},
                              repeats, warmup=1, max_rounds=repeats)
        fp32 = timings["fp32"].samples
        shape = f"B{B} T{T} D{D} H{H} L{L}"
        for c, timing in timings.items():
            ratio = statistics.median(f / s for f, s in zip(fp32, timing.samples, strict=False))
            rows.append({"config": name, "shape": shape, "contender": c,
                         "step_ms": timing.median_ms, "vs_fp32": ratio,
                         "tokens_per_s": B * T / timing.median, "path": paths[c],
                         "samples_ms": [1e3 * s for s in timing.samples],
                         "contended_rounds": timing.contended})
            log(f"{name} {c}: {timing.median_ms:.0f} ms/step, fp32/this {ratio:.2f}x, "
                f"{paths[c]}, samples {[round(1e3 * s) for s in timing.samples]}")
    return rows


def table(rows: Sequence[dict]) -> str:
    header = ["config", "shape", "contender", "train step (ms)", "speed-up vs fp32 (paired)",
              "tok/s", "path taken"]
    return markdown_table(header, [[r["config"], r["shape"], r["contender"],
                                    f"{r['step_ms']:.0f}", f"{r['vs_fp32']:.2f}×",
                                    f"{r['tokens_per_s']:,.0f}", r["path"]] for r in rows])


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--configs", default="c,d", help="comma-separated: c, d")
    parser.add_argument("--quick", action="store_true", help="tiny shapes (smoke test)")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/precision.json)")
    args = parser.parse_args(argv)
    known = QUICK_CONFIGS if args.quick else CONFIGS
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or args.repeats < 1:
        parser.error(f"--configs takes {', '.join(known)} (got {unknown}); --repeats >= 1")
    threads = set_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    log(f"threads {threads}, torch {torch.__version__}, "
        f"cpu {torch.backends.cpu.get_cpu_capability()}")
    rows = run({n: known[n] for n in names}, args.repeats, log)
    print(table(rows))
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = {"command": " ".join(["python bench/precision.py", *argv]), "threads": threads,
                "repeats": args.repeats,
                "note": "2-core machine shared with other jobs; compare within one run"}
    path = write_results("precision", {"settings": settings, "rows": rows}, args.out)
    log(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
