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


def load_for_backend(args, load_torch, onnx_class: str):
    """The saved model ``args.model`` for ``args.backend``: ``load_torch(args.model)``, or
    for ``onnx`` ``recur.export.<onnx_class>.load(args.model, onnx=args.onnx)`` (the same
    model with its network run by onnxruntime). ``--onnx`` without ``--backend onnx`` is
    an error rather than silently ignored."""
    backend, onnx = getattr(args, "backend", "torch"), getattr(args, "onnx", None)
    if backend != "onnx":
        if onnx is not None:
            raise ValueError(f"--onnx {onnx} was given with --backend {backend}: add "
                             "--backend onnx to run the exported file")
        return load_torch(args.model)
    try:
        from recur import export
    except ImportError as err:
        raise ValueError(f"--backend onnx needs the export extra ({err.name} is missing): "
                         "pip install 'recur[export]'") from None
    return getattr(export, onnx_class).load(args.model, onnx=onnx)
