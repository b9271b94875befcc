"""Data-parallel training with torchrun: environment, process group, DDP, sharding.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and tells each its
place through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). The Trainer reads them through ``environment()`` and,
when ``WORLD_SIZE > 1``:

- joins the process group (``gloo`` on CPU, ``nccl`` on CUDA; one GPU per local rank),
- wraps the model in DistributedDataParallel, which averages gradients over ranks in
  backward, so every rank takes the same optimizer step,
- gives rank r the batches i with i % WORLD_SIZE == r (``shard``): one optimizer step
  sees WORLD_SIZE batches, the global batch,
- averages validation metrics over ranks (``all_reduce_mean``),
- writes checkpoints, metrics.jsonl and the progress bar on rank 0 only.

Run without torchrun (or with one process) none of this happens. See docs/distributed.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import nn


class DistEnv(NamedTuple):
    """This process's place: global rank, number of processes, rank on this machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an int, got {raw!r}") from None


def environment() -> DistEnv:
    """Rank, world size and local rank from torchrun's environment variables (or 0, 1, 0)."""
    env = DistEnv(_env_int("RANK", 0), _env_int("WORLD_SIZE", 1), _env_int("LOCAL_RANK", 0))
    if env.world_size < 1 or not 0 <= env.rank < env.world_size:
        raise ValueError(
            f"RANK must be in [0, WORLD_SIZE), got RANK={env.rank}, WORLD_SIZE={env.world_size}"
        )
    return env


def init(env: DistEnv, device: torch.device) -> None:
    """Join the process group (once) if ``env`` has more than one process."""
    if not env.distributed or dist.is_initialized():
        return
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(
                f"WORLD_SIZE={env.world_size} but {name} is not set; start the script with "
                "torchrun (see docs/distributed.md)"
            )
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)


def wrap(model: nn.Module, env: DistEnv, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel when distributed, else unchanged."""
    if not env.distributed:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (what gets saved and evaluated)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def shard(batches: Iterable[Any], env: DistEnv, drop_incomplete: bool = True) -> Iterator[Any]:
    """This rank's batches: batch i goes to rank i % world_size.

    With ``drop_incomplete`` (training), a last group of fewer than world_size batches is
    dropped so every rank takes the same number of steps (DDP hangs otherwise). For
    evaluation pass ``drop_incomplete=False``: every batch is used once.
    """
    if not env.distributed:
        yield from batches
        return
    group: list[Any] = []
    for batch in batches:
        group.append(batch)
        if len(group) == env.world_size:
            yield group[env.rank]
            group = []
    if group and not drop_incomplete and env.rank < len(group):
        yield group[env.rank]


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Element-wise sum of ``values`` over ranks (float64; unchanged when not distributed)."""
    if not env.distributed:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def all_reduce_mean(metrics: dict[str, Any], weight: float, env: DistEnv) -> dict[str, Any]:
    """Each float metric averaged over ranks, weighted by ``weight`` (e.g. batches seen).

    Rank 0's float metrics are the ones averaged; a rank without a metric (no batches)
    adds nothing to it. Other values (lists...) stay as this rank computed them. Exact
    for means over equal-size batches; otherwise a close approximation of the metric
    over the whole set.
    """
    if not env.distributed:
        return dict(metrics)
    shared = [[key for key, value in metrics.items() if isinstance(value, float)]]
    dist.broadcast_object_list(shared, src=0)
    keys = shared[0]
    present = [key in metrics and weight > 0 for key in keys]
    weighted = [weight * metrics[key] if ok else 0.0 for key, ok in zip(keys, present, strict=True)]
    sums = all_reduce_sum(weighted + [float(weight) if ok else 0.0 for ok in present], env)
    out = dict(metrics)
    for i, key in enumerate(keys):
        total = sums[len(keys) + i]
        out[key] = sums[i] / total if total else float("nan")
    return out


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every rank if ``flag`` is True on any rank (to stop all ranks together)."""
    return bool(all_reduce_sum([float(flag)], env)[0]) if env.distributed else flag


def barrier(env: DistEnv) -> None:
    """Wait for every rank (no-op when not distributed)."""
    if env.distributed and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group; call once at the end of a torchrun script."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
