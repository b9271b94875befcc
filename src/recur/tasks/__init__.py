"""Applications as the Trainer sees them: data + model + loss + metrics, one module each.

Each module defines a ``Task`` subclass, registers a loader so ``recur.training.load``
rebuilds its models from a checkpoint folder, and gives the CLI its ``train_command``,
``evaluate_command`` and ``predict_command``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

TASK_MODULES = {
    "sentiment": "recur.tasks.sentiment",
    "tagger": "recur.tasks.tagger",
    "translate": "recur.tasks.translate",
    "forecast": "recur.tasks.forecast",
    "digits": "recur.tasks.images",
    "language_model": "recur.tasks.language_model",
}


def task_module_for(folder: str | Path) -> ModuleType:
    """The task module that owns the checkpoint in ``folder`` (a checkpoint or run folder)."""
    from recur.training.checkpoint import read_config

    task = read_config(folder)["task"]
    if task not in TASK_MODULES:
        raise ValueError(f"{folder} holds a model of task {task!r}; this recur knows "
                         f"{', '.join(TASK_MODULES)}")
    return importlib.import_module(TASK_MODULES[task])
