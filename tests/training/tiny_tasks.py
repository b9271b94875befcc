"""Tiny tasks the training tests share, and the scripts their subprocesses run.

Everything here trains in well under a second: a linear regression, a one-layer LSTM
classifier with dropout, and a character-level LSTM language model for truncated BPTT.
Nothing depends on recur's own cells, layers or data code.

Run as a script (the resume and distributed tests do)::

    python tiny_tasks.py '[{"task": "classify", "out": "runs/a", "kill_at": 9}]'

"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recur.training import StepOutput, Task, TrainConfig, Trainer, mean_loss, register_task
from recur.training.tbptt import stream_windows

# -- linear regression --------------------------------------------------------------------------


class Regression(Task):
    """y = x · w_true + 0.01 noise, x of shape (N, D); the model is nn.Linear(D, 1).

    Args:
        num_batches, batch_size: batches per epoch and rows per batch.
        poison: (epoch, batch index) pairs whose targets are NaN (a non-finite loss).
        sleep: seconds each batch takes to arrive (to test the time budget).
    """

    name = "tiny_regression"

    def __init__(
        self,
        dim: int = 3,
        num_batches: int = 8,
        batch_size: int = 8,
        seed: int = 0,
        poison: set[tuple[int, int]] | None = None,
        sleep: float = 0.0,
        valid: bool = True,
    ) -> None:
        self.dim, self.num_batches, self.batch_size = dim, num_batches, batch_size
        self.seed, self.poison, self.sleep, self.has_valid = seed, poison or set(), sleep, valid
        g = torch.Generator().manual_seed(seed)
        self.w_true = torch.randn(dim, 1, generator=g)
        n = num_batches * batch_size
        self.x = torch.randn(n, dim, generator=g)
        self.y = self.x @ self.w_true + 0.01 * torch.randn(n, 1, generator=g)
        self.x_valid = torch.randn(32, dim, generator=g)
        self.y_valid = self.x_valid @ self.w_true

    def build_model(self) -> nn.Module:
        return nn.Linear(self.dim, 1)

    def train_batches(self, epoch: int):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(epoch))
        for i in range(self.num_batches):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            if self.sleep:
                time.sleep(self.sleep)
            y = self.y[idx]
            if (epoch, i) in self.poison:
                y = torch.full_like(y, float("nan"))
            yield self.x[idx], y

    def valid_batches(self):
        if not self.has_valid:
            return []
        return [(self.x_valid[i : i + 8], self.y_valid[i : i + 8]) for i in range(0, 32, 8)]

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        return StepOutput(F.mse_loss(model(x), y), num_items=len(x))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        batches = list(batches)
        abs_err = torch.cat([(model(x) - y).abs() for x, y in batches])
        return {"loss": mean_loss(self, model, batches), "mae": float(abs_err.mean())}

    def predict(self, model: nn.Module, batch: Any) -> torch.Tensor:
        return model(batch[0])

    def configs(self) -> dict[str, Any]:
        return {"model": {"dim": self.dim}}

    def files(self, folder: Path) -> None:
        (folder / "notes.txt").write_text("a tiny regression\n")


register_task("tiny_regression", lambda configs, folder: nn.Linear(configs["model"]["dim"], 1))


# -- LSTM classifier with dropout -------------------------------------------------------------


class TinyLSTMClassifier(nn.Module):
    """(B, T, D) → LSTM → dropout → Linear → (B, C) logits."""

    def __init__(self, dim: int = 4, hidden: int = 8, classes: int = 2, dropout: float = 0.2):
        super().__init__()
        self.lstm = nn.LSTM(dim, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)  # h: (1, B, H)
        return self.head(self.drop(h[-1]))  # (B, C)


class Classify(Task):
    """Random (T=6, D=4) sequences; the class is whether the first feature sums above 0."""

    name = "tiny_classify"

    def __init__(self, num_batches: int = 12, batch_size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        n = num_batches * batch_size
        self.num_batches, self.batch_size = num_batches, batch_size
        self.x = torch.randn(n, 6, 4, generator=g)
        self.y = (self.x[:, :, 0].sum(1) > 0).long()
        self.x_valid = torch.randn(64, 6, 4, generator=g)
        self.y_valid = (self.x_valid[:, :, 0].sum(1) > 0).long()

    def build_model(self) -> nn.Module:
        return TinyLSTMClassifier()

    def train_batches(self, epoch: int):
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(1000 + epoch))
        for i in range(self.num_batches):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]

    def valid_batches(self):
        return [(self.x_valid[i : i + 16], self.y_valid[i : i + 16]) for i in range(0, 64, 16)]

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        x, y = batch
        return StepOutput(F.cross_entropy(model(x), y), num_items=len(y))

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        batches = list(batches)
        correct = sum(int((model(x).argmax(-1) == y).sum()) for x, y in batches)
        total = sum(len(y) for _, y in batches)
        return {"loss": mean_loss(self, model, batches), "accuracy": correct / total}


register_task("tiny_classify", lambda configs, folder: TinyLSTMClassifier())


# -- character LSTM language model over one stream (truncated BPTT) ---------------------------


class TinyLM(nn.Module):
    """tokens (B, T) and state → logits (B, T, V) and the new (h, c), each (1, B, H)."""

    def __init__(self, vocab: int = 5, hidden: int = 16):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, tokens: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        out, state = self.lstm(self.embed(tokens), state)  # (B, T, H)
        return self.head(out), state  # (B, T, V)


class Stream(Task):
    """A noisy repeating pattern 0 1 2 3 4 0 1 2 ... cut into B = 4 streams, windows of 8.

    ``seen_states`` records the state each loss() call received (to test detaching).
    """

    name = "tiny_stream"

    def __init__(self, length: int = 400, seed: int = 0, record_states: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        ids = torch.arange(length) % 5
        noise = torch.rand(length, generator=g) < 0.1
        self.ids = torch.where(noise, torch.randint(0, 5, (length,), generator=g), ids)
        self.record_states, self.seen_states = record_states, []

    def build_model(self) -> nn.Module:
        return TinyLM()

    def train_batches(self, epoch: int):
        return stream_windows(self.ids[:300], batch_size=4, window=8)

    def valid_batches(self):
        return stream_windows(self.ids[300:], batch_size=2, window=8)

    def loss(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        if self.record_states:
            self.seen_states.append(state)
        x, y = batch
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        return StepOutput(loss, num_items=y.numel(), state=state)

    def evaluate(self, model: nn.Module, batches) -> dict[str, float]:
        return {"loss": mean_loss(self, model, batches, carry_state=True)}


register_task("tiny_stream", lambda configs, folder: TinyLM())

TASKS = {"regression": Regression, "classify": Classify, "stream": Stream}


def resume_config(task: str) -> TrainConfig:
    """The config both runs of the kill-and-resume test use."""
    return TrainConfig(
        epochs=3,
        optimizer="adam",
        lr=1e-2,
        grad_accum=2,
        checkpoint_every=2,
        log_every=1,
        clip_norm=1.0,
        tbptt=task == "stream",
        quiet=True,
        seed=7,
        device="cpu",
    )


# -- scripts for subprocesses -----------------------------------------------------------------


def run_jobs(jobs: list[dict[str, Any]]) -> None:
    """Run training jobs one after another in this process, each a dict with keys task,
    out, and optionally resume (bool) and kill_at (SIGKILL this process after that step)."""
    torch.set_num_threads(1)
    for job in jobs:

        def kill(trainer: Trainer, record: dict, step: int | None = job.get("kill_at")) -> None:
            if record["kind"] == "train" and record["step"] == step:
                os.kill(os.getpid(), signal.SIGKILL)  # a crash: no cleanup, no flush

        task = job["task"]
        Trainer(
            TASKS[task](),
            resume_config(task),
            job["out"],
            resume=job.get("resume", False),
            callbacks=[kill],
        ).fit()


def ddp_worker(rank: int, world_size: int, port: int, out: str) -> None:
    """One torchrun-like process of the distributed test (spawned by torch.multiprocessing)."""
    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    from recur.training import distributed

    try:
        Trainer(Regression(batch_size=4, num_batches=16), ddp_config(), out, overwrite=True).fit()
    finally:
        distributed.cleanup()


def ddp_config() -> TrainConfig:
    return TrainConfig(epochs=2, optimizer="adam", lr=0.05, quiet=True, device="cpu", seed=3)


if __name__ == "__main__":
    run_jobs(json.loads(sys.argv[1]))
