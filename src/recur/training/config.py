"""TrainConfig: every knob of a training run, checked once and saved next to the weights.

The config is a frozen dataclass. ``__post_init__`` checks each field and names the field,
the expectation and what arrived (``optimizer must be one of sgd, adam, adamw, got 'adm'``),
so a bad value fails before any data is read. ``to_dict`` / ``from_dict`` round-trip it
through the checkpoint's ``config.json``::

    config = TrainConfig(epochs=3, optimizer="adamw", lr=3e-3, clip_norm=1.0)
    assert TrainConfig.from_dict(config.to_dict()) == config
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine", "plateau")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
MODES = ("min", "max")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, schedule, clipping, precision, stopping and logging.

    Steps are optimizer steps: with ``grad_accum = k`` one step consumes k batches.

    Attributes:
        epochs: passes over ``task.train_batches(epoch)``.
        max_steps: stop after this many optimizer steps (None: no limit).
        batch_size: informational (the task batches its own data); saved with the run.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"``.
        lr: peak learning rate.
        momentum, nesterov: SGD only.
        weight_decay: L2 penalty (sgd, adam) or decoupled decay (adamw).
        betas: Adam / AdamW moment decay rates.
        schedule: ``"constant"``; ``"step"`` (lr · gamma^(step // step_size), in optimizer
            steps); ``"cosine"`` (from lr down to 0 at the last step; needs ``max_steps``
            or sized ``train_batches``); ``"plateau"`` (lr · gamma after every
            ``plateau_patience`` validations without improvement of ``monitor``).
        schedule_by_time: with ``time_budget_min`` set, the cosine schedule decays over the
            time budget (progress = elapsed fraction of this session's budget, or the step
            fraction if larger) instead of over the steps alone, so a run cut by its time
            budget ends at a low learning rate.
        warmup_steps: linear warm-up from lr / warmup_steps to lr, before any schedule.
        step_size, gamma: the step schedule's period and factor (gamma also for plateau).
        plateau_patience: validations without improvement before a plateau lr cut.
        clip_norm: rescale gradients whose global L2 norm exceeds this (None: off). The
            pre-clip norm is logged as ``grad_norm`` either way.
        clip_value: clamp each gradient element to [-clip_value, clip_value] (None: off).
        grad_accum: batches whose gradients are averaged into one optimizer step.
        precision: ``"fp32"``; ``"bf16"`` (autocast, CPU and CUDA); ``"fp16"`` (autocast +
            GradScaler, CUDA only).
        device: ``"auto"`` (cuda, then mps, then cpu), ``"cpu"``, ``"cuda"`` or ``"mps"``.
        seed: seeds python, numpy and torch before the model is built.
        time_budget_min: end cleanly after this many minutes (finish the step, evaluate,
            save). None: no limit.
        patience: stop after this many validations without improvement (None: never).
        monitor, mode: the validation metric that picks the best model, and whether lower
            (``"min"``) or higher (``"max"``) is better.
        max_nonfinite: stop after this many non-finite steps in a row (each is skipped).
        log_every: write a training record to metrics.jsonl every this many steps.
        checkpoint_every: also save ``last/`` every this many steps, for mid-epoch resume
            (None: only at the end of each epoch).
        ema_decay: keep an exponential moving average of the weights, updated after every
            optimizer step with this decay (e.g. 0.999: an average over roughly the last
            1,000 steps; early steps use min(decay, (1 + n) / (10 + n)) so the average is
            not dominated by the initial weights). Validation, the choice of the best model
            and best/ use the averaged weights; the raw weights keep training, and each
            validation record also holds their metrics as ``valid_raw_*``. None: off.
        tbptt: truncated BPTT: carry the task's recurrent state from batch to batch.
        quiet: no progress bar and no printed summaries.
        flush_denormals: on CPU, treat subnormal floats as zero while training
            (``flush_denormals()``): gradients that vanish back through a long sequence
            pass through the subnormal range, where x86 arithmetic is tens of times slower
            (measured: an LSTM step at T = 200 with the loss on the last step, 5x).
        reuse_memory: on CPU, keep freed memory in the process for the next step
            (``reuse_freed_memory()``) instead of returning each large tensor to the OS and
            page-faulting it back in (measured: a minGRU step at T = 4096, 1.35x faster).
    """

    epochs: int = 10
    max_steps: int | None = None
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    schedule_by_time: bool = False
    warmup_steps: int = 0
    step_size: int = 1000
    gamma: float = 0.1
    plateau_patience: int = 1
    clip_norm: float | None = None
    clip_value: float | None = None
    grad_accum: int = 1
    precision: str = "fp32"
    device: str = "auto"
    seed: int = 0
    time_budget_min: float | None = None
    patience: int | None = None
    monitor: str = "loss"
    mode: str = "min"
    max_nonfinite: int = 10
    log_every: int = 50
    checkpoint_every: int | None = None
    ema_decay: float | None = None
    tbptt: bool = False
    quiet: bool = False
    flush_denormals: bool = True
    reuse_memory: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):  # JSON has no tuples
            object.__setattr__(self, "betas", tuple(self.betas))
        _positive_int("epochs", self.epochs)
        _positive_int("max_steps", self.max_steps, optional=True)
        _positive_int("batch_size", self.batch_size)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _positive_float("lr", self.lr)
        _number("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        _bool("nesterov", self.nesterov)
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError(
                "nesterov needs optimizer='sgd' and momentum > 0, "
                f"got optimizer={self.optimizer!r}, momentum={self.momentum!r}"
            )
        _number("weight_decay", self.weight_decay, low=0.0)
        if (
            not isinstance(self.betas, tuple)
            or len(self.betas) != 2
            or not all(_is_number(b) and 0.0 <= b < 1.0 for b in self.betas)
        ):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        _choice("schedule", self.schedule, SCHEDULES)
        _bool("schedule_by_time", self.schedule_by_time)
        if self.schedule_by_time and self.time_budget_min is None:
            raise ValueError("schedule_by_time needs time_budget_min, got None")
        _non_negative_int("warmup_steps", self.warmup_steps)
        _positive_int("step_size", self.step_size)
        _number("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        _positive_int("plateau_patience", self.plateau_patience)
        _positive_float("clip_norm", self.clip_norm, optional=True)
        _positive_float("clip_value", self.clip_value, optional=True)
        _positive_int("grad_accum", self.grad_accum)
        _choice("precision", self.precision, PRECISIONS)
        _choice("device", self.device, DEVICES)
        if self.precision == "fp16" and self.device in ("cpu", "mps"):
            raise ValueError(
                f"precision 'fp16' needs a CUDA device (GradScaler), got device={self.device!r};"
                " use precision='bf16' on cpu"
            )
        _non_negative_int("seed", self.seed)
        _positive_float("time_budget_min", self.time_budget_min, optional=True)
        _positive_int("patience", self.patience, optional=True)
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(f"monitor must be a metric name, got {self.monitor!r}")
        _choice("mode", self.mode, MODES)
        _positive_int("max_nonfinite", self.max_nonfinite)
        _positive_int("log_every", self.log_every)
        _positive_int("checkpoint_every", self.checkpoint_every, optional=True)
        if self.ema_decay is not None:
            _number("ema_decay", self.ema_decay, low=0.0, high=1.0, low_open=True, high_open=True)
        _bool("tbptt", self.tbptt)
        _bool("quiet", self.quiet)
        _bool("flush_denormals", self.flush_denormals)
        _bool("reuse_memory", self.reuse_memory)

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able values (``betas`` becomes a list)."""
        data = dataclasses.asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from ``to_dict`` output; unknown keys are an error, not ignored."""
        if not isinstance(data, dict):
            raise TypeError(f"TrainConfig.from_dict needs a dict, got {type(data).__name__}")
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"unknown TrainConfig keys: {', '.join(map(repr, unknown))}; "
                f"known keys are {', '.join(known)}"
            )
        return cls(**data)


def add_ema_argument(parser: Any) -> None:
    """``--ema DECAY`` on a ``recur train`` command; its value is ``TrainConfig.ema_decay``."""
    parser.add_argument("--ema", type=float, metavar="DECAY",
                        help="validate and keep an exponential moving average of the weights "
                        "with this decay per step (e.g. 0.999); the raw weights' validation "
                        "metrics are logged beside it as valid_raw_*")


# -- field checks: each names the field, what it must be, and what arrived -------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_int(name: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        expected = "a positive int or None" if optional else "a positive int"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _non_negative_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


def _positive_float(name: str, value: object, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not _is_number(value) or value <= 0:
        expected = "a positive number or None" if optional else "a positive number"
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _number(
    name: str,
    value: object,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    ok = _is_number(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if not ok:
        left, right = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        interval = f"{left}{low:g}, {high:g}{right}"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def flush_denormals(on: bool = True) -> bool:
    """Flush subnormal floats to zero on this CPU (x86 FTZ + DAZ; ``torch.set_flush_denormal``).

    Why: a gradient entering at the last step of a long sequence shrinks as it flows back
    through time (vanishing gradients) and crosses the subnormal range (below 1.2e-38 in
    float32), where each x86 floating-point operation costs tens to hundreds of cycles.
    Measured on a Xeon (one thread, B 64, H 32, loss on the last step): an nn.LSTM training
    step grew from 17 ms at T = 150 to 139 ms at T = 200; with subnormals flushed, 21 ms.
    Values that small carry no information for training.

    The flag is per thread and new threads inherit it: set it before torch's thread pool
    starts (``recur``'s CLI does so first thing) so every worker flushes too; a later call
    reaches the calling thread only. Returns False where the CPU has no such mode.
    """
    import torch

    return torch.set_flush_denormal(on)


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    Why: by default glibc serves every block over 32 MiB with a fresh ``mmap`` and returns
    it with ``munmap`` when freed. A training step allocates and frees its large
    activations and gradients every step (at B 16, T 4096, H 256 one (B, T, H) float32
    tensor is 64 MiB), so each step touches every page of them anew: one page fault per
    4 KiB, a kernel zero-fill each. Measured on this 2-core Xeon (one thread, minGRU
    training step at that shape): 740 ms by default, 545 ms with this setting; the same
    trick is why PyTorch's performance guide suggests jemalloc or tcmalloc on CPU.

    It raises the mmap threshold (large blocks come from the heap) and the trim threshold
    (the heap is not shrunk when its top is freed). The cost: the process keeps its peak
    memory until it exits. Process-wide and harmless to call again; ``recur``'s CLI calls
    it first thing (``RECUR_REUSE_MEMORY=0`` turns that off). Returns False where the C
    library is not glibc (macOS, musl), which are left as they are.
    """
    import ctypes
    import ctypes.util

    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3       # glibc's <malloc.h>
    largest = 2**31 - 1                              # mallopt takes an int
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, largest)) and bool(mallopt(M_TRIM_THRESHOLD, largest))


def fast_cpu_precision() -> str:
    """``"bf16"`` where the CPU has native bf16 (AVX-512 BF16 / AMX: bf16 autocast measured
    1.8x faster than fp32 for the translation preset), else ``"fp32"`` (emulated bf16
    measured 27x slower, docs/benchmarks.md). For presets that should be fast everywhere."""
    import torch

    return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
