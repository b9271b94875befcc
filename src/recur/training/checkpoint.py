"""The one checkpoint format: a folder any recur command can rebuild a model from.

A checkpoint folder holds::

    model.safetensors    the weights (safetensors: loading never unpickles objects)
    config.json          task name and module, recur / torch / python versions, the task's
                         model and data configs, the TrainConfig, step, epoch, metrics
    vocab.json ...       whatever files the task writes (Task.files)
    optimizer.pt         optimizer (+ GradScaler) state, only in a run's last/ folder;
                         read with torch.load(weights_only=True)
    trainer_state.json   step, epoch, batch in epoch, best metric, RNG states (last/ only)
    tbptt_state.pt       the carried recurrent state under truncated BPTT (last/ only)

A training run folder (``Trainer(out_dir=...)``) holds ``best/`` (the best model so far,
for predict / serve), ``last/`` (everything needed to resume) and ``metrics.jsonl``.
``load(run_folder)`` uses its ``best/``.

Writes are atomic: the checkpoint is written into a temporary sibling folder, every file
and the folder are fsynced, and only then does it replace the old one by two renames
(old → ``.NAME.old``, new → NAME). A crash leaves either the old checkpoint or the new
one, never a half-written one; between the two renames only ``.NAME.old`` exists, and
``resolve`` falls back to it.

Run it: ``python -c "import recur.training as t; print(t.load('runs/imdb'))"``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import safetensors.torch
import torch
from torch import nn

from recur.training.task import Task, get_loader, registered_tasks

FORMAT = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
OPTIMIZER = "optimizer.pt"
TRAINER_STATE = "trainer_state.json"
STREAM_STATE = "tbptt_state.pt"


class CheckpointError(Exception):
    """A checkpoint folder is missing, incomplete, corrupted or of another task."""


def versions() -> dict[str, str]:
    """Versions recorded with every checkpoint: python, torch, numpy, recur."""
    from recur import __version__

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "recur": __version__,
    }


# -- atomic writes ----------------------------------------------------------------------------


def _fsync_path(path: Path) -> None:
    """Flush a file's (or, on POSIX, a folder's) contents to disk."""
    if path.is_dir() and os.name != "posix":
        return  # folders cannot be opened for fsync on Windows
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_folder(final: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final`` atomically.

    If the block raises, the temporary folder is removed and ``final`` is untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    old = final.parent / f".{final.name}.old"
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.rglob("*"):
            _fsync_path(file)
        _fsync_path(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old.exists() and final.exists():  # left by a crash after an earlier swap
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    _fsync_path(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(json_safe(data), f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def json_safe(value: Any) -> Any:
    """``value`` with NaN / inf floats replaced by None, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


# -- save ---------------------------------------------------------------------------------------


def save_checkpoint(
    folder: str | os.PathLike,
    model: nn.Module,
    task: Task,
    training: dict[str, Any] | None = None,
    *,
    info: dict[str, Any] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    trainer_state: dict[str, Any] | None = None,
    stream_state: Any = None,
) -> Path:
    """Write a checkpoint folder atomically and return its path.

    Args:
        folder: the checkpoint folder to create or replace.
        model: the model (unwrapped, not DDP); saved with safetensors' ``save_model``,
            which handles tied weights.
        task: supplies ``name``, ``configs()`` and ``files(folder)``.
        training: the TrainConfig as a dict (``TrainConfig.to_dict()``).
        info: extra JSON-able facts for config.json (step, epoch, metrics...).
        optimizer_state: saved to optimizer.pt with ``torch.save`` (tensors, numbers,
            strings and containers only, so it loads with ``weights_only=True``).
        trainer_state: saved to trainer_state.json.
        stream_state: the carried TBPTT state, saved to tbptt_state.pt.
    """
    config = {
        "format": FORMAT,
        "task": task.name,
        "task_module": type(task).__module__,
        "versions": versions(),
        "configs": task.configs(),
        "training": training,
        **(info or {}),
    }
    with atomic_folder(folder) as tmp:
        safetensors.torch.save_model(model, str(tmp / WEIGHTS))
        write_json(tmp / CONFIG, config)
        task.files(tmp)
        if optimizer_state is not None:
            torch.save(optimizer_state, tmp / OPTIMIZER)
        if trainer_state is not None:
            write_json(tmp / TRAINER_STATE, trainer_state)
        if stream_state is not None:
            torch.save(stream_state, tmp / STREAM_STATE)
    return Path(folder)


# -- load ---------------------------------------------------------------------------------------


class Checkpoint(NamedTuple):
    """A loaded checkpoint: the rebuilt model (on CPU), its config.json and its folder."""

    model: nn.Module
    config: dict[str, Any]
    folder: Path


def resolve(path: str | os.PathLike) -> Path:
    """The checkpoint folder ``path`` names: itself, or a run folder's ``best/``.

    Falls back to ``.NAME.old`` when a crash interrupted a swap. Raises CheckpointError if
    there is no checkpoint there.
    """
    path = Path(path)
    candidates = [path, path.parent / f".{path.name}.old"]
    for run_child in ("best", "last"):
        candidates += [path / run_child, path / f".{run_child}.old"]
    for candidate in candidates:
        if (candidate / CONFIG).is_file():
            return candidate
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: the folder does not exist")
    raise CheckpointError(
        f"{path} is not a recur checkpoint or run folder: no {CONFIG} in it or in best/ or last/"
    )


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """config.json of the checkpoint at ``path``; CheckpointError naming the file if bad."""
    file = resolve(path) / CONFIG
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file} is unreadable or corrupted: {_first_line(err)}") from err
    if not isinstance(config, dict) or "task" not in config:
        raise CheckpointError(f"{file} is not a recur checkpoint config (no 'task' key)")
    version = config.get("format", FORMAT)
    if not isinstance(version, int) or version > FORMAT:
        raise CheckpointError(
            f"{file} has checkpoint format {version!r}; this recur reads formats up to {FORMAT}"
        )
    return config


def load_weights(model: nn.Module, folder: str | os.PathLike) -> nn.Module:
    """Fill ``model`` (on CPU) from ``folder``/model.safetensors, strictly."""
    file = Path(folder) / WEIGHTS
    if not file.is_file():
        raise CheckpointError(f"{file} is missing")
    try:
        safetensors.torch.load_model(model, str(file), strict=True)
    except RuntimeError as err:  # raised by load_state_dict: names or shapes differ
        raise CheckpointError(
            f"{file} does not fit the model its config.json describes: "
            + " ".join(str(err).split())[:300]
        ) from err
    except Exception as err:  # safetensors' SafetensorError, OSError: truncated or corrupted
        raise CheckpointError(f"{file} is unreadable or corrupted: {_first_line(err)}") from err
    return model


def load_checkpoint(path: str | os.PathLike, task: str | None = None) -> Checkpoint:
    """Rebuild the model saved at ``path`` (a checkpoint or run folder) via the registry.

    Args:
        path: a checkpoint folder, or a run folder (its ``best/`` is used).
        task: if given, the task name the checkpoint must belong to.
    """
    folder = resolve(path)
    config = read_config(folder)
    name = config["task"]
    if task is not None and name != task:
        raise CheckpointError(f"{folder} holds a {name!r} checkpoint, not a {task!r} one")
    module = config.get("task_module", "")
    if name not in registered_tasks() and module.startswith("recur."):
        importlib.import_module(module)  # recur's own tasks register themselves on import
    try:
        loader = get_loader(name)
    except KeyError as err:
        raise CheckpointError(f"{folder}: {err.args[0]}") from None
    try:
        model = loader(config.get("configs", {}), folder)
    except Exception as err:
        raise CheckpointError(
            f"{folder}: the {name!r} loader failed to rebuild the model: {_first_line(err)}"
        ) from err
    load_weights(model, folder)
    model.eval()
    return Checkpoint(model, config, folder)


def load(path: str | os.PathLike, task: str | None = None) -> nn.Module:
    """The model saved at ``path`` (a checkpoint or run folder), on CPU, in eval mode."""
    return load_checkpoint(path, task).model


def load_torch_file(file: str | os.PathLike) -> Any:
    """``torch.load(file, weights_only=True)`` on CPU, errors re-raised naming the file."""
    file = Path(file)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{file} is unreadable or corrupted: {_first_line(err)}") from err


def read_json(file: str | os.PathLike) -> Any:
    """Parse a JSON file, errors re-raised as CheckpointError naming the file."""
    file = Path(file)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file} is unreadable or corrupted: {_first_line(err)}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
