"""Trainer overhead and bf16 vs fp32: what recur's training loop costs on top of the model.

Two measurements, each interleaved round by round with medians (``common.interleaved``):

* **Trainer overhead** — ``Trainer.fit`` against a hand-written loop (forward → loss →
  zero_grad → backward → clip → step) on the same model, the same pre-generated batches
  and the same initial weights: the seed IMDB classifier (``ClassifierConfig.seed()``,
  Embedding 1001×128 → LSTM 64 → Dense 64 → Dense 1) on synthetic token batches
  (B32 T100, every sequence full length), Adam 1e-3, clip_norm 1.0. A tiny ``Task``
  yields the batches and has no validation data. Per-step time is taken over a window
  of steps that excludes the start and the end of the run: from the end of step
  ``log_every`` to the end of the last step, stamped by a Trainer callback (records come
  every ``log_every`` steps) and by the hand loop at the same steps. The Trainer's
  epoch end (validate with no data, save best/ and last/) is reported apart. Both runs
  must end with the same weights (checked: ``max_weight_diff``).
* **bf16 vs fp32** — one training step (zero_grad, forward, ``outputs.sum().backward()``,
  as bench/layers.py) of ``recur.Recurrent("lstm", 512, 512, 2)`` on B32 T200 D512
  inputs, under ``torch.autocast("cpu", dtype=torch.bfloat16)`` against plain fp32. The
  path each one runs is read off the autograd graph: oneDNN's fused LSTM leaves
  ``MkldnnRnnLayerBackward0`` nodes; the generic ATen LSTM leaves per-step matmul nodes.
  A bf16 vs fp32 ``torch.mm`` rate puts the result in context (oneDNN takes bf16 only
  on CPUs with AVX-512 BW/VL/DQ or AVX-NE-CONVERT; elsewhere the LSTM leaves it).

Run from the repository root (one thread by default: on a 2-core machine shared with
other jobs, 2 OpenMP threads wait on each other at every time step — measured 7× slower
than 1 thread for the H = 512 step while two other trainings ran):

    .venv/bin/python bench/trainer_overhead.py                 # ~4 min on 2 shared cores
    .venv/bin/python bench/trainer_overhead.py --quick         # smaller, seconds
    .venv/bin/python bench/trainer_overhead.py --threads 2 --repeats 7 --bf16-repeats 3

It prints markdown tables (as pasted into docs/benchmarks.md) and writes
bench/results/trainer_overhead.json (``--out`` to change).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from common import autograd_node_names, interleaved, markdown_table, set_threads, write_results
from torch import Tensor, nn

from recur import Recurrent
from recur.models import ClassifierConfig, SequenceClassifier
from recur.training import Task, TrainConfig, Trainer
from recur.training.task import StepOutput
from recur.training.trainer import build_optimizer, seed_everything

# Keys of the rows (tests check them).
OVERHEAD_ROW_KEYS = ("contender", "step_ms", "vs_hand_loop", "overhead_pct", "steps_timed",
                     "run_s", "epoch_end_ms", "samples_ms")
PRECISION_ROW_KEYS = ("precision", "shape", "step_ms", "vs_fp32", "tokens_per_s", "path",
                      "samples_ms")
MATMUL_ROW_KEYS = ("dtype", "size", "gflop_per_s")


class Shape(NamedTuple):
    batch: int   # B
    steps: int   # T
    inputs: int  # D
    hidden: int  # H
    layers: int  # L

    def __str__(self) -> str:
        return f"B{self.batch} T{self.steps} D{self.inputs} H{self.hidden} L{self.layers}"


PRECISION_SHAPE = Shape(32, 200, 512, 512, 2)


# -- Trainer vs a hand-written loop ------------------------------------------------------------


class TokenBatch(NamedTuple):
    tokens: Tensor   # (B, T) long
    lengths: Tensor  # (B,) long
    labels: Tensor   # (B,) long, 0 or 1


def synthetic_batches(count: int, batch: int, steps: int, vocab: int, seed: int = 0
                      ) -> list[TokenBatch]:
    """``count`` batches of random token ids in [1, vocab), full length, random 0/1 labels."""
    g = torch.Generator().manual_seed(seed)
    return [TokenBatch(torch.randint(1, vocab, (batch, steps), generator=g),      # (B, T)
                       torch.full((batch,), steps, dtype=torch.long),             # (B,)
                       torch.randint(0, 2, (batch,), generator=g))                # (B,)
            for _ in range(count)]


class FixedBatchesTask(Task):
    """The same pre-generated batches every epoch; no validation data."""

    name = "bench_fixed_batches"

    def __init__(self, batches: list[TokenBatch], model_config: ClassifierConfig) -> None:
        self.batches, self.model_config = batches, model_config

    def build_model(self) -> nn.Module:
        return SequenceClassifier(self.model_config)

    def train_batches(self, epoch: int) -> list[TokenBatch]:
        return self.batches

    def loss(self, model: nn.Module, batch: TokenBatch, state: Any = None) -> StepOutput:
        logits = model(batch.tokens, batch.lengths)                               # (B,)
        return StepOutput(model.loss(logits, batch.labels), len(batch.labels))


class Run(NamedTuple):
    """One timed run: stamps (perf_counter) at the end of steps log_every, 2·log_every, …"""

    stamps: list[float]
    end: float                       # when the run returned
    model: nn.Module


def hand_loop(batches: Sequence[TokenBatch], model_config: ClassifierConfig,
              config: TrainConfig) -> Run:
    """The loop the Trainer replaces, written out; same seed, optimizer and clipping."""
    seed_everything(config.seed)
    model = SequenceClassifier(model_config)
    model.train()
    optimizer = build_optimizer(model.parameters(), config)  # the Trainer's own (fused Adam)
    stamps = []
    for step, batch in enumerate(batches, start=1):
        logits = model(batch.tokens, batch.lengths)                               # (B,)
        loss = model.loss(logits, batch.labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
        optimizer.step()
        if step % config.log_every == 0:
            stamps.append(time.perf_counter())
    return Run(stamps, time.perf_counter(), model)


def trainer_run(task: FixedBatchesTask, config: TrainConfig, out_dir: Path) -> Run:
    """``Trainer(...).fit()`` for one epoch; a callback stamps each training record."""
    stamps: list[float] = []

    def stamp(trainer: Trainer, record: dict) -> None:
        if record["kind"] == "train":
            stamps.append(time.perf_counter())

    trainer = Trainer(task, config, out_dir, overwrite=True, callbacks=[stamp])
    trainer.fit()
    return Run(stamps, time.perf_counter(), trainer.raw_model)


def window_per_step(run: Run, log_every: int) -> float:
    """Seconds per step between the first and the last stamp."""
    return (run.stamps[-1] - run.stamps[0]) / (log_every * (len(run.stamps) - 1))


def paired_ratio(numerator: Sequence[float], denominator: Sequence[float]) -> float:
    """Median over rounds of numerator/denominator (same-round pairs cancel drift)."""
    return statistics.median(n / d for n, d in zip(numerator, denominator, strict=False))


def run_overhead(*, steps_per_run: int = 250, batch: int = 32, length: int = 100,
                 vocab: int = 1001, log_every: int = 50, repeats: int = 7, warmup: int = 1,
                 model_config: ClassifierConfig | None = None,
                 log: Callable[[str], None] = print) -> dict:
    """Time the Trainer and the hand loop over the same batches, interleaved.

    Returns ``{"rows": [hand loop row, Trainer row], "max_weight_diff": float, ...}``.
    """
    if steps_per_run % log_every or steps_per_run < 2 * log_every:
        raise ValueError(f"steps_per_run must be a multiple of log_every ({log_every}) and at "
                         f"least twice it, got {steps_per_run}")
    model_config = model_config or ClassifierConfig.seed(vocab)
    batches = synthetic_batches(steps_per_run, batch, length, vocab)
    config = TrainConfig(epochs=1, optimizer="adam", lr=1e-3, clip_norm=1.0, device="cpu",
                         quiet=True, log_every=log_every, batch_size=batch)
    task = FixedBatchesTask(batches, model_config)
    runs: dict[str, list[Run]] = {"hand loop": [], "Trainer.fit": []}
    with tempfile.TemporaryDirectory(prefix="recur-bench-") as tmp:
        out_dir = Path(tmp) / "run"
        contenders = {
            "hand loop": lambda: runs["hand loop"].append(hand_loop(batches, model_config, config)),
            "Trainer.fit": lambda: runs["Trainer.fit"].append(trainer_run(task, config, out_dir)),
        }
        timings = interleaved(contenders, repeats, warmup)
    for name in runs:  # drop the warm-up runs: keep the timed ones, in round order
        runs[name] = runs[name][-repeats:]
    per_step = {name: [window_per_step(r, log_every) for r in rs] for name, rs in runs.items()}
    hand, trainer = per_step["hand loop"], per_step["Trainer.fit"]
    ratio = paired_ratio(trainer, hand)
    epoch_end = [r.end - r.stamps[-1] for r in runs["Trainer.fit"]]
    with torch.no_grad():
        weights = zip(runs["hand loop"][-1].model.parameters(),
                      runs["Trainer.fit"][-1].model.parameters(), strict=True)
        max_weight_diff = max(float((a - b).abs().max()) for a, b in weights)
    steps_timed = steps_per_run - log_every

    def row(name: str, vs_hand: float, epoch_end_ms: float | None) -> dict:
        samples = per_step[name]
        return {"contender": name, "step_ms": 1e3 * statistics.median(samples),
                "vs_hand_loop": vs_hand, "overhead_pct": 100 * (vs_hand - 1),
                "steps_timed": steps_timed, "run_s": timings[name].median,
                "epoch_end_ms": epoch_end_ms, "samples_ms": [1e3 * s for s in samples]}

    rows = [row("hand loop", 1.0, None),
            row("Trainer.fit", ratio, 1e3 * statistics.median(epoch_end))]
    log(f"overhead: hand {rows[0]['step_ms']:.2f} ms/step, Trainer {rows[1]['step_ms']:.2f} "
        f"ms/step, paired ratio {ratio:.4f}, weights differ by {max_weight_diff:.1e}")
    return {"shape": f"B{batch} T{length} vocab {vocab}", "steps_per_run": steps_per_run,
            "log_every": log_every, "rows": rows, "max_weight_diff": max_weight_diff}


# -- bf16 vs fp32 ------------------------------------------------------------------------------


def lstm_step(layer: Recurrent, x: Tensor, precision: str) -> Tensor:
    """One training step: zero_grad, forward (under bf16 autocast or not), backward."""
    layer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        outputs, _ = layer(x)                                                     # (B, T, H)
    outputs.float().sum().backward()
    return outputs


def lstm_path(layer: Recurrent, x: Tensor, precision: str) -> str:
    """Which LSTM implementation the step runs (checked on two time steps of ``x``)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        outputs, _ = layer(x[:, :2])                                              # (B, 2, H)
    names = autograd_node_names(outputs)
    if any(name.startswith("MkldnnRnnLayer") for name in names):
        return f"oneDNN fused LSTM (aten::mkldnn_rnn_layer), {outputs.dtype}"
    if any(name.startswith("_LSTMFunction") for name in names):
        return f"recur's compiled LSTM loop (kernels/lstm_cpu.cpp), {outputs.dtype}"
    return f"generic ATen LSTM (per-step matmuls + gate ops), {outputs.dtype}"


def matmul_gflops(dtype: torch.dtype, n: int = 512, repeats: int = 5) -> float:
    """Median ``torch.mm`` rate on (n, n) @ (n, n) in ``dtype``, in GFLOP/s."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    timing = interleaved({"mm": lambda: torch.mm(a, b)}, repeats, warmup=1)
    return 2 * n**3 / timing["mm"].median / 1e9


def bf16_support() -> dict[str, object]:
    """What decides whether oneDNN takes bf16 here."""
    try:
        onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn_bf16 = None
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_bf16": onednn_bf16}


def run_precision(shape: Shape = PRECISION_SHAPE, *, repeats: int = 7, bf16_repeats: int = 2,
                  matmul_size: int = 512, log: Callable[[str], None] = print) -> dict:
    """fp32 vs bf16-autocast training step of a recur LSTM stack, interleaved.

    bf16 gets no untimed warm-up and only ``bf16_repeats`` timed calls: where it leaves
    oneDNN it is tens of times slower, and one step already lasts long enough to swamp any
    first-call cost. fp32 is warmed up once.
    """
    torch.manual_seed(0)
    layer = Recurrent("lstm", shape.inputs, shape.hidden, shape.layers)
    x = torch.randn(shape.batch, shape.steps, shape.inputs)                      # (B, T, D)
    paths = {p: lstm_path(layer, x, p) for p in ("fp32", "bf16")}
    lstm_step(layer, x, "fp32")  # warm-up
    timings = interleaved({p: (lambda p=p: lstm_step(layer, x, p)) for p in ("fp32", "bf16")},
                          repeats, warmup=0, limits={"bf16": min(bf16_repeats, repeats)})
    fp32 = timings["fp32"]
    rows = []
    for precision, timing in timings.items():
        vs_fp32 = paired_ratio(timing.samples, fp32.samples)
        rows.append({"precision": precision, "shape": str(shape), "step_ms": timing.median_ms,
                     "vs_fp32": vs_fp32, "tokens_per_s": shape.batch * shape.steps / timing.median,
                     "path": paths[precision], "samples_ms": [1e3 * s for s in timing.samples]})
        log(f"{precision}: {timing.median_ms:.0f} ms/step ({vs_fp32:.2f}× fp32), {paths[precision]}")
    matmul = [{"dtype": str(dtype).removeprefix("torch."), "size": matmul_size,
               "gflop_per_s": matmul_gflops(dtype, matmul_size)}
              for dtype in (torch.float32, torch.bfloat16)]
    return {"rows": rows, "matmul": matmul, "support": bf16_support()}


# -- tables and CLI ----------------------------------------------------------------------------


def overhead_table(result: dict) -> str:
    header = ["contender", "ms / step (median)", "time vs hand loop (paired median)",
              "overhead", "steps timed per run", "whole run (s)", "epoch end (ms)"]
    body = [[r["contender"], f"{r['step_ms']:.2f}", f"{r['vs_hand_loop']:.3f}",
             f"{r['overhead_pct']:+.1f}%", r["steps_timed"], f"{r['run_s']:.2f}",
             "—" if r["epoch_end_ms"] is None else f"{r['epoch_end_ms']:.0f}"]
            for r in result["rows"]]
    return markdown_table(header, body)


def precision_table(result: dict) -> str:
    header = ["precision", "shape", "train step (ms)", "time vs fp32", "tok/s", "path taken"]
    body = [[r["precision"], r["shape"], f"{r['step_ms']:.0f}", f"{r['vs_fp32']:.2f}×",
             f"{r['tokens_per_s']:,.0f}", r["path"]] for r in result["rows"]]
    return markdown_table(header, body)


def matmul_table(result: dict) -> str:
    return markdown_table(["torch.mm dtype", "size", "GFLOP/s"],
                          [[m["dtype"], f"{m['size']}²", f"{m['gflop_per_s']:.1f}"]
                           for m in result["matmul"]])


def markdown(document: dict, view: str | None = None) -> str:
    """Tables of a trainer_overhead.json document (``recur bench --write-docs``).

    view: None (both parts with headings), ``overhead`` or ``precision``.
    """
    if view not in (None, "overhead", "precision"):
        raise ValueError(f"trainer_overhead has no view {view!r}; expected overhead or precision")
    overhead, precision = document["overhead"], document.get("precision")
    threads = document["settings"]["threads"]
    over = (f"{overhead_table(overhead)}\n\n"
            f"Same final weights: max |Δw| = {overhead['max_weight_diff']:.1e}")
    prec = ""
    if precision is not None:
        support = precision["support"]
        prec = (f"{precision_table(precision)}\n\n{matmul_table(precision)}\n\n"
                f"CPU capability {support['cpu_capability']}; oneDNN bf16 supported: "
                f"{support['onednn_bf16']}")
    if view == "overhead":
        return over
    if view == "precision":
        if precision is None:
            raise ValueError("this trainer_overhead run skipped the precision part")
        return prec
    parts = [f"### Trainer overhead: seed IMDB classifier, {overhead['shape']}, "
             f"{threads} thread(s)\n\n{over}"]
    if precision is not None:
        parts.append(f"### bf16 autocast vs fp32: recur.Recurrent('lstm') training step, "
                     f"{threads} thread(s)\n\n{prec}")
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1; see the module docstring)")
    parser.add_argument("--repeats", type=int, help="timed rounds (default 7, 3 with --quick)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed overhead runs first")
    parser.add_argument("--steps", type=int, help="steps per run (default 250, 100 with "
                        "--quick); the first log_every (50) are not timed")
    parser.add_argument("--bf16-repeats", type=int, default=2,
                        help="timed bf16 steps (default 2: each lasts about a minute here)")
    parser.add_argument("--skip-precision", action="store_true", help="only the overhead table")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 100 steps per run, precision at B8 T20 D64 H64 L2")
    parser.add_argument("--out", type=Path,
                        help="JSON path (default bench/results/trainer_overhead.json)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    steps = args.steps or (100 if args.quick else 250)
    if repeats < 1 or args.warmup < 0 or args.bf16_repeats < 1:
        parser.error("--repeats and --bf16-repeats must be >= 1 and --warmup >= 0")

    threads = set_threads(args.threads)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    log(f"threads {threads}, torch {torch.__version__}")
    overhead = run_overhead(steps_per_run=steps, repeats=repeats, warmup=args.warmup, log=log)
    shape = Shape(8, 20, 64, 64, 2) if args.quick else PRECISION_SHAPE
    precision = None if args.skip_precision else run_precision(
        shape, repeats=repeats, bf16_repeats=args.bf16_repeats, log=log)

    print()
    print(markdown({"settings": {"threads": threads}, "overhead": overhead,
                    "precision": precision}))
    argv = sys.argv[1:] if argv is None else list(argv)
    settings = {"command": " ".join(["python bench/trainer_overhead.py", *argv]),
                "threads": threads, "repeats": repeats, "warmup": args.warmup,
                "steps_per_run": steps, "bf16_repeats": args.bf16_repeats,
                "note": "2-core machine shared with other jobs; compare within one run"}
    path = write_results("trainer_overhead", {"settings": settings, "overhead": overhead,
                                              "precision": precision}, args.out)
    log(f"wrote {path}")
    return {"overhead": overhead, "precision": precision}


if __name__ == "__main__":
    main()
