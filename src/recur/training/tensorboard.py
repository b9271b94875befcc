"""Optional TensorBoard event files: a Trainer callback that mirrors metrics.jsonl.

    Trainer(task, config, out, callbacks=[TensorBoardLogger(out / "tensorboard")])
    tensorboard --logdir runs/                      # then open http://localhost:6006

Needs the ``tensorboard`` package (``pip install 'recur[tensorboard]'``); without it the
logger raises one clear error when it is built, before any training starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

SKIPPED_KEYS = ("kind", "step", "epoch", "time", "best")


def _summary_writer(log_dir: str) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(
            "--tensorboard needs the tensorboard package: pip install 'recur[tensorboard]' "
            f"(import failed: {error})"
        ) from None
    return SummaryWriter(log_dir=log_dir)


class TensorBoardLogger:
    """Write every numeric field of each training / validation record as a scalar.

    Scalars are named ``{kind}/{field}`` (``train/loss``, ``train/grad_norm``,
    ``valid/valid_accuracy`` ...) at the record's optimizer step.
    """

    def __init__(self, log_dir: str | Path, writer_factory: Callable[[str], Any] = _summary_writer):
        self.writer = writer_factory(str(log_dir))

    def __call__(self, trainer: Any, record: dict[str, Any]) -> None:
        kind = record.get("kind", "train")
        step = int(record.get("step", 0))
        for key, value in record.items():
            if key in SKIPPED_KEYS or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{kind}/{key}", value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
