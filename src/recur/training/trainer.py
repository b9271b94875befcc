"""The Trainer: one training loop for every recur application.

One optimizer step, read top to bottom in ``fit`` and the three methods it calls::

    for each batch of the epoch (k = grad_accum batches per step):
        forward → loss                      task.loss(model, batch, state)
        zero_grad (first batch of a step) → backward
    (unscale fp16) → mean over the k batches → clip (log the pre-clip global norm)
    → skip the step if the loss or the gradient is not finite
    → set the scheduled lr → optimizer step → (ema_decay: update the weight average)
    → log → checkpoint → callbacks
    at the end of each epoch: evaluate → keep the best model → early stopping → save last/
    (with ema_decay the averaged weights are evaluated and kept; the raw ones train on)

A run folder ``out_dir`` ends up holding::

    out_dir/best/          the best model so far (by config.monitor): recur predict out_dir
    out_dir/last/          + optimizer.pt, trainer_state.json: resume from here
    out_dir/metrics.jsonl  one JSON object per log step and per validation

Usage::

    trainer = Trainer(MyTask(), TrainConfig(epochs=5, lr=3e-3), "runs/mine")
    result = trainer.fit()            # FitResult(stop_reason="epochs", ...)
    Trainer(MyTask(), config, "runs/mine", resume=True).fit()   # after a crash

Resuming (``resume=True``) restores weights, optimizer, step counters, the RNG states
and the carried TBPTT state from ``last/`` and skips the batches of the current epoch
already trained on, so a run killed mid-epoch and resumed ends with the same weights as
one never interrupted (same machine, same config).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import itertools
import json
import math
import random
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from recur.training import checkpoint, distributed
from recur.training.checkpoint import CheckpointError
from recur.training.config import TrainConfig, flush_denormals, reuse_freed_memory
from recur.training.task import StepOutput, Task
from recur.training.tbptt import detach_state, map_tensors

Callback = Callable[["Trainer", dict[str, Any]], None]


@dataclass
class TrainerState:
    """Counters saved in last/trainer_state.json so a run can resume where it stopped."""

    step: int = 0  # optimizer steps taken (skipped non-finite steps included)
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch already trained on (this rank)
    best_metric: float | None = None  # best value of config.monitor so far
    best_step: int | None = None
    bad_epochs: int = 0  # validations in a row without improvement
    nonfinite_streak: int = 0  # non-finite steps in a row
    skipped_steps: int = 0
    plateau_scale: float = 1.0  # lr factor of the "plateau" schedule
    items: int = 0  # items (tokens, sequences...) trained on
    records: int = 0  # lines in metrics.jsonl
    elapsed_s: float = 0.0  # training time over all sessions
    averaged_steps: int = 0  # optimizer steps folded into the weight average (ema_decay)


class FitResult(NamedTuple):
    """How ``fit`` ended.

    ``stop_reason`` is one of ``"epochs"``, ``"max_steps"``, ``"early_stopping"``,
    ``"time_budget"`` or ``"nonfinite"`` (then ``last_dir`` holds the last good checkpoint,
    not the diverged weights).
    """

    stop_reason: str
    message: str
    steps: int
    epochs: int
    best_metric: float | None
    valid_metrics: dict[str, Any]
    best_dir: Path
    last_dir: Path
    skipped_steps: int
    elapsed_s: float


class Trainer:
    """Trains a task's model; evaluates and predicts with it.

    Args:
        task: the application (see ``recur.training.Task``).
        config: a TrainConfig.
        out_dir: the run folder (best/, last/, metrics.jsonl). It must not exist or be
            empty unless ``overwrite`` (delete an earlier run there) or ``resume``
            (continue from out_dir/last; a new run starts if there is none).
        callbacks: ``callback(trainer, record)`` called after each record (training log
            step or validation) is written to metrics.jsonl.
    """

    def __init__(
        self,
        task: Task,
        config: TrainConfig,
        out_dir: str | Path,
        overwrite: bool = False,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.task, self.config, self.callbacks = task, config, list(callbacks)
        self.out_dir = Path(out_dir)
        self.best_dir, self.last_dir = self.out_dir / "best", self.out_dir / "last"
        self.metrics_file = self.out_dir / "metrics.jsonl"
        self.env = distributed.environment()
        self.device = resolve_device(config.device, self.env)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise ValueError(
                f"precision 'fp16' needs a CUDA device (GradScaler), got device "
                f"'{self.device.type}'; use precision='bf16' on {self.device.type}"
            )
        if (config.precision == "bf16" and self.device.type == "cpu"
                and not torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            warnings.warn(
                "precision 'bf16' on a CPU without native bf16 (no AVX-512 BF16 / AMX): "
                "matmuls are emulated and the LSTM leaves oneDNN, measured 27x slower than "
                "fp32 (docs/benchmarks.md); use precision='fp32' here",
                stacklevel=2,
            )
        distributed.init(self.env, self.device)
        resume_from = self._prepare_out_dir(overwrite, resume)

        seed_everything(config.seed)
        model = task.build_model()
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"task {task.name!r}: build_model() must return an nn.Module, "
                f"got {type(model).__name__}"
            )
        if resume_from is not None:
            checkpoint.load_weights(model, resume_from)
        self.raw_model = model.to(self.device)
        self.model = distributed.wrap(self.raw_model, self.env, self.device)
        self.params = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(self.params, config)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        # ema_decay: the moving average of self.params that validation and best/ use
        self.average: list[Tensor] | None = (
            [p.detach().clone() for p in self.params] if config.ema_decay else None
        )
        self.state = TrainerState()
        self.stream_state: Any = None  # the recurrent state carried between TBPTT windows
        self.total_steps = self._count_total_steps()
        if resume_from is not None:
            self._restore(resume_from)
        elif self.env.distributed:
            torch.manual_seed(config.seed + self.env.rank)  # different dropout masks per rank
        self._last_saved_step: int | None = self.state.step if resume_from else None
        self._stop: str | None = None

    # -- the loop -------------------------------------------------------------------------------

    def fit(self) -> FitResult:
        """Train until the epochs or max_steps are done, early stopping, the time budget
        or ``max_nonfinite`` non-finite steps in a row; return how it ended."""
        cfg, st = self.config, self.state
        if cfg.flush_denormals and self.device.type == "cpu":
            flush_denormals()
        if cfg.reuse_memory and self.device.type == "cpu":
            reuse_freed_memory()
        self._session_start, self._elapsed_before = time.monotonic(), st.elapsed_s
        self._reset_interval()
        self._bar = self._progress_bar()
        valid_metrics: dict[str, Any] = {}
        self._stop = self._check_stop()
        while self._stop is None and st.epoch < cfg.epochs:
            epoch_done = self._train_epoch()
            if self._stop == "nonfinite":
                break  # keep the last good checkpoint: save nothing
            if epoch_done:
                st.epoch, st.batch_in_epoch = st.epoch + 1, 0
            valid_metrics = self._validate()
            self._save_last()
        self._bar.close()
        distributed.barrier(self.env)
        return self._result(self._stop or "epochs", valid_metrics)

    def _train_epoch(self) -> bool:
        """Train on the rest of the current epoch; True if its batches ran out."""
        cfg, st = self.config, self.state
        batches = distributed.shard(self.task.train_batches(st.epoch), self.env)
        batches = itertools.islice(batches, st.batch_in_epoch, None)  # resumed: skip done ones
        if st.batch_in_epoch == 0:
            self.stream_state = None  # TBPTT: the stream starts over, so does its state
        self.model.train()
        accumulated = 0
        for batch in batches:
            if accumulated == 0:
                self.optimizer.zero_grad(set_to_none=True)
            self._forward_backward(batch)
            st.batch_in_epoch += 1
            accumulated += 1
            if accumulated == cfg.grad_accum:
                self._optimizer_step(accumulated)
                accumulated = 0
                self._stop = self._check_stop()
                if self._stop is not None:
                    return False
        if accumulated:  # the epoch ended inside an accumulation group: step on what we have
            self._optimizer_step(accumulated)
            self._stop = self._check_stop()
        return True

    def _forward_backward(self, batch: Any) -> None:
        """Forward one batch and backpropagate its loss; gradients add up until the step."""
        batch = map_tensors(lambda t: t.to(self.device), batch)
        # TBPTT: start from the state the previous window ended with, cut from its graph
        state_in = detach_state(self.stream_state) if self.config.tbptt else None
        with self._autocast():
            out = _check_output(self.task.loss(self.model, batch, state_in), self.task)
        if self.config.tbptt:
            self.stream_state = out.state
        loss = out.loss.float()
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        self._step_loss += loss.detach() * out.num_items
        self._step_items += out.num_items

    def _optimizer_step(self, accumulated: int) -> None:
        """Average, clip, check and apply the accumulated gradients; log and checkpoint."""
        cfg, st = self.config, self.state
        loss_sum, items = distributed.all_reduce_sum(
            [float(self._step_loss), self._step_items], self.env
        )
        loss = loss_sum / items
        self._step_loss, self._step_items = torch.zeros((), device=self.device), 0
        if self.scaler:
            self.scaler.unscale_(self.optimizer)  # gradients back to their true size
        if accumulated > 1:
            for p in self.params:
                if p.grad is not None:
                    p.grad.div_(accumulated)  # the mean over the accumulated batches
        # the global L2 norm before clipping (logged every step); rescales in place if > clip_norm
        grad_norm = float(nn.utils.clip_grad_norm_(self.params, cfg.clip_norm or math.inf))
        lr = learning_rate(cfg, st.step, self.total_steps, st.plateau_scale, self._time_fraction())
        finite = math.isfinite(loss) and math.isfinite(grad_norm)
        if finite:
            if cfg.clip_value is not None:
                nn.utils.clip_grad_value_(self.params, cfg.clip_value)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            if self.scaler:
                self.scaler.step(self.optimizer)
            else:
                self.optimizer.step()
            if self.average is not None:
                self._update_average()
            st.nonfinite_streak = 0
        else:
            st.skipped_steps += 1
            fp16_overflow = self.scaler is not None and math.isfinite(loss)  # scaler backs off
            st.nonfinite_streak += 0 if fp16_overflow else 1
            self._say(
                f"step {st.step + 1}: non-finite loss {loss:.4g} or gradient norm "
                f"{grad_norm:.4g}; step skipped",
                error=not fp16_overflow,
            )
        if self.scaler:
            self.scaler.update()
        st.step += 1
        st.items += int(items)
        self._log_step(loss if finite else math.nan, items, lr, grad_norm)
        if cfg.checkpoint_every and st.step % cfg.checkpoint_every == 0 and finite:
            self._save_last()

    def _update_average(self) -> None:
        """Move the averaged weights towards the current ones by one EMA step; the decay is
        min(ema_decay, (1 + n) / (10 + n)) after n steps, so the first steps count fully."""
        n = self.state.averaged_steps
        decay = min(self.config.ema_decay, (1 + n) / (10 + n))
        with torch.no_grad():
            for average, param in zip(self.average, self.params, strict=True):
                average.lerp_(param, 1.0 - decay)
        self.state.averaged_steps += 1

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside the block the model holds the averaged weights (``ema_decay``); the raw
        ones are put back after it, even on error. Without averaging: the model as it is."""
        if self.average is None:
            yield
            return
        with torch.no_grad():
            raw = [param.detach().clone() for param in self.params]
            for param, average in zip(self.params, self.average, strict=True):
                param.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, saved in zip(self.params, raw, strict=True):
                    param.copy_(saved)

    def _time_fraction(self) -> float | None:
        """The elapsed fraction of this session's time budget, for ``schedule_by_time``."""
        if not self.config.schedule_by_time:
            return None
        return (time.monotonic() - self._session_start) / (60 * self.config.time_budget_min)

    def request_stop(self, reason: str) -> None:
        """Ask ``fit`` to stop after the current step (e.g. from a callback once a target
        is met); it validates, saves and returns with ``stop_reason=reason``."""
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"reason must be a non-empty str, got {reason!r}")
        self._stop = self._stop or reason

    # -- stopping, validation, saving ---------------------------------------------------------

    def _check_stop(self) -> str | None:
        cfg, st = self.config, self.state
        if getattr(self, "_stop", None) is not None:
            return self._stop  # requested (request_stop) or decided earlier: keep it
        if st.nonfinite_streak >= cfg.max_nonfinite:
            return "nonfinite"
        if cfg.max_steps is not None and st.step >= cfg.max_steps:
            return "max_steps"
        if cfg.time_budget_min is not None:
            out_of_time = time.monotonic() - self._session_start >= 60 * cfg.time_budget_min
            if distributed.any_rank(out_of_time, self.env):
                return "time_budget"
        return None

    def _validate(self) -> dict[str, Any]:
        """Evaluate; keep the best model; count bad epochs (early stopping, plateau lr).

        With ``ema_decay`` the averaged weights are evaluated and saved, and the raw
        weights' metrics are recorded beside theirs as ``valid_raw_*``."""
        cfg, st = self.config, self.state
        raw_metrics = self.evaluate() if self.average is not None else {}
        with self.averaged_weights():
            improved, metrics = self._judge_and_keep()
        if improved:
            st.bad_epochs = 0
        else:
            st.bad_epochs += 1
            if cfg.schedule == "plateau" and st.bad_epochs % cfg.plateau_patience == 0:
                st.plateau_scale *= cfg.gamma
            if cfg.patience is not None and st.bad_epochs >= cfg.patience:
                self._stop = self._stop or "early_stopping"
        raw_numbers = {name: v for name, v in raw_metrics.items() if isinstance(v, float)}
        record = {
            "kind": "valid",
            "step": st.step,
            "epoch": st.epoch,
            **{f"valid_{name}": v for name, v in metrics.items()},
            **{f"valid_raw_{name}": v for name, v in raw_numbers.items()},
            "best": improved,
            "time": self._elapsed(),
        }
        self._record(record)
        numbers = [name for name, v in metrics.items() if isinstance(v, float)]
        shown = list(dict.fromkeys(["loss", cfg.monitor.removeprefix("valid_"), *numbers]))[:4]
        shown = "  ".join(f"valid {name} {metrics[name]:.4g}" for name in shown if name in metrics)
        if "loss" in raw_numbers:
            shown += f"  (raw weights: loss {raw_numbers['loss']:.4g})"
        self._say(f"epoch {st.epoch} step {st.step}  {shown}{'  *best*' if improved else ''}")
        return metrics

    def _judge_and_keep(self) -> tuple[bool, dict[str, Any]]:
        """Evaluate the model as it is; if it beats the best so far, record that and save
        it to best/. Returns (improved, metrics)."""
        cfg, st = self.config, self.state
        metrics = self.evaluate()
        improved, value = True, None  # without validation data the latest model is the best
        if metrics:
            monitor = cfg.monitor.removeprefix("valid_")
            if monitor not in metrics:
                raise KeyError(
                    f"monitor {cfg.monitor!r} is not among the validation metrics "
                    f"of task {self.task.name!r}: {', '.join(metrics)}"
                )
            value = metrics[monitor]
            best = st.best_metric
            improved = math.isfinite(value) and (
                best is None or (value < best if cfg.mode == "min" else value > best)
            )
        if improved:
            st.best_metric, st.best_step = value, st.step
            if self.env.is_main:
                checkpoint.save_checkpoint(
                    self.best_dir,
                    self.raw_model,
                    self.task,
                    cfg.to_dict(),
                    info=self._info(metrics),
                )
        return improved, metrics

    def _save_last(self) -> None:
        """Save everything needed to resume into last/ (rank 0)."""
        st = self.state
        st.elapsed_s = self._elapsed()
        if self.env.is_main:
            optimizer_state = {
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "average": self.average,
            }
            trainer_state = {**dataclasses.asdict(st), "rng": rng_state()}
            stream = detach_state(self.stream_state) if self.config.tbptt else None
            checkpoint.save_checkpoint(
                self.last_dir,
                self.raw_model,
                self.task,
                self.config.to_dict(),
                info=self._info({}),
                optimizer_state=optimizer_state,
                trainer_state=trainer_state,
                stream_state=stream,
            )
        self._last_saved_step = st.step

    def _info(self, metrics: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        return {"seed": self.config.seed, "step": st.step, "epoch": st.epoch, "metrics": metrics}

    def _restore(self, folder: Path) -> None:
        """Load optimizer, counters, RNG and TBPTT state from a last/ checkpoint."""
        saved = checkpoint.load_torch_file(folder / checkpoint.OPTIMIZER)
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scaler and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        if self.average is not None and saved.get("average") is not None:
            # a run that averaged before; one that did not starts its average here
            self._load_average(saved["average"], folder)
        raw = checkpoint.read_json(folder / checkpoint.TRAINER_STATE)
        try:
            rng = raw.pop("rng")
            self.state = TrainerState(**raw)
        except (KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(
                f"{folder / checkpoint.TRAINER_STATE} is not a trainer state: {err}"
            ) from err
        if (folder / checkpoint.STREAM_STATE).is_file():
            stream = checkpoint.load_torch_file(folder / checkpoint.STREAM_STATE)
            self.stream_state = map_tensors(lambda t: t.to(self.device), stream)
        set_rng_state(rng)
        if self.env.distributed:  # rank 0's RNG was saved; give the others their own stream
            torch.manual_seed(self.config.seed + self.env.rank + 7919 * self.state.step)
        if self.env.is_main:  # drop records the interrupted run wrote after this checkpoint
            lines = self.metrics_file.read_text().splitlines() if self.metrics_file.exists() else []
            text = "".join(line + "\n" for line in lines[: self.state.records])
            tmp = self.metrics_file.with_name(".metrics.jsonl.tmp")
            tmp.write_text(text)
            tmp.replace(self.metrics_file)
        self._say(
            f"resumed from {folder} at step {self.state.step}, epoch {self.state.epoch}, "
            f"batch {self.state.batch_in_epoch}"
        )

    def _load_average(self, saved: list[Tensor], folder: Path) -> None:
        shapes = [tuple(p.shape) for p in self.params]
        if not isinstance(saved, list) or [tuple(t.shape) for t in saved] != shapes:
            raise CheckpointError(
                f"{folder / checkpoint.OPTIMIZER}: the averaged weights do not match the "
                f"model's {len(shapes)} trainable parameters"
            )
        with torch.no_grad():
            for average, tensor in zip(self.average, saved, strict=True):
                average.copy_(tensor)

    def _prepare_out_dir(self, overwrite: bool, resume: bool) -> Path | None:
        """Check out_dir; return the checkpoint to resume from (or None for a new run)."""
        if overwrite and resume:
            raise ValueError("pass overwrite or resume, not both")
        out = self.out_dir
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"out_dir {out} exists and is not a folder")
        not_empty = out.is_dir() and any(out.iterdir())
        resume_from = None
        if resume:
            try:
                resume_from = checkpoint.resolve(self.last_dir)
            except CheckpointError:
                self._say(f"nothing to resume in {out} (no last/ checkpoint); starting a new run")
            if resume_from is not None:
                saved = checkpoint.read_config(resume_from)["task"]
                if saved != self.task.name:
                    raise CheckpointError(
                        f"{resume_from} holds a {saved!r} checkpoint, "
                        f"not one of task {self.task.name!r}"
                    )
        elif not_empty and not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite or --resume")
        elif not_empty and not any((out / name).exists() for name in RUN_MARKERS):
            raise FileExistsError(
                f"refusing to overwrite {out}: it does not look like a recur "
                "run folder (no metrics.jsonl, best/ or last/)"
            )
        distributed.barrier(self.env)  # every rank has decided before rank 0 deletes anything
        if self.env.is_main:
            if overwrite and not_empty:
                shutil.rmtree(out)
            out.mkdir(parents=True, exist_ok=True)
            if resume_from is None:
                self.metrics_file.unlink(missing_ok=True)
        distributed.barrier(self.env)
        return resume_from

    # -- evaluation and prediction ------------------------------------------------------------

    def evaluate(self, batches: Iterable[Any] | None = None) -> dict[str, Any]:
        """``task.evaluate`` over ``batches`` in eval mode, without gradients.

        Default: the validation batches, sharded over ranks, each scalar metric averaged
        over ranks weighted by their batch counts; {} when there are none. Scalar metrics
        come back as floats; anything else (a confusion matrix as a list) as the task
        returned it.
        """
        own = batches is None
        if own:
            batches = distributed.shard(self.task.valid_batches(), self.env, drop_incomplete=False)
        batches = iter(batches)
        first = next(batches, _NOTHING)  # no batches: do not ask the task about an empty set
        metrics: dict[str, Any] = {}
        seen = 0

        def on_device(items: Iterable[Any]) -> Iterable[Any]:
            nonlocal seen
            for batch in items:
                seen += 1
                yield map_tensors(lambda t: t.to(self.device), batch)

        if first is not _NOTHING:
            model, was_training = self.raw_model, self.raw_model.training
            model.eval()
            try:
                with torch.no_grad(), self._autocast():
                    found = self.task.evaluate(model, on_device(itertools.chain([first], batches)))
            finally:
                model.train(was_training)
            metrics = {name: _scalar(value) for name, value in found.items()}
            if "loss" not in metrics:
                raise KeyError(
                    f"task {self.task.name!r}: evaluate() must return a 'loss' metric, "
                    f"got {', '.join(metrics) or 'nothing'}"
                )
        if own:
            metrics = distributed.all_reduce_mean(metrics, seen, self.env)
        return metrics

    def predict(self, batches: Iterable[Any]) -> list[Any]:
        """``task.predict(model, batch)`` for each batch, in eval mode without gradients."""
        model, was_training = self.raw_model, self.raw_model.training
        model.eval()
        try:
            with torch.no_grad(), self._autocast():
                return [
                    self.task.predict(model, map_tensors(lambda t: t.to(self.device), b))
                    for b in batches
                ]
        finally:
            model.train(was_training)

    # -- logging --------------------------------------------------------------------------------

    def _reset_interval(self) -> None:
        self._step_loss, self._step_items = torch.zeros((), device=self.device), 0
        self._interval = {
            "loss": 0.0,
            "items": 0,
            "steps": 0,
            "norm_sum": 0.0,
            "norm_max": 0.0,
            "start": time.monotonic(),
        }

    def _log_step(self, loss: float, items: float, lr: float, grad_norm: float) -> None:
        """Accumulate this step into the interval; every log_every steps write a record."""
        st, interval = self.state, self._interval
        if math.isfinite(loss):
            interval["loss"] += loss * items
            interval["items"] += items
        interval["steps"] += 1
        interval["norm_sum"] += grad_norm
        interval["norm_max"] = max(interval["norm_max"], grad_norm)
        self._bar.update(1)
        if st.step % self.config.log_every:
            return
        seconds = max(time.monotonic() - interval["start"], 1e-9)
        mean_loss = interval["loss"] / interval["items"] if interval["items"] else math.nan
        record = {
            "kind": "train",
            "step": st.step,
            "epoch": st.epoch,
            "loss": mean_loss,
            "lr": lr,
            "grad_norm": interval["norm_sum"] / interval["steps"],
            "grad_norm_max": interval["norm_max"],
            "items_per_s": interval["items"] / seconds,
            "skipped_steps": st.skipped_steps,
            "time": self._elapsed(),
        }
        self._bar.set_postfix(loss=f"{mean_loss:.4g}", items_s=f"{record['items_per_s']:.0f}")
        self._reset_interval()
        self._record(record)

    def _record(self, record: dict[str, Any]) -> None:
        """Append a record to metrics.jsonl (rank 0) and call the callbacks (every rank)."""
        if self.env.is_main:
            with open(self.metrics_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(checkpoint.json_safe(record)) + "\n")
        self.state.records += 1
        for callback in self.callbacks:
            callback(self, record)

    def _say(self, message: str, error: bool = False) -> None:
        if self.env.is_main and (error or not self.config.quiet):
            tqdm.write(message, file=sys.stderr if error else sys.stdout)

    def _progress_bar(self) -> tqdm:
        terminal = sys.stdout.isatty() and sys.stderr.isatty()
        return tqdm(
            total=self.total_steps,
            initial=self.state.step,
            unit="step",
            desc=self.task.name,
            disable=self.config.quiet or not terminal or not self.env.is_main,
            dynamic_ncols=True,
        )

    def _elapsed(self) -> float:
        return self._elapsed_before + time.monotonic() - self._session_start

    def _result(self, reason: str, valid_metrics: dict[str, Any]) -> FitResult:
        st = self.state
        if reason == "nonfinite":
            kept = (
                f"the last good checkpoint is {self.last_dir} (step {self._last_saved_step})"
                if self._last_saved_step is not None
                else "no checkpoint was saved"
            )
            message = (
                f"training stopped: {st.nonfinite_streak} non-finite steps in a row "
                f"(max_nonfinite={self.config.max_nonfinite}) at step {st.step}; {kept}"
            )
            self._say(message, error=True)
        else:
            message = f"training stopped ({reason}) at step {st.step}, epoch {st.epoch}"
            if st.best_metric is not None:
                message += f"; best valid {self.config.monitor} {st.best_metric:.4g}"
                message += f" at step {st.best_step}"
            self._say(message)
        return FitResult(
            stop_reason=reason,
            message=message,
            steps=st.step,
            epochs=st.epoch,
            best_metric=st.best_metric,
            valid_metrics=valid_metrics,
            best_dir=self.best_dir,
            last_dir=self.last_dir,
            skipped_steps=st.skipped_steps,
            elapsed_s=self._elapsed(),
        )

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _count_total_steps(self) -> int | None:
        """Optimizer steps in the whole run, if known (for cosine and the progress bar)."""
        cfg = self.config
        try:
            per_epoch = len(self.task.train_batches(0)) // self.env.world_size  # type: ignore[arg-type]
            total = math.ceil(per_epoch / cfg.grad_accum) * cfg.epochs
        except TypeError:  # a generator: no len()
            total = None
        if cfg.max_steps is not None:
            total = cfg.max_steps if total is None else min(total, cfg.max_steps)
        if total is None and cfg.schedule == "cosine" and not cfg.schedule_by_time:
            raise ValueError(
                "schedule 'cosine' needs max_steps, or train_batches(epoch) with a "
                "len() to count the steps"
            )
        return total


RUN_MARKERS = ("metrics.jsonl", "best", "last", ".best.old", ".last.old")
_NOTHING = object()


# -- pieces with no trainer state ---------------------------------------------------------------


def learning_rate(
    config: TrainConfig,
    step: int,
    total_steps: int | None = None,
    plateau_scale: float = 1.0,
    time_fraction: float | None = None,
) -> float:
    """The learning rate of optimizer step ``step`` (0-based) under ``config``'s schedule.

    ``time_fraction`` (the elapsed fraction of the time budget, under ``schedule_by_time``)
    advances the cosine when it is further along than the steps.
    """
    lr = config.lr * plateau_scale
    if step < config.warmup_steps:
        return lr * (step + 1) / config.warmup_steps  # linear warm-up
    if config.schedule == "step":
        lr *= config.gamma ** (step // config.step_size)
    elif config.schedule == "cosine":
        assert total_steps is not None or time_fraction is not None, "cosine needs a length"
        progress = 0.0
        if total_steps is not None:
            span = max(1, total_steps - config.warmup_steps)
            progress = (step - config.warmup_steps) / span
        if time_fraction is not None:
            progress = max(progress, time_fraction)
        progress = min(1.0, progress)
        lr *= 0.5 * (1.0 + math.cos(math.pi * progress))
    return lr


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov), Adam or AdamW as the config says."""
    params = list(params)
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    # torch's fused Adam kernel: the same update (tested), measured 2.6x faster than the
    # default foreach path on one CPU thread for the 2.3M-parameter NER tagger
    # (bench/tagger.py, docs/benchmarks.md); it needs floating parameters on one CPU or
    # CUDA device.
    devices = {p.device.type for p in params}
    fused = len(devices) == 1 and devices <= {"cpu", "cuda"} and all(
        p.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16) for p in params)
    return adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay,
                fused=fused or None)


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row; the run folder keeps the last good checkpoint."""


def run_training(task: Task, config: TrainConfig, out_dir: str | Path, *, overwrite: bool = False,
                 resume: bool = False, tensorboard: bool = False) -> FitResult:
    """What every ``recur train <task>`` does: a Trainer (with a TensorBoard logger under
    ``out_dir/tensorboard`` if asked), ``fit()``, torch.distributed cleaned up whatever
    happens; a diverged run raises ``TrainingDiverged``."""
    callbacks = []
    if tensorboard:
        from recur.training.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(Path(out_dir) / "tensorboard"))
    trainer = Trainer(task, config, out_dir, overwrite=overwrite, resume=resume, callbacks=callbacks)
    try:
        result = trainer.fit()
    finally:
        distributed.cleanup()
    if result.stop_reason == "nonfinite":
        raise TrainingDiverged(result.message)
    return result


def resolve_device(name: str, env: distributed.DistEnv | None = None) -> torch.device:
    """``"auto"`` → cuda if available, then mps, then cpu; check an explicit choice exists."""
    mps = getattr(torch.backends, "mps", None)
    mps_ok = mps is not None and mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if mps_ok else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False")
        return torch.device("cuda", env.local_rank if env else 0)
    if name == "mps" and not mps_ok:
        raise ValueError(
            "device 'mps' was asked for but torch.backends.mps.is_available() is False"
        )
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's (CPU and CUDA) global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The global RNG states of python, numpy and torch as JSON-safe values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": _b64(torch.get_rng_state()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(_unb64(state["torch"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([_unb64(s) for s in state["cuda"]])


def _b64(tensor: Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _unb64(text: str) -> Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


def _scalar(value: Any) -> Any:
    """A number (Python, NumPy or one-element tensor) as a float; anything else unchanged."""
    if isinstance(value, Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return float(value)
    return value


def _check_output(out: Any, task: Task) -> StepOutput:
    """Check what task.loss returned, with a message naming the task."""
    if not isinstance(out, StepOutput):
        if not isinstance(out, tuple) or len(out) not in (2, 3):
            raise TypeError(
                f"task {task.name!r}: loss() must return StepOutput(loss, "
                f"num_items, state=None), got {type(out).__name__}"
            )
        out = StepOutput(*out)
    if not isinstance(out.loss, Tensor) or out.loss.dim() != 0 or not out.loss.is_floating_point():
        got = tuple(out.loss.shape) if isinstance(out.loss, Tensor) else type(out.loss).__name__
        raise TypeError(
            f"task {task.name!r}: StepOutput.loss must be a scalar float tensor "
            f"(the mean over items), got {got}"
        )
    num_items = int(out.num_items)
    if num_items <= 0:
        raise ValueError(f"task {task.name!r}: StepOutput.num_items must be > 0, got {num_items}")
    return out._replace(num_items=num_items)
