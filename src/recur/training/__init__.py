"""Training engine: one Trainer, checkpoint format and metric set for every recur task.

An application implements the small ``Task`` interface; ``Trainer(task, config, out_dir)``
runs the loop (clipping, accumulation, mixed precision, truncated BPTT, early stopping,
checkpoints with exact resume, torchrun); ``load(folder)`` rebuilds any saved model.
See docs/training.md.
"""

from recur.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    load,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from recur.training.config import TrainConfig, flush_denormals, reuse_freed_memory
from recur.training.plot import plot_run
from recur.training.task import StepOutput, Task, get_loader, mean_loss, register_task
from recur.training.tbptt import detach_state, map_tensors, stream_windows
from recur.training.trainer import (
    FitResult,
    Trainer,
    TrainerState,
    TrainingDiverged,
    learning_rate,
    run_training,
    seed_everything,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "FitResult",
    "StepOutput",
    "Task",
    "TrainConfig",
    "Trainer",
    "TrainerState",
    "TrainingDiverged",
    "detach_state",
    "flush_denormals",
    "reuse_freed_memory",
    "get_loader",
    "learning_rate",
    "run_training",
    "load",
    "load_checkpoint",
    "map_tensors",
    "mean_loss",
    "plot_run",
    "read_config",
    "register_task",
    "save_checkpoint",
    "seed_everything",
    "stream_windows",
]
