"""The long-dependency lab: can a cell carry information across T steps?

Two generated problems, each a ``Task`` for the Trainer, and a sweep over cells × lengths ×
seeds that prints a success-rate table and writes it as JSON and a PNG::

    recur lab adding --cells elman,gru,lstm --lengths 10,50,100 --seeds 2 --budget 5
    recur lab copy --cells gru,lstm --lengths 10,20 --optimizer adam --clip 1

**Adding problem** (Hochreiter & Schmidhuber 1997, "Long Short-Term Memory", section 5.4,
in the two-channel form of Le, Jaitly & Hinton 2015, section 4.1). Each step t carries a
value v_t ~ U(0, 1) and a marker m_t ∈ {0, 1}; exactly two steps are marked, one in the
first half and one in the second half. The target is the sum of the two marked values,
read from the last state (many-to-one). Always predicting 1 scores MSE = Var(v_a + v_b) =
2/12 ≈ 0.167; a run *solves* the problem when its test MSE is below 0.01.

    step      1     2     3     4     5     6     7     8
    value   0.42  0.13  0.88  0.57  0.05  0.91  0.30  0.66
    marker    0     1     0     0     0     0     1     0        target 0.13 + 0.30 = 0.43

**Copy task with a delay** (Hochreiter & Schmidhuber 1997, experiment 2; in the form of
Arjovsky, Shah & Bengio 2016, "Unitary Evolution RNNs", section 4.1). K = 10 symbols from
an alphabet of A = 8, then T − 1 blanks, a delimiter, and K more blanks; during the last K
steps the model must output the K symbols in order (many-to-many on those steps,
one-hot inputs, cross-entropy). T is the delay. Metric: per-symbol test accuracy (chance
1/A = 0.125); solved at ≥ 0.99.

    input    3 7 1 … 5  _ _ … _  :  _ _ … _       (K symbols, T−1 blanks, delimiter, K blanks)
    target   · · · … ·  · · … ·  ·  3 7 1 … 5     (read out only at the last K steps)

Every run trains on fresh batches drawn from a generator seeded by (seed, epoch), so runs
are reproducible and resumable; validation (which stops a run once it is solved by a
margin) and test sets are fixed and disjoint seeds. ``run_lab`` shares a time budget
between the runs: each run gets at most its fair share of what is left (and at most
``steps`` steps), so every run starts, and runs that finish early leave time to the longer
ones after them. Runs that cannot get ``MIN_RUN_S`` seconds are reported as not run.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from recur.cells import CELLS
from recur.cells.base import INITS, check_choice, check_positive_int
from recur.layers import Recurrent
from recur.training import Task, TrainConfig, Trainer, load, register_task, seed_everything
from recur.training.task import StepOutput

PROBLEMS = ("adding", "copy")
BASELINE_MSE = 2 / 12           # Var(v_a + v_b) for v ~ U(0, 1): always predicting 1
ADDING_SOLVED_MSE = 0.01
COPY_SOLVED_ACCURACY = 0.99
STOP_MARGIN = 0.5               # stop a run once its validation error is half the bar
MIN_RUN_S = 5.0                 # a run needs at least this share of the budget to start
# from short trials here: Adam 1e-2 takes the LSTM through T = 200 in ~800 steps of batch 64
DEFAULT_LR = {"adam": 1e-2, "adamw": 1e-2, "sgd": 0.1}


# -- the generated data ----------------------------------------------------------------------


class AddingData(NamedTuple):
    x: Tensor          # (N, T, 2) float: channel 0 the values, channel 1 the two markers
    y: Tensor          # (N,) the sum of the two marked values
    positions: Tensor  # (N, 2) long: the marked steps, first in [0, T//2), second in [T//2, T)


class CopyData(NamedTuple):
    x: Tensor          # (N, T + 2K, A + 2) one-hot: 0 blank, 1..A symbols, A + 1 delimiter
    y: Tensor          # (N, K) long: the symbols to recall, as classes 0..A-1
    tokens: Tensor     # (N, T + 2K) long: the input ids before one-hot


def adding_problem(num: int, length: int, generator: torch.Generator) -> AddingData:
    """``num`` adding-problem sequences of ``length`` ≥ 2 steps (see the module docstring)."""
    check_positive_int("num", num)
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an int >= 2 for the adding problem, got {length!r}")
    values = torch.rand(num, length, generator=generator)                         # (N, T)
    half = length // 2
    first = torch.randint(0, half, (num,), generator=generator)                   # (N,)
    second = torch.randint(half, length, (num,), generator=generator)             # (N,)
    positions = torch.stack([first, second], dim=1)                               # (N, 2)
    markers = torch.zeros(num, length).scatter_(1, positions, 1.0)                # (N, T)
    y = values.gather(1, positions).sum(1)                                        # (N,)
    return AddingData(torch.stack([values, markers], dim=-1), y, positions)


def copy_problem(num: int, delay: int, generator: torch.Generator, symbols: int = 10,
                 alphabet: int = 8) -> CopyData:
    """``num`` copy-task sequences: ``symbols`` to remember across ``delay`` steps."""
    check_positive_int("num", num)
    check_positive_int("delay", delay)
    check_positive_int("symbols", symbols)
    if isinstance(alphabet, bool) or not isinstance(alphabet, int) or alphabet < 2:
        raise ValueError(f"alphabet must be an int >= 2, got {alphabet!r}")
    K = symbols
    remember = torch.randint(1, alphabet + 1, (num, K), generator=generator)      # (N, K)
    tokens = torch.zeros(num, delay + 2 * K, dtype=torch.long)                    # blanks
    tokens[:, :K] = remember
    tokens[:, K + delay - 1] = alphabet + 1                                       # delimiter
    x = nn.functional.one_hot(tokens, alphabet + 2).float()                       # (N, T+2K, A+2)
    return CopyData(x, remember - 1, tokens)


# -- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabModelConfig:
    """A Recurrent layer and a linear readout on its last ``readout_steps`` states."""

    cell: str
    input_size: int
    hidden_size: int
    output_size: int
    readout_steps: int = 1
    cell_options: dict = field(default_factory=dict)


class LabModel(nn.Module):
    """Recurrent → Linear on the last k steps: x (B, T, D) -> (B, k, O)."""

    def __init__(self, config: LabModelConfig) -> None:
        super().__init__()
        self.config = config
        self.rnn = Recurrent(config.cell, config.input_size, config.hidden_size,
                             **config.cell_options)
        self.readout = nn.Linear(config.hidden_size, config.output_size)

    def forward(self, x: Tensor) -> Tensor:
        outputs = self.rnn(x).outputs                                  # (B, T, H)
        return self.readout(outputs[:, -self.config.readout_steps:])   # (B, k, O)


def _load_model(configs: dict[str, Any], folder: Path) -> nn.Module:
    return LabModel(LabModelConfig(**configs["model"]))


# -- the tasks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemConfig:
    """One run of the lab: a problem at one length, a cell, a seed.

    ``length`` is T for the adding problem and the delay for the copy task. ``init``
    applies to every cell; the LSTM also gets ``forget_bias`` (Jozefowicz et al. 2015).
    """

    problem: str = "adding"
    cell: str = "lstm"
    length: int = 50
    hidden_size: int = 32
    batch_size: int = 64
    init: str = "glorot"
    forget_bias: float = 1.0
    eval_every: int = 100          # training steps between validations (one "epoch")
    valid_size: int = 500
    test_size: int = 1000
    seed: int = 0
    symbols: int = 10              # copy: K
    alphabet: int = 8              # copy: A

    def __post_init__(self) -> None:
        check_choice("problem", self.problem, PROBLEMS)
        check_choice("cell", self.cell, tuple(CELLS))
        check_choice("init", self.init, INITS)
        for name in ("length", "hidden_size", "batch_size", "eval_every", "valid_size",
                     "test_size", "symbols", "alphabet"):
            check_positive_int(name, getattr(self, name))
        if self.problem == "adding" and self.length < 2:
            raise ValueError(f"length must be >= 2 for the adding problem, got {self.length}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {self.seed!r}")

    def model_config(self) -> LabModelConfig:
        options: dict[str, Any] = {"init": self.init}
        if self.cell == "lstm":
            options["forget_bias"] = self.forget_bias
        if self.problem == "adding":
            return LabModelConfig(self.cell, 2, self.hidden_size, 1, 1, options)
        return LabModelConfig(self.cell, self.alphabet + 2, self.hidden_size, self.alphabet,
                              self.symbols, options)


class LabTask(Task):
    """A generated problem for the Trainer; subclasses say how to draw, score and judge it."""

    metric: str = "loss"
    higher_is_better: bool = False
    threshold: float = 0.0

    def __init__(self, config: ProblemConfig) -> None:
        self.config = config
        seed = config.seed
        # disjoint streams: training batches use seeds (seed, epoch); these use two others
        self.valid = self.draw(config.valid_size, _generator(seed, "valid"))
        self.test = self.draw(config.test_size, _generator(seed, "test"))

    def draw(self, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``num`` examples as (x, y)."""
        raise NotImplementedError

    def criterion(self, output: Tensor, y: Tensor) -> Tensor:
        """The training loss of the model's ``output`` against targets ``y``."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        return LabModel(self.config.model_config())

    def train_batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        g = _generator(self.config.seed, "train", epoch)
        for _ in range(self.config.eval_every):
            yield self.draw(self.config.batch_size, g)

    def valid_batches(self) -> list[tuple[Tensor, Tensor]]:
        return [self.valid]

    def test_batches(self) -> list[tuple[Tensor, Tensor]]:
        return [self.test]

    def solved(self, value: float, margin: float = 1.0) -> bool:
        """Whether ``value`` of ``self.metric`` beats the bar (by ``margin`` × its error)."""
        if self.higher_is_better:
            return value >= 1 - margin * (1 - self.threshold)
        return value < margin * self.threshold

    def configs(self) -> dict[str, Any]:
        return {"model": dataclasses.asdict(self.config.model_config()),
                "problem": dataclasses.asdict(self.config)}


class AddingTask(LabTask):
    """The adding problem: MSE of the predicted sum; solved below 0.01."""

    name = "lab_adding"
    metric = "mse"
    threshold = ADDING_SOLVED_MSE

    def draw(self, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        data = adding_problem(num, self.config.length, generator)
        return data.x, data.y

    def criterion(self, output: Tensor, y: Tensor) -> Tensor:
        """Mean squared error of the prediction ``output`` (B, 1, 1) against the sums y (B,)."""
        return nn.functional.mse_loss(output[:, 0, 0], y)

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        return StepOutput(self.criterion(model(x), y), len(y))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        total, count = 0.0, 0
        for x, y in batches:
            total += float(nn.functional.mse_loss(model(x)[:, 0, 0], y, reduction="sum"))
            count += len(y)
        return {"loss": total / count, "mse": total / count}


class CopyTask(LabTask):
    """The copy task: cross-entropy on the recalled symbols; solved at accuracy ≥ 0.99."""

    name = "lab_copy"
    metric = "accuracy"
    higher_is_better = True
    threshold = COPY_SOLVED_ACCURACY

    def draw(self, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        data = copy_problem(num, self.config.length, generator, self.config.symbols,
                            self.config.alphabet)
        return data.x, data.y

    def criterion(self, output: Tensor, y: Tensor) -> Tensor:
        """Cross-entropy of the logits ``output`` (B, K, A) against the symbols y (B, K)."""
        return nn.functional.cross_entropy(output.flatten(0, 1), y.flatten())

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        return StepOutput(self.criterion(model(x), y), y.numel())

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        total, correct, count = 0.0, 0, 0
        for x, y in batches:
            logits = model(x)                                           # (B, K, A)
            total += float(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(),
                                                       reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
        return {"loss": total / count, "accuracy": correct / count}


TASKS: dict[str, type[LabTask]] = {"adding": AddingTask, "copy": CopyTask}
register_task("lab_adding", _load_model)
register_task("lab_copy", _load_model)


def _generator(seed: int, stream: str, epoch: int = 0) -> torch.Generator:
    """A generator for one stream (train epoch / valid / test) of one seed."""
    offset = {"train": 0, "valid": 1, "test": 2}[stream]
    return torch.Generator().manual_seed(1_000_003 * seed + 3 * epoch + offset)


# -- the sweep -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabConfig:
    """A sweep: every cell × length × seed, trained under one time budget.

    ``steps`` caps each run; ``budget_min`` caps the whole sweep (runs share it fairly).
    ``lr`` None takes the optimizer's default (adam 1e-2, sgd 0.1).
    """

    problem: str = "adding"
    cells: tuple[str, ...] = ("elman", "gated", "gru", "lstm", "mingru")
    lengths: tuple[int, ...] = (10, 20, 50, 100)
    seeds: int = 3
    optimizer: str = "adam"
    lr: float | None = None
    clip: float | None = None
    budget_min: float = 10.0
    steps: int = 5000
    hidden_size: int = 32
    batch_size: int = 64
    init: str = "glorot"
    eval_every: int = 100

    def __post_init__(self) -> None:
        check_choice("problem", self.problem, PROBLEMS)
        object.__setattr__(self, "cells", tuple(self.cells))
        object.__setattr__(self, "lengths", tuple(self.lengths))
        if not self.cells:
            raise ValueError("cells must name at least one cell, got none")
        for cell in self.cells:
            if cell not in CELLS:
                raise ValueError(f"cells must be names from {', '.join(CELLS)}, got {cell!r}")
        if not self.lengths:
            raise ValueError("lengths must hold at least one length, got none")
        low = 2 if self.problem == "adding" else 1
        for length in self.lengths:
            if isinstance(length, bool) or not isinstance(length, int) or length < low:
                raise ValueError(f"lengths must be ints >= {low} for the {self.problem} "
                                 f"problem, got {length!r}")
        for name in ("seeds", "steps", "hidden_size", "batch_size", "eval_every"):
            check_positive_int(name, getattr(self, name))
        check_choice("optimizer", self.optimizer, tuple(DEFAULT_LR))
        self.train_config(60.0)  # TrainConfig checks lr and clip: fail here, before any run
        if not (isinstance(self.budget_min, int | float) and self.budget_min > 0):
            raise ValueError(f"budget_min must be a positive number, got {self.budget_min!r}")
        check_choice("init", self.init, INITS)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def problem_config(self, cell: str, length: int, seed: int) -> ProblemConfig:
        return ProblemConfig(self.problem, cell, length, self.hidden_size, self.batch_size,
                             self.init, eval_every=self.eval_every, seed=seed)

    def train_config(self, seconds: float, seed: int = 0) -> TrainConfig:
        return TrainConfig(
            epochs=math.ceil(self.steps / self.eval_every), max_steps=self.steps,
            batch_size=self.batch_size, optimizer=self.optimizer,
            lr=self.learning_rate,
            clip_norm=self.clip, time_budget_min=seconds / 60, seed=seed, device="cpu",
            log_every=self.eval_every, quiet=True,
            monitor="accuracy" if self.problem == "copy" else "loss",
            mode="max" if self.problem == "copy" else "min")


@dataclass
class RunResult:
    """One cell × length × seed: how its training ended and its test score."""

    cell: str
    length: int
    seed: int
    status: str                     # "solved" | "failed" | "not run"
    metric: float | None = None     # test MSE (adding) or accuracy (copy) of the best model
    steps: int = 0
    seconds: float = 0.0
    stop_reason: str = ""           # the Trainer's, or "solved" when stopped by the margin


@dataclass
class LabResult:
    """The sweep: its config, every run, and ‖∂L/∂h_t‖ per cell at the longest length
    (``gradient_norms[cell]["init"]`` before training, ``["trained"]`` for seed 0's best
    model when that run happened)."""

    config: LabConfig
    runs: list[RunResult]
    machine: str
    elapsed_s: float
    gradient_norms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"config": dataclasses.asdict(self.config), "machine": self.machine,
                "elapsed_s": self.elapsed_s, "metric": _metric_name(self.config.problem),
                "runs": [dataclasses.asdict(r) for r in self.runs],
                "not_run": [f"{r.cell} T={r.length} seed {r.seed}" for r in self.runs
                            if r.status == "not run"],
                "gradient_norms": self.gradient_norms}


def run_lab(config: LabConfig, out_dir: str | os.PathLike, *, overwrite: bool = False,
            say: Callable[[str], None] = print) -> LabResult:
    """Train every run of the sweep under the budget; write results.json, table.md, PNGs.

    ``out_dir`` gets ``runs/CELL-TLENGTH-sSEED/`` (each a Trainer run folder),
    ``results.json``, ``table.md``, ``success.png`` (success rate and test metric over
    length) and ``gradient_flow.png`` (‖∂L/∂h_t‖ over t per cell at the longest length,
    at initialisation, and after training when seed 0 ran there:
    ``gradient_flow_trained.png``).

    Runs go in order of length, then cell, then seed, so a budget that runs out leaves the
    longest lengths undone, and the output lists them.
    """
    out = _prepare(Path(out_dir), overwrite)
    start = time.monotonic()
    budget_s = 60 * config.budget_min
    plan = [(length, cell, seed) for length in config.lengths for cell in config.cells
            for seed in range(config.seeds)]
    runs: list[RunResult] = []
    say(f"recur lab {config.problem}: {len(plan)} runs, budget {config.budget_min:g} min on "
        f"{machine()}")
    for i, (length, cell, seed) in enumerate(plan):
        left = budget_s - (time.monotonic() - start)
        share = left / (len(plan) - i)
        if share < MIN_RUN_S:  # the budget is spent: this run and every later one
            runs += [RunResult(c, T, s, "not run") for T, c, s in plan[i:]]
            break
        run = run_one(config, cell, length, seed, share, out / "runs" / f"{cell}-T{length}-s{seed}")
        runs.append(run)
        score = "-" if run.metric is None else f"{run.metric:.4g}"
        say(f"[{i + 1}/{len(plan)}] {cell} T={length} seed {seed}: {run.status}, test "
            f"{_metric_name(config.problem)} {score}, {run.steps} steps, {run.seconds:.1f} s "
            f"({run.stop_reason})")
    result = LabResult(config, runs, machine(), time.monotonic() - start)
    result.gradient_norms = lab_gradient_flows(config, out)
    _write_json(out / "results.json", result.to_dict())
    table = format_table(result)
    (out / "table.md").write_text(table + "\n", encoding="utf-8")
    plot_lab(result, out / "success.png")
    say(table)
    say(f"wrote {out / 'results.json'}, {out / 'table.md'}, {out / 'success.png'}, "
        f"{out / 'gradient_flow.png'}")
    return result


def run_one(config: LabConfig, cell: str, length: int, seed: int, seconds: float,
            out_dir: Path) -> RunResult:
    """Train one run for at most ``seconds`` and ``config.steps``; test its best model."""
    task = TASKS[config.problem](config.problem_config(cell, length, seed))
    stopped: list[bool] = []

    def stop_when_solved(trainer: Trainer, record: dict[str, Any]) -> None:
        value = record.get(f"valid_{task.metric}")
        if record.get("kind") == "valid" and value is not None and task.solved(value, STOP_MARGIN):
            stopped.append(True)
            trainer.request_stop("solved")

    start = time.monotonic()
    trainer = Trainer(task, config.train_config(seconds, seed), out_dir,
                      callbacks=[stop_when_solved])
    fit = trainer.fit()
    metric = None  # no best model: training diverged before its first finite validation
    if fit.best_dir.is_dir():
        with torch.no_grad():
            metric = task.evaluate(load(fit.best_dir), task.test_batches())[task.metric]
    status = "solved" if metric is not None and task.solved(metric) else "failed"
    return RunResult(cell, length, seed, status, metric, fit.steps, time.monotonic() - start,
                     fit.stop_reason)


def lab_gradient_flows(config: LabConfig, out: Path) -> dict[str, dict[str, list[float]]]:
    """‖∂L/∂h_t‖ of the task loss on 64 test sequences at the longest length, per cell.

    Plots them into ``out``/gradient_flow.png (fresh models, seed 0) and
    gradient_flow_trained.png (seed 0's best model, for the cells whose run happened).
    """
    from recur.diagnostics import gradient_flow, plot_gradient_flow

    T = max(config.lengths)
    flows: dict[str, dict[str, Any]] = {"init": {}, "trained": {}}
    for cell in config.cells:
        task = TASKS[config.problem](config.problem_config(cell, T, 0))
        x, y = (t[:64] for t in task.test)
        loss_fn = functools.partial(task.criterion, y=y)
        seed_everything(0)
        models = {"init": task.build_model()}
        best = out / "runs" / f"{cell}-T{T}-s0" / "best"
        if best.is_dir():
            models["trained"] = load(best)
        for when, model in models.items():
            flows[when][cell] = gradient_flow(model.eval(), x, loss_fn)
    what = "adding problem" if config.problem == "adding" else "copy task"
    plot_gradient_flow(flows["init"], out / "gradient_flow.png",
                       title=f"{what}, T={T}: at initialisation ({config.init})")
    if flows["trained"]:
        plot_gradient_flow(flows["trained"], out / "gradient_flow_trained.png",
                           title=f"{what}, T={T}: after training (seed 0's best model)")
    return {cell: {when: flows[when][cell].grad_norms.tolist() for when in flows
                   if cell in flows[when]} for cell in config.cells}


def _prepare(out: Path, overwrite: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"--out {out} exists and is not empty; pass --overwrite")
        if not (out / "results.json").exists() and not (out / "runs").is_dir():
            raise ValueError(f"refusing to overwrite {out}: it does not look like a lab folder "
                             "(no results.json or runs/)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def machine() -> str:
    """The CPU (or GPU) and thread count this process trains on, in words."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.get_num_threads()} thread(s), CPU"


def _metric_name(problem: str) -> str:
    return "mse" if problem == "adding" else "accuracy"


def format_table(result: LabResult) -> str:
    """A markdown table: success rate and median test metric per cell × length."""
    config = result.config
    metric = _metric_name(config.problem)
    bar = (f"test MSE < {ADDING_SOLVED_MSE} (always predicting 1: {BASELINE_MSE:.3f})"
           if config.problem == "adding" else
           f"per-symbol test accuracy >= {COPY_SOLVED_ACCURACY} (chance 1/{8})")
    lines = [f"Success rate (solved/runs) and median test {metric}, {config.problem}; solved = {bar}.",
             "",
             "| cell | " + " | ".join(f"T={T}" for T in config.lengths) + " |",
             "|---|" + "---|" * len(config.lengths)]
    for cell in config.cells:
        row = []
        for T in config.lengths:
            runs = [r for r in result.runs if r.cell == cell and r.length == T]
            done = [r for r in runs if r.status != "not run"]
            if not done:
                row.append("not run")
                continue
            solved = sum(r.status == "solved" for r in done)
            text = f"{solved}/{len(done)} ({_median(done):.3g})"
            if len(done) < len(runs):
                text += f" +{len(runs) - len(done)} not run"
            row.append(text)
        lines.append(f"| {cell} | " + " | ".join(row) + " |")
    lines += ["", f"{config.optimizer} lr {config.learning_rate:g}, clip {config.clip}, "
                  f"hidden {config.hidden_size}, batch {config.batch_size}, init {config.init}, "
                  f"≤ {config.steps} steps per run; "
                  f"budget {config.budget_min:g} min, used {result.elapsed_s / 60:.1f} min on "
                  f"{result.machine}."]
    not_run = [r for r in result.runs if r.status == "not run"]
    if not_run:
        lines.append("Not run (budget spent): " + ", ".join(
            f"{r.cell} T={r.length} seed {r.seed}" for r in not_run) + ".")
    stopped = sum(r.stop_reason == "time_budget" for r in result.runs)
    if stopped:
        lines.append(f"{stopped} run(s) stopped at their share of the budget before their step cap.")
    return "\n".join(lines)


def _median(runs: list[RunResult]) -> float:
    """The median test metric of runs that have one (NaN if none: all diverged)."""
    scores = [r.metric for r in runs if r.metric is not None and math.isfinite(r.metric)]
    return statistics.median(scores) if scores else math.nan


def plot_lab(result: LabResult, path: Path) -> Path:
    """PNG: success rate and median test metric over length, one line per cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    config = result.config
    fig = Figure(figsize=(11, 4))
    FigureCanvasAgg(fig)
    rate_ax, metric_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    plotted = False
    for cell in config.cells:
        lengths, rates, medians = [], [], []
        for T in config.lengths:
            done = [r for r in result.runs if r.cell == cell and r.length == T
                    and r.status != "not run"]
            if done:
                lengths.append(T)
                rates.append(sum(r.status == "solved" for r in done) / len(done))
                medians.append(_median(done))
        plotted = plotted or bool(lengths)
        rate_ax.plot(lengths, rates, marker="o", label=cell)
        metric_ax.plot(lengths, medians, marker="o", label=cell)
    metric = _metric_name(config.problem)
    rate_ax.set_title(f"{config.problem}: success rate ({config.seeds} seed(s))", fontsize=10)
    rate_ax.set_ylim(-0.05, 1.05)
    metric_ax.set_title(f"median test {metric}", fontsize=10)
    if config.problem == "adding":
        if plotted:  # a log axis needs data
            metric_ax.set_yscale("log")
        metric_ax.axhline(BASELINE_MSE, color="gray", linestyle=":", label="predict 1")
        metric_ax.axhline(ADDING_SOLVED_MSE, color="gray", linestyle="--", label="solved")
    else:
        metric_ax.axhline(COPY_SOLVED_ACCURACY, color="gray", linestyle="--", label="solved")
    for ax in (rate_ax, metric_ax):
        if plotted:
            ax.set_xscale("log")
            ax.set_xticks(config.lengths, [str(T) for T in config.lengths])
            ax.minorticks_off()
        ax.set_xlabel("T" if config.problem == "adding" else "delay T")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{config.optimizer}, budget {config.budget_min:g} min on {result.machine}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# -- the command line ------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in CELLS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated cell names from {', '.join(CELLS)}, got {text!r}")
    return names


def _lengths(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"must be comma-separated positive ints, got {text!r}")
    return values


def _positive(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {kind.__name__}, got {text!r}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``recur lab``."""
    parser.add_argument("problem", choices=PROBLEMS, help="adding problem or copy task")
    parser.add_argument("--cells", type=_names, default=LabConfig.cells,
                        help="comma-separated cells (default: elman,gated,gru,lstm,mingru)")
    parser.add_argument("--lengths", type=_lengths, default=LabConfig.lengths,
                        help="comma-separated sequence lengths T (copy: delays); default 10,20,50,100")
    parser.add_argument("--seeds", type=_positive(int), default=LabConfig.seeds,
                        help="runs per cell and length (seeds 0..N-1)")
    parser.add_argument("--optimizer", choices=["sgd", "adam", "adamw"], default="adam")
    parser.add_argument("--lr", type=_positive(float), help="learning rate (default: adam 1e-2, sgd 0.1)")
    parser.add_argument("--clip", type=_positive(float), metavar="N",
                        help="clip the global gradient norm to N (default: no clipping)")
    parser.add_argument("--budget", type=_positive(float), default=LabConfig.budget_min,
                        metavar="MIN", help="time budget of the whole sweep in minutes")
    parser.add_argument("--steps", type=_positive(int), default=LabConfig.steps, metavar="N",
                        help="at most N training steps per run")
    parser.add_argument("--hidden-size", type=_positive(int), default=LabConfig.hidden_size)
    parser.add_argument("--batch-size", type=_positive(int), default=LabConfig.batch_size)
    parser.add_argument("--init", choices=INITS, default=LabConfig.init,
                        help="weight initialisation of every cell (glorot: orthogonal recurrent)")
    parser.add_argument("--eval-every", type=_positive(int), default=LabConfig.eval_every,
                        metavar="N", help="validate (and stop if solved) every N steps")
    parser.add_argument("--threads", type=_positive(int), default=1,
                        help="torch CPU threads (1 is fastest for these small models)")
    parser.add_argument("--out", help="output folder (default: runs/lab-PROBLEM)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier lab folder")


def lab_command(args: argparse.Namespace) -> int:
    """``recur lab``: run the sweep and print its table."""
    torch.set_num_threads(args.threads)
    config = LabConfig(problem=args.problem, cells=args.cells, lengths=args.lengths,
                       seeds=args.seeds, optimizer=args.optimizer, lr=args.lr, clip=args.clip,
                       budget_min=args.budget, steps=args.steps, hidden_size=args.hidden_size,
                       batch_size=args.batch_size, init=args.init, eval_every=args.eval_every)
    run_lab(config, args.out or f"runs/lab-{args.problem}", overwrite=args.overwrite,
            say=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":  # python -m recur.tasks.lab adding ...
    cli = argparse.ArgumentParser(prog="python -m recur.tasks.lab")
    add_arguments(cli)
    sys.exit(lab_command(cli.parse_args()))
